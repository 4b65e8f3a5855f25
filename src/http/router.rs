//! A small HTTP router for the server's plain-HTTP side.
//!
//! Routes are `(Method, pattern, R)` triples, where `R` is an arbitrary
//! payload chosen by the server (an enum of handlers, a boxed closure, …).
//! Patterns are absolute paths whose segments are either static text
//! (`sockets`) or named captures (`:socket_id`), for example
//! `/api/sockets/:socket_id/session`.
//!
//! # Matching rules
//!
//! * The query string (everything from the first `?`) is ignored for
//!   matching; use [`parse_query`] to read it.
//! * A path that does not start with `/` (e.g. the `*` of `OPTIONS *`, or an
//!   absolute-form target) never matches.
//! * Paths are split on `/` *before* percent-decoding, so `%2F` inside a
//!   captured segment yields a `/` in the parameter value and never changes
//!   the segment structure.
//! * Static segments are compared byte for byte, case-sensitively, against
//!   the raw (still percent-encoded) path segment: `/st%61tus` does **not**
//!   match `/status`.
//! * A `:param` matches exactly one non-empty segment. Its value is
//!   percent-decoded (`+` is kept literally, as it has no special meaning in
//!   paths). If the segment holds a malformed escape (`%`, `%4`, `%zz`) or
//!   decodes to invalid UTF-8, the route **does not match**; since no other
//!   route can match that segment either, the request typically ends in
//!   [`RouteMatch::NotFound`] (404).
//! * Trailing slashes are significant: `/status/` does not match `/status`
//!   (and vice versa), and `/sockets/` does not match `/sockets/:id` because
//!   the captured segment would be empty. Register both forms if both must
//!   work.
//! * Among the routes of the request's method, static segments beat
//!   `:param`s at the same position, compared from left to right: for the
//!   path `/a/b` the route `/a/b` wins over `/a/:x`, and for `/x/b/c` the
//!   route `/x/:b/:c` wins over `/:a/b/c` (the first differing position
//!   decides). Ties are impossible, since [`Router::add`] rejects routes of
//!   the same method and shape.
//! * `HEAD` falls back to the matching `GET` route when no `HEAD` route
//!   matches the path. The caller should then send the `GET` response's
//!   headers without its body (see `Response::write_to`'s `head_only`).
//! * When no route of the request's method matches but routes of other
//!   methods do, [`RouteMatch::MethodNotAllowed`] lists those methods (in the
//!   order of [`Method::ALL`], including `HEAD` whenever `GET` is listed) for
//!   a 405 response with an `Allow` header (see [`allow_header_value`]).
//!   A route of the request's own method always wins over a more specific
//!   route of another method.
//!
//! Matching is linear in the number of routes times the number of path
//! segments, without recursion, which is ample for the handful of endpoints
//! the server exposes.

use std::fmt;

pub use super::query::parse_query;
use super::query::percent_decode_strict;

/// An HTTP request method understood by the router.
///
/// Method names are case-sensitive (RFC 9110 §9.1): only the upper-case
/// spellings parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// Every method, in the order used for `Allow` lists.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    /// Parses a method token as it appears in a request line.
    ///
    /// Returns `None` for unknown methods and for any spelling that is not
    /// exactly upper case (methods are case-sensitive).
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "GET" => Some(Method::Get),
            "HEAD" => Some(Method::Head),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            "OPTIONS" => Some(Method::Options),
            _ => None,
        }
    }

    /// The method's canonical upper-case name, e.g. `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats a list of methods as an `Allow` header value, e.g. `"GET, HEAD"`.
pub fn allow_header_value(methods: &[Method]) -> String {
    let mut out = String::new();
    for (i, m) in methods.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(m.as_str());
    }
    out
}

/// The `:param` segments captured by a matched route, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The decoded value captured for `:name`, if the route has that
    /// parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Iterates over `(name, value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of captured parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no parameter was captured (a fully static route).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Why a route pattern was rejected by [`Router::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The pattern does not start with `/`.
    MissingLeadingSlash(String),
    /// The pattern has an empty segment before its end (`//`).
    EmptySegment(String),
    /// A `:param` has an empty name or a character outside `[A-Za-z0-9_]`.
    BadParamName(String),
    /// The same `:param` name appears twice in one pattern.
    DuplicateParam(String),
    /// A static segment contains a character that is not allowed in a path
    /// segment, or that is reserved by the router (`%`, `?`, `#`, spaces,
    /// control characters, non-ASCII).
    InvalidChar {
        /// The offending pattern.
        pattern: String,
        /// The offending character.
        ch: char,
    },
    /// A route with the same method and the same shape (identical static
    /// segments and `:param` positions, whatever the parameter names)
    /// already exists.
    Duplicate {
        /// The method of the rejected route.
        method: Method,
        /// The pattern of the rejected route.
        pattern: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::MissingLeadingSlash(p) => {
                write!(f, "route pattern {p:?} must start with '/'")
            }
            RouteError::EmptySegment(p) => {
                write!(f, "route pattern {p:?} has an empty segment")
            }
            RouteError::BadParamName(p) => write!(
                f,
                "route pattern {p:?} has a parameter name that is empty or not [A-Za-z0-9_]"
            ),
            RouteError::DuplicateParam(name) => {
                write!(f, "route parameter :{name} appears twice in one pattern")
            }
            RouteError::InvalidChar { pattern, ch } => {
                write!(
                    f,
                    "route pattern {pattern:?} contains invalid character {ch:?}"
                )
            }
            RouteError::Duplicate { method, pattern } => {
                write!(
                    f,
                    "a route for {method} {pattern:?} (or an equivalent pattern) already exists"
                )
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Literal text compared against the raw path segment.
    Static(String),
    /// A named capture of one non-empty segment.
    Param(String),
}

impl Segment {
    /// Whether two segments occupy the same "shape" slot.
    fn same_shape(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Static(a), Segment::Static(b)) => a == b,
            (Segment::Param(_), Segment::Param(_)) => true,
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Route<R> {
    method: Method,
    pattern: String,
    segments: Vec<Segment>,
    payload: R,
}

/// The result of [`Router::find`].
#[derive(Debug)]
pub enum RouteMatch<'a, R> {
    /// A route matched: its payload and the captured parameters.
    Found(&'a R, Params),
    /// The path matched routes of other methods only: answer 405 with an
    /// `Allow` header listing these methods (never empty).
    MethodNotAllowed(Vec<Method>),
    /// No route matched the path: answer 404.
    NotFound,
}

/// A router mapping `(method, path)` to a payload of type `R`.
///
/// See the [module documentation](self) for the matching rules.
#[derive(Debug)]
pub struct Router<R> {
    routes: Vec<Route<R>>,
}

impl<R> Default for Router<R> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

/// Whether `c` may appear in a static pattern segment: RFC 3986 `pchar`
/// without percent-encoding.
fn is_static_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.'
                | '_'
                | '~'
                | '!'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | ';'
                | '='
                | ':'
                | '@'
        )
}

/// Compiles a pattern into segments, validating it.
fn compile(pattern: &str) -> Result<Vec<Segment>, RouteError> {
    let rest = pattern
        .strip_prefix('/')
        .ok_or_else(|| RouteError::MissingLeadingSlash(pattern.to_owned()))?;
    let raw: Vec<&str> = rest.split('/').collect();
    let last = raw.len().saturating_sub(1);
    let mut segments = Vec::with_capacity(raw.len());
    for (i, seg) in raw.iter().enumerate() {
        if let Some(name) = seg.strip_prefix(':') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(RouteError::BadParamName(pattern.to_owned()));
            }
            let dup = segments
                .iter()
                .any(|s| matches!(s, Segment::Param(n) if n == name));
            if dup {
                return Err(RouteError::DuplicateParam(name.to_owned()));
            }
            segments.push(Segment::Param(name.to_owned()));
        } else {
            // An empty segment is only allowed last: "/" and "/status/".
            if seg.is_empty() && i != last {
                return Err(RouteError::EmptySegment(pattern.to_owned()));
            }
            if let Some(ch) = seg.chars().find(|&c| !is_static_char(c)) {
                return Err(RouteError::InvalidChar {
                    pattern: pattern.to_owned(),
                    ch,
                });
            }
            segments.push(Segment::Static((*seg).to_owned()));
        }
    }
    Ok(segments)
}

/// Strips the query string (from the first `?`) off a request target.
fn path_only(target: &str) -> &str {
    match target.find('?') {
        Some(i) => target.get(..i).unwrap_or(target),
        None => target,
    }
}

/// Whether a compiled pattern matches the split path. Captures are built
/// separately by [`capture`], only for the winning route.
fn matches_shape(segments: &[Segment], path_segs: &[&str]) -> bool {
    if segments.len() != path_segs.len() {
        return false;
    }
    segments.iter().zip(path_segs).all(|(seg, raw)| match seg {
        Segment::Static(s) => s == raw,
        Segment::Param(_) => !raw.is_empty() && percent_decode_strict(raw).is_some(),
    })
}

/// Whether `a` is more specific than `b` (both matched the same path, so
/// they have the same length): the first position where they differ has a
/// static segment in `a`.
fn more_specific(a: &[Segment], b: &[Segment]) -> bool {
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Segment::Static(_), Segment::Param(_)) => return true,
            (Segment::Param(_), Segment::Static(_)) => return false,
            _ => {}
        }
    }
    false
}

/// Builds the parameters of a route already known to match.
fn capture(segments: &[Segment], path_segs: &[&str]) -> Params {
    let pairs = segments
        .iter()
        .zip(path_segs)
        .filter_map(|(seg, raw)| match seg {
            Segment::Param(name) => percent_decode_strict(raw).map(|value| (name.clone(), value)),
            Segment::Static(_) => None,
        })
        .collect();
    Params { pairs }
}

impl<R> Router<R> {
    /// Creates an empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of registered routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is registered.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Registers `route` for `method` and `pattern`.
    ///
    /// The pattern must start with `/`; segments are static text made of
    /// RFC 3986 `pchar`s without `%` escapes, or `:name` with `name` in
    /// `[A-Za-z0-9_]+` and unique within the pattern. Only the last segment
    /// may be empty (`/` and `/status/`). A route with the same method and
    /// the same shape as an existing one (`/a/:x` vs `/a/:y`) is a
    /// [`RouteError::Duplicate`].
    ///
    /// # Errors
    ///
    /// A [`RouteError`] describing the malformed pattern or the duplicate;
    /// the router is left unchanged.
    pub fn add(&mut self, method: Method, pattern: &str, route: R) -> Result<(), RouteError> {
        let segments = compile(pattern)?;
        let duplicate = self.routes.iter().any(|r| {
            r.method == method
                && r.segments.len() == segments.len()
                && r.segments
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| a.same_shape(b))
        });
        if duplicate {
            return Err(RouteError::Duplicate {
                method,
                pattern: pattern.to_owned(),
            });
        }
        self.routes.push(Route {
            method,
            pattern: pattern.to_owned(),
            segments,
            payload: route,
        });
        Ok(())
    }

    /// Iterates over the registered `(method, pattern, payload)` triples in
    /// insertion order.
    pub fn routes(&self) -> impl Iterator<Item = (Method, &str, &R)> {
        self.routes
            .iter()
            .map(|r| (r.method, r.pattern.as_str(), &r.payload))
    }

    /// Finds the most specific route of `method` matching `path` (a request
    /// target whose query string, if any, is ignored).
    ///
    /// `HEAD` falls back to `GET` when no `HEAD` route matches. See the
    /// [module documentation](self) for all rules.
    pub fn find(&self, method: Method, path: &str) -> RouteMatch<'_, R> {
        let path = path_only(path);
        let Some(rest) = path.strip_prefix('/') else {
            return RouteMatch::NotFound;
        };
        let path_segs: Vec<&str> = rest.split('/').collect();

        if let Some(route) = self.best(method, &path_segs) {
            return RouteMatch::Found(&route.payload, capture(&route.segments, &path_segs));
        }
        if method == Method::Head {
            if let Some(route) = self.best(Method::Get, &path_segs) {
                return RouteMatch::Found(&route.payload, capture(&route.segments, &path_segs));
            }
        }

        let mut allowed: Vec<Method> = Method::ALL
            .into_iter()
            .filter(|&m| {
                self.routes
                    .iter()
                    .any(|r| r.method == m && matches_shape(&r.segments, &path_segs))
            })
            .collect();
        if allowed.contains(&Method::Get) && !allowed.contains(&Method::Head) {
            allowed.push(Method::Head);
            allowed.sort();
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed(allowed)
        }
    }

    /// Like [`Router::find`], but lends the matched route's payload mutably
    /// (for routes that keep state, such as boxed closures).
    pub fn find_mut(&mut self, method: Method, path: &str) -> Option<&mut R> {
        let index = match self.find(method, path) {
            RouteMatch::Found(found, _) => self
                .routes
                .iter()
                .position(|r| std::ptr::eq(&r.payload, found))?,
            _ => return None,
        };
        self.routes.get_mut(index).map(|r| &mut r.payload)
    }

    /// The most specific route of exactly `method` matching the segments.
    fn best(&self, method: Method, path_segs: &[&str]) -> Option<&Route<R>> {
        let mut best: Option<&Route<R>> = None;
        for r in &self.routes {
            if r.method != method || !matches_shape(&r.segments, path_segs) {
                continue;
            }
            best = match best {
                Some(b) if !more_specific(&r.segments, &b.segments) => Some(b),
                _ => Some(r),
            };
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum H {
        Status,
        StatusSlash,
        Root,
        Session,
        SessionPost,
        SocketsList,
        Socket,
        SocketSpecial,
        HeadOnly,
    }

    fn router() -> Router<H> {
        let mut r = Router::new();
        r.add(Method::Get, "/", H::Root).unwrap();
        r.add(Method::Get, "/status", H::Status).unwrap();
        r.add(Method::Get, "/status/", H::StatusSlash).unwrap();
        r.add(Method::Get, "/api/sockets", H::SocketsList).unwrap();
        r.add(Method::Get, "/api/sockets/:socket_id", H::Socket)
            .unwrap();
        r.add(Method::Get, "/api/sockets/special", H::SocketSpecial)
            .unwrap();
        r.add(Method::Get, "/api/sockets/:socket_id/session", H::Session)
            .unwrap();
        r.add(Method::Post, "/api/sockets/:id/session", H::SessionPost)
            .unwrap();
        r.add(Method::Head, "/head-only", H::HeadOnly).unwrap();
        r
    }

    fn found(r: &Router<H>, m: Method, p: &str) -> (H, Params) {
        match r.find(m, p) {
            RouteMatch::Found(h, params) => (*h, params),
            other => panic!("{m} {p}: expected Found, got {other:?}"),
        }
    }

    fn not_found(r: &Router<H>, m: Method, p: &str) {
        match r.find(m, p) {
            RouteMatch::NotFound => {}
            other => panic!("{m} {p}: expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn method_parse_and_as_str() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.as_str()), Some(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(Method::parse("get"), None);
        assert_eq!(Method::parse("CONNECT"), None);
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse("GET "), None);
    }

    #[test]
    fn static_and_params() {
        let r = router();
        assert_eq!(found(&r, Method::Get, "/").0, H::Root);
        assert_eq!(found(&r, Method::Get, "/status").0, H::Status);
        let (h, p) = found(&r, Method::Get, "/api/sockets/abc123/session");
        assert_eq!(h, H::Session);
        assert_eq!(p.get("socket_id"), Some("abc123"));
        assert_eq!(p.get("id"), None);
        assert_eq!(p.len(), 1);
        let (h, p) = found(&r, Method::Post, "/api/sockets/xyz/session");
        assert_eq!(h, H::SessionPost);
        assert_eq!(p.get("id"), Some("xyz"));
        let (h, p) = found(&r, Method::Get, "/api/sockets");
        assert_eq!(h, H::SocketsList);
        assert!(p.is_empty());
    }

    #[test]
    fn static_beats_param() {
        let r = router();
        assert_eq!(
            found(&r, Method::Get, "/api/sockets/special").0,
            H::SocketSpecial
        );
        let (h, p) = found(&r, Method::Get, "/api/sockets/other");
        assert_eq!(h, H::Socket);
        assert_eq!(p.get("socket_id"), Some("other"));

        // Left-most difference decides, regardless of insertion order.
        let mut r = Router::new();
        r.add(Method::Get, "/:a/b/:c", 1).unwrap();
        r.add(Method::Get, "/x/:b/:c", 2).unwrap();
        r.add(Method::Get, "/:a/:b/c", 3).unwrap();
        assert!(matches!(
            r.find(Method::Get, "/x/b/c"),
            RouteMatch::Found(2, _)
        ));
        assert!(matches!(
            r.find(Method::Get, "/y/b/c"),
            RouteMatch::Found(1, _)
        ));
        assert!(matches!(
            r.find(Method::Get, "/y/z/c"),
            RouteMatch::Found(3, _)
        ));
        assert!(matches!(
            r.find(Method::Get, "/y/z/q"),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn query_is_ignored() {
        let r = router();
        assert_eq!(found(&r, Method::Get, "/status?x=1").0, H::Status);
        assert_eq!(found(&r, Method::Get, "/?").0, H::Root);
        let (_, p) = found(&r, Method::Get, "/api/sockets/a?b/session");
        assert_eq!(p.get("socket_id"), Some("a"));
    }

    #[test]
    fn trailing_slash_is_significant() {
        let r = router();
        assert_eq!(found(&r, Method::Get, "/status/").0, H::StatusSlash);
        let mut r2 = Router::new();
        r2.add(Method::Get, "/status", ()).unwrap();
        assert!(matches!(
            r2.find(Method::Get, "/status/"),
            RouteMatch::NotFound
        ));
        not_found(&r, Method::Get, "/api/sockets/abc/session/");
        // An empty capture never matches.
        let mut r3 = Router::new();
        r3.add(Method::Get, "/sockets/:id", ()).unwrap();
        assert!(matches!(
            r3.find(Method::Get, "/sockets/"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            r3.find(Method::Get, "/sockets//"),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn head_falls_back_to_get() {
        let r = router();
        assert_eq!(found(&r, Method::Head, "/status").0, H::Status);
        let (h, p) = found(&r, Method::Head, "/api/sockets/q/session");
        assert_eq!(h, H::Session);
        assert_eq!(p.get("socket_id"), Some("q"));
        assert_eq!(found(&r, Method::Head, "/head-only").0, H::HeadOnly);
        // GET does not fall back to HEAD.
        match r.find(Method::Get, "/head-only") {
            RouteMatch::MethodNotAllowed(m) => assert_eq!(m, vec![Method::Head]),
            other => panic!("{other:?}"),
        }
        // An explicit HEAD route wins over GET.
        let mut r2 = Router::new();
        r2.add(Method::Get, "/x", 1).unwrap();
        r2.add(Method::Head, "/x", 2).unwrap();
        assert!(matches!(
            r2.find(Method::Head, "/x"),
            RouteMatch::Found(2, _)
        ));
        assert!(matches!(
            r2.find(Method::Get, "/x"),
            RouteMatch::Found(1, _)
        ));
    }

    #[test]
    fn method_not_allowed() {
        let r = router();
        match r.find(Method::Delete, "/api/sockets/abc/session") {
            RouteMatch::MethodNotAllowed(m) => {
                assert_eq!(m, vec![Method::Get, Method::Head, Method::Post]);
                assert_eq!(allow_header_value(&m), "GET, HEAD, POST");
            }
            other => panic!("{other:?}"),
        }
        match r.find(Method::Post, "/status") {
            RouteMatch::MethodNotAllowed(m) => assert_eq!(m, vec![Method::Get, Method::Head]),
            other => panic!("{other:?}"),
        }
        not_found(&r, Method::Delete, "/nope");
        not_found(&r, Method::Get, "/nope");
        assert_eq!(allow_header_value(&[]), "");
    }

    #[test]
    fn own_method_wins_over_more_specific_other_method() {
        let mut r = Router::new();
        r.add(Method::Post, "/a/b", 1).unwrap();
        r.add(Method::Get, "/a/:x", 2).unwrap();
        assert!(matches!(
            r.find(Method::Get, "/a/b"),
            RouteMatch::Found(2, _)
        ));
        assert!(matches!(
            r.find(Method::Post, "/a/b"),
            RouteMatch::Found(1, _)
        ));
        match r.find(Method::Post, "/a/c") {
            RouteMatch::MethodNotAllowed(m) => assert_eq!(m, vec![Method::Get, Method::Head]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn percent_decoding_of_params() {
        let r = router();
        let (_, p) = found(&r, Method::Get, "/api/sockets/a%20b%2Fc+d/session");
        assert_eq!(p.get("socket_id"), Some("a b/c+d"));
        let (_, p) = found(&r, Method::Get, "/api/sockets/%C3%A9t%c3%a9");
        assert_eq!(p.get("socket_id"), Some("été"));
        // Malformed escapes or invalid UTF-8: the route does not match.
        not_found(&r, Method::Get, "/api/sockets/%zz/session");
        not_found(&r, Method::Get, "/api/sockets/abc%/session");
        not_found(&r, Method::Get, "/api/sockets/abc%4");
        not_found(&r, Method::Get, "/api/sockets/%FF");
        not_found(&r, Method::Post, "/api/sockets/%C3/session");
        // Static segments compare raw text.
        not_found(&r, Method::Get, "/st%61tus");
        let (h, p) = found(&r, Method::Get, "/api/sockets/speci%61l");
        assert_eq!(h, H::Socket);
        assert_eq!(p.get("socket_id"), Some("special"));
    }

    #[test]
    fn odd_targets() {
        let r = router();
        not_found(&r, Method::Options, "*");
        not_found(&r, Method::Get, "");
        not_found(&r, Method::Get, "status");
        not_found(&r, Method::Get, "http://host/status");
        not_found(&r, Method::Get, "//status");
        not_found(&r, Method::Get, "/api//sockets");
    }

    #[test]
    fn bad_patterns_rejected() {
        let mut r: Router<()> = Router::new();
        assert!(matches!(
            r.add(Method::Get, "status", ()),
            Err(RouteError::MissingLeadingSlash(_))
        ));
        assert!(matches!(
            r.add(Method::Get, "", ()),
            Err(RouteError::MissingLeadingSlash(_))
        ));
        assert!(matches!(
            r.add(Method::Get, "//a", ()),
            Err(RouteError::EmptySegment(_))
        ));
        assert!(matches!(
            r.add(Method::Get, "/a//b", ()),
            Err(RouteError::EmptySegment(_))
        ));
        assert!(matches!(
            r.add(Method::Get, "/a/:", ()),
            Err(RouteError::BadParamName(_))
        ));
        assert!(matches!(
            r.add(Method::Get, "/a/:b-c", ()),
            Err(RouteError::BadParamName(_))
        ));
        assert!(matches!(
            r.add(Method::Get, "/:x/:x", ()),
            Err(RouteError::DuplicateParam(n)) if n == "x"
        ));
        for (p, c) in [
            ("/a b", ' '),
            ("/a%20", '%'),
            ("/a?b", '?'),
            ("/a#", '#'),
            ("/é", 'é'),
        ] {
            match r.add(Method::Get, p, ()) {
                Err(RouteError::InvalidChar { ch, .. }) => assert_eq!(ch, c, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert!(r.is_empty());
        // Errors display something useful.
        let e = r.add(Method::Get, "x", ()).unwrap_err();
        assert!(e.to_string().contains("must start with '/'"));
    }

    #[test]
    fn duplicates_rejected() {
        let mut r = Router::new();
        r.add(Method::Get, "/a/:x", 1).unwrap();
        assert_eq!(
            r.add(Method::Get, "/a/:y", 2),
            Err(RouteError::Duplicate {
                method: Method::Get,
                pattern: "/a/:y".into()
            })
        );
        assert!(r.add(Method::Get, "/a/:x", 3).is_err());
        r.add(Method::Post, "/a/:x", 4).unwrap();
        r.add(Method::Get, "/a/b", 5).unwrap();
        r.add(Method::Get, "/a/:x/", 6).unwrap();
        assert!(r.add(Method::Get, "/a/b", 7).is_err());
        assert_eq!(r.len(), 4);
        let listed: Vec<_> = r.routes().map(|(m, p, v)| (m, p.to_owned(), *v)).collect();
        assert_eq!(listed[0], (Method::Get, "/a/:x".to_owned(), 1));
        assert!(r
            .add(Method::Get, "/a/:y", 8)
            .unwrap_err()
            .to_string()
            .contains("already exists"));
    }

    #[test]
    fn query_parsing() {
        assert_eq!(parse_query("/x"), vec![]);
        assert_eq!(parse_query("/x?"), vec![]);
        assert_eq!(
            parse_query("/x?a=1&b=two+words&c=%26%3D&&d&e=&=f&a=2"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two words".into()),
                ("c".into(), "&=".into()),
                ("d".into(), "".into()),
                ("e".into(), "".into()),
                ("".into(), "f".into()),
                ("a".into(), "2".into()),
            ]
        );
        assert_eq!(parse_query("/?k=a=b"), vec![("k".into(), "a=b".into())]);
        assert_eq!(
            parse_query("/?k=v#frag&x=y"),
            vec![("k".into(), "v".into())]
        );
        assert_eq!(
            parse_query("/?k%2B=%E2%82%AC"),
            vec![("k+".into(), "€".into())]
        );
        // Lenient on bad input.
        assert_eq!(
            parse_query("/?a=%zz%4&b=%FF&c=100%"),
            vec![
                ("a".into(), "%zz%4".into()),
                ("b".into(), "\u{FFFD}".into()),
                ("c".into(), "100%".into()),
            ]
        );
        assert_eq!(parse_query("/?q=a?b"), vec![("q".into(), "a?b".into())]);
    }

    proptest::proptest! {
        #[test]
        fn find_and_query_never_panic(path in ".{0,64}", m in 0usize..7) {
            let r = router();
            let method = Method::ALL[m];
            let _ = r.find(method, &path);
            let _ = r.find(method, &format!("/{path}"));
            let _ = parse_query(&path);
            let _ = parse_query(&format!("/?{path}"));
        }

        #[test]
        fn param_roundtrip(value in "\\PC{1,16}") {
            // Any non-empty value, fully percent-encoded, is captured back.
            let mut r = Router::new();
            r.add(Method::Get, "/v/:val/end", ()).unwrap();
            let enc: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
            match r.find(Method::Get, &format!("/v/{enc}/end?x")) {
                RouteMatch::Found(_, p) => proptest::prop_assert_eq!(p.get("val"), Some(value.as_str())),
                other => proptest::prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn add_never_panics(pattern in ".{0,32}") {
            let mut r = Router::new();
            if r.add(Method::Get, &pattern, ()).is_ok() {
                // A valid pattern without params matches itself.
                if !pattern.contains(':') {
                    proptest::prop_assert!(matches!(r.find(Method::Get, &pattern), RouteMatch::Found(..)));
                }
            }
        }
    }
}
