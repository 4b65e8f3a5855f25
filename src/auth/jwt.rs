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
    /// Every claim but `sub` and `exp` (`iat`, `nbf`, `iss`, `aud`, custom
    /// claims, …) as sent: `nbf` has been checked, `iss` and `aud` only when
    /// [`VerifyOptions`] expects them, the others not at all.
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
mod tests;
