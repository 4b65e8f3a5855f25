//! How each kind of key is read and written: the `#[serde(with = ...)]`
//! modules of [`Config`](super::Config). The formats are tabled in the
//! [parent module's documentation](super).

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Unexpected, Visitor};
use serde::ser::Serializer;

/// The integer types of byte and count keys.
pub(crate) trait Int: Copy + TryFrom<u64> {
    /// The value, widened.
    fn widen(self) -> u64;
}

impl Int for u32 {
    fn widen(self) -> u64 {
        u64::from(self)
    }
}

impl Int for u64 {
    fn widen(self) -> u64 {
        self
    }
}

impl Int for usize {
    fn widen(self) -> u64 {
        // usize is at most 64 bits on every target Rust supports.
        self as u64
    }
}

/// An integer key: `parse` reads its string form; the visitor checks range.
struct IntVisitor<T> {
    expected: &'static str,
    parse: fn(&str) -> Option<u64>,
    into: PhantomData<T>,
}

impl<T: Int> IntVisitor<T> {
    fn fit<E: de::Error>(&self, v: u64, unexpected: Unexpected<'_>) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(unexpected, self))
    }
}

impl<T: Int> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.fit(v, Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(n) => self.fit(n, Unexpected::Signed(v)),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        match (self.parse)(v) {
            Some(n) => self.fit(n, Unexpected::Str(v)),
            None => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

/// Byte sizes: an integer, or a string with an optional unit.
pub(crate) mod size {
    use super::*;

    pub(crate) fn serialize<T: Int, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.widen())
    }

    pub(crate) fn deserialize<'de, T: Int, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_any(IntVisitor {
            expected: "bytes, an integer with an optional unit (1048576, 8KiB, 1MiB, 1MB) in range",
            parse: parse_size,
            into: PhantomData,
        })
    }
}

/// Counts: a non-negative integer (or its decimal string).
pub(crate) mod count {
    use super::*;

    pub(crate) fn serialize<T: Int, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.widen())
    }

    pub(crate) fn deserialize<'de, T: Int, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_any(IntVisitor {
            expected: "a non-negative integer in range",
            parse: |text| text.trim().parse().ok(),
            into: PhantomData,
        })
    }
}

/// Durations in seconds, fractions allowed.
pub(crate) mod secs {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if v.subsec_nanos() == 0 {
            s.serialize_u64(v.as_secs())
        } else {
            s.serialize_f64(v.as_secs_f64())
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(SecsVisitor)
    }

    struct SecsVisitor;

    impl Visitor<'_> for SecsVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("seconds, fractions allowed (15, 0.5)")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            // The shortest decimal that reads back as `v`: 0.1 is 100 ms exactly.
            parse_secs(&v.to_string()).ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_secs(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
        }
    }
}

/// Booleans, and their spellings as strings.
pub(crate) mod flag {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(BoolVisitor)
    }

    struct BoolVisitor;

    impl Visitor<'_> for BoolVisitor {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean (as a string: true/false, 1/0, yes/no or on/off)")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            parse_bool(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
        }
    }
}

/// Lists of strings: an array, or one comma-separated string.
pub(crate) mod list {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(ListVisitor)
    }

    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of strings, or a comma-separated string")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(v.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect())
        }
    }
}

/// Optional strings: the empty string (or a missing key) is unset.
pub(crate) mod opt_text {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().unwrap_or(""))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(OptTextVisitor)
    }

    struct OptTextVisitor;

    impl<'de> Visitor<'de> for OptTextVisitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string (empty: unset)")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
            Ok(Some(v.to_owned()).filter(|s| !s.is_empty()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Option<String>, E> {
            Ok(Some(v).filter(|s| !s.is_empty()))
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
            d.deserialize_any(self)
        }
    }
}

/// Socket addresses, `IP:PORT`.
pub(crate) mod addr {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        d.deserialize_str(AddrVisitor)
    }

    struct AddrVisitor;

    impl Visitor<'_> for AddrVisitor {
        type Value = SocketAddr;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a socket address IP:PORT (127.0.0.1:8080, [::1]:8080)")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<SocketAddr, E> {
            v.trim()
                .parse()
                .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
        }
    }
}

/// `15`, `0.5`, `.25`, `2.` as seconds; exact to the nanosecond (further
/// digits are dropped); no sign, exponent or unit.
pub(crate) fn parse_secs(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return None;
    }
    let secs = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    Some(Duration::new(secs, nanos))
}

const SIZE_SUFFIXES: [(&str, u64); 7] = [
    ("b", 1),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
];

/// Bytes: `4096`, `8KiB`, `1 MiB`, `1MB`, `2GiB` (suffix in any case).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let suffix = suffix.trim_start().to_ascii_lowercase();
    let scale = if suffix.is_empty() {
        1
    } else {
        SIZE_SUFFIXES
            .iter()
            .find(|(name, _)| *name == suffix)
            .map(|(_, scale)| *scale)?
    };
    if number.is_empty() {
        return None;
    }
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Kinds {
        #[serde(with = "secs")]
        secs: Duration,
        #[serde(with = "size")]
        size: usize,
        #[serde(with = "count")]
        count: u32,
        #[serde(with = "flag")]
        flag: bool,
        #[serde(with = "list")]
        list: Vec<String>,
        #[serde(with = "opt_text")]
        text: Option<String>,
    }

    fn read(toml: &str) -> Result<Kinds, String> {
        toml::from_str(toml).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn durations_take_fractions() {
        assert_eq!(parse_secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("2."), Some(Duration::from_secs(2)));
        assert_eq!(parse_secs("0.000000001"), Some(Duration::from_nanos(1)));
        for bad in ["", ".", "-1", "1e3", "1s", "1.2.3", "inf", "NaN"] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
        for (text, want) in [
            ("secs = 15", Duration::from_secs(15)),
            ("secs = 0.25", Duration::from_millis(250)),
            ("secs = 0.1", Duration::from_millis(100)),
            ("secs = \"1.125\"", Duration::from_millis(1125)),
        ] {
            assert_eq!(read(text).map(|k| k.secs), Ok(want), "{text}");
        }
        for bad in ["secs = -1.5", "secs = -1", "secs = \"fast\"", "secs = nan"] {
            let e = read(bad).unwrap_err();
            assert!(e.contains("expected seconds"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("8KiB"), Some(8192));
        assert_eq!(parse_size("1 mib"), Some(1 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        for bad in ["", "MiB", "1.5MiB", "-1", "1XB", "99999999999GiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(read("size = \"64KiB\"").map(|k| k.size), Ok(64 * 1024));
        assert_eq!(read("size = 1024").map(|k| k.size), Ok(1024));
        assert!(read("size = -1").is_err());
        assert!(read("size = 1.5").unwrap_err().contains("invalid type"));
    }

    #[test]
    fn counts_are_integers_in_range() {
        assert_eq!(read("count = 20").map(|k| k.count), Ok(20));
        assert_eq!(read("count = \" 7 \"").map(|k| k.count), Ok(7));
        let e = read("count = 4294967296").unwrap_err();
        assert!(e.contains("in range"), "{e}");
        assert!(read("count = \"lots\"").is_err());
        assert!(read("count = -3").is_err());
    }

    #[test]
    fn bools_take_several_spellings_as_strings_only() {
        for (text, want) in [("true", true), ("0", false), ("YES", true), ("no", false)] {
            let toml = format!("flag = \"{text}\"");
            assert_eq!(read(&toml).map(|k| k.flag), Ok(want), "{text}");
        }
        assert_eq!(read("flag = true").map(|k| k.flag), Ok(true));
        let e = read("flag = 1").unwrap_err();
        assert!(
            e.contains("invalid type: integer `1`, expected a boolean"),
            "{e}"
        );
        assert!(read("flag = \"maybe\"").is_err());
    }

    #[test]
    fn lists_are_arrays_or_comma_strings() {
        assert_eq!(
            read("list = \" a, ,b,\"").map(|k| k.list),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            read("list = [\"chat, v1\", \"x\"]").map(|k| k.list),
            Ok(vec!["chat, v1".to_owned(), "x".to_owned()])
        );
        assert_eq!(read("list = \"\"").map(|k| k.list), Ok(Vec::new()));
        assert!(read("list = [\"a\", 2]").is_err());
        assert!(read("list = 2").is_err());
    }

    #[test]
    fn optional_strings_are_unset_by_empty() {
        assert_eq!(read("text = \"\"").map(|k| k.text), Ok(None));
        assert_eq!(read("text = \"me\"").map(|k| k.text), Ok(Some("me".into())));
        assert_eq!(read("").map(|k| k.text), Ok(None));
        assert!(read("text = 1").is_err());
    }

    #[test]
    fn addresses_are_ip_and_port() {
        #[derive(Serialize, Deserialize)]
        struct Listen {
            #[serde(with = "addr")]
            listen: SocketAddr,
        }
        let read = |toml: &str| toml::from_str::<Listen>(toml).map(|l| l.listen);
        assert_eq!(
            read("listen = \" [::1]:80 \"").ok(),
            "[::1]:80".parse().ok()
        );
        let e = read("listen = \"localhost\"").unwrap_err();
        assert!(e.message().contains("expected a socket address"), "{e}");
        assert!(read("listen = 80").is_err());
        let table = toml::Table::try_from(Listen {
            listen: "127.0.0.1:8080".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(table["listen"].as_str(), Some("127.0.0.1:8080"));
    }

    #[test]
    fn written_back_as_read() {
        let kinds = Kinds {
            secs: Duration::from_millis(1500),
            size: 8192,
            count: 3,
            flag: true,
            list: vec!["a".into(), "b".into()],
            text: None,
        };
        let table = toml::Table::try_from(&kinds).unwrap();
        assert_eq!(table["secs"].as_float(), Some(1.5));
        assert_eq!(table["size"].as_integer(), Some(8192));
        assert_eq!(table["text"].as_str(), Some(""));
        let back: Kinds = table.try_into().unwrap();
        assert_eq!(back, kinds);
        let whole = Kinds {
            secs: Duration::from_secs(15),
            ..Kinds::default()
        };
        let table = toml::Table::try_from(&whole).unwrap();
        assert_eq!(table["secs"].as_integer(), Some(15));
    }
}
