//! Plain HTTP/1.1 on the WebSocket port: request bodies, routing, responses.

pub mod response;
pub mod router;
pub mod serve;

pub use response::Response;
pub use router::{Method, Params, RouteMatch, Router};
