//! Plain HTTP/1.1 on the WebSocket port: request bodies, routing, responses.

pub mod api;
pub mod request;
pub mod response;
pub mod router;
pub mod routes;
pub mod serve;

pub use request::HttpRequest;
pub use response::Response;
pub use router::{Method, Params, RouteMatch, Router};
pub use serve::UserRoute;
