//! What the hub sends: text, binary, or a JSON value serialised once.

use serde_json::Value;

/// A message to send. A JSON value is serialised once per call, however many
/// sockets receive it, and sent as a text frame.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// A text frame.
    Text(&'a str),
    /// A binary frame.
    Binary(&'a [u8]),
    /// A JSON value, sent as a text frame.
    Json(&'a Value),
}

impl<'a> From<&'a str> for Payload<'a> {
    fn from(text: &'a str) -> Self {
        Payload::Text(text)
    }
}

impl<'a> From<&'a String> for Payload<'a> {
    fn from(text: &'a String) -> Self {
        Payload::Text(text)
    }
}

impl<'a> From<&'a [u8]> for Payload<'a> {
    fn from(data: &'a [u8]) -> Self {
        Payload::Binary(data)
    }
}

impl<'a> From<&'a Vec<u8>> for Payload<'a> {
    fn from(data: &'a Vec<u8>) -> Self {
        Payload::Binary(data)
    }
}

impl<'a> From<&'a Value> for Payload<'a> {
    fn from(value: &'a Value) -> Self {
        Payload::Json(value)
    }
}
