//! Keys whose value is one of a few names: an enum each, read in any case,
//! written in lower case.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A name that is not one of a key's choices (the text as given is not kept:
/// the caller has it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownChoice {
    /// The choices, as `a, b, c`.
    pub expected: &'static str,
}

impl fmt::Display for UnknownChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected one of {}", self.expected)
    }
}

impl std::error::Error for UnknownChoice {}

/// One enum of choices: its variants with their names (and extra spellings
/// read as the same variant), `as_str`, `FromStr` (any case), `Display`, and
/// serde as the lower-case name.
macro_rules! choices {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($expected:literal) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $text:literal $(| $alias:literal)*,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Every choice, in the order of the help text.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownChoice;

            fn from_str(s: &str) -> Result<Self, UnknownChoice> {
                let s = s.trim().to_ascii_lowercase();
                match s.as_str() {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(UnknownChoice { expected: $expected }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ChoiceVisitor;

                impl Visitor<'_> for ChoiceVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "one of {}", $expected)
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse()
                            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
                    }
                }

                deserializer.deserialize_str(ChoiceVisitor)
            }
        }
    };
}

choices! {
    /// What the gateway does with a binary frame, which its JSON protocol does
    /// not use (`binary_messages`).
    pub enum BinaryMessages ("error, close, ignore") {
        /// Answer with an `unsupported` error envelope; the connection stays
        /// open (the default).
        #[default]
        Error = "error",
        /// Close the connection with 1003 (unsupported data).
        Close = "close",
        /// Drop the frame without an answer.
        Ignore = "ignore",
    }
}

choices! {
    /// How much the `gmws` binary logs (`log_level`). The library itself only
    /// logs through the `log` facade; the application's logger filters.
    pub enum LogLevel ("off, error, warn, info, debug") {
        /// Nothing.
        Off = "off",
        /// Failures of the server itself (the listener, the loop).
        Error = "error",
        /// Also what peers cause (refusals, protocol errors, limits; rate-limited).
        Warn = "warn" | "warning",
        /// Also start-up, shutdown and configuration notes (the default).
        #[default]
        Info = "info",
        /// Also one line per connection event worth knowing.
        Debug = "debug",
    }
}

impl LogLevel {
    /// The `log` crate's filter for this level, for a logger's `set_max_level`.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_case_and_aliases() {
        assert_eq!("WARN".parse(), Ok(LogLevel::Warn));
        assert_eq!("warning".parse(), Ok(LogLevel::Warn));
        assert_eq!(" Debug ".parse(), Ok(LogLevel::Debug));
        assert_eq!(
            "loud".parse::<LogLevel>(),
            Err(UnknownChoice {
                expected: "off, error, warn, info, debug"
            })
        );
        assert_eq!("Close".parse(), Ok(BinaryMessages::Close));
        assert!("drop".parse::<BinaryMessages>().is_err());
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse(), Ok(*level));
        }
        for answer in BinaryMessages::ALL {
            assert_eq!(answer.to_string().parse(), Ok(*answer));
        }
    }

    #[test]
    fn serde_as_lower_case_names() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Both {
            level: LogLevel,
            binary: BinaryMessages,
        }
        let both: Both = toml::from_str("level = \"ERROR\"\nbinary = \"ignore\"\n").unwrap();
        assert_eq!(
            both,
            Both {
                level: LogLevel::Error,
                binary: BinaryMessages::Ignore
            }
        );
        let table = toml::Table::try_from(&both).unwrap();
        assert_eq!(table["level"].as_str(), Some("error"));
        let e = toml::from_str::<Both>("level = \"loud\"\nbinary = \"error\"\n").unwrap_err();
        assert!(
            e.message()
                .contains("expected one of off, error, warn, info, debug"),
            "{e}"
        );
        let e = toml::from_str::<Both>("level = 3\nbinary = \"error\"\n").unwrap_err();
        assert!(e.message().contains("invalid type: integer"), "{e}");
    }

    #[test]
    fn levels_map_to_log_filters() {
        assert_eq!(LogLevel::Off.filter(), log::LevelFilter::Off);
        assert_eq!(LogLevel::default().filter(), log::LevelFilter::Info);
        assert_eq!(BinaryMessages::default(), BinaryMessages::Error);
    }
}
