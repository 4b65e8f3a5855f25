//! The JSON envelope of the seed: `{"type": "...", "data": {...}}`.
//!
//! Every client message is one envelope in a text frame; every reply and error
//! is an envelope too. Bad JSON gets an error envelope, never a dead
//! connection. serde_json's recursion limit (128) turns absurdly nested input
//! into an error rather than a stack overflow.

use serde_json::{json, Map, Value};

/// A parsed client envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The `type` field.
    pub kind: String,
    /// The `data` field (`null` when absent).
    pub data: Value,
    /// The optional request id (`id`): a JSON number or a string of at most
    /// [`MAX_REQUEST_ID`] bytes; `None` when absent or of another shape.
    /// Replies and errors for this request echo it (see [`with_id`]).
    pub id: Option<Value>,
}

/// The longest request id string echoed, in bytes; a longer one is ignored.
pub const MAX_REQUEST_ID: usize = 64;

/// Error codes of the wire contract.
pub mod codes {
    /// The text is not a JSON object with a string `type`.
    pub const BAD_JSON: &str = "bad_json";
    /// No handler knows this `type`.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// The socket must `bind` first.
    pub const NOT_BOUND: &str = "not_bound";
    /// The bind was refused.
    pub const AUTH_FAILED: &str = "auth_failed";
    /// The configuration does not allow this action.
    pub const FORBIDDEN: &str = "forbidden";
    /// The socket is in too many groups.
    pub const TOO_MANY_GROUPS: &str = "too_many_groups";
    /// A field is missing or malformed.
    pub const BAD_REQUEST: &str = "bad_request";
    /// Binary frames are not part of the JSON protocol.
    pub const UNSUPPORTED: &str = "unsupported";
    /// A send over the socket's fan-out allowance (`client_fanout_rate`).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A message whose envelope would be larger than `max_message_size` allows.
    pub const TOO_LARGE: &str = "too_large";
}

impl Envelope {
    /// Parse a client message.
    pub fn parse(text: &str) -> Result<Envelope, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(mut map) = value else {
            return Err("expected a JSON object".to_owned());
        };
        let kind = match map.remove("type") {
            Some(Value::String(kind)) => kind,
            _ => return Err("missing string field \"type\"".to_owned()),
        };
        let data = map.remove("data").unwrap_or(Value::Null);
        let id = map.remove("id").and_then(request_id);
        Ok(Envelope { kind, data, id })
    }

    /// A string field of `data`.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.data.get(name).and_then(Value::as_str)
    }

    /// An id field of `data`: a string, or an integer kept as its decimal string.
    pub fn id_field(&self, name: &str) -> Option<String> {
        id_value(self.data.get(name)?)
    }
}

/// A string or integer JSON value as an id string.
pub fn id_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// A request id as the wire contract accepts it: a number, or a string of at
/// most [`MAX_REQUEST_ID`] bytes; `None` for anything else.
pub fn request_id(value: Value) -> Option<Value> {
    match &value {
        Value::Number(_) => Some(value),
        Value::String(s) if s.len() <= MAX_REQUEST_ID => Some(value),
        _ => None,
    }
}

/// `envelope` with the request id added as its `id` field (unchanged when `id`
/// is `None` or `envelope` is not an object).
pub fn with_id(mut envelope: Value, id: Option<&Value>) -> Value {
    if let (Some(id), Value::Object(map)) = (id, &mut envelope) {
        map.insert("id".to_owned(), id.clone());
    }
    envelope
}

/// An envelope `{"type": kind, "data": data}` (without `data` when it is null).
pub fn envelope(kind: &str, data: Value) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::String(kind.to_owned()));
    if !data.is_null() {
        map.insert("data".to_owned(), data);
    }
    Value::Object(map)
}

/// An error envelope: `{"type":"error","data":{"code","message","request"}}`.
pub fn error(code: &str, message: &str, request: Option<&str>) -> Value {
    let mut data = json!({ "code": code, "message": message });
    if let (Some(request), Value::Object(map)) = (request, &mut data) {
        map.insert("request".to_owned(), Value::String(request.to_owned()));
    }
    envelope("error", data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelopes() {
        let e = Envelope::parse(r#"{"type":"bind","data":{"client_id":42}}"#).unwrap();
        assert_eq!(e.kind, "bind");
        assert_eq!(e.id_field("client_id").as_deref(), Some("42"));
        let e = Envelope::parse(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(e.data, Value::Null);
        assert!(Envelope::parse("[1,2]").is_err());
        assert!(Envelope::parse(r#"{"data":{}}"#).is_err());
        assert!(Envelope::parse("{not json").is_err());
    }

    #[test]
    fn request_ids_are_numbers_or_short_strings() {
        let id = |text: &str| Envelope::parse(text).unwrap().id;
        assert_eq!(id(r#"{"type":"ping"}"#), None);
        assert_eq!(id(r#"{"type":"ping","id":7}"#), Some(json!(7)));
        assert_eq!(id(r#"{"type":"ping","id":-1.5}"#), Some(json!(-1.5)));
        assert_eq!(id(r#"{"type":"ping","id":"r-1"}"#), Some(json!("r-1")));
        let longest = "x".repeat(MAX_REQUEST_ID);
        let text = format!(r#"{{"type":"ping","id":"{longest}"}}"#);
        assert_eq!(id(&text), Some(json!(longest)));
        let text = format!(r#"{{"type":"ping","id":"{longest}x"}}"#);
        assert_eq!(id(&text), None);
        for ignored in ["null", "true", "[1]", r#"{"a":1}"#] {
            assert_eq!(id(&format!(r#"{{"type":"ping","id":{ignored}}}"#)), None);
        }
        assert_eq!(
            with_id(envelope("pong", Value::Null), Some(&json!(3))),
            json!({"type":"pong","id":3})
        );
        assert_eq!(
            with_id(envelope("pong", Value::Null), None),
            json!({"type":"pong"})
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Envelope::parse(&deep).is_err());
        let deep_obj = format!(
            r#"{{"type":"x","data":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(Envelope::parse(&deep_obj).is_err());
    }

    #[test]
    fn builds_errors() {
        let e = error(codes::BAD_JSON, "nope", Some("join"));
        assert_eq!(
            e,
            json!({"type":"error","data":{"code":"bad_json","message":"nope","request":"join"}})
        );
        assert_eq!(envelope("pong", Value::Null), json!({"type":"pong"}));
    }
}
