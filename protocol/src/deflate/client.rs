//! The client side of permessage-deflate's negotiation (RFC 7692 §5, §7.1):
//! the offer a client puts in `Sec-WebSocket-Extensions`, and the check of
//! the server's answer against it.
//!
//! A client fails the connection on an answer its offer did not allow
//! (§5.1, §7.1): an extension it did not offer, a parameter it does not
//! know, one given twice or with a bad value, a window parameter it did not
//! offer, or an answer that leaves out what the offer asked for.

use std::fmt;

use super::negotiation::DeflateParams;
use super::EXTENSION;

/// What a client offers. [`Default`] is Chrome's offer,
/// `permessage-deflate; client_max_window_bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOffer {
    /// Offer `client_max_window_bits` without a value: the server may then
    /// ask for a smaller client window (default true).
    pub client_max_window_bits: bool,
    /// Ask the server to reset its compressor after each message (default
    /// false; a server may answer it anyway).
    pub server_no_context_takeover: bool,
    /// Announce that the client resets its compressor after each message
    /// (default false).
    pub client_no_context_takeover: bool,
    /// Limit the server's window to this many bits, 8-15 (default none).
    pub server_max_window_bits: Option<u8>,
}

impl Default for ClientOffer {
    fn default() -> Self {
        ClientOffer {
            client_max_window_bits: true,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
        }
    }
}

/// Why a server's `Sec-WebSocket-Extensions` answer fails the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// An extension other than permessage-deflate (none other was offered).
    UnofferedExtension,
    /// permessage-deflate accepted more than once.
    RepeatedExtension,
    /// A parameter RFC 7692 does not define.
    UnknownParameter,
    /// A parameter given twice.
    RepeatedParameter,
    /// A parameter with a value where it takes none, without one where it
    /// needs one, a window outside 8-15, or a broken quoted-string.
    MalformedParameter,
    /// A window parameter the offer did not include (§7.1.2.1, §7.1.2.2).
    UnofferedParameter,
    /// The answer leaves out `server_no_context_takeover` or
    /// `server_max_window_bits`, which the offer asked for (§7.1.1.1,
    /// §7.1.2.1).
    MissingParameter,
    /// A `server_max_window_bits` larger than the offer allowed (§7.1.2.1).
    WindowTooLarge,
    /// `client_max_window_bits=8`: valid, but zlib cannot compress with a
    /// 256-byte window (it silently uses 512), so it cannot be honoured.
    UnsupportedWindow,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::UnofferedExtension => "the server accepted an extension not offered",
            ResponseError::RepeatedExtension => "the server accepted permessage-deflate twice",
            ResponseError::UnknownParameter => "unknown permessage-deflate parameter",
            ResponseError::RepeatedParameter => "repeated permessage-deflate parameter",
            ResponseError::MalformedParameter => "malformed permessage-deflate parameter",
            ResponseError::UnofferedParameter => "a window parameter the offer did not include",
            ResponseError::MissingParameter => {
                "the answer leaves out a parameter the offer asked for"
            }
            ResponseError::WindowTooLarge => "server_max_window_bits larger than offered",
            ResponseError::UnsupportedWindow => {
                "client_max_window_bits=8 cannot be honoured by zlib"
            }
        })
    }
}

impl std::error::Error for ResponseError {}

/// The four parameters, as an index into the seen-list.
const PARAMS: [&str; 4] = [
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
];

impl ClientOffer {
    /// The `Sec-WebSocket-Extensions` value to send.
    pub fn header_value(&self) -> String {
        let mut value = EXTENSION.to_owned();
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if self.client_max_window_bits {
            value.push_str("; client_max_window_bits");
        }
        value
    }

    /// Check the server's `Sec-WebSocket-Extensions` values (one per header
    /// line; blank ones are ignored) against this offer. `Ok(None)`: the
    /// server declined, the connection goes on uncompressed. `Ok(Some)`:
    /// the parameters both sides now use.
    pub fn accept(&self, header_values: &[&str]) -> Result<Option<DeflateParams>, ResponseError> {
        let mut agreed = None;
        for extension in header_values.iter().flat_map(|v| split_unquoted(v, ',')) {
            if extension.trim().is_empty() {
                continue;
            }
            let mut parts = split_unquoted(extension, ';');
            let name = parts.next().unwrap_or_default().trim();
            if !name.eq_ignore_ascii_case(EXTENSION) {
                return Err(ResponseError::UnofferedExtension);
            }
            if agreed.is_some() {
                return Err(ResponseError::RepeatedExtension);
            }
            agreed = Some(self.check(parts)?);
        }
        Ok(agreed)
    }

    /// The parameters of one accepted permessage-deflate, checked.
    fn check<'a>(
        &self,
        params: impl Iterator<Item = &'a str>,
    ) -> Result<DeflateParams, ResponseError> {
        let mut seen = [false; PARAMS.len()];
        let mut values: [Option<u8>; PARAMS.len()] = [None; PARAMS.len()];
        for param in params {
            let (key, value) = match param.split_once('=') {
                Some((key, value)) => (key.trim(), Some(token_value(value.trim())?)),
                None => (param.trim(), None),
            };
            let index = PARAMS
                .iter()
                .position(|p| p.eq_ignore_ascii_case(key))
                .ok_or(ResponseError::UnknownParameter)?;
            if std::mem::replace(&mut seen[index], true) {
                return Err(ResponseError::RepeatedParameter);
            }
            // The two context-takeover flags take no value; in an answer,
            // both window parameters take one.
            let takes_value = index >= 2;
            match (takes_value, value) {
                (false, None) => {}
                (true, Some(v)) => values[index] = Some(window_bits(v)?),
                _ => return Err(ResponseError::MalformedParameter),
            }
        }
        let [server_reset, client_reset, _, _] = seen;
        let [_, _, server_bits, client_bits] = values;
        if self.server_no_context_takeover && !server_reset {
            return Err(ResponseError::MissingParameter);
        }
        match (self.server_max_window_bits, server_bits) {
            (None, Some(_)) => return Err(ResponseError::UnofferedParameter),
            (Some(_), None) => return Err(ResponseError::MissingParameter),
            (Some(offered), Some(bits)) if bits > offered => {
                return Err(ResponseError::WindowTooLarge)
            }
            _ => {}
        }
        if client_bits.is_some() && !self.client_max_window_bits {
            return Err(ResponseError::UnofferedParameter);
        }
        if client_bits == Some(8) {
            return Err(ResponseError::UnsupportedWindow);
        }
        Ok(DeflateParams {
            server_no_context_takeover: server_reset,
            client_no_context_takeover: client_reset || self.client_no_context_takeover,
            server_max_window_bits: server_bits.unwrap_or(15),
            client_max_window_bits: client_bits.unwrap_or(15),
        })
    }
}

/// A window size: 8 to 15, decimal digits without a leading zero.
fn window_bits(value: &str) -> Result<u8, ResponseError> {
    match value.as_bytes() {
        [b'8'..=b'9'] | [b'1', b'0'..=b'5'] => {
            value.parse().map_err(|_| ResponseError::MalformedParameter)
        }
        _ => Err(ResponseError::MalformedParameter),
    }
}

/// A parameter value: a token, or a quoted-string around one (window sizes
/// are digits, so no escape is ever needed, RFC 7692 §7.1).
fn token_value(value: &str) -> Result<&str, ResponseError> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or(ResponseError::MalformedParameter)?,
        None => value,
    };
    if inner.is_empty() || inner.contains(['"', '\\']) {
        return Err(ResponseError::MalformedParameter);
    }
    Ok(inner)
}

/// `text` split at `sep` outside double quotes (no escapes are valid in a
/// value here, see [`token_value`], so none are tracked).
fn split_unquoted(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    text.split(move |c: char| {
        if c == '"' {
            quoted = !quoted;
        }
        c == sep && !quoted
    })
}

#[cfg(test)]
mod tests {
    use super::super::negotiation::{negotiate, DeflatePolicy};
    use super::*;

    #[test]
    fn offers_are_written_as_browsers_write_them() {
        assert_eq!(
            ClientOffer::default().header_value(),
            "permessage-deflate; client_max_window_bits"
        );
        let bare = ClientOffer {
            client_max_window_bits: false,
            ..ClientOffer::default()
        };
        assert_eq!(bare.header_value(), "permessage-deflate");
        let all = ClientOffer {
            client_max_window_bits: true,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
        };
        assert_eq!(
            all.header_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits"
        );
    }

    #[test]
    fn answers_of_the_server_side_round_trip() {
        let offers = [
            ClientOffer::default(),
            ClientOffer {
                client_max_window_bits: false,
                ..ClientOffer::default()
            },
            ClientOffer {
                client_max_window_bits: true,
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(11),
            },
            ClientOffer {
                server_max_window_bits: Some(9),
                ..ClientOffer::default()
            },
        ];
        let policies = [
            DeflatePolicy::default(),
            DeflatePolicy {
                server_context_takeover: true,
                client_context_takeover: true,
                server_max_window_bits: 12,
                client_max_window_bits: 10,
            },
        ];
        for offer in offers {
            for policy in &policies {
                let value = offer.header_value();
                let agreement = negotiate(&[&value], policy).expect("server accepts");
                let params = offer
                    .accept(&[&agreement.response])
                    .unwrap_or_else(|e| panic!("{value} -> {}: {e}", agreement.response))
                    .expect("accepted");
                // The server's agreed parameters and the client's reading of
                // the answer are the same, except where the client may do
                // more than asked: reset when it announced so (the server
                // keeping its inflater's window then is harmless), and
                // inflate with 15 bits a server window the answer may not
                // name (the server may compress with less unannounced).
                assert_eq!(
                    params.server_no_context_takeover,
                    agreement.params.server_no_context_takeover
                );
                assert!(
                    params.client_no_context_takeover
                        || !agreement.params.client_no_context_takeover
                );
                assert_eq!(
                    params.client_max_window_bits,
                    agreement.params.client_max_window_bits
                );
                assert!(params.server_max_window_bits >= agreement.params.server_max_window_bits);
            }
        }
    }

    #[test]
    fn agreed_parameters_are_read() {
        let offer = ClientOffer::default();
        assert_eq!(offer.accept(&[]), Ok(None));
        assert_eq!(offer.accept(&["", "  "]), Ok(None));
        let p = offer
            .accept(&[
                "Permessage-Deflate; Server_No_Context_Takeover ; client_max_window_bits=\"10\"",
            ])
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 10,
            }
        );
        // A client that announced client_no_context_takeover resets even
        // when the answer leaves it out.
        let resets = ClientOffer {
            client_no_context_takeover: true,
            ..ClientOffer::default()
        };
        let p = resets.accept(&["permessage-deflate"]).unwrap().unwrap();
        assert!(p.client_no_context_takeover);
    }

    #[test]
    fn answers_the_offer_did_not_allow_fail() {
        let chrome = ClientOffer::default();
        let bare = ClientOffer {
            client_max_window_bits: false,
            ..ClientOffer::default()
        };
        let strict = ClientOffer {
            server_no_context_takeover: true,
            server_max_window_bits: Some(10),
            ..ClientOffer::default()
        };
        use ResponseError::*;
        let cases: &[(&ClientOffer, &[&str], ResponseError)] = &[
            (&chrome, &["x-webkit-deflate-frame"], UnofferedExtension),
            (&chrome, &["permessage-deflate, foo"], UnofferedExtension),
            (
                &chrome,
                &["permessage-deflate", "permessage-deflate"],
                RepeatedExtension,
            ),
            (
                &chrome,
                &["permessage-deflate, permessage-deflate"],
                RepeatedExtension,
            ),
            (&chrome, &["permessage-deflate; x"], UnknownParameter),
            (
                &chrome,
                &["permessage-deflate; ; server_no_context_takeover"],
                UnknownParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
                RepeatedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; server_no_context_takeover=1"],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_no_context_takeover=\"\""],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits"],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits=7"],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits=16"],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits=010"],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits=\"10"],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits=\"1\\0\""],
                MalformedParameter,
            ),
            (
                &chrome,
                &["permessage-deflate; server_max_window_bits=10"],
                UnofferedParameter,
            ),
            (
                &bare,
                &["permessage-deflate; client_max_window_bits=10"],
                UnofferedParameter,
            ),
            (
                &strict,
                &["permessage-deflate; server_max_window_bits=10"],
                MissingParameter,
            ),
            (
                &strict,
                &["permessage-deflate; server_no_context_takeover"],
                MissingParameter,
            ),
            (
                &strict,
                &["permessage-deflate; server_no_context_takeover; server_max_window_bits=11"],
                WindowTooLarge,
            ),
            (
                &chrome,
                &["permessage-deflate; client_max_window_bits=8"],
                UnsupportedWindow,
            ),
        ];
        for (offer, answer, error) in cases {
            assert_eq!(offer.accept(answer), Err(*error), "{answer:?}");
        }
        // A smaller server window than offered is fine.
        let p = strict
            .accept(&["permessage-deflate; server_no_context_takeover; server_max_window_bits=9"])
            .unwrap()
            .unwrap();
        assert_eq!(p.server_max_window_bits, 9);
    }

    #[test]
    fn error_is_small() {
        assert_eq!(std::mem::size_of::<ResponseError>(), 1);
    }
}
