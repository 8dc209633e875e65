//! Target `frame_stream`: a connection's byte stream read by the broker's own frame reader,
//! [`fjord_broker::server::connection::read_frame`], each frame then parsed as a request.
//!
//! Input layout: `limit u8 | chunking u8 | stream`. `limit` below 128 sets
//! `socket.request.max.bytes` to `4 × limit`, otherwise to Kafka's default (100 MiB). The
//! chunking byte sets how many bytes each socket read returns (`1 + chunking % 32`, or
//! everything when bit 7 is set); with bit 6 every other read is not ready yet; with bit 5 a
//! stream that ends between frames goes quiet instead of closing, so the idle timeout
//! (`connections.max.idle.ms`) must close it.
//!
//! The reader runs on a current-thread tokio runtime with a paused clock: a quiet socket lets
//! the runtime idle, the clock jumps to the idle deadline, and the run stays instant and
//! deterministic. What it returns is checked against [`expected_frames`], a plain slicing of
//! the stream by the same rules: frames are exactly the size-prefixed slices; a size that is
//! negative or above the limit is `FrameTooLarge`; the end of the stream between frames is a
//! clean close (`Idle` when quiet) and inside a frame an unexpected-EOF error. Memory follows
//! the data: the read buffer never grows far beyond the bytes that arrived, whatever size was
//! announced, and only frames above [`SMALL_FRAME`] hold request memory. Every frame then goes
//! through the `request` target's check.

use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use fjord_broker::server::Limits;
use fjord_broker::server::connection::{ConnectionError, READ_CHUNK, SMALL_FRAME, read_frame};
use tokio::io::{AsyncRead, ReadBuf};

use crate::input::Input;

/// Kafka's default `socket.request.max.bytes`.
pub const DEFAULT_MAX: usize = 100 * 1024 * 1024;
/// `connections.max.idle.ms` of the harness (only a paused clock ever reaches it).
const IDLE: Duration = Duration::from_secs(600);
/// Kafka's default `queued.max.request.bytes`.
const QUEUED_MAX_REQUEST_BYTES: usize = 512 * 1024 * 1024;

/// How a stream ends, as the connection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEnd {
    /// Closed between frames.
    Clean,
    /// The stream ended inside a size prefix or a frame.
    Eof,
    /// The size prefix is negative or above the limit.
    TooLarge {
        /// Announced size.
        size: i64,
    },
}

/// Runs one input; panics when frames or errors differ from the expected ones, when the read
/// buffer outgrows the data received, or when request parsing panics.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let limit = input.u8();
    let chunking = input.u8();
    let stream = input.rest();
    let max = if limit < 128 {
        4 * usize::from(limit)
    } else {
        DEFAULT_MAX
    };
    let (frames, end) = expected_frames(stream, max);
    // Going quiet inside a frame would wait forever: only the wait for a new frame is timed.
    let quiet = chunking & 0x20 != 0 && end == FrameEnd::Clean;
    let mut reader = ChunkedReader {
        data: stream,
        delivered: 0,
        chunk: if chunking & 0x80 != 0 {
            usize::MAX
        } else {
            1 + usize::from(chunking % 32)
        },
        stall: chunking & 0x40 != 0,
        stalled: false,
        quiet,
    };
    let limits = Limits::new(1, 1, QUEUED_MAX_REQUEST_BYTES, IDLE);
    let mut buf = BytesMut::new();
    with_runtime(|rt| {
        for want in &frames {
            let got = rt.block_on(read_frame(&mut reader, &mut buf, max, &limits));
            check_memory(&buf, reader.delivered);
            let (frame, permit) = match got {
                Ok(Some(got)) => got,
                other => panic!("expected a frame of {} bytes, got {other:?}", want.len()),
            };
            assert_eq!(
                &frame[..],
                *want,
                "frame differs from its size-prefixed slice"
            );
            assert_eq!(
                permit.is_some(),
                frame.len() > SMALL_FRAME,
                "only frames above {SMALL_FRAME} bytes take request memory"
            );
            if crate::tracing() {
                eprintln!("frame of {} bytes", frame.len());
            }
            crate::request::check_frame(&frame);
        }
        let got = rt.block_on(read_frame(&mut reader, &mut buf, max, &limits));
        check_memory(&buf, reader.delivered);
        match (&end, got) {
            (FrameEnd::Clean, Ok(None)) if !quiet => {}
            (FrameEnd::Clean, Err(ConnectionError::Idle(after))) if quiet => {
                assert_eq!(after, IDLE);
            }
            (FrameEnd::Eof, Err(ConnectionError::Io(e))) => {
                assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
            }
            (
                FrameEnd::TooLarge { size },
                Err(ConnectionError::FrameTooLarge { size: s, max: m }),
            ) => {
                assert_eq!((*size, max), (s, m));
            }
            (end, got) => panic!("expected {end:?} (quiet: {quiet}), got {got:?}"),
        }
    });
}

/// Cuts `stream` into the frames a connection with limit `max` reads, and how it ends.
pub fn expected_frames(stream: &[u8], max: usize) -> (Vec<&[u8]>, FrameEnd) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, FrameEnd::Clean);
        }
        let Some((prefix, body)) = rest.split_first_chunk::<4>() else {
            return (frames, FrameEnd::Eof);
        };
        let size = i32::from_be_bytes(*prefix);
        let Ok(len) = usize::try_from(size) else {
            return (frames, FrameEnd::TooLarge { size: size.into() });
        };
        if len > max {
            return (frames, FrameEnd::TooLarge { size: size.into() });
        }
        if body.len() < len {
            return (frames, FrameEnd::Eof);
        }
        frames.push(&body[..len]);
        rest = &body[len..];
    }
}

/// Memory follows the data that arrived, not the size announced: the reader may reserve one
/// read chunk ahead and grows by doubling what it holds, so its buffer stays within a small
/// multiple of what was received (however large the announced frame).
fn check_memory(buf: &BytesMut, delivered: usize) {
    assert!(
        buf.capacity() <= 4 * (delivered + READ_CHUNK),
        "{} bytes reserved after {delivered} received",
        buf.capacity()
    );
}

/// Runs `f` with this thread's current-thread runtime (time enabled, clock paused), built
/// once: building one per input would dominate the run time.
fn with_runtime<T>(f: impl FnOnce(&tokio::runtime::Runtime) -> T) -> T {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime builds");
    }
    RUNTIME.with(f)
}

/// An in-memory socket that returns at most `chunk` bytes per read; with `stall` it is not
/// ready on every other poll, and with `quiet` it never becomes ready again once the data is
/// exhausted (instead of returning end of stream).
struct ChunkedReader<'a> {
    data: &'a [u8],
    delivered: usize,
    chunk: usize,
    stall: bool,
    stalled: bool,
    quiet: bool,
}

impl AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.stall {
            self.stalled = !self.stalled;
            if self.stalled {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if self.data.is_empty() && self.quiet {
            // No waker is kept: nothing will ever arrive, only the idle timer can end the read.
            return Poll::Pending;
        }
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        self.delivered += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slow sender announcing a large frame: before the fix, each 1-byte read doubled the
    /// buffer's capacity (the reservation followed the capacity, not the data), so a few
    /// dozen bytes pinned the whole announced size.
    #[test]
    fn slow_sender_of_a_large_frame_pins_no_memory() {
        let mut data = vec![200, 0]; // default limit, 1-byte reads
        data.extend((50 * 1024 * 1024i32).to_be_bytes());
        data.extend([7; 300]);
        run(&data);
    }

    #[test]
    fn quiet_stream_between_frames_times_out_idle() {
        let mut data = vec![200, 0x20 | 0x40 | 3];
        data.extend(3i32.to_be_bytes());
        data.extend([0, 18, 0]);
        run(&data);
        run(&[200, 0x20]);
    }
}
