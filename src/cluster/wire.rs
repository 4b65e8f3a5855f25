//! What one node publishes to the others: a [`Publication`] in a small
//! binary envelope (the payload is carried once, whatever the recipients).
//!
//! ```text
//! version u8 (1) | origin u16 | seq u64 | kind u8 | opcode u8
//! | target length u16 | target | excluded count u32 | excluded u64 each
//! | payload (the rest)
//! ```
//!
//! A socket operation (kind 6, [`WireTarget::Op`]) carries its socket as the
//! target and the operation as the payload: `op u8` (1 join, 2 leave, 3
//! close) then the group name, or `code u16` and the reason.
//!
//! Integers are big-endian. Decoding never panics: a malformed message is a
//! [`WireError`], counted and dropped by the receiver.

use std::fmt;

use crate::socket_id::SocketId;

/// The envelope's version byte.
const VERSION: u8 = 1;

/// Who a publication is for, on the nodes that receive it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireTarget {
    /// One socket (its id names its node).
    Socket(SocketId),
    /// The sockets bound to a client id.
    Client(String),
    /// A group's members, except the excluded sockets.
    Group(String, Vec<SocketId>),
    /// Every open socket.
    All,
    /// Every bound socket.
    AllClients,
    /// The liveness probe a node publishes to itself (the payload is its
    /// token); reaches no socket.
    Probe,
    /// An operation on one socket of the receiving node (join, leave,
    /// close), applied by the socket's loop as if asked there.
    Op(SocketId, SocketOp),
}

/// What [`WireTarget::Op`] does to its socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketOp {
    /// Join the group.
    Join(String),
    /// Leave the group.
    Leave(String),
    /// Close with this code and reason (the receiver checks the code).
    Close(u16, String),
}

impl SocketOp {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            SocketOp::Join(g) => {
                out.push(1);
                out.extend_from_slice(g.as_bytes());
            }
            SocketOp::Leave(g) => {
                out.push(2);
                out.extend_from_slice(g.as_bytes());
            }
            SocketOp::Close(code, reason) => {
                out.push(3);
                out.extend_from_slice(&code.to_be_bytes());
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<SocketOp, WireError> {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| WireError::Utf8);
        match bytes.split_first() {
            Some((1, group)) => Ok(SocketOp::Join(text(group)?)),
            Some((2, group)) => Ok(SocketOp::Leave(text(group)?)),
            Some((3, rest)) if rest.len() >= 2 => {
                let (code, reason) = rest.split_at(2);
                Ok(SocketOp::Close(
                    u16::from_be_bytes([code[0], code[1]]),
                    text(reason)?,
                ))
            }
            Some((3, _)) | None => Err(WireError::Truncated),
            Some((op, _)) => Err(WireError::Op(*op)),
        }
    }
}

/// One cross-node message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// The node that published it.
    pub origin: u16,
    /// The origin's sequence number on this channel (gaps are lost messages).
    pub seq: u64,
    /// Who it is for.
    pub target: WireTarget,
    /// A binary message (else text).
    pub binary: bool,
    /// The message.
    pub payload: Vec<u8>,
}

/// Why a received message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// It ends before its header does.
    Truncated,
    /// Another version of the envelope.
    Version(u8),
    /// An unknown target kind.
    Kind(u8),
    /// An opcode other than text (1) or binary (2).
    Opcode(u8),
    /// A client id or group name that is not UTF-8.
    Utf8,
    /// An unknown socket operation.
    Op(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated cluster message"),
            WireError::Version(v) => write!(f, "cluster message version {v} (expected {VERSION})"),
            WireError::Kind(k) => write!(f, "unknown cluster target kind {k}"),
            WireError::Opcode(o) => write!(f, "cluster message opcode {o} (text 1 or binary 2)"),
            WireError::Utf8 => f.write_str("cluster message target is not UTF-8"),
            WireError::Op(o) => write!(f, "unknown cluster socket operation {o}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Encode a publication whose payload is `payload` (borrowed, so the sender
/// copies it once, here). A [`WireTarget::Op`] carries its operation in
/// place of `payload`.
pub fn encode(origin: u16, seq: u64, target: &WireTarget, binary: bool, payload: &[u8]) -> Vec<u8> {
    let op;
    let payload = match target {
        WireTarget::Op(_, o) => {
            op = o.encode();
            &op[..]
        }
        _ => payload,
    };
    let (kind, name, excluded): (u8, &[u8], &[SocketId]) = match target {
        WireTarget::Socket(_) | WireTarget::Op(..) => (0, &[], &[]),
        WireTarget::Client(c) => (1, c.as_bytes(), &[]),
        WireTarget::Group(g, ex) => (2, g.as_bytes(), ex),
        WireTarget::All => (3, &[], &[]),
        WireTarget::AllClients => (4, &[], &[]),
        WireTarget::Probe => (5, &[], &[]),
    };
    let kind = if matches!(target, WireTarget::Op(..)) {
        6
    } else {
        kind
    };
    let socket = match target {
        WireTarget::Socket(id) | WireTarget::Op(id, _) => Some(id.as_u64().to_be_bytes()),
        _ => None,
    };
    let name: &[u8] = socket.as_ref().map_or(name, |b| &b[..]);
    let name = &name[..name.len().min(usize::from(u16::MAX))];
    let excluded = &excluded[..excluded.len().min(u32::MAX as usize)];
    let mut out = Vec::with_capacity(19 + name.len() + 8 * excluded.len() + payload.len());
    out.push(VERSION);
    out.extend_from_slice(&origin.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(kind);
    out.push(if binary { 2 } else { 1 });
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&(excluded.len() as u32).to_be_bytes());
    for id in excluded {
        out.extend_from_slice(&id.as_u64().to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// A cursor over received bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.take(N)?.try_into().map_err(|_| WireError::Truncated)
    }
}

/// Decode a received message.
pub fn decode(bytes: &[u8]) -> Result<Publication, WireError> {
    let mut r = Reader(bytes);
    let [version] = r.array::<1>()?;
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let origin = u16::from_be_bytes(r.array()?);
    let seq = u64::from_be_bytes(r.array()?);
    let [kind] = r.array::<1>()?;
    let binary = match r.array::<1>()? {
        [1] => false,
        [2] => true,
        [o] => return Err(WireError::Opcode(o)),
    };
    let name_len = usize::from(u16::from_be_bytes(r.array()?));
    let name = r.take(name_len)?;
    let count = u32::from_be_bytes(r.array()?) as usize;
    if r.0.len() / 8 < count {
        return Err(WireError::Truncated);
    }
    let mut excluded = Vec::with_capacity(count);
    for _ in 0..count {
        excluded.push(SocketId::from_u64(u64::from_be_bytes(r.array()?)));
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| WireError::Utf8);
    let socket = || -> Result<SocketId, WireError> {
        let raw: [u8; 8] = name.try_into().map_err(|_| WireError::Truncated)?;
        Ok(SocketId::from_u64(u64::from_be_bytes(raw)))
    };
    let target = match kind {
        0 => WireTarget::Socket(socket()?),
        1 => WireTarget::Client(text(name)?),
        2 => WireTarget::Group(text(name)?, excluded),
        3 => WireTarget::All,
        4 => WireTarget::AllClients,
        5 => WireTarget::Probe,
        6 => {
            let op = SocketOp::decode(r.0)?;
            return Ok(Publication {
                origin,
                seq,
                target: WireTarget::Op(socket()?, op),
                binary,
                payload: Vec::new(),
            });
        }
        k => return Err(WireError::Kind(k)),
    };
    Ok(Publication {
        origin,
        seq,
        target,
        binary,
        payload: r.0.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_round_trips() {
        let targets = [
            WireTarget::Socket(SocketId::new(7, 3, 99)),
            WireTarget::Client("alice".into()),
            WireTarget::Group("room".into(), vec![SocketId::new(1, 0, 1)]),
            WireTarget::All,
            WireTarget::AllClients,
            WireTarget::Probe,
        ];
        for (i, target) in targets.into_iter().enumerate() {
            let bytes = encode(3, i as u64, &target, i % 2 == 0, b"hi");
            let p = decode(&bytes).unwrap();
            assert_eq!(
                p,
                Publication {
                    origin: 3,
                    seq: i as u64,
                    target,
                    binary: i % 2 == 0,
                    payload: b"hi".to_vec()
                }
            );
        }
    }

    #[test]
    fn socket_operations_round_trip() {
        let id = SocketId::new(4, 1, 2);
        for op in [
            SocketOp::Join("room".into()),
            SocketOp::Leave("r:1".into()),
            SocketOp::Close(4000, "bye".into()),
            SocketOp::Close(1000, String::new()),
        ] {
            let target = WireTarget::Op(id, op);
            let p = decode(&encode(2, 7, &target, false, b"ignored")).unwrap();
            assert_eq!((p.origin, p.seq, p.target), (2, 7, target));
            assert!(p.payload.is_empty());
        }
        let good = encode(
            2,
            7,
            &WireTarget::Op(id, SocketOp::Close(1000, "x".into())),
            false,
            b"",
        );
        let body = good.len() - 4; // op byte, code, reason
        assert_eq!(decode(&good[..body]), Err(WireError::Truncated));
        assert_eq!(decode(&good[..body + 2]), Err(WireError::Truncated));
        let mut bad = good.clone();
        bad[body] = 9;
        assert_eq!(decode(&bad), Err(WireError::Op(9)));
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 0xff;
        assert_eq!(decode(&bad), Err(WireError::Utf8));
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let good = encode(1, 1, &WireTarget::Group("g".into(), vec![]), false, b"x");
        for n in 0..19 {
            assert!(decode(&good[..n]).is_err(), "{n}");
        }
        let mut bad = good.clone();
        bad[0] = 9;
        assert_eq!(decode(&bad), Err(WireError::Version(9)));
        let mut bad = good.clone();
        bad[11] = 42;
        assert_eq!(decode(&bad), Err(WireError::Kind(42)));
        let mut bad = good.clone();
        bad[12] = 8;
        assert_eq!(decode(&bad), Err(WireError::Opcode(8)));
        // An excluded count far past the bytes: refused before allocating.
        let mut bad = good[..16].to_vec();
        bad.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&bad), Err(WireError::Truncated));
    }
}
