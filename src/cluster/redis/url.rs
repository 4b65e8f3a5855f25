//! `redis://[[user]:password@]host[:port][/db]` URLs.

use std::fmt;

/// The default Redis port, used when the URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Where a Redis server is and how to log in to it, parsed from a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP address (IPv6 without the brackets).
    pub host: String,
    /// TCP port; [`DEFAULT_PORT`] when the URL names none.
    pub port: u16,
    /// ACL user name for `AUTH user password` (Redis 6+); `None` for the
    /// classic `AUTH password`.
    pub username: Option<String>,
    /// Password for AUTH; `None` sends no AUTH.
    pub password: Option<String>,
    /// Database for SELECT; 0 (the default) sends no SELECT.
    pub db: u32,
}

// The password is not printed.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

/// What is wrong with a Redis URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// It does not start with `redis://` (TLS, `rediss://`, and Unix sockets
    /// are not supported).
    Scheme,
    /// No host between `redis://` (or the `@`) and the port or path.
    MissingHost,
    /// An IPv6 host's `[` has no matching `]`.
    UnclosedBracket,
    /// The port is not a number from 1 to 65535.
    Port,
    /// The path is not `/` followed by a database number (0 to 2^32-1).
    Database,
    /// A `%` in the user name or password is not followed by two hex digits,
    /// or the decoded bytes are not UTF-8.
    PercentEncoding,
    /// The URL has a `?query` or `#fragment`; no options are read from it.
    Unsupported,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => {
                "a Redis URL starts with redis:// (rediss:// and unix sockets are not supported)"
            }
            UrlError::MissingHost => "the Redis URL names no host",
            UrlError::UnclosedBracket => "the Redis URL's IPv6 host has no closing ]",
            UrlError::Port => "the Redis URL's port is not a number from 1 to 65535",
            UrlError::Database => "the Redis URL's path is not /<database number>",
            UrlError::PercentEncoding => "the Redis URL's user or password has a bad %-escape",
            UrlError::Unsupported => {
                "the Redis URL has a ?query or #fragment, which are not supported"
            }
        })
    }
}

impl std::error::Error for UrlError {}

impl RedisUrl {
    /// Parses `redis://[[user]:password@]host[:port][/db]`. The user name and
    /// password may be %-escaped (a `@` or `:` in a password is `%40`, `%3A`).
    pub fn parse(url: &str) -> Result<RedisUrl, UrlError> {
        let rest = url.strip_prefix("redis://").ok_or(UrlError::Scheme)?;
        if rest.contains(['?', '#']) {
            return Err(UrlError::Unsupported);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, pass)) => (non_empty(decode(user)?), Some(decode(pass)?)),
                // `redis://secret@host`: a bare word is the password, as
                // other clients read it.
                None => (None, Some(decode(info)?)),
            },
        };
        let (host, port) = split_host_port(hostport)?;
        let db = match path {
            None | Some("") => 0,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| UrlError::Database)?
            }
            Some(_) => return Err(UrlError::Database),
        };
        Ok(RedisUrl {
            host,
            port,
            username,
            password,
            db,
        })
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn split_host_port(hostport: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']').ok_or(UrlError::UnclosedBracket)?;
        let after = &v6[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::Port)?),
        };
        (&v6[..end], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse() {
            Ok(0) | Err(_) => return Err(UrlError::Port),
            Ok(n) => n,
        },
        Some(_) => return Err(UrlError::Port),
    };
    Ok((host.to_owned(), port))
}

fn decode(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::PercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::PercentEncoding)?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| UrlError::PercentEncoding)?;
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::PercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> RedisUrl {
        match RedisUrl::parse(url) {
            Ok(u) => u,
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn host_and_port() {
        let u = ok("redis://127.0.0.1:6380");
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 0));
        assert_eq!((u.username, u.password), (None, None));
        let u = ok("redis://localhost");
        assert_eq!((u.host.as_str(), u.port), ("localhost", DEFAULT_PORT));
        let u = ok("redis://localhost/");
        assert_eq!(u.db, 0);
    }

    #[test]
    fn password_and_db() {
        let u = ok("redis://:s3cret@redis.example:7000/3");
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert_eq!(u.username, None);
        assert_eq!((u.port, u.db), (7000, 3));
        let u = ok("redis://alice:pw@h/15");
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        let u = ok("redis://bare@h");
        assert_eq!((u.username, u.password.as_deref()), (None, Some("bare")));
    }

    #[test]
    fn percent_escapes_and_at_in_password() {
        let u = ok("redis://:p%40ss%3Aw@h:1");
        assert_eq!(u.password.as_deref(), Some("p@ss:w"));
        // The last @ separates the host: a raw @ in the password still works.
        let u = ok("redis://:a@b@h");
        assert_eq!(u.password.as_deref(), Some("a@b"));
        assert_eq!(u.host, "h");
    }

    #[test]
    fn ipv6() {
        let u = ok("redis://[::1]:6390/2");
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 6390, 2));
        assert_eq!(ok("redis://[::1]").port, DEFAULT_PORT);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases = [
            ("http://h", UrlError::Scheme),
            ("rediss://h", UrlError::Scheme),
            ("h:6379", UrlError::Scheme),
            ("redis://", UrlError::MissingHost),
            ("redis://:pw@:6379", UrlError::MissingHost),
            ("redis://[::1:6379", UrlError::UnclosedBracket),
            ("redis://[::1]6379", UrlError::Port),
            ("redis://h:", UrlError::Port),
            ("redis://h:0", UrlError::Port),
            ("redis://h:65536", UrlError::Port),
            ("redis://h:-1", UrlError::Port),
            ("redis://h:http", UrlError::Port),
            ("redis://h/x", UrlError::Database),
            ("redis://h/-1", UrlError::Database),
            ("redis://h/1/2", UrlError::Database),
            ("redis://h/99999999999", UrlError::Database),
            ("redis://:%zz@h", UrlError::PercentEncoding),
            ("redis://:%4@h", UrlError::PercentEncoding),
            ("redis://:%ff@h", UrlError::PercentEncoding),
            ("redis://h?db=1", UrlError::Unsupported),
            ("redis://h#x", UrlError::Unsupported),
        ];
        for (url, want) in cases {
            assert_eq!(RedisUrl::parse(url), Err(want), "{url}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let text = format!("{:?}", ok("redis://:hunter2@h"));
        assert!(!text.contains("hunter2"), "{text}");
    }
}
