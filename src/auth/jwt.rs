//! HS256 JSON Web Token verification (RFC 7519 / RFC 7515), used to bind a
//! WebSocket connection to a client id (the token's `sub`).
//!
//! Only the compact serialisation with `"alg":"HS256"` is accepted.
//!
//! # Verification steps and decisions
//!
//! [`verify_hs256`] checks, in this order, and stops at the first failure:
//!
//! 1. **Size**: an empty token or one longer than [`MAX_TOKEN_LEN`] bytes is
//!    [`JwtError::Malformed`], before anything is decoded.
//! 2. **Shape**: exactly three `.`-separated segments, else `Malformed`.
//! 3. **Base64url**: each segment must be strict unpadded base64url
//!    (RFC 7515 §2): `=` padding, whitespace, the standard alphabet's `+`
//!    and `/`, and non-canonical trailing bits are all rejected as
//!    [`JwtError::BadBase64`]. Rejecting padding and non-canonical encodings
//!    keeps each token's signature segment unique.
//! 4. **Header**: must be a JSON object with a string `alg`, else
//!    [`JwtError::BadHeader`]. `alg` other than exactly `HS256` (including
//!    `none`, `HS512`, `hs256`) is [`JwtError::UnsupportedAlg`] (the name is
//!    truncated to 32 characters in the error). `typ` is optional; if present
//!    it must be a string (its value is not checked). A `crit` parameter is
//!    rejected as `BadHeader`, since no extension is understood
//!    (RFC 7515 §4.1.11). Duplicate header names: the last one wins (the
//!    behaviour RFC 7515 §5.2 allows).
//! 5. **Signature**: HMAC-SHA256 over the ASCII `header.payload` segments,
//!    compared in constant time with `hmac`'s `verify_slice`; any mismatch,
//!    including a wrong length, is [`JwtError::BadSignature`]. An **empty
//!    secret** never verifies (always `BadSignature`), so a misconfigured
//!    server cannot accept forged tokens. The payload is parsed only after the
//!    signature is verified.
//! 6. **Claims**: the payload must be a JSON object, else
//!    [`JwtError::BadClaims`]. What is required beyond the signature is set by
//!    [`VerifyOptions`]: a leeway, whether `exp` is required, and an expected
//!    audience and issuer. Checked in this order:
//!    * `sub` is required: absent, `null` or the empty string is
//!      [`JwtError::MissingSub`]; a string is kept as is; an integer
//!      (signed or unsigned) is kept as its decimal string; any other type is
//!      `BadClaims`.
//!    * `exp` and `nbf`, when present, must be non-negative JSON numbers
//!      (RFC 7519 `NumericDate`), else `BadClaims`. Fractional values are
//!      rounded **up** to whole seconds (exact for comparisons against whole
//!      seconds); values beyond `u64::MAX` saturate.
//!    * With an expected issuer, `iss` must be a string (else `BadClaims`);
//!      with an expected audience, `aud` must be a string or an array of
//!      strings (else `BadClaims`). Without them, `iss` and `aud` are not
//!      looked at.
//!    * `exp` is **required** unless [`VerifyOptions::require_exp`] is false:
//!      a token without one is [`JwtError::MissingExp`]. A token that never
//!      expires cannot be revoked short of changing the secret, so the server
//!      asks for one by default.
//!    * `exp`: the token is valid while `now < exp + leeway`; after that it is
//!      [`JwtError::Expired`]. `nbf`: valid once `now + leeway >= nbf`; before
//!      that [`JwtError::NotYetValid`]. The leeway
//!      ([`VerifyOptions::leeway`], whole seconds, 30 by default) absorbs clock
//!      skew between the token's issuer and this server; sums saturate.
//!      `exp` is checked before `nbf`.
//!    * `iss`, when an issuer is expected, must equal it exactly (RFC 7519
//!      §4.1.1: case-sensitive), else [`JwtError::WrongIssuer`] (absent too).
//!    * `aud`, when an audience is expected, must be that string or an array
//!      holding it (RFC 7519 §4.1.3, exact comparison), else
//!      [`JwtError::WrongAudience`] (absent too). A token with an `aud` is
//!      accepted by a server that expects none: RFC 7519 says a recipient that
//!      does not identify itself with a value in `aud` must reject it, but a
//!      server without an audience configured has no identity to compare.
//!    * `iat`, `jti` and all other claims are not checked; they are returned
//!      in [`Claims::extra`] (with `nbf`, `iss` and `aud`), which holds every
//!      claim except `sub` and `exp`.
//!
//! `now` is the caller's: this module reads no clock. The server passes the
//! wall clock (`SystemTime::now()`) read at each verification.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted by [`verify_hs256`], in bytes (8 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Shortest `auth_secret` the server starts with, in bytes: RFC 7518 §3.2
/// requires an HS256 key at least as long as the hash output (256 bits).
/// [`verify_hs256`] itself accepts any non-empty secret.
pub const MIN_SECRET_LEN: usize = 32;

/// Longest `alg` value kept in [`JwtError::UnsupportedAlg`], in characters.
const MAX_ALG_IN_ERROR: usize = 32;

/// The header written by [`sign_hs256`], in this exact byte order.
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The verified claims of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The subject (`sub`): the client id. A numeric `sub` is given as its
    /// decimal string. Never empty.
    pub sub: String,
    /// The expiry (`exp`) in Unix seconds, rounded up, if the token has one.
    pub exp: Option<u64>,
    /// Every other claim (`iat`, `nbf`, `iss`, custom claims, …), unchecked.
    pub extra: Map<String, Value>,
}

/// What [`verify_hs256`] requires of a token besides a valid signature and a
/// `sub`. The default is the server's default: 30 s of leeway, `exp`
/// required, no audience or issuer expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions<'a> {
    /// Clock skew tolerated on `exp` and `nbf` (default 30 s), in whole
    /// seconds: a fraction is dropped.
    pub leeway: Duration,
    /// Whether a token without `exp` is refused (default true).
    pub require_exp: bool,
    /// When set, `aud` must be this string or an array of strings holding it
    /// (default unset: `aud` is not checked).
    pub audience: Option<&'a str>,
    /// When set, `iss` must be exactly this string (default unset: `iss` is
    /// not checked).
    pub issuer: Option<&'a str>,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        VerifyOptions {
            leeway: Duration::from_secs(30),
            require_exp: true,
            audience: None,
            issuer: None,
        }
    }
}

/// Why a token was rejected by [`verify_hs256`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Empty, longer than [`MAX_TOKEN_LEN`], or not three `.`-separated
    /// segments.
    Malformed,
    /// A segment is not strict unpadded base64url.
    BadBase64,
    /// The header is not a JSON object with a string `alg`, has a non-string
    /// `typ`, or has a `crit` parameter.
    BadHeader,
    /// The header's `alg` is not `HS256` (holds the algorithm, truncated).
    UnsupportedAlg(String),
    /// The signature does not match (or the secret is empty).
    BadSignature,
    /// `now >= exp + leeway`.
    Expired,
    /// `now + leeway < nbf`.
    NotYetValid,
    /// No `exp`, and [`VerifyOptions::require_exp`] is set.
    MissingExp,
    /// An audience is expected and `aud` is absent or does not hold it.
    WrongAudience,
    /// An issuer is expected and `iss` is absent or another one.
    WrongIssuer,
    /// `sub` is absent, `null` or empty.
    MissingSub,
    /// The payload is not a JSON object, or a registered claim has the
    /// wrong type (`sub` not a string or integer, `exp`/`nbf` not a
    /// non-negative number; when checked, `iss` not a string, `aud` not a
    /// string or an array of strings).
    BadClaims,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed => f.write_str("malformed token"),
            JwtError::BadBase64 => f.write_str("token segment is not valid base64url"),
            JwtError::BadHeader => f.write_str("invalid token header"),
            JwtError::UnsupportedAlg(alg) => {
                write!(
                    f,
                    "unsupported token algorithm {alg:?} (only HS256 is accepted)"
                )
            }
            JwtError::BadSignature => f.write_str("invalid token signature"),
            JwtError::Expired => f.write_str("token has expired"),
            JwtError::NotYetValid => f.write_str("token is not valid yet"),
            JwtError::MissingExp => f.write_str("token has no expiry (exp)"),
            JwtError::WrongAudience => {
                f.write_str("token audience (aud) does not name this server")
            }
            JwtError::WrongIssuer => f.write_str("token issuer (iss) is not the expected one"),
            JwtError::MissingSub => f.write_str("token has no subject (sub)"),
            JwtError::BadClaims => f.write_str("invalid token claims"),
        }
    }
}

impl std::error::Error for JwtError {}

/// An HMAC-SHA256 instance keyed with `secret`.
///
/// HMAC accepts keys of any length (longer keys are hashed, shorter ones
/// zero-padded), so `new_from_slice` cannot fail; the error branch only
/// exists to avoid a panic path.
fn mac(secret: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(secret).ok()
}

/// Signs `claims` with HS256 and returns the compact token.
///
/// The header is exactly `{"alg":"HS256","typ":"JWT"}`; the payload is
/// `claims` serialised as compact JSON (any JSON value is signed as given,
/// but [`verify_hs256`] only accepts objects with a `sub`). Tokens signed
/// with an empty secret are produced but never verify.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(HS256_HEADER);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut token);
    let signature = match mac(secret) {
        Some(mut m) => {
            m.update(token.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        // Unreachable (see `mac`); an empty signature never verifies.
        None => Vec::new(),
    };
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// Verifies an HS256 token against `secret` at time `now_unix_secs` (Unix
/// seconds) with `options`, and returns its claims.
///
/// See the [module documentation](self) for every check and its order.
///
/// # Errors
///
/// The first failed check, as a [`JwtError`]: [`JwtError::Malformed`]
/// (size or shape), [`JwtError::BadBase64`], [`JwtError::BadHeader`],
/// [`JwtError::UnsupportedAlg`], [`JwtError::BadSignature`],
/// [`JwtError::BadClaims`], [`JwtError::MissingSub`],
/// [`JwtError::MissingExp`], [`JwtError::Expired`],
/// [`JwtError::NotYetValid`], [`JwtError::WrongIssuer`] or
/// [`JwtError::WrongAudience`].
pub fn verify_hs256(
    token: &str,
    secret: &[u8],
    now_unix_secs: u64,
    options: &VerifyOptions<'_>,
) -> Result<Claims, JwtError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };

    let header = decode(header_b64)?;
    let payload = decode(payload_b64)?;
    let signature = decode(sig_b64)?;

    check_header(&header)?;

    if secret.is_empty() {
        return Err(JwtError::BadSignature);
    }
    // The signing input is the header and payload segments as sent, so its
    // length is known: the prefix of `token` up to the second dot.
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(JwtError::Malformed)?;
    let mut m = mac(secret).ok_or(JwtError::BadSignature)?;
    m.update(signing_input.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;

    claims_from(&payload, now_unix_secs, options)
}

/// Strict unpadded base64url decoding.
fn decode(segment: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::BadBase64)
}

/// Validates the JOSE header.
fn check_header(header: &[u8]) -> Result<(), JwtError> {
    let Ok(Value::Object(h)) = serde_json::from_slice::<Value>(header) else {
        return Err(JwtError::BadHeader);
    };
    let Some(Value::String(alg)) = h.get("alg") else {
        return Err(JwtError::BadHeader);
    };
    if alg != "HS256" {
        return Err(JwtError::UnsupportedAlg(
            alg.chars().take(MAX_ALG_IN_ERROR).collect(),
        ));
    }
    match h.get("typ") {
        None | Some(Value::String(_)) => {}
        Some(_) => return Err(JwtError::BadHeader),
    }
    if h.contains_key("crit") {
        return Err(JwtError::BadHeader);
    }
    Ok(())
}

/// Reads a `NumericDate` claim: `Ok(None)` if absent, whole seconds rounded
/// up if present, `BadClaims` if not a non-negative number.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, JwtError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(n) = v else {
        return Err(JwtError::BadClaims);
    };
    if let Some(u) = n.as_u64() {
        return Ok(Some(u));
    }
    match n.as_f64() {
        // `as` saturates at u64::MAX for huge values.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f.ceil() as u64)),
        _ => Err(JwtError::BadClaims),
    }
}

/// Parses and checks the payload.
fn claims_from(payload: &[u8], now: u64, options: &VerifyOptions<'_>) -> Result<Claims, JwtError> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
        return Err(JwtError::BadClaims);
    };

    let sub = match map.remove("sub") {
        None | Some(Value::Null) => return Err(JwtError::MissingSub),
        Some(Value::String(s)) if s.is_empty() => return Err(JwtError::MissingSub),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(JwtError::BadClaims),
    };
    let exp = numeric_date(&map, "exp")?;
    let nbf = numeric_date(&map, "nbf")?;
    let issuer_ok = match options.issuer {
        None => true,
        Some(expected) => match map.get("iss") {
            None => false,
            Some(Value::String(iss)) => iss == expected,
            Some(_) => return Err(JwtError::BadClaims),
        },
    };
    let audience_ok = match options.audience {
        None => true,
        Some(expected) => audience_holds(map.get("aud"), expected)?,
    };
    map.remove("exp");

    let leeway = options.leeway.as_secs();
    match exp {
        None if options.require_exp => return Err(JwtError::MissingExp),
        Some(exp) if now >= exp.saturating_add(leeway) => return Err(JwtError::Expired),
        _ => {}
    }
    if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    if !issuer_ok {
        return Err(JwtError::WrongIssuer);
    }
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    Ok(Claims {
        sub,
        exp,
        extra: map,
    })
}

/// Whether an `aud` claim (RFC 7519 §4.1.3: a string or an array of strings)
/// holds `expected`; `BadClaims` if it is neither shape.
fn audience_holds(aud: Option<&Value>, expected: &str) -> Result<bool, JwtError> {
    match aud {
        None => Ok(false),
        Some(Value::String(aud)) => Ok(aud == expected),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let Value::String(aud) = item else {
                    return Err(JwtError::BadClaims);
                };
                found |= aud == expected;
            }
            Ok(found)
        }
        Some(_) => Err(JwtError::BadClaims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JWT_IO_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const JWT_IO_SECRET: &[u8] = b"your-256-bit-secret";
    const NOW: u64 = 1_700_000_000;

    /// No leeway, `exp` optional, no audience or issuer: the signature,
    /// shape and time checks alone, at exact boundaries.
    const EXACT: VerifyOptions<'static> = VerifyOptions {
        leeway: Duration::ZERO,
        require_exp: false,
        audience: None,
        issuer: None,
    };

    /// [`verify_hs256`] with [`EXACT`] options.
    fn verify(token: &str, secret: &[u8], now: u64) -> Result<Claims, JwtError> {
        verify_hs256(token, secret, now, &EXACT)
    }

    /// Builds a token from raw header/payload JSON text, signed with `secret`.
    fn raw_token(header: &str, payload: &str, secret: &[u8]) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut m = HmacSha256::new_from_slice(secret).unwrap();
        m.update(signing_input.as_bytes());
        let sig = m.finalize().into_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn jwt_io_vector() {
        let claims = verify(JWT_IO_TOKEN, JWT_IO_SECRET, NOW).unwrap();
        assert_eq!(claims.sub, "1234567890");
        assert_eq!(claims.exp, None);
        assert_eq!(claims.extra.get("name"), Some(&json!("John Doe")));
        assert_eq!(claims.extra.get("iat"), Some(&json!(1516239022)));
        assert!(!claims.extra.contains_key("sub"));
        // The vector's bytes are exactly what our own construction produces.
        assert_eq!(
            raw_token(
                r#"{"alg":"HS256","typ":"JWT"}"#,
                r#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#,
                JWT_IO_SECRET
            ),
            JWT_IO_TOKEN
        );
        assert_eq!(
            verify(JWT_IO_TOKEN, b"wrong-secret", NOW),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn sign_produces_jwt_io_header() {
        let t = sign_hs256(&json!({"sub": "x"}), b"k");
        assert!(t.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    }

    #[test]
    fn rfc4231_hmac_vectors() {
        // Test cases 2 and 6 of RFC 4231 (short key, key longer than a block).
        let mut m = mac(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            m.finalize().into_bytes().as_slice(),
            [
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
                0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
                0x64, 0xec, 0x38, 0x43
            ]
        );
        let mut m = mac(&[0xaa; 131]).unwrap();
        m.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            m.finalize().into_bytes().as_slice(),
            [
                0x60, 0xe4, 0x31, 0x59, 0x1e, 0xe0, 0xb6, 0x7f, 0x0d, 0x8a, 0x26, 0xaa, 0xcb, 0xf5,
                0xb7, 0x7f, 0x8e, 0x0b, 0xc6, 0x21, 0x37, 0x28, 0xc5, 0x14, 0x05, 0x46, 0x04, 0x0f,
                0x0e, 0xe3, 0x7f, 0x54
            ]
        );
    }

    #[test]
    fn round_trip() {
        let claims = json!({"sub": "client-7", "exp": NOW + 60, "room": "lobby", "nbf": NOW});
        let token = sign_hs256(&claims, b"s3cret");
        let c = verify(&token, b"s3cret", NOW).unwrap();
        assert_eq!(c.sub, "client-7");
        assert_eq!(c.exp, Some(NOW + 60));
        assert_eq!(c.extra.get("room"), Some(&json!("lobby")));
        assert_eq!(c.extra.get("nbf"), Some(&json!(NOW)));
        assert!(!c.extra.contains_key("exp"));
        assert_eq!(c.extra.len(), 2);
        // Long secrets work too.
        let long = [7u8; 200];
        let token = sign_hs256(&claims, &long);
        assert!(verify(&token, &long, NOW).is_ok());
        assert_eq!(
            verify(&token, &long[..199], NOW),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn expiry_boundaries() {
        let token = sign_hs256(&json!({"sub": "a", "exp": NOW}), b"k");
        assert_eq!(verify(&token, b"k", NOW), Err(JwtError::Expired));
        assert_eq!(verify(&token, b"k", NOW + 1000), Err(JwtError::Expired));
        assert!(verify(&token, b"k", NOW - 1).is_ok());
        // Fractional exp rounds up: valid strictly before the instant.
        let token = sign_hs256(&json!({"sub": "a", "exp": 100.5}), b"k");
        assert_eq!(verify(&token, b"k", 100).unwrap().exp, Some(101));
        assert_eq!(verify(&token, b"k", 101), Err(JwtError::Expired));
        // exp = 0 is always expired.
        let token = sign_hs256(&json!({"sub": "a", "exp": 0}), b"k");
        assert_eq!(verify(&token, b"k", 0), Err(JwtError::Expired));
        // Huge exp saturates instead of failing.
        let token = sign_hs256(&json!({"sub": "a", "exp": 1e300}), b"k");
        assert_eq!(verify(&token, b"k", NOW).unwrap().exp, Some(u64::MAX));
    }

    #[test]
    fn not_before() {
        let token = sign_hs256(&json!({"sub": "a", "nbf": NOW}), b"k");
        assert!(verify(&token, b"k", NOW).is_ok());
        assert!(verify(&token, b"k", NOW + 1).is_ok());
        assert_eq!(verify(&token, b"k", NOW - 1), Err(JwtError::NotYetValid));
        let token = sign_hs256(&json!({"sub": "a", "nbf": 10.2}), b"k");
        assert_eq!(verify(&token, b"k", 10), Err(JwtError::NotYetValid));
        assert!(verify(&token, b"k", 11).is_ok());
        // exp is checked first.
        let token = sign_hs256(&json!({"sub": "a", "nbf": 50, "exp": 20}), b"k");
        assert_eq!(verify(&token, b"k", 30), Err(JwtError::Expired));
        assert_eq!(verify(&token, b"k", 10), Err(JwtError::NotYetValid));
    }

    #[test]
    fn bad_time_claims() {
        for claims in [
            json!({"sub": "a", "exp": "123"}),
            json!({"sub": "a", "exp": null}),
            json!({"sub": "a", "exp": -1}),
            json!({"sub": "a", "exp": -0.5}),
            json!({"sub": "a", "nbf": true}),
            json!({"sub": "a", "nbf": [1]}),
        ] {
            let token = sign_hs256(&claims, b"k");
            assert_eq!(
                verify(&token, b"k", NOW),
                Err(JwtError::BadClaims),
                "{claims}"
            );
        }
    }

    #[test]
    fn sub_variants() {
        let ok = |claims: Value| verify(&sign_hs256(&claims, b"k"), b"k", NOW);
        assert_eq!(ok(json!({"sub": 42})).unwrap().sub, "42");
        assert_eq!(ok(json!({"sub": -7})).unwrap().sub, "-7");
        assert_eq!(
            ok(json!({"sub": u64::MAX})).unwrap().sub,
            u64::MAX.to_string()
        );
        assert_eq!(ok(json!({"sub": "x y"})).unwrap().sub, "x y");
        assert_eq!(ok(json!({"name": "n"})), Err(JwtError::MissingSub));
        assert_eq!(ok(json!({"sub": null})), Err(JwtError::MissingSub));
        assert_eq!(ok(json!({"sub": ""})), Err(JwtError::MissingSub));
        assert_eq!(ok(json!({"sub": 1.5})), Err(JwtError::BadClaims));
        assert_eq!(ok(json!({"sub": true})), Err(JwtError::BadClaims));
        assert_eq!(ok(json!({"sub": {"id": 1}})), Err(JwtError::BadClaims));
        assert_eq!(ok(json!(["sub"])), Err(JwtError::BadClaims));
        assert_eq!(ok(json!("sub")), Err(JwtError::BadClaims));
    }

    #[test]
    fn wrong_secret_and_empty_secret() {
        let token = sign_hs256(&json!({"sub": "a"}), b"right");
        assert_eq!(verify(&token, b"wrong", NOW), Err(JwtError::BadSignature));
        let token = sign_hs256(&json!({"sub": "a"}), b"");
        assert_eq!(verify(&token, b"", NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn alg_none_and_others_rejected() {
        let payload = r#"{"sub":"admin"}"#;
        // Unsigned "none" token, with and without a signature segment.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        assert_eq!(
            verify(&none, b"k", NOW),
            Err(JwtError::UnsupportedAlg("none".into()))
        );
        assert_eq!(
            verify(none.trim_end_matches('.'), b"k", NOW),
            Err(JwtError::Malformed)
        );
        // Even correctly HMAC'd with the secret, other algs are refused.
        for alg in ["HS512", "HS384", "RS256", "hs256", "None", "HS256 "] {
            let t = raw_token(&format!(r#"{{"alg":"{alg}"}}"#), payload, b"k");
            assert_eq!(
                verify(&t, b"k", NOW),
                Err(JwtError::UnsupportedAlg(alg.into())),
                "{alg}"
            );
        }
        let long_alg = "A".repeat(100);
        let t = raw_token(&format!(r#"{{"alg":"{long_alg}"}}"#), payload, b"k");
        assert_eq!(
            verify(&t, b"k", NOW),
            Err(JwtError::UnsupportedAlg("A".repeat(32)))
        );
        // Duplicate alg: the last wins.
        let t = raw_token(r#"{"alg":"HS256","alg":"none"}"#, payload, b"k");
        assert_eq!(
            verify(&t, b"k", NOW),
            Err(JwtError::UnsupportedAlg("none".into()))
        );
    }

    #[test]
    fn header_checks() {
        let p = r#"{"sub":"a"}"#;
        let check = |h: &str| verify(&raw_token(h, p, b"k"), b"k", NOW);
        assert!(check(r#"{"alg":"HS256"}"#).is_ok());
        assert!(check(r#"{"alg":"HS256","typ":"at+jwt","kid":"1"}"#).is_ok());
        assert_eq!(check(r#"{"typ":"JWT"}"#), Err(JwtError::BadHeader));
        assert_eq!(check(r#"{"alg":256}"#), Err(JwtError::BadHeader));
        assert_eq!(check(r#"{"alg":null}"#), Err(JwtError::BadHeader));
        assert_eq!(
            check(r#"{"alg":"HS256","typ":1}"#),
            Err(JwtError::BadHeader)
        );
        assert_eq!(
            check(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#),
            Err(JwtError::BadHeader)
        );
        assert_eq!(check(r#"["alg","HS256"]"#), Err(JwtError::BadHeader));
        assert_eq!(check("not json"), Err(JwtError::BadHeader));
        assert_eq!(check(""), Err(JwtError::BadHeader));
        // Payload must be JSON.
        let t = raw_token(r#"{"alg":"HS256"}"#, "{nope", b"k");
        assert_eq!(verify(&t, b"k", NOW), Err(JwtError::BadClaims));
    }

    #[test]
    fn tampering_detected() {
        let token = sign_hs256(&json!({"sub": "alice", "exp": NOW + 60}), b"k");
        let parts: Vec<&str> = token.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(r#"{"sub":"admin","exp":9999999999}"#);
        let forged = format!("{}.{}.{}", parts[0], evil, parts[2]);
        assert_eq!(verify(&forged, b"k", NOW), Err(JwtError::BadSignature));
        // Swap the header for one with extra fields.
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","x":1}"#);
        let forged = format!("{h}.{}.{}", parts[1], parts[2]);
        assert_eq!(verify(&forged, b"k", NOW), Err(JwtError::BadSignature));
        // Truncated / extended signature.
        let short = &token[..token.len() - 2];
        assert!(verify(short, b"k", NOW).is_err());
        let long = format!("{token}AA");
        assert!(verify(&long, b"k", NOW).is_err());
        // Every single-character substitution is rejected.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(bytes).unwrap();
            assert!(verify(&t, b"k", NOW).is_err(), "position {i}");
        }
    }

    #[test]
    fn strict_base64() {
        let token = sign_hs256(&json!({"sub": "a"}), b"k");
        assert!(verify(&token, b"k", NOW).is_ok());
        // Padding is rejected (the signature segment of 32 bytes is 43 chars,
        // which standard base64 would pad with one '=').
        assert_eq!(
            verify(&format!("{token}="), b"k", NOW),
            Err(JwtError::BadBase64)
        );
        // Standard-alphabet characters are rejected.
        let std_sig = token.replace('-', "+").replace('_', "/");
        if std_sig != token {
            assert_eq!(verify(&std_sig, b"k", NOW), Err(JwtError::BadBase64));
        }
        // Non-canonical trailing bits in the signature segment: 43 chars encode
        // 32 bytes plus 2 unused bits, which must be zero.
        let last = token.chars().last().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.iter().position(|&c| c == last as u8).unwrap();
        let tweaked = alphabet[pos ^ 1] as char;
        let t = format!("{}{}", &token[..token.len() - 1], tweaked);
        assert_eq!(verify(&t, b"k", NOW), Err(JwtError::BadBase64));
        // Whitespace.
        assert_eq!(
            verify(&format!(" {token}"), b"k", NOW),
            Err(JwtError::BadBase64)
        );
    }

    #[test]
    fn malformed_shapes() {
        for t in ["", ".", "..", "...", "a.b", "a.b.c.d", "abc", "a..b"] {
            let e = verify(t, b"k", NOW).unwrap_err();
            assert!(
                matches!(
                    e,
                    JwtError::Malformed | JwtError::BadBase64 | JwtError::BadHeader
                ),
                "{t:?}: {e:?}"
            );
        }
        assert_eq!(verify("", b"k", NOW), Err(JwtError::Malformed));
        assert_eq!(verify("a.b", b"k", NOW), Err(JwtError::Malformed));
        assert_eq!(verify("a.b.c.d", b"k", NOW), Err(JwtError::Malformed));
        // Too long: rejected before decoding, even if well formed.
        let big = sign_hs256(&json!({"sub": "a", "pad": "x".repeat(MAX_TOKEN_LEN)}), b"k");
        assert!(big.len() > MAX_TOKEN_LEN);
        assert_eq!(verify(&big, b"k", NOW), Err(JwtError::Malformed));
        let fits = sign_hs256(&json!({"sub": "a", "pad": "x".repeat(6000)}), b"k");
        assert!(fits.len() <= MAX_TOKEN_LEN);
        assert!(verify(&fits, b"k", NOW).is_ok());
    }

    #[test]
    fn display_messages() {
        assert_eq!(JwtError::Expired.to_string(), "token has expired");
        assert!(JwtError::UnsupportedAlg("none".into())
            .to_string()
            .contains("\"none\""));
        for e in [
            JwtError::Malformed,
            JwtError::BadBase64,
            JwtError::BadHeader,
            JwtError::BadSignature,
            JwtError::NotYetValid,
            JwtError::MissingExp,
            JwtError::WrongAudience,
            JwtError::WrongIssuer,
            JwtError::MissingSub,
            JwtError::BadClaims,
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn default_options_are_the_servers() {
        let o = VerifyOptions::default();
        assert_eq!(o.leeway, Duration::from_secs(30));
        assert!(o.require_exp);
        assert_eq!((o.audience, o.issuer), (None, None));
    }

    #[test]
    fn exp_is_required_by_default() {
        let strict = VerifyOptions::default();
        // The jwt.io vector has no exp.
        assert_eq!(
            verify_hs256(JWT_IO_TOKEN, JWT_IO_SECRET, NOW, &strict),
            Err(JwtError::MissingExp)
        );
        let token = sign_hs256(&json!({"sub": "a", "nbf": NOW}), b"k");
        assert_eq!(
            verify_hs256(&token, b"k", NOW, &strict),
            Err(JwtError::MissingExp)
        );
        let token = sign_hs256(&json!({"sub": "a", "exp": NOW + 60}), b"k");
        assert_eq!(
            verify_hs256(&token, b"k", NOW, &strict).unwrap().exp,
            Some(NOW + 60)
        );
        // Opting out.
        let lax = VerifyOptions {
            require_exp: false,
            ..VerifyOptions::default()
        };
        assert!(verify_hs256(JWT_IO_TOKEN, JWT_IO_SECRET, NOW, &lax).is_ok());
        // The signature comes first: a forged token without exp is BadSignature.
        assert_eq!(
            verify_hs256(JWT_IO_TOKEN, b"wrong", NOW, &strict),
            Err(JwtError::BadSignature)
        );
        // A null or mistyped exp is BadClaims, not MissingExp.
        let token = sign_hs256(&json!({"sub": "a", "exp": null}), b"k");
        assert_eq!(
            verify_hs256(&token, b"k", NOW, &strict),
            Err(JwtError::BadClaims)
        );
    }

    #[test]
    fn leeway_widens_exp_and_nbf_by_whole_seconds() {
        let with = |secs: u64| VerifyOptions {
            leeway: Duration::from_secs(secs),
            ..EXACT
        };
        let token = sign_hs256(&json!({"sub": "a", "exp": NOW}), b"k");
        assert_eq!(
            verify_hs256(&token, b"k", NOW, &with(0)),
            Err(JwtError::Expired)
        );
        assert!(verify_hs256(&token, b"k", NOW, &with(30)).is_ok());
        assert!(verify_hs256(&token, b"k", NOW + 29, &with(30)).is_ok());
        assert_eq!(
            verify_hs256(&token, b"k", NOW + 30, &with(30)),
            Err(JwtError::Expired)
        );
        let token = sign_hs256(&json!({"sub": "a", "nbf": NOW}), b"k");
        assert_eq!(
            verify_hs256(&token, b"k", NOW - 1, &with(0)),
            Err(JwtError::NotYetValid)
        );
        assert!(verify_hs256(&token, b"k", NOW - 30, &with(30)).is_ok());
        assert_eq!(
            verify_hs256(&token, b"k", NOW - 31, &with(30)),
            Err(JwtError::NotYetValid)
        );
        // A fraction of a second is dropped: 1.9 s acts as 1 s.
        let token = sign_hs256(&json!({"sub": "a", "exp": NOW}), b"k");
        let fraction = VerifyOptions {
            leeway: Duration::from_millis(1900),
            ..EXACT
        };
        assert!(verify_hs256(&token, b"k", NOW, &fraction).is_ok());
        assert_eq!(
            verify_hs256(&token, b"k", NOW + 1, &fraction),
            Err(JwtError::Expired)
        );
        // Sums saturate instead of wrapping.
        let huge = VerifyOptions {
            leeway: Duration::from_secs(u64::MAX),
            ..EXACT
        };
        let token = sign_hs256(&json!({"sub": "a", "exp": 1, "nbf": 1e300}), b"k");
        assert!(verify_hs256(&token, b"k", u64::MAX - 1, &huge).is_ok());
        assert_eq!(
            verify_hs256(&token, b"k", u64::MAX, &huge),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn issuer_must_match_exactly_when_expected() {
        let options = VerifyOptions {
            issuer: Some("https://auth.example"),
            ..EXACT
        };
        let check = |claims: Value| verify_hs256(&sign_hs256(&claims, b"k"), b"k", NOW, &options);
        let ok = check(json!({"sub": "a", "iss": "https://auth.example"})).unwrap();
        assert_eq!(ok.extra.get("iss"), Some(&json!("https://auth.example")));
        for wrong in [
            json!({"sub": "a"}),
            json!({"sub": "a", "iss": "https://AUTH.example"}),
            json!({"sub": "a", "iss": "https://auth.example/"}),
            json!({"sub": "a", "iss": ""}),
        ] {
            assert_eq!(check(wrong.clone()), Err(JwtError::WrongIssuer), "{wrong}");
        }
        for bad in [
            json!({"sub": "a", "iss": null}),
            json!({"sub": "a", "iss": ["https://auth.example"]}),
            json!({"sub": "a", "iss": 1}),
        ] {
            assert_eq!(check(bad.clone()), Err(JwtError::BadClaims), "{bad}");
        }
        // Not expected: not looked at.
        let token = sign_hs256(&json!({"sub": "a", "iss": 1}), b"k");
        assert!(verify(&token, b"k", NOW).is_ok());
    }

    #[test]
    fn audience_must_be_held_when_expected() {
        let options = VerifyOptions {
            audience: Some("gmws"),
            ..EXACT
        };
        let check = |claims: Value| verify_hs256(&sign_hs256(&claims, b"k"), b"k", NOW, &options);
        for good in [
            json!({"sub": "a", "aud": "gmws"}),
            json!({"sub": "a", "aud": ["gmws"]}),
            json!({"sub": "a", "aud": ["other", "gmws"]}),
        ] {
            assert!(check(good.clone()).is_ok(), "{good}");
        }
        for wrong in [
            json!({"sub": "a"}),
            json!({"sub": "a", "aud": "GMWS"}),
            json!({"sub": "a", "aud": "gmws2"}),
            json!({"sub": "a", "aud": []}),
            json!({"sub": "a", "aud": ["other"]}),
        ] {
            assert_eq!(
                check(wrong.clone()),
                Err(JwtError::WrongAudience),
                "{wrong}"
            );
        }
        for bad in [
            json!({"sub": "a", "aud": null}),
            json!({"sub": "a", "aud": 7}),
            json!({"sub": "a", "aud": {"gmws": true}}),
            json!({"sub": "a", "aud": ["gmws", 7]}),
            json!({"sub": "a", "aud": [null]}),
        ] {
            assert_eq!(check(bad.clone()), Err(JwtError::BadClaims), "{bad}");
        }
        // Not expected: any aud is accepted and returned.
        let token = sign_hs256(&json!({"sub": "a", "aud": 7}), b"k");
        assert_eq!(
            verify(&token, b"k", NOW).unwrap().extra.get("aud"),
            Some(&json!(7))
        );
    }

    #[test]
    fn claim_checks_come_in_the_documented_order() {
        let all = VerifyOptions {
            leeway: Duration::ZERO,
            require_exp: true,
            audience: Some("gmws"),
            issuer: Some("me"),
        };
        let check = |claims: Value| verify_hs256(&sign_hs256(&claims, b"k"), b"k", NOW, &all);
        // Everything wrong at once: sub first, then types, exp, nbf, iss, aud.
        assert_eq!(
            check(json!({"exp": 1, "aud": 7})),
            Err(JwtError::MissingSub)
        );
        assert_eq!(
            check(json!({"sub": "a", "exp": 1, "aud": 7})),
            Err(JwtError::BadClaims)
        );
        assert_eq!(check(json!({"sub": "a"})), Err(JwtError::MissingExp));
        assert_eq!(
            check(json!({"sub": "a", "exp": 1, "nbf": NOW + 9})),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check(json!({"sub": "a", "exp": NOW + 9, "nbf": NOW + 9})),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(
            check(json!({"sub": "a", "exp": NOW + 9})),
            Err(JwtError::WrongIssuer)
        );
        assert_eq!(
            check(json!({"sub": "a", "exp": NOW + 9, "iss": "me"})),
            Err(JwtError::WrongAudience)
        );
        let c = check(json!({"sub": "a", "exp": NOW + 9, "iss": "me", "aud": ["gmws"]})).unwrap();
        assert_eq!(c.sub, "a");
        assert_eq!(c.extra.len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,200}", now in proptest::num::u64::ANY) {
            let _ = verify(&s, b"k", now);
        }

        #[test]
        fn dotted_garbage_never_panics(
            a in "[A-Za-z0-9_=+/-]{0,40}",
            b in "[A-Za-z0-9_=+/-]{0,40}",
            c in "[A-Za-z0-9_=+/-]{0,44}",
        ) {
            let t = format!("{a}.{b}.{c}");
            proptest::prop_assert!(verify(&t, b"k", 0).is_err());
        }

        #[test]
        fn signed_json_garbage_never_panics(
            header in "\\PC{0,40}",
            payload in "\\PC{0,60}",
            now in proptest::num::u64::ANY,
        ) {
            // Correctly signed, arbitrary header/payload text.
            let _ = verify(&raw_token(&header, &payload, b"k"), b"k", now);
            let h = r#"{"alg":"HS256"}"#;
            let _ = verify(&raw_token(h, &payload, b"k"), b"k", now);
        }

        #[test]
        fn round_trip_any_sub(sub in "\\PC{1,40}", ttl in 1u64..1_000_000) {
            let token = sign_hs256(&json!({"sub": sub, "exp": NOW + ttl}), b"secret");
            let c = verify(&token, b"secret", NOW).unwrap();
            proptest::prop_assert_eq!(c.sub, sub);
        }
    }
}
