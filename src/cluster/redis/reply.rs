//! [`Reply`]: a RESP2 reply, our own type so the codec crate stays private.

use redis_protocol::resp2::types::OwnedFrame;

/// One reply from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A status reply (`+OK`, `+PONG`).
    Status(Vec<u8>),
    /// An error inside an array (a top-level error reply is
    /// [`super::RedisError::Reply`] instead).
    Error(String),
    /// An integer reply.
    Integer(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// An array of replies.
    Array(Vec<Reply>),
    /// The null bulk string or null array.
    Nil,
}

impl Reply {
    /// The integer, if this is an integer reply.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Reply::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes of a bulk string or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) | Reply::Status(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is the status reply `OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Status(s) if s == b"OK")
    }
}

impl From<OwnedFrame> for Reply {
    fn from(frame: OwnedFrame) -> Reply {
        match frame {
            OwnedFrame::SimpleString(s) => Reply::Status(s),
            OwnedFrame::Error(e) => Reply::Error(e),
            OwnedFrame::Integer(i) => Reply::Integer(i),
            OwnedFrame::BulkString(b) => Reply::Bulk(b),
            OwnedFrame::Array(items) => Reply::Array(items.into_iter().map(Reply::from).collect()),
            OwnedFrame::Null => Reply::Nil,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_frames() {
        let frame = OwnedFrame::Array(vec![
            OwnedFrame::SimpleString(b"OK".to_vec()),
            OwnedFrame::Error("ERR x".into()),
            OwnedFrame::Integer(-3),
            OwnedFrame::BulkString(b"b".to_vec()),
            OwnedFrame::Null,
        ]);
        let Reply::Array(items) = Reply::from(frame) else {
            panic!("not an array");
        };
        assert!(items[0].is_ok());
        assert_eq!(items[1], Reply::Error("ERR x".into()));
        assert_eq!(items[2].as_integer(), Some(-3));
        assert_eq!(items[3].as_bytes(), Some(&b"b"[..]));
        assert_eq!(items[4], Reply::Nil);
    }
}
