//! Verifying the identity a client binds to its socket.

pub mod jwt;
