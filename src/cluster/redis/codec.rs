//! RESP2 on the wire: commands encoded and replies decoded by the
//! `redis-protocol` crate, behind a framer of ours that bounds what Redis can
//! make us hold.
//!
//! The framer walks a reply's structure without recursion to find where it
//! ends, refusing nesting deeper than `max_depth` (the crate's decoder
//! recurses once per level, so an unbounded `*1\r\n*1\r\n...` would overflow
//! the bus thread's stack) and replies longer than `max_bytes`. Only a
//! complete frame is handed to the crate, so a large reply arriving in many
//! reads is decoded once, not once per read.

use std::fmt;

use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::BorrowedFrame;

use super::reply::Reply;

/// Why bytes from Redis are not an acceptable RESP2 reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// A frame starts with a byte that is no RESP2 type (the byte).
    InvalidType(u8),
    /// A bulk string or array length is not a number, or below -1.
    InvalidLength,
    /// Arrays nested deeper than the decoder allows.
    TooDeep,
    /// A reply longer than `RedisOptions::max_reply_bytes`.
    TooLarge,
    /// The frame's bytes are otherwise malformed (bad integer, missing CRLF
    /// after a bulk string, an error line that is not UTF-8).
    Malformed,
    /// A reply that no command asked for.
    Unsolicited,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::InvalidType(b) => write!(f, "unknown RESP2 type byte 0x{b:02x}"),
            CodecError::InvalidLength => f.write_str("invalid RESP2 length"),
            CodecError::TooDeep => f.write_str("RESP2 arrays nested too deep"),
            CodecError::TooLarge => f.write_str("RESP2 reply larger than max_reply_bytes"),
            CodecError::Malformed => f.write_str("malformed RESP2 frame"),
            CodecError::Unsolicited => f.write_str("a reply that no command asked for"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Encodes a command (an array of bulk strings) and appends it to `out`.
pub(crate) fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    let parts: Vec<BorrowedFrame<'_>> = args
        .iter()
        .map(|a| BorrowedFrame::BulkString(a.as_ref()))
        .collect();
    let frame = BorrowedFrame::Array(&parts);
    let start = out.len();
    out.resize(start + frame.encode_len(false), 0);
    // encode_len sized the buffer exactly, so this cannot fail; should it,
    // nothing half-written is left behind.
    match out
        .get_mut(start..)
        .map(|buf| encode_borrowed(buf, &frame, false))
    {
        Some(Ok(n)) => out.truncate(start + n),
        _ => out.truncate(start),
    }
}

/// Where the framer stands on the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A whole frame of this many bytes.
    Complete(usize),
    /// Not enough bytes; nothing can finish before this many are there.
    Incomplete(usize),
}

fn parse_len(line: &[u8]) -> Result<i64, CodecError> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CodecError::InvalidLength);
    }
    let n = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    match (neg, n) {
        (false, n) => Ok(n),
        (true, 1) => Ok(-1),
        (true, _) => Err(CodecError::InvalidLength),
    }
}

fn scan(buf: &[u8], max_depth: usize, max_bytes: usize) -> Result<Scan, CodecError> {
    // Elements still expected by each open array, innermost last.
    let mut open: Vec<i64> = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(&kind) = buf.get(pos) else {
            return Ok(Scan::Incomplete(pos + 1));
        };
        let body = pos + 1;
        let Some(cr) = buf
            .get(body..)
            .and_then(|rest| rest.windows(2).position(|w| w == b"\r\n"))
        else {
            return Ok(Scan::Incomplete(buf.len() + 1));
        };
        let line = buf.get(body..body + cr).ok_or(CodecError::Malformed)?;
        pos = body + cr + 2;
        match kind {
            b'+' | b'-' | b':' => {}
            b'$' => {
                let n = parse_len(line)?;
                if n >= 0 {
                    let n = usize::try_from(n).map_err(|_| CodecError::TooLarge)?;
                    if n > max_bytes {
                        return Err(CodecError::TooLarge);
                    }
                    pos += n + 2;
                    match buf.get(pos - 2..pos) {
                        None => return Ok(Scan::Incomplete(pos)),
                        Some(b"\r\n") => {}
                        Some(_) => return Err(CodecError::Malformed),
                    }
                }
            }
            b'*' => {
                let n = parse_len(line)?;
                if n > 0 {
                    if open.len() >= max_depth {
                        return Err(CodecError::TooDeep);
                    }
                    open.push(n);
                    continue;
                }
            }
            other => return Err(CodecError::InvalidType(other)),
        }
        // One element finished: count it off its array, and close every
        // array it completes.
        loop {
            match open.last_mut() {
                None => return Ok(Scan::Complete(pos)),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

/// Reassembles replies from the bytes read off one connection.
#[derive(Debug)]
pub(crate) struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded.
    start: usize,
    /// The framer needs `start + need` bytes before it can say more.
    need: usize,
    max_depth: usize,
    max_bytes: usize,
}

impl Decoder {
    pub(crate) fn new(max_depth: usize, max_bytes: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            need: 1,
            max_depth,
            max_bytes,
        }
    }

    /// Forgets everything buffered (a new connection).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.need = 1;
    }

    /// Appends bytes read from the socket.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed. An
    /// error leaves the connection unusable.
    pub(crate) fn next_reply(&mut self) -> Result<Option<Reply>, CodecError> {
        let avail = self.buf.get(self.start..).unwrap_or_default();
        if avail.len() < self.need {
            return Ok(None);
        }
        match scan(avail, self.max_depth, self.max_bytes)? {
            Scan::Incomplete(need) => {
                if need > self.max_bytes {
                    return Err(CodecError::TooLarge);
                }
                self.need = need;
                Ok(None)
            }
            Scan::Complete(len) => {
                let bytes = avail.get(..len).ok_or(CodecError::Malformed)?;
                let frame = match decode(bytes) {
                    Ok(Some((frame, used))) if used == len => frame,
                    _ => return Err(CodecError::Malformed),
                };
                self.start += len;
                self.need = 1;
                Ok(Some(Reply::from(frame)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(8, 1 << 20)
    }

    fn all(d: &mut Decoder) -> Vec<Reply> {
        let mut out = Vec::new();
        while let Some(r) = d.next_reply().expect("valid") {
            out.push(r);
        }
        out
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(&["SET", "k", ""], &mut out);
        encode_command(&[b"GET".to_vec(), b"k".to_vec()], &mut out);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }

    #[test]
    fn decodes_every_type_in_order() {
        let wire = b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n:1\r\n*1\r\n$1\r\nx\r\n";
        let mut d = decoder();
        d.extend(wire);
        assert_eq!(
            all(&mut d),
            vec![
                Reply::Status(b"OK".to_vec()),
                Reply::Error("ERR no".into()),
                Reply::Integer(42),
                Reply::Bulk(b"abc".to_vec()),
                Reply::Nil,
                Reply::Nil,
                Reply::Array(vec![]),
                Reply::Array(vec![
                    Reply::Integer(1),
                    Reply::Array(vec![Reply::Bulk(b"x".to_vec())])
                ]),
            ]
        );
    }

    #[test]
    fn any_chunking_gives_the_same_replies() {
        let wire: &[u8] = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhe\r\nl\r\n:7\r\n+PONG\r\n";
        let mut whole = decoder();
        whole.extend(wire);
        let want = all(&mut whole);
        assert_eq!(want.len(), 3);
        for chunk in 1..wire.len() {
            let mut d = decoder();
            let mut got = Vec::new();
            for part in wire.chunks(chunk) {
                d.extend(part);
                got.extend(all(&mut d));
            }
            assert_eq!(got, want, "chunk size {chunk}");
        }
    }

    #[test]
    fn bulk_bytes_may_hold_crlf_and_type_bytes() {
        let mut d = decoder();
        d.extend(b"$6\r\n*1\r\n-\r\r\n");
        assert_eq!(all(&mut d), vec![Reply::Bulk(b"*1\r\n-\r".to_vec())]);
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let cases: [(&[u8], CodecError); 8] = [
            (b"!x\r\n", CodecError::InvalidType(b'!')),
            (b"$x\r\n", CodecError::InvalidLength),
            (b"$-2\r\n", CodecError::InvalidLength),
            (b"*-5\r\n", CodecError::InvalidLength),
            (b"$99999999999999999999\r\n", CodecError::InvalidLength),
            (b"$2000000\r\n", CodecError::TooLarge),
            (b"$1\r\nabXY", CodecError::Malformed),
            (b":12a\r\n", CodecError::Malformed),
        ];
        for (wire, want) in cases {
            let mut d = decoder();
            d.extend(wire);
            assert_eq!(
                d.next_reply(),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let mut d = decoder();
        d.extend(&b"*1\r\n".repeat(100_000));
        assert_eq!(d.next_reply(), Err(CodecError::TooDeep));
        // Eight levels are fine.
        let mut d = decoder();
        d.extend(&b"*1\r\n".repeat(8));
        d.extend(b":1\r\n");
        assert!(matches!(d.next_reply(), Ok(Some(Reply::Array(_)))));
    }

    #[test]
    fn a_line_without_end_is_bounded() {
        let mut d = Decoder::new(8, 64);
        d.extend(b"+");
        d.extend(&[b'a'; 100]);
        assert_eq!(d.next_reply(), Err(CodecError::TooLarge));
    }

    #[test]
    fn a_partial_bulk_is_not_rescanned() {
        let mut d = decoder();
        d.extend(b"$10\r\nabc");
        assert_eq!(d.next_reply(), Ok(None));
        assert_eq!(d.need, 17);
        d.extend(b"defghij\r\n");
        assert_eq!(
            d.next_reply(),
            Ok(Some(Reply::Bulk(b"abcdefghij".to_vec())))
        );
        assert_eq!(d.next_reply(), Ok(None));
    }
}
