//! Plain HTTP/1.1 vocabulary: requests, responses, the router. What serves
//! them on the WebSocket port (bodies, keep-alive, the built-in routes and
//! the `/api/`) is the server's (`server::http`).

mod query;
pub mod request;
pub mod response;
pub mod router;

pub use request::HttpRequest;
pub use response::Response;
pub use router::{Method, Params, RouteMatch, Router};
