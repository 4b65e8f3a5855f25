//! Percent-decoding: strict for path segments, lenient (as browsers are)
//! for query strings.

/// Value of an ASCII hex digit.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict percent-decoding for path segments: `None` on a malformed escape
/// or invalid UTF-8. `+` is left as is.
pub(crate) fn percent_decode_strict(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex_val(bytes.next()?)?;
            let lo = hex_val(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Lenient `application/x-www-form-urlencoded` decoding: `+` becomes a
/// space, valid `%XX` escapes are decoded, malformed escapes are kept
/// literally, and invalid UTF-8 becomes U+FFFD.
fn form_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the query string of a request target into decoded `(key, value)`
/// pairs, in order, duplicates kept.
///
/// The query is everything after the first `?` and before any `#`; a target
/// without `?` has no query and yields an empty list. Pairs are separated by
/// `&`; empty pairs are skipped; a pair without `=` has an empty value; only
/// the first `=` splits key from value. Keys and values are decoded as
/// `application/x-www-form-urlencoded` (`+` is a space, `%XX` is a byte).
/// Decoding is lenient, as in browsers: a malformed escape is kept literally
/// and invalid UTF-8 is replaced with U+FFFD, so this never fails.
pub fn parse_query(path: &str) -> Vec<(String, String)> {
    let Some(q) = path.split_once('?').map(|(_, q)| q) else {
        return Vec::new();
    };
    let q = q.split_once('#').map_or(q, |(q, _)| q);
    q.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}
