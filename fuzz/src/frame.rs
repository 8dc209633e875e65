//! Target `frame_stream`: a connection's byte stream cut into size-prefixed frames, each
//! parsed as a request.
//!
//! Input layout: `limit u8 | chunking u8 | stream`. `limit` below 128 sets
//! `socket.request.max.bytes` to `4 × limit`, otherwise to Kafka's default (100 MiB). The
//! chunking byte sets how many bytes each socket read returns (`1 + chunking % 32`, or
//! everything when bit 7 is set) and, with bit 6, that every other read is not ready yet.
//!
//! The broker's frame reader (`read_frame` in `fjord-broker/src/server/connection.rs`) is
//! private and takes a `TcpStream`, so [`read_frame`] here is a copy of it, generic over the
//! reader, until the broker exposes that signature (the swap is one line). It is checked
//! against [`expected_frames`], a plain slicing of the stream by the same rules: frames are
//! exactly the size-prefixed slices, a size that is negative or above the limit closes the
//! connection before anything is allocated, the end of the stream between frames is a clean
//! close and inside one an error. Every frame then goes through the `request` target's check.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::input::Input;

/// Kafka's default `socket.request.max.bytes`.
pub const DEFAULT_MAX: usize = 100 * 1024 * 1024;
/// Bytes a read may reserve at once while a frame arrives (as in the broker).
const READ_CHUNK: usize = 64 * 1024;

/// Why the reader stopped, as the connection would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The stream ended inside a size prefix or a frame.
    Eof,
    /// The size prefix is negative or above the limit.
    TooLarge {
        /// Announced size.
        size: i64,
    },
}

/// Runs one input; panics when frames or errors differ from the expected ones, or when
/// request parsing panics.
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
    let mut reader = ChunkedReader {
        data: stream,
        chunk: if chunking & 0x80 != 0 {
            usize::MAX
        } else {
            1 + usize::from(chunking % 32)
        },
        stall: chunking & 0x40 != 0,
        stalled: false,
    };
    for want in &frames {
        let got = block_on(read_frame(&mut reader, max));
        assert_eq!(got.as_ref().map(|f| f.as_deref()), Ok(Some(*want)));
        if let Ok(Some(frame)) = got {
            crate::request::check_frame(&frame);
        }
    }
    let got = block_on(read_frame(&mut reader, max));
    assert_eq!(got, end.map(|()| None));
}

/// Cuts `stream` into the frames a connection with limit `max` reads, and how it ends:
/// `Ok(())` for a clean close after the last frame.
pub fn expected_frames(stream: &[u8], max: usize) -> (Vec<&[u8]>, Result<(), FrameError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (frames, Ok(()));
        }
        let Some((prefix, body)) = rest.split_first_chunk::<4>() else {
            return (frames, Err(FrameError::Eof));
        };
        let size = i32::from_be_bytes(*prefix);
        let Ok(len) = usize::try_from(size) else {
            return (frames, Err(FrameError::TooLarge { size: size.into() }));
        };
        if len > max {
            return (frames, Err(FrameError::TooLarge { size: size.into() }));
        }
        if body.len() < len {
            return (frames, Err(FrameError::Eof));
        }
        frames.push(&body[..len]);
        rest = &body[len..];
    }
}

/// Reads one frame; `Ok(None)` is a clean close between frames. Mirrors the broker's reader:
/// the size is checked before anything is allocated and the buffer grows only as data
/// arrives.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let io = |e: std::io::Error| {
        assert_eq!(
            e.kind(),
            ErrorKind::UnexpectedEof,
            "in-memory reads only end"
        );
        FrameError::Eof
    };
    let mut size_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = stream.read(&mut size_buf[got..]).await.map_err(io)?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Eof)
            };
        }
        got += n;
    }
    let size = i32::from_be_bytes(size_buf);
    if size < 0 || size as usize > max {
        return Err(FrameError::TooLarge { size: size.into() });
    }
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        let want = (size - buf.len()).min(READ_CHUNK.max(buf.len()));
        buf.reserve(want);
        let n = (&mut *stream)
            .take(want as u64)
            .read_buf(&mut buf)
            .await
            .map_err(io)?;
        if n == 0 {
            return Err(FrameError::Eof);
        }
        // Memory follows the data that arrived, not the size announced.
        assert!(
            buf.capacity() <= 2 * (buf.len() + READ_CHUNK),
            "{} bytes reserved for {} received",
            buf.capacity(),
            buf.len()
        );
    }
    Ok(Some(buf.freeze()))
}

/// An in-memory socket that returns at most `chunk` bytes per read and, with `stall`, is
/// not ready on every other poll.
struct ChunkedReader<'a> {
    data: &'a [u8],
    chunk: usize,
    stall: bool,
    stalled: bool,
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
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// Polls `f` to completion; the in-memory reader needs no runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
