//! Why a [`Server`](crate::Server) could not be made.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why [`Server::bind`](crate::Server::bind) failed: the configuration, or
/// the operating system.
#[derive(Debug)]
#[non_exhaustive]
pub enum BindError {
    /// [`Config::validate`](crate::Config::validate) refused the configuration.
    Config(ConfigError),
    /// `tls_cert` or `tls_key` could not be loaded (the error names the file).
    Tls(crate::tls::TlsError),
    /// The node could not join its cluster (`cluster_redis`): Redis
    /// unreachable at start, a bad URL, ...
    Cluster(crate::cluster::ClusterStartError),
    /// A system call failed: what was being done, and the error.
    Io {
        /// The step that failed.
        step: BindStep,
        /// What the operating system said.
        error: io::Error,
    },
}

/// The steps of [`Server::bind`](crate::Server::bind) that can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindStep {
    /// Creating the `epoll` instance (mio `Poll`).
    CreatePoll,
    /// Binding and listening on this address (`listen`).
    Listen(SocketAddr),
    /// Registering the listener with the poll.
    Register,
    /// Creating the waker other threads use to reach the loop.
    CreateWaker,
    /// Reading the listener's bound address back.
    LocalAddr,
}

impl BindError {
    /// An I/O error at `step`, for `map_err`.
    pub(crate) fn io(step: BindStep) -> impl FnOnce(io::Error) -> BindError {
        move |error| BindError::Io { step, error }
    }
}

impl fmt::Display for BindStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindStep::CreatePoll => f.write_str("cannot create the event loop's poll"),
            BindStep::Listen(addr) => write!(f, "cannot listen on {addr}"),
            BindStep::Register => f.write_str("cannot register the listener"),
            BindStep::CreateWaker => f.write_str("cannot create the event loop's waker"),
            BindStep::LocalAddr => f.write_str("cannot read the listener's address"),
        }
    }
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Config(error) => write!(f, "invalid configuration: {error}"),
            BindError::Tls(error) => write!(f, "TLS: {error}"),
            BindError::Cluster(error) => write!(f, "{error}"),
            BindError::Io { step, error } => write!(f, "{step}: {error}"),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Config(error) => Some(error),
            BindError::Tls(error) => Some(error),
            BindError::Cluster(error) => Some(error),
            BindError::Io { error, .. } => Some(error),
        }
    }
}

impl From<ConfigError> for BindError {
    fn from(error: ConfigError) -> Self {
        BindError::Config(error)
    }
}

/// For applications whose `main` returns `io::Result`: an invalid
/// configuration becomes [`io::ErrorKind::InvalidInput`], a failed step keeps
/// its error's kind; the text is this error's `Display`.
impl From<BindError> for io::Error {
    fn from(error: BindError) -> Self {
        let kind = match &error {
            BindError::Config(_) | BindError::Tls(_) => io::ErrorKind::InvalidInput,
            BindError::Cluster(_) => io::ErrorKind::NotConnected,
            BindError::Io { error, .. } => error.kind(),
        };
        io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_kinds() {
        let e = BindError::Config(ConfigError::OutOfRange("max_connections", "at least 1"));
        assert_eq!(
            e.to_string(),
            "invalid configuration: max_connections: must be at least 1"
        );
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let e = BindError::io(BindStep::Listen(addr))(io::Error::from(io::ErrorKind::AddrInUse));
        assert!(
            e.to_string().starts_with("cannot listen on 127.0.0.1:80: "),
            "{e}"
        );
        let io = io::Error::from(e);
        assert_eq!(io.kind(), io::ErrorKind::AddrInUse);
        assert!(io.to_string().starts_with("cannot listen on"), "{io}");
    }
}
