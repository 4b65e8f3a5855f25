//! A connection's write queue: what the kernel has not taken yet.
//!
//! The queue is a list of chunks, written with one `writev` per flush:
//!
//! - **owned** chunks hold bytes made for this socket alone (a reply, an HTTP
//!   response, a close frame); small ones are appended to the last owned chunk,
//!   so a burst of small messages is one buffer, not one allocation each;
//! - **shared** chunks are [`SharedFrame`]s: a fan-out encodes its frame once
//!   and every recipient's queue holds a reference to the same bytes. A
//!   broadcast of 100 KB to 1,000 sockets holds 100 KB, not 100 MB.
//!
//! Point-to-point traffic takes a fast path: the queue is then one buffer
//! with a written prefix, written with one `write`. So does the usual fan-out
//! delivery, a shared frame queued on an empty queue: it is held in the
//! queue itself (no chunk list) and written with one `write` (`send`, not
//! `writev`). An idle socket holds no
//! buffer: emptied buffers and chunk lists go back to a [`Pool`] and are
//! lent to the next socket that sends, so a steady stream of messages
//! allocates nothing.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

use crate::memory::Gauge;

/// Small writes are appended to the last owned chunk while it stays under
/// this size; past it a new chunk starts (so a chunk, once written, is freed
/// or recycled as a whole).
const COALESCE_LIMIT: usize = 64 * 1024;
/// Most chunks handed to one `writev` (Linux allows 1024; beyond a few dozen
/// the kernel's buffer is full long before the list is).
const MAX_IOV: usize = 32;

/// Owned buffers larger than this are not kept for reuse.
const SPARE_BUFFER_CAPACITY: usize = 256 * 1024;
/// Most spare buffers kept.
const SPARE_BUFFERS: usize = 4096;
/// Most bytes of capacity kept in spare buffers altogether.
const SPARE_BYTES: usize = 4 << 20;
/// Queue states whose chunk list grew past this are not kept for reuse.
const SPARE_QUEUE_CHUNKS: usize = 64;
/// Most spare queue states kept.
const SPARE_QUEUES: usize = 4096;

/// A frame encoded once and shared by the queues of every recipient.
///
/// Its bytes are counted once in the [`Gauge`] it was made with, from
/// creation until the last clone is dropped.
#[derive(Clone, Debug)]
pub struct SharedFrame(Arc<FrameBytes>);

#[derive(Debug)]
struct FrameBytes {
    bytes: Box<[u8]>,
    gauge: Gauge,
}

impl Drop for FrameBytes {
    fn drop(&mut self) {
        self.gauge.sub(self.bytes.len());
    }
}

impl SharedFrame {
    /// Share `bytes` (a whole encoded frame), counting them in `gauge`.
    pub fn new(bytes: Vec<u8>, gauge: &Gauge) -> SharedFrame {
        let bytes = bytes.into_boxed_slice();
        gauge.add(bytes.len());
        SharedFrame(Arc::new(FrameBytes {
            bytes,
            gauge: gauge.clone(),
        }))
    }

    /// The encoded frame.
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether it is empty (never, for a frame).
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }
}

#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(SharedFrame),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(f) => f.bytes(),
        }
    }
}

/// Chunks queued before the tail: shared frames, and owned chunks that
/// filled up or came before a shared frame. Exists only while it holds any.
#[derive(Debug, Default)]
struct More {
    chunks: VecDeque<Chunk>,
    /// Bytes in `chunks` (the written prefix of the front one included).
    bytes: usize,
    /// Capacity of the owned chunks in `chunks`.
    owned_capacity: usize,
}

/// Emptied buffers and chunk lists, lent to the next socket that sends.
/// Bounded: at most 4,096 buffers of at most 256 KiB and 4 MiB in all, and
/// 4,096 chunk lists.
#[derive(Debug, Default)]
pub struct Pool {
    buffers: Vec<Vec<u8>>,
    buffer_bytes: usize,
    // Boxed on purpose: a queue holds its chunk list as `Option<Box<More>>`,
    // and the box moves between a queue and the pool without reallocating.
    #[allow(clippy::vec_box)]
    lists: Vec<Box<More>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        Pool::default()
    }

    fn buffer(&mut self) -> Vec<u8> {
        match self.buffers.pop() {
            Some(buffer) => {
                self.buffer_bytes -= buffer.capacity();
                buffer
            }
            None => Vec::new(),
        }
    }

    fn recycle_buffer(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity > 0
            && capacity <= SPARE_BUFFER_CAPACITY
            && self.buffers.len() < SPARE_BUFFERS
            && self.buffer_bytes + capacity <= SPARE_BYTES
        {
            buffer.clear();
            self.buffer_bytes += capacity;
            self.buffers.push(buffer);
        }
    }

    fn list(&mut self) -> Box<More> {
        self.lists.pop().unwrap_or_default()
    }

    fn recycle_list(&mut self, mut more: Box<More>) {
        while let Some(chunk) = more.chunks.pop_front() {
            if let Chunk::Owned(buffer) = chunk {
                self.recycle_buffer(buffer);
            }
        }
        more.bytes = 0;
        more.owned_capacity = 0;
        if self.lists.len() < SPARE_QUEUES && more.chunks.capacity() <= SPARE_QUEUE_CHUNKS {
            self.lists.push(more);
        }
    }

    /// Bytes of capacity held by spare buffers.
    pub fn spare_bytes(&self) -> usize {
        self.buffer_bytes
    }
}

/// A socket's write queue. See the module docs.
///
/// The queue is `first`, then `more`'s chunks, then `tail`. Point-to-point
/// traffic (replies, pongs, HTTP responses) only ever uses `tail`, a plain
/// buffer with a written prefix: no chunk list, no extra allocation. A fan-out
/// frame queued on an empty queue is held in `first`; other fan-out frames
/// go to `more`.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// A shared frame that was queued on an empty queue (a fan-out delivery
    /// to an idle socket, the common case): before everything else.
    first: Option<SharedFrame>,
    /// The last owned chunk, where small sends are appended; the whole
    /// queue while `more` is `None`.
    tail: Vec<u8>,
    /// Bytes of the front chunk already written: of `first` if it is set,
    /// else of `more`'s front chunk, else of `tail`.
    head: usize,
    /// Chunks before `tail`.
    more: Option<Box<More>>,
}

impl OutQueue {
    /// An empty queue (holds no allocation).
    pub fn new() -> OutQueue {
        OutQueue::default()
    }

    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.first.as_ref().map_or(0, SharedFrame::len)
            + self.more.as_ref().map_or(0, |m| m.bytes)
            + self.tail.len()
            - self.head
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity of the owned chunks (what this queue alone keeps allocated).
    pub fn owned_capacity(&self) -> usize {
        self.tail.capacity() + self.more.as_ref().map_or(0, |m| m.owned_capacity)
    }

    /// Whether the queue holds any allocation (for tests of idle memory).
    pub fn is_allocated(&self) -> bool {
        self.tail.capacity() > 0 || self.more.is_some() || self.first.is_some()
    }

    /// Append `bytes` (whole frames, or a whole HTTP response), copied into
    /// an owned chunk. Chunks always begin and end on a frame boundary.
    pub fn push_bytes(&mut self, bytes: &[u8], pool: &mut Pool) {
        self.push_frame(bytes, &[], pool);
    }

    /// Append one frame given as header and payload, kept in one chunk.
    pub fn push_frame(&mut self, head: &[u8], payload: &[u8], pool: &mut Pool) {
        let total = head.len() + payload.len();
        if total == 0 {
            return;
        }
        if self.tail.capacity() - self.tail.len() < total {
            if !self.tail.is_empty() && self.tail.len() + total > COALESCE_LIMIT {
                self.retire_tail(pool);
            }
            if self.tail.capacity() == 0 {
                self.tail = pool.buffer();
            }
            self.tail.reserve(total);
        }
        self.tail.extend_from_slice(head);
        self.tail.extend_from_slice(payload);
    }

    /// Queue a frame of which the first `written` bytes already went out (a
    /// direct write to an idle socket). Only for an empty queue.
    pub fn push_started_frame(
        &mut self,
        head: &[u8],
        payload: &[u8],
        written: usize,
        pool: &mut Pool,
    ) {
        debug_assert!(self.is_empty());
        self.push_frame(head, payload, pool);
        self.head = written;
    }

    /// Move the tail into the chunk list (it keeps its written prefix, if it
    /// is the front chunk) and start an empty tail.
    fn retire_tail(&mut self, pool: &mut Pool) {
        let tail = std::mem::take(&mut self.tail);
        let more = self.more.get_or_insert_with(|| pool.list());
        more.bytes += tail.len();
        more.owned_capacity += tail.capacity();
        more.chunks.push_back(Chunk::Owned(tail));
    }

    /// Append a shared frame (no copy).
    pub fn push_shared(&mut self, frame: SharedFrame, pool: &mut Pool) {
        self.push_shared_from(frame, 0, pool);
    }

    /// Append a shared frame of which the first `written` bytes already went
    /// out (a direct write; only then, to an empty queue, may `written` be
    /// more than 0).
    pub fn push_shared_from(&mut self, frame: SharedFrame, written: usize, pool: &mut Pool) {
        if frame.is_empty() {
            return;
        }
        debug_assert!(written == 0 || self.is_empty());
        debug_assert!(written < frame.len());
        if self.first.is_none() && self.more.is_none() && self.tail.is_empty() {
            // An empty queue (an empty tail has no written prefix).
            self.head = written;
            self.first = Some(frame);
            return;
        }
        if !self.tail.is_empty() {
            self.retire_tail(pool);
        }
        let more = self.more.get_or_insert_with(|| pool.list());
        more.bytes += frame.len();
        more.chunks.push_back(Chunk::Shared(frame));
    }

    /// Drop every frame that has not started going out (a frame partly
    /// written stays, so the stream stays well-formed), e.g. before a last
    /// close frame. Returns the bytes dropped.
    pub fn drop_unstarted(&mut self, pool: &mut Pool) -> usize {
        let before = self.len();
        if self.first.is_some() {
            // `first` is the front: it stays if it started, and all after it goes.
            if self.head == 0 {
                self.first = None;
            }
            if let Some(more) = self.more.take() {
                pool.recycle_list(more);
            }
            self.tail.clear();
            let dropped = before - self.len();
            if self.is_empty() {
                self.clear(pool);
            }
            return dropped;
        }
        match self.more.as_deref_mut() {
            None if self.head > 0 => {} // the tail is the partly written chunk
            None => self.tail.clear(),
            Some(more) => {
                let keep = usize::from(self.head > 0);
                while more.chunks.len() > keep {
                    match more.chunks.pop_back() {
                        Some(Chunk::Owned(buffer)) => {
                            more.bytes -= buffer.len();
                            more.owned_capacity -= buffer.capacity();
                            pool.recycle_buffer(buffer);
                        }
                        Some(Chunk::Shared(frame)) => more.bytes -= frame.len(),
                        None => break,
                    }
                }
                self.tail.clear();
                if more.chunks.is_empty() {
                    self.head = 0;
                    if let Some(more) = self.more.take() {
                        pool.recycle_list(more);
                    }
                }
            }
        }
        let dropped = before - self.len();
        if self.is_empty() {
            self.clear(pool);
        }
        dropped
    }

    /// Write as much as the writer takes: one `write` for a plain buffer,
    /// vectored writes over the chunks otherwise, while the writer takes all
    /// it is offered. Returns the bytes written; `WouldBlock` (before any
    /// byte went) and other errors are the writer's. Written chunks are
    /// dropped (owned ones recycled); an emptied queue gives its buffers back
    /// to `pool`.
    pub fn write_to<W: Write>(&mut self, writer: &mut W, pool: &mut Pool) -> io::Result<usize> {
        let mut total = 0;
        loop {
            if self.is_empty() {
                self.clear(pool);
                return Ok(total);
            }
            // The common cases: one buffer (replies, a burst of small
            // messages) or one shared frame (a fan-out delivery).
            let single = match (&self.first, &self.more) {
                (None, None) => Some(&self.tail[self.head..]),
                (Some(first), None) if self.tail.is_empty() => Some(&first.bytes()[self.head..]),
                _ => None,
            };
            let (offered, result) = match single {
                Some(bytes) => (bytes.len(), writer.write(bytes)),
                None => {
                    let mut slices = [IoSlice::new(&[]); MAX_IOV];
                    let mut count = 0;
                    let mut offered = 0;
                    let pieces = self
                        .first
                        .iter()
                        .map(SharedFrame::bytes)
                        .chain(
                            self.more
                                .iter()
                                .flat_map(|m| m.chunks.iter().map(Chunk::bytes)),
                        )
                        .chain(std::iter::once(&self.tail[..]).filter(|t| !t.is_empty()));
                    for (slot, bytes) in slices.iter_mut().zip(pieces) {
                        let bytes = if count == 0 {
                            &bytes[self.head..]
                        } else {
                            bytes
                        };
                        offered += bytes.len();
                        *slot = IoSlice::new(bytes);
                        count += 1;
                    }
                    (offered, writer.write_vectored(&slices[..count]))
                }
            };
            let written = match result {
                Ok(n) => n,
                Err(e) if total > 0 && e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) => return Err(e),
            };
            self.consume(written, pool);
            total += written;
            // Go on only while the kernel takes all it is offered.
            if written < offered || written == 0 {
                if self.is_empty() {
                    self.clear(pool);
                }
                return Ok(total);
            }
        }
    }

    /// Forget the first `n` unwritten bytes (they were written).
    fn consume(&mut self, mut n: usize, pool: &mut Pool) {
        if let Some(first) = &self.first {
            let left = first.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            self.first = None;
        }
        if let Some(more) = self.more.as_deref_mut() {
            while n > 0 {
                let Some(front) = more.chunks.front() else {
                    break;
                };
                let left = front.bytes().len() - self.head;
                if n < left {
                    self.head += n;
                    return;
                }
                n -= left;
                self.head = 0;
                more.bytes -= front.bytes().len();
                if let Some(Chunk::Owned(buffer)) = more.chunks.pop_front() {
                    more.owned_capacity -= buffer.capacity();
                    pool.recycle_buffer(buffer);
                }
            }
            if more.chunks.is_empty() {
                if let Some(more) = self.more.take() {
                    pool.recycle_list(more);
                }
            }
        }
        self.head += n;
        debug_assert!(self.head <= self.tail.len());
    }

    /// Drop everything queued and give the buffers back to `pool`.
    pub fn clear(&mut self, pool: &mut Pool) {
        self.first = None;
        if let Some(more) = self.more.take() {
            pool.recycle_list(more);
        }
        pool.recycle_buffer(std::mem::take(&mut self.tail));
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes, then says `WouldBlock`.
    #[derive(Default)]
    struct Kernel {
        taken: Vec<u8>,
        room: usize,
        writes: usize,
        /// Of `writes`, those that were vectored.
        vectored: usize,
    }

    impl Write for Kernel {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let result = self.write_vectored(&[IoSlice::new(buf)]);
            self.vectored -= 1;
            result
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.writes += 1;
            self.vectored += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.room - n);
                self.taken.extend_from_slice(&buf[..take]);
                n += take;
                if n == self.room {
                    break;
                }
            }
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_come_out_in_order_across_partial_writes() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        let shared = SharedFrame::new(b"SHARED".to_vec(), &gauge);
        q.push_bytes(b"ab", &mut pool);
        q.push_bytes(b"cd", &mut pool);
        q.push_shared(shared.clone(), &mut pool);
        q.push_bytes(b"ef", &mut pool);
        assert_eq!(q.len(), 12);
        let mut k = Kernel {
            room: 5,
            ..Kernel::default()
        };
        assert_eq!(q.write_to(&mut k, &mut pool).unwrap(), 5);
        assert_eq!(q.len(), 7);
        let e = q.write_to(&mut k, &mut pool).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        k.room = 100;
        assert_eq!(q.write_to(&mut k, &mut pool).unwrap(), 7);
        assert_eq!(k.taken, b"abcdSHAREDef");
        assert!(q.is_empty());
        assert!(!q.is_allocated(), "an emptied queue holds nothing");
        assert_eq!(q.owned_capacity(), 0);
    }

    #[test]
    fn a_shared_frame_is_counted_once_until_the_last_queue_lets_go() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let frame = SharedFrame::new(vec![7; 1000], &gauge);
        let mut queues: Vec<OutQueue> = (0..100).map(|_| OutQueue::new()).collect();
        for q in &mut queues {
            q.push_shared(frame.clone(), &mut pool);
        }
        drop(frame);
        assert_eq!(gauge.total(), 1000);
        for q in &mut queues[..99] {
            q.clear(&mut pool);
        }
        assert_eq!(gauge.total(), 1000);
        let mut k = Kernel {
            room: usize::MAX,
            ..Kernel::default()
        };
        queues[99].write_to(&mut k, &mut pool).unwrap();
        assert_eq!(gauge.total(), 0);
    }

    #[test]
    fn small_writes_share_one_buffer_and_buffers_are_reused() {
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        for _ in 0..100 {
            q.push_bytes(&[1; 10], &mut pool);
        }
        assert!(q.more.is_none(), "one plain buffer");
        let capacity = q.owned_capacity();
        assert!(capacity >= 1000);
        let mut k = Kernel {
            room: usize::MAX,
            ..Kernel::default()
        };
        q.write_to(&mut k, &mut pool).unwrap();
        assert_eq!(pool.spare_bytes(), capacity);
        q.push_bytes(b"x", &mut pool);
        assert_eq!(pool.spare_bytes(), 0, "the spare buffer was lent again");
    }

    #[test]
    fn large_writes_start_new_chunks() {
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        q.push_bytes(&vec![0; COALESCE_LIMIT], &mut pool);
        q.push_bytes(&[1; 10], &mut pool);
        assert_eq!(
            q.more.as_ref().map(|m| m.chunks.len()),
            Some(1),
            "a retired chunk, then the tail"
        );
        assert_eq!(q.len(), COALESCE_LIMIT + 10);
    }

    #[test]
    fn only_unstarted_frames_are_dropped() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        let frame = SharedFrame::new(vec![9; 100], &gauge);
        q.push_shared(frame.clone(), &mut pool);
        q.push_bytes(&[1; 10], &mut pool);
        q.push_shared(frame, &mut pool);
        let mut k = Kernel {
            room: 40,
            ..Kernel::default()
        };
        q.write_to(&mut k, &mut pool).unwrap();
        // 60 bytes of the first frame remain; the rest had not started.
        assert_eq!(q.drop_unstarted(&mut pool), 110);
        assert_eq!(q.len(), 60);
        q.push_bytes(b"CLOSE", &mut pool);
        k.room = 1000;
        q.write_to(&mut k, &mut pool).unwrap();
        assert_eq!(&k.taken[..100], &[9; 100][..]);
        assert_eq!(&k.taken[100..], b"CLOSE");
        // Nothing started: everything goes.
        q.push_bytes(&[1; 10], &mut pool);
        assert_eq!(q.drop_unstarted(&mut pool), 10);
        assert!(!q.is_allocated());
        assert_eq!(gauge.total(), 0);
    }

    /// Random pushes of every kind between random partial writes: the bytes
    /// come out as pushed, and the counts hold at every step.
    #[test]
    fn any_mix_of_pushes_and_partial_writes_keeps_order() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut q = OutQueue::new();
            let mut k = Kernel::default();
            let mut expected = Vec::new();
            let mut byte = 0u8;
            for _ in 0..40 {
                let len = match next(4) {
                    0 => 1 + next(20) as usize,
                    1 => 1 + next(3000) as usize,
                    2 => COALESCE_LIMIT / 2 + next(1000) as usize,
                    _ => 1 + next(200) as usize,
                };
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        byte = byte.wrapping_add(1);
                        byte
                    })
                    .collect();
                expected.extend_from_slice(&bytes);
                if next(3) == 0 {
                    q.push_shared(SharedFrame::new(bytes, &gauge), &mut pool);
                } else {
                    q.push_bytes(&bytes, &mut pool);
                }
                assert_eq!(q.len(), expected.len() - k.taken.len());
                if next(2) == 0 {
                    k.room = next(70_000) as usize;
                    let _ = q.write_to(&mut k, &mut pool);
                    assert_eq!(q.len(), expected.len() - k.taken.len());
                }
            }
            k.room = usize::MAX;
            q.write_to(&mut k, &mut pool).unwrap();
            assert_eq!(k.taken, expected);
            assert!(!q.is_allocated());
        }
        assert_eq!(gauge.total(), 0);
    }

    #[test]
    fn a_shared_frame_on_an_empty_queue_is_one_plain_write() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        q.push_shared(SharedFrame::new(b"FRAME".to_vec(), &gauge), &mut pool);
        assert!(q.more.is_none(), "no chunk list for a lone shared frame");
        assert_eq!(q.owned_capacity(), 0);
        let mut k = Kernel {
            room: 2,
            ..Kernel::default()
        };
        assert_eq!(q.write_to(&mut k, &mut pool).unwrap(), 2);
        q.push_bytes(b"+tail", &mut pool);
        k.room = 100;
        q.write_to(&mut k, &mut pool).unwrap();
        assert_eq!(k.taken, b"FRAME+tail");
        assert_eq!(
            (k.writes, k.vectored),
            (2, 1),
            "plain, then frame and tail in one writev"
        );
        assert!(!q.is_allocated());
    }

    #[test]
    fn a_started_first_frame_stays_and_the_rest_is_dropped() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        q.push_shared(SharedFrame::new(vec![1; 10], &gauge), &mut pool);
        q.push_shared(SharedFrame::new(vec![2; 10], &gauge), &mut pool);
        q.push_bytes(&[3; 10], &mut pool);
        let mut k = Kernel {
            room: 4,
            ..Kernel::default()
        };
        q.write_to(&mut k, &mut pool).unwrap();
        assert_eq!(q.drop_unstarted(&mut pool), 20);
        assert_eq!(gauge.total(), 10, "the started frame is still held");
        q.push_bytes(b"CLOSE", &mut pool);
        k.room = 100;
        q.write_to(&mut k, &mut pool).unwrap();
        assert_eq!(&k.taken[..10], &[1; 10][..]);
        assert_eq!(&k.taken[10..], b"CLOSE");
        assert_eq!(gauge.total(), 0);
        // Not started: it goes too.
        q.push_shared(SharedFrame::new(vec![4; 10], &gauge), &mut pool);
        assert_eq!(q.drop_unstarted(&mut pool), 10);
        assert!(!q.is_allocated());
        assert_eq!(gauge.total(), 0);
    }

    #[test]
    fn a_started_frame_keeps_its_written_prefix_out() {
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        q.push_started_frame(b"HD", b"payload", 4, &mut pool);
        assert_eq!(q.len(), 5);
        q.push_bytes(b"next", &mut pool);
        let mut k = Kernel {
            room: 100,
            ..Kernel::default()
        };
        q.write_to(&mut k, &mut pool).unwrap();
        assert_eq!(k.taken, b"yloadnext");
    }

    #[test]
    fn more_chunks_than_one_writev_takes() {
        let gauge = Gauge::new();
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        let frame = SharedFrame::new(b"xy".to_vec(), &gauge);
        for _ in 0..(MAX_IOV * 2 + 3) {
            q.push_shared(frame.clone(), &mut pool);
        }
        let mut k = Kernel {
            room: usize::MAX,
            ..Kernel::default()
        };
        // Several vectored writes in one call, while the kernel takes them.
        assert_eq!(
            q.write_to(&mut k, &mut pool).unwrap(),
            (MAX_IOV * 2 + 3) * 2
        );
        assert!(q.is_empty());
        assert_eq!(k.writes, 3);
    }
}
