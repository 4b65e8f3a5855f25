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
//! An idle socket holds no queue at all (`None`, 8 bytes): the boxed state is
//! taken from a [`Pool`] on the first send and given back once flushed, with
//! its emptied buffers, so a steady stream of messages allocates nothing.

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
const MAX_IOV: usize = 64;

/// Owned buffers larger than this are not kept for reuse.
const SPARE_BUFFER_CAPACITY: usize = 256 * 1024;
/// Most spare buffers kept.
const SPARE_BUFFERS: usize = 4096;
/// Most bytes of capacity kept in spare buffers altogether.
const SPARE_BYTES: usize = 4 << 20;
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

/// The queue's state while it holds bytes.
#[derive(Debug, Default)]
struct Inner {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head: usize,
    /// Unwritten bytes in all chunks.
    len: usize,
    /// Capacity of the owned chunks.
    owned_capacity: usize,
}

/// Emptied buffers and queue states, lent to the next socket that sends.
/// Bounded: at most [`SPARE_BUFFERS`] buffers of at most 256 KiB and 4 MiB in
/// all, and [`SPARE_QUEUES`] queue states.
#[derive(Debug, Default)]
pub struct Pool {
    buffers: Vec<Vec<u8>>,
    buffer_bytes: usize,
    // Boxed on purpose: a queue holds its state as `Option<Box<Inner>>`, and
    // the box moves between a queue and the pool without reallocating.
    #[allow(clippy::vec_box)]
    queues: Vec<Box<Inner>>,
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

    fn recycle_queue(&mut self, inner: Box<Inner>) {
        if self.queues.len() < SPARE_QUEUES && inner.chunks.capacity() <= MAX_IOV {
            self.queues.push(inner);
        }
    }

    /// Bytes of capacity held by spare buffers.
    pub fn spare_bytes(&self) -> usize {
        self.buffer_bytes
    }
}

/// A socket's write queue. See the module docs.
#[derive(Debug, Default)]
pub struct OutQueue(Option<Box<Inner>>);

impl OutQueue {
    /// An empty queue (holds no allocation).
    pub fn new() -> OutQueue {
        OutQueue(None)
    }

    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.len)
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity of the owned chunks (what this queue alone keeps allocated).
    pub fn owned_capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.owned_capacity)
    }

    /// Whether the queue holds any state (for tests of idle memory).
    pub fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    fn inner(&mut self, pool: &mut Pool) -> &mut Inner {
        self.0
            .get_or_insert_with(|| pool.queues.pop().unwrap_or_default())
    }

    /// Append `bytes` (whole frames, or a whole HTTP response), copied into
    /// an owned chunk. Chunks always begin and end on a frame boundary.
    pub fn push_bytes(&mut self, bytes: &[u8], pool: &mut Pool) {
        self.push_parts(&[bytes], pool);
    }

    /// Append one frame given as header and payload, kept in one chunk.
    pub fn push_frame(&mut self, head: &[u8], payload: &[u8], pool: &mut Pool) {
        self.push_parts(&[head, payload], pool);
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
        self.push_parts(&[head, payload], pool);
        self.consume(written, pool);
    }

    fn push_parts(&mut self, parts: &[&[u8]], pool: &mut Pool) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return;
        }
        let inner = self.inner(pool);
        inner.len += total;
        if let Some(Chunk::Owned(last)) = inner.chunks.back_mut() {
            let fits = last.len() + total <= last.capacity();
            if fits || last.len() + total <= COALESCE_LIMIT {
                let before = last.capacity();
                for part in parts {
                    last.extend_from_slice(part);
                }
                inner.owned_capacity += last.capacity() - before;
                return;
            }
        }
        let mut buffer = pool.buffer();
        buffer.reserve(total);
        for part in parts {
            buffer.extend_from_slice(part);
        }
        inner.owned_capacity += buffer.capacity();
        inner.chunks.push_back(Chunk::Owned(buffer));
    }

    /// Drop every frame that has not started going out (a frame partly
    /// written stays, so the stream stays well-formed), e.g. before a last
    /// close frame. Returns the bytes dropped.
    pub fn drop_unstarted(&mut self, pool: &mut Pool) -> usize {
        let Some(inner) = self.0.as_deref_mut() else {
            return 0;
        };
        let keep = usize::from(inner.head > 0);
        let before = inner.len;
        while inner.chunks.len() > keep {
            match inner.chunks.pop_back() {
                Some(Chunk::Owned(buffer)) => {
                    inner.len -= buffer.len();
                    inner.owned_capacity -= buffer.capacity();
                    pool.recycle_buffer(buffer);
                }
                Some(Chunk::Shared(frame)) => inner.len -= frame.len(),
                None => break,
            }
        }
        let dropped = before - inner.len;
        if inner.len == 0 {
            inner.head = 0;
            self.release(pool);
        }
        dropped
    }

    /// Append a shared frame (no copy).
    pub fn push_shared(&mut self, frame: SharedFrame, pool: &mut Pool) {
        if frame.is_empty() {
            return;
        }
        let inner = self.inner(pool);
        inner.len += frame.len();
        inner.chunks.push_back(Chunk::Shared(frame));
    }

    /// Write as much as the writer takes in one vectored write. Returns the
    /// bytes written; `WouldBlock` and other errors are the writer's. Written
    /// chunks are dropped (owned ones recycled); an emptied queue gives its
    /// state back to `pool`.
    pub fn write_to<W: Write>(&mut self, writer: &mut W, pool: &mut Pool) -> io::Result<usize> {
        let Some(inner) = self.0.as_deref_mut() else {
            return Ok(0);
        };
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (i, chunk) in inner.chunks.iter().take(MAX_IOV).enumerate() {
            let bytes = chunk.bytes();
            slices[i] = IoSlice::new(if i == 0 { &bytes[inner.head..] } else { bytes });
            count += 1;
        }
        let written = if count == 0 {
            0
        } else {
            writer.write_vectored(&slices[..count])?
        };
        self.consume(written, pool);
        Ok(written)
    }

    /// Forget the first `n` unwritten bytes (they were written).
    fn consume(&mut self, mut n: usize, pool: &mut Pool) {
        let Some(inner) = self.0.as_deref_mut() else {
            return;
        };
        inner.len -= n.min(inner.len);
        while n > 0 {
            let Some(front) = inner.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - inner.head;
            if n < left {
                inner.head += n;
                break;
            }
            n -= left;
            inner.head = 0;
            if let Some(Chunk::Owned(buffer)) = inner.chunks.pop_front() {
                inner.owned_capacity -= buffer.capacity();
                pool.recycle_buffer(buffer);
            }
        }
        if inner.len == 0 {
            self.release(pool);
        }
    }

    /// Drop everything queued and give the state back to `pool`.
    pub fn clear(&mut self, pool: &mut Pool) {
        if let Some(inner) = self.0.as_deref_mut() {
            for chunk in inner.chunks.drain(..) {
                if let Chunk::Owned(buffer) = chunk {
                    pool.recycle_buffer(buffer);
                }
            }
            inner.head = 0;
            inner.len = 0;
            inner.owned_capacity = 0;
        }
        self.release(pool);
    }

    fn release(&mut self, pool: &mut Pool) {
        if let Some(mut inner) = self.0.take() {
            debug_assert_eq!(inner.len, 0);
            for chunk in inner.chunks.drain(..) {
                if let Chunk::Owned(buffer) = chunk {
                    pool.recycle_buffer(buffer);
                }
            }
            inner.head = 0;
            inner.owned_capacity = 0;
            pool.recycle_queue(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes, then says `WouldBlock`.
    struct Kernel {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Kernel {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
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
            taken: Vec::new(),
            room: 5,
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
            taken: Vec::new(),
            room: usize::MAX,
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
        assert_eq!(q.0.as_ref().map(|i| i.chunks.len()), Some(1));
        let capacity = q.owned_capacity();
        assert!(capacity >= 1000);
        let mut k = Kernel {
            taken: Vec::new(),
            room: usize::MAX,
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
        assert_eq!(q.0.as_ref().map(|i| i.chunks.len()), Some(2));
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
            taken: Vec::new(),
            room: 40,
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

    #[test]
    fn a_started_frame_keeps_its_written_prefix_out() {
        let mut pool = Pool::new();
        let mut q = OutQueue::new();
        q.push_started_frame(b"HD", b"payload", 4, &mut pool);
        assert_eq!(q.len(), 5);
        q.push_bytes(b"next", &mut pool);
        let mut k = Kernel {
            taken: Vec::new(),
            room: 100,
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
            taken: Vec::new(),
            room: usize::MAX,
        };
        assert_eq!(q.write_to(&mut k, &mut pool).unwrap(), MAX_IOV * 2);
        assert_eq!(q.write_to(&mut k, &mut pool).unwrap(), MAX_IOV * 2);
        assert_eq!(q.write_to(&mut k, &mut pool).unwrap(), 6);
        assert!(q.is_empty());
    }
}
