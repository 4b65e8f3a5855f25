//! What can go wrong with a Redis command or connection.

use std::fmt;
use std::io;

use super::codec::CodecError;
use super::options::OptionsError;
use super::url::UrlError;

/// Why a command, subscription or connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisError {
    /// The client's command queue is full (`RedisOptions::queue_capacity`):
    /// nothing was queued. Returned to the caller at once.
    QueueFull,
    /// A command needs at least its name (Redis answers an empty array with
    /// nothing at all).
    EmptyCommand,
    /// There is no connection to Redis now (it is backing off between
    /// reconnect attempts); the command was not sent.
    NotConnected,
    /// No reply within `RedisOptions::command_timeout` (Redis stopped, or the
    /// network lost). The connection is dropped and reconnected.
    Timeout,
    /// The connection closed or failed after the command was written; it may
    /// or may not have run.
    ConnectionLost,
    /// Redis answered the command with an error reply (`-ERR ...`).
    Reply(String),
    /// Redis refused AUTH (the connection is retried with backoff).
    Auth(String),
    /// Redis refused SELECT (the connection is retried with backoff).
    Select(String),
    /// Redis sent bytes that are not RESP2 (or past the client's limits).
    Protocol(CodecError),
    /// A socket call failed (connect refused, reset, name not resolved...).
    Io(io::ErrorKind),
    /// The client was shut down; nothing more is sent.
    Shutdown,
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::QueueFull => f.write_str("the Redis command queue is full"),
            RedisError::EmptyCommand => f.write_str("a Redis command needs a name"),
            RedisError::NotConnected => f.write_str("not connected to Redis"),
            RedisError::Timeout => f.write_str("Redis did not answer in time"),
            RedisError::ConnectionLost => f.write_str("the Redis connection was lost"),
            RedisError::Reply(e) => write!(f, "Redis answered with an error: {e}"),
            RedisError::Auth(e) => write!(f, "Redis refused AUTH: {e}"),
            RedisError::Select(e) => write!(f, "Redis refused SELECT: {e}"),
            RedisError::Protocol(e) => write!(f, "Redis sent invalid RESP: {e}"),
            RedisError::Io(kind) => write!(f, "Redis socket error: {kind}"),
            RedisError::Shutdown => f.write_str("the Redis client is shut down"),
        }
    }
}

impl std::error::Error for RedisError {}

impl From<CodecError> for RedisError {
    fn from(e: CodecError) -> Self {
        RedisError::Protocol(e)
    }
}

impl From<io::Error> for RedisError {
    fn from(e: io::Error) -> Self {
        RedisError::Io(e.kind())
    }
}

/// Why [`super::RedisClient::start`] did not start.
#[derive(Debug)]
pub enum StartError {
    /// The URL is malformed.
    Url(UrlError),
    /// An option is out of range.
    Options(OptionsError),
    /// Creating the bus thread's mio `Poll` or `Waker` failed.
    Poll(io::Error),
    /// Spawning the bus thread failed.
    Thread(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Url(e) => write!(f, "{e}"),
            StartError::Options(e) => write!(f, "{e}"),
            StartError::Poll(e) => write!(f, "cannot create the Redis bus poll: {e}"),
            StartError::Thread(e) => write!(f, "cannot spawn the Redis bus thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_size() {
        // The String variants set the size; keep it at a few words.
        assert!(std::mem::size_of::<RedisError>() <= 32);
    }
}
