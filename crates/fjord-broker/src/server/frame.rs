//! Response frames written without copying record sets.
//!
//! kafka-protocol encodes a whole response into one buffer, so a fetch response used to copy
//! every record set it carries into that buffer (and the buffer grew by doubling, copying
//! again). [`encode`] instead hands the encoder a [`ChunkedBuf`] that recognises the record
//! sets by address as the encoder writes them: the framing goes into small buffers, and each
//! record set stays the `Bytes` the log read returned, written with the rest by one vectored
//! write.

use std::io::IoSlice;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut, buf::UninitSlice};
use kafka_protocol::messages::{FetchResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::connection::ConnectionError;

/// Record sets shorter than this are copied: a separate iovec is not worth it.
const SHARE_MIN: usize = 4096;

/// Most iovecs passed to one `writev` (Linux's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 64;

/// An encoded response frame: its size prefix, header and body, as consecutive chunks.
#[derive(Debug, Default)]
pub struct Frame {
    chunks: Vec<Bytes>,
}

impl Frame {
    /// Total length in bytes, size prefix included.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// Whether the frame has no bytes (never true for an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The whole frame in one buffer (tests and callers that need contiguous bytes).
    pub fn to_vec(&self) -> Vec<u8> {
        self.chunks.concat()
    }

    /// Writes the frame with as few vectored writes as the stream takes.
    pub async fn write_to<W: AsyncWrite + Unpin>(mut self, stream: &mut W) -> std::io::Result<()> {
        let mut first = 0;
        while first < self.chunks.len() {
            let end = (first + MAX_IOVECS).min(self.chunks.len());
            let slices: Vec<IoSlice<'_>> = self.chunks[first..end]
                .iter()
                .map(|c| IoSlice::new(c))
                .collect();
            let mut n = stream.write_vectored(&slices).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            // Skip what was written: whole chunks, then the front of a partly written one.
            while n > 0 && first < self.chunks.len() {
                let len = self.chunks[first].len();
                if n >= len {
                    n -= len;
                    first += 1;
                } else {
                    let rest = self.chunks[first].slice(n..);
                    self.chunks[first] = rest;
                    n = 0;
                }
            }
        }
        Ok(())
    }
}

/// Encodes a whole response frame: size, header, body. Record sets of fetch responses are
/// shared, not copied.
pub fn encode(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &ResponseKind,
) -> Result<Frame, ConnectionError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let shared = match body {
        ResponseKind::Fetch(fetch) => {
            let mut buf = ChunkedBuf::new(shared_record_sets(fetch));
            header
                .encode(&mut buf, header_version)
                .and_then(|()| fetch.encode(&mut buf, version))
                .map_err(failed)?;
            // `None` if the encoder went back into a chunk already handed off (kafka-protocol
            // does not for a fetch response today): then it is encoded again the plain way.
            buf.finish()
        }
        _ => None,
    };
    let Some(mut chunks) = shared else {
        // One buffer, the size written in front once known.
        let mut plain = BytesMut::with_capacity(256);
        plain.put_i32(0);
        header.encode(&mut plain, header_version).map_err(failed)?;
        body.encode(&mut plain, version).map_err(failed)?;
        let size = frame_size(plain.len() - 4)?;
        plain[..4].copy_from_slice(&size);
        return Ok(Frame {
            chunks: vec![plain.freeze()],
        });
    };
    let size = frame_size(chunks.iter().map(Bytes::len).sum())?;
    chunks.insert(0, Bytes::copy_from_slice(&size));
    Ok(Frame { chunks })
}

/// The size prefix of a frame whose rest is `len` bytes.
fn frame_size(len: usize) -> Result<[u8; 4], ConnectionError> {
    i32::try_from(len)
        .map(i32::to_be_bytes)
        .map_err(|_| ConnectionError::Encode(format!("response of {len} bytes")))
}

fn failed(e: impl std::fmt::Display) -> ConnectionError {
    ConnectionError::Encode(e.to_string())
}

/// The record sets of a fetch response worth sharing.
fn shared_record_sets(fetch: &FetchResponse) -> Vec<Bytes> {
    fetch
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter_map(|p| p.records.clone())
        .filter(|r| r.len() >= SHARE_MIN)
        .collect()
}

/// A [`ByteBufMut`] that writes into a growing tail buffer, except that a `put_slice` of
/// exactly one of `shared` (same address and length) becomes a chunk of its own.
struct ChunkedBuf {
    shared: Vec<Bytes>,
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    done: usize,
    tail: BytesMut,
    /// Set when the encoder seeks or reads before `tail`: the chunks are then unusable.
    lost: bool,
    scratch: Vec<u8>,
}

impl ChunkedBuf {
    fn new(shared: Vec<Bytes>) -> Self {
        ChunkedBuf {
            shared,
            chunks: Vec::new(),
            done: 0,
            tail: BytesMut::with_capacity(256),
            lost: false,
            scratch: Vec::new(),
        }
    }

    fn finish(mut self) -> Option<Vec<Bytes>> {
        if self.lost {
            return None;
        }
        if !self.tail.is_empty() {
            self.chunks.push(self.tail.freeze());
        }
        Some(self.chunks)
    }

    fn take_shared(&mut self, src: &[u8]) -> Option<Bytes> {
        if src.len() < SHARE_MIN {
            return None;
        }
        let at = self
            .shared
            .iter()
            .position(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len())?;
        Some(self.shared.swap_remove(at))
    }
}

// SAFETY: every method delegates to `tail`, a `BytesMut`, whose implementation upholds
// `BufMut`'s contract; `put_slice` either delegates too or only moves finished bytes aside.
#[allow(unsafe_code)]
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (the next `cnt` bytes of `chunk_mut` are initialised)
        // is about `tail`'s chunk, which `chunk_mut` returned.
        unsafe { self.tail.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.tail.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.take_shared(src) {
            Some(records) => {
                if !self.tail.is_empty() {
                    let framing = self.tail.split().freeze();
                    self.done += framing.len();
                    self.chunks.push(framing);
                }
                self.done += records.len();
                self.chunks.push(records);
            }
            None => self.tail.put_slice(src),
        }
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.done + self.tail.len()
    }

    fn seek(&mut self, offset: usize) {
        match offset.checked_sub(self.done) {
            Some(at) => self.tail.resize(at, 0),
            None => self.lost = true,
        }
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        match (r.start.checked_sub(self.done), r.end.checked_sub(self.done)) {
            (Some(start), Some(end)) if start <= end && end <= self.tail.len() => {
                &mut self.tail[start..end]
            }
            _ => {
                self.lost = true;
                self.scratch.clear();
                self.scratch.resize(r.len(), 0);
                &mut self.scratch
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// The frame the plain encoder makes: one buffer, records copied in.
    fn plain(
        correlation_id: i32,
        header_version: i16,
        version: i16,
        body: &ResponseKind,
    ) -> Vec<u8> {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut buf, header_version)
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let mut out = (buf.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&buf);
        out
    }

    fn records(len: usize, seed: u8) -> Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect::<Vec<u8>>()
            .into()
    }

    /// A fetch response valid at `version` with record sets of every size class, empty and
    /// null ones, errors and aborted transactions.
    fn fetch(version: i16, sizes: &[usize]) -> FetchResponse {
        let partitions = |topic: u8| -> Vec<PartitionData> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    let p = PartitionData::default()
                        .with_partition_index(i as i32)
                        .with_error_code(if len == 1 { 3 } else { 0 })
                        .with_high_watermark(1000 + i as i64)
                        .with_last_stable_offset(999)
                        .with_log_start_offset(7)
                        .with_records((len != 1).then(|| records(len, topic + i as u8)));
                    let p = if version >= 11 {
                        p.with_preferred_read_replica(BrokerId(-1))
                    } else {
                        p
                    };
                    p.with_aborted_transactions(Some(vec![
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(5))
                            .with_first_offset(6);
                        i % 2
                    ]))
                })
                .collect()
        };
        let topics = (0..2u8)
            .map(|t| {
                let topic = FetchableTopicResponse::default().with_partitions(partitions(t));
                if version >= 13 {
                    topic.with_topic_id(uuid::Uuid::from_u128(u128::from(t) + 1))
                } else {
                    topic.with_topic(TopicName(StrBytes::from_string(format!("topic-{t}"))))
                }
            })
            .collect();
        let r = FetchResponse::default()
            .with_throttle_time_ms(3)
            .with_responses(topics);
        if version >= 7 {
            r.with_error_code(0).with_session_id(0)
        } else {
            r
        }
    }

    #[test]
    fn fetch_frames_equal_the_plain_encoding_and_share_large_record_sets() {
        let sizes = [0, 1, 100, SHARE_MIN - 1, SHARE_MIN, 70_000, 5000];
        for version in 4..=17 {
            let header_version = if version >= 12 { 1 } else { 0 };
            let body = ResponseKind::Fetch(fetch(version, &sizes));
            let frame = encode(42, header_version, version, &body).unwrap();
            assert_eq!(
                frame.to_vec(),
                plain(42, header_version, version, &body),
                "v{version}"
            );
            assert_eq!(frame.len(), frame.to_vec().len());
            // Every record set of SHARE_MIN bytes or more is a chunk of its own, the very
            // bytes the response holds: not copied.
            let ResponseKind::Fetch(f) = &body else {
                unreachable!()
            };
            let large: Vec<&Bytes> = f
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(|p| p.records.as_ref())
                .filter(|r| r.len() >= SHARE_MIN)
                .collect();
            assert_eq!(large.len(), 6);
            for r in large {
                assert!(
                    frame
                        .chunks()
                        .iter()
                        .any(|c| c.as_ptr() == r.as_ptr() && c.len() == r.len()),
                    "v{version}: a {}-byte record set was copied",
                    r.len()
                );
            }
        }
    }

    #[test]
    fn other_responses_are_encoded_in_one_chunk() {
        let body = ResponseKind::ApiVersions(
            kafka_protocol::messages::ApiVersionsResponse::default().with_error_code(35),
        );
        let frame = encode(7, 0, 3, &body).unwrap();
        assert_eq!(frame.chunks().len(), 1);
        assert_eq!(frame.to_vec(), plain(7, 0, 3, &body));
        // A fetch response without large record sets: its framing, and the size.
        let body = ResponseKind::Fetch(fetch(12, &[0, 100]));
        let frame = encode(7, 1, 12, &body).unwrap();
        assert_eq!(frame.chunks().len(), 2);
        assert_eq!(frame.to_vec(), plain(7, 1, 12, &body));
    }

    /// A writer that takes at most `step` bytes per call, vectored or not.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = self.step;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
                if left == 0 {
                    break;
                }
            }
            Poll::Ready(Ok(self.step - left))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_resume_inside_and_across_chunks() {
        let body = ResponseKind::Fetch(fetch(16, &[SHARE_MIN, 100, 9000, 0, 20_000]));
        let expected = plain(1, 1, 16, &body);
        for (step, vectored) in [
            (1, true),
            (7, false),
            (4096, true),
            (10_000, true),
            (1 << 20, true),
        ] {
            let frame = encode(1, 1, 16, &body).unwrap();
            assert!(frame.chunks().len() > 2);
            let mut w = Trickle {
                out: Vec::new(),
                step,
                vectored,
            };
            frame.write_to(&mut w).await.unwrap();
            assert_eq!(w.out, expected, "step {step}");
        }
    }
}
