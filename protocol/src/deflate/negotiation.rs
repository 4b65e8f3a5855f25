//! Negotiating permessage-deflate's parameters (RFC 7692 §5, §7.1).

use super::EXTENSION;

/// What the server is willing to agree to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflatePolicy {
    /// Keep the compressor's window between messages (off: answer
    /// `server_no_context_takeover`, so one compressor serves every socket).
    pub server_context_takeover: bool,
    /// Let the client keep its window between messages (off: answer
    /// `client_no_context_takeover`, so no inflater state is kept per socket).
    pub client_context_takeover: bool,
    /// The largest window the server compresses with (8-15).
    pub server_max_window_bits: u8,
    /// The window asked of a client that offers `client_max_window_bits`
    /// (8-15).
    pub client_max_window_bits: u8,
}

impl Default for DeflatePolicy {
    fn default() -> Self {
        DeflatePolicy {
            server_context_takeover: false,
            client_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// The parameters agreed for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message (so the server
    /// may reset its inflater).
    pub client_no_context_takeover: bool,
    /// The window the server compresses with.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with (the server's inflater
    /// needs at least this).
    pub client_max_window_bits: u8,
}

/// An accepted offer: the parameters and the `Sec-WebSocket-Extensions`
/// value to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// What both sides now use.
    pub params: DeflateParams,
    /// The response header's value.
    pub response: String,
}

/// One offer's parameters as the client wrote them.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// Offered with a value (the server must not use a larger window).
    server_max_window_bits: Option<u8>,
    /// Offered: `Some(None)` without a value, `Some(Some(n))` with one.
    client_max_window_bits: Option<Option<u8>>,
}

/// Answer the client's `Sec-WebSocket-Extensions` header values: the first
/// valid permessage-deflate offer the policy can accept (RFC 7692 §5.1: a
/// server declines an offer it cannot accept and may accept a later one).
/// `None` when there is none: the connection goes on uncompressed.
pub fn negotiate(header_values: &[&str], policy: &DeflatePolicy) -> Option<Agreement> {
    header_values
        .iter()
        .flat_map(|value| split_outside_quotes(value, ','))
        .filter_map(|extension| parse_offer(&extension))
        .find_map(|offer| accept(&offer, policy))
}

/// The offer's parameters, if `extension` is a well-formed
/// permessage-deflate offer (unknown or repeated parameters, or bad values,
/// make it one to decline, §7.1).
fn parse_offer(extension: &str) -> Option<Offer> {
    let mut parts = split_outside_quotes(extension, ';').into_iter();
    let name = parts.next()?;
    if !name.trim().eq_ignore_ascii_case(EXTENSION) {
        return None;
    }
    let mut offer = Offer::default();
    let mut seen = Vec::new();
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(unquote(v.trim())?)),
            None => (param.trim(), None),
        };
        let key = key.to_ascii_lowercase();
        if seen.contains(&key) {
            return None;
        }
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => offer.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => offer.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => offer.server_max_window_bits = Some(bits(&v)?),
            ("client_max_window_bits", None) => offer.client_max_window_bits = Some(None),
            ("client_max_window_bits", Some(v)) => {
                offer.client_max_window_bits = Some(Some(bits(&v)?));
            }
            _ => return None,
        }
        seen.push(key);
    }
    Some(offer)
}

/// Accept `offer` under `policy`, or decline it.
fn accept(offer: &Offer, policy: &DeflatePolicy) -> Option<Agreement> {
    let server_no_context_takeover =
        offer.server_no_context_takeover || !policy.server_context_takeover;
    // A client that cannot be told to reset its window (no
    // client_max_window_bits offered, its own window 15) still may be told
    // client_no_context_takeover: a server may always answer it (§7.1.1.2).
    let client_no_context_takeover = !policy.client_context_takeover;
    // zlib cannot compress with a 256-byte window (it silently uses 512):
    // an offer that limits the server to 8 bits is accepted, and the server
    // then sends that connection's messages uncompressed (RSV1 clear), which
    // a sender may always do (§6); what the client sends is still inflated.
    let server_max_window_bits = match offer.server_max_window_bits {
        // §7.1.2.1: the server uses at most the offered window, and says so.
        Some(n) => n.min(policy.server_max_window_bits),
        None => policy.server_max_window_bits,
    };
    let mut response = EXTENSION.to_owned();
    if server_no_context_takeover {
        response.push_str("; server_no_context_takeover");
    }
    if client_no_context_takeover {
        response.push_str("; client_no_context_takeover");
    }
    // Without the client's offer the server may not name its window
    // (§7.1.2.1), but it may always compress with a smaller one than 15.
    if offer.server_max_window_bits.is_some() {
        response.push_str(&format!(
            "; server_max_window_bits={server_max_window_bits}"
        ));
    }
    let client_max_window_bits = match offer.client_max_window_bits {
        // §7.1.2.2: only when offered may the server limit the client's
        // window, and only to at most what was offered.
        Some(offered) => {
            let n = offered.map_or(policy.client_max_window_bits, |o| {
                o.min(policy.client_max_window_bits)
            });
            response.push_str(&format!("; client_max_window_bits={n}"));
            n
        }
        None => 15,
    };
    Some(Agreement {
        params: DeflateParams {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        },
        response,
    })
}

/// A window size parameter: 8 to 15, digits only (§7.1.2).
fn bits(value: &str) -> Option<u8> {
    if value.is_empty() || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|n| (8..=15).contains(n))
}

/// A token or a quoted-string's content (RFC 9110 §5.6.4; escapes undone).
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `text` split at `sep` where it is not inside a quoted-string.
fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(std::mem::take(&mut current));
            continue;
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(values: &[&str]) -> Option<String> {
        negotiate(values, &DeflatePolicy::default()).map(|a| a.response)
    }

    #[test]
    fn browsers_offers_are_answered_without_context_takeover() {
        // Chrome.
        let chrome = negotiate(
            &["permessage-deflate; client_max_window_bits"],
            &DeflatePolicy::default(),
        )
        .unwrap();
        assert_eq!(
            chrome.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"
        );
        assert!(
            chrome.params.server_no_context_takeover && chrome.params.client_no_context_takeover
        );
        // Firefox and Safari: a bare offer.
        assert_eq!(
            answer(&["permessage-deflate"]).unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn window_sizes_follow_the_offer() {
        let policy = DeflatePolicy {
            server_context_takeover: true,
            client_context_takeover: true,
            server_max_window_bits: 12,
            client_max_window_bits: 10,
        };
        let a = negotiate(
            &["permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"],
            &policy,
        )
        .unwrap();
        assert_eq!(
            a.response,
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
        );
        assert_eq!(a.params.server_max_window_bits, 10);
        assert_eq!(a.params.client_max_window_bits, 10);
        // Without client_max_window_bits offered, the client's window is 15
        // and the answer may not name it.
        let a = negotiate(&["permessage-deflate"], &policy).unwrap();
        assert_eq!(a.response, "permessage-deflate");
        assert_eq!(
            (
                a.params.server_max_window_bits,
                a.params.client_max_window_bits
            ),
            (12, 15)
        );
        // A client asking for server_no_context_takeover gets it.
        let a = negotiate(&["permessage-deflate; server_no_context_takeover"], &policy).unwrap();
        assert_eq!(a.response, "permessage-deflate; server_no_context_takeover");
    }

    #[test]
    fn malformed_offers_are_declined_and_a_later_one_taken() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown_param",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(answer(&[bad]), None, "{bad}");
        }
        // The first offer is declined, the second (in another header line)
        // accepted; quoted values are values.
        let a = answer(&[
            "permessage-deflate; server_max_window_bits=99",
            "permessage-deflate; client_max_window_bits=\"9\"",
        ])
        .unwrap();
        assert!(a.ends_with("client_max_window_bits=9"), "{a}");
        // An 8-bit server window is accepted (the server then sends
        // uncompressed: zlib has no 256-byte window).
        let a = negotiate(
            &["permessage-deflate; server_max_window_bits=8"],
            &DeflatePolicy::default(),
        )
        .unwrap();
        assert_eq!(a.params.server_max_window_bits, 8);
        assert!(a.response.ends_with("server_max_window_bits=8"));
        // Commas inside quotes do not split extensions.
        assert_eq!(split_outside_quotes("a; b=\"x,y\", c", ',').len(), 2);
    }
}
