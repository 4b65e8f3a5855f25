//! Unit tests of [`super`]: vectors, every check and its order, options,
//! and property tests that no input panics.

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
