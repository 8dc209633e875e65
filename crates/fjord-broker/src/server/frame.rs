//! Response frames written without copying record sets.
//!
//! kafka-protocol encodes a whole response into one buffer, so a fetch response used to read
//! every record set from its segment into memory and then copy it into that buffer (which grew
//! by doubling, copying again). Now:
//!
//! * The fetch handler takes from the log only where the batches lie ([`FileSlice`]s) and puts
//!   a placeholder of the same length in the response (`record_set`): a slice of a static
//!   zero buffer that is never read.
//! * [`encode`] hands the encoder (Fjord's own for the fetch responses the broker makes,
//!   `fetch_encode`, else kafka-protocol's) a `ChunkedBuf` that recognises record sets by
//!   address as the encoder writes them. Framing goes into small buffers; a placeholder becomes
//!   a file chunk, and a record set that is real bytes stays its own `Bytes`.
//! * [`Frame::write_to`] writes framing and bytes with `writev` and file chunks with
//!   `sendfile`, so the records go from the page cache to the socket without passing through
//!   the broker's memory; the socket is corked meanwhile, so the pieces still leave as full
//!   segments.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::ops::Range;
use std::os::fd::AsFd;

use bytes::{BufMut, Bytes, BytesMut, buf::UninitSlice};
use fjord_log::FileSlice;
use kafka_protocol::messages::{FetchResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::api::Response;
use crate::api::fetch_answer::FetchAnswer;

use super::connection::ConnectionError;

/// Record sets shorter than this are read and copied: a separate iovec or `sendfile` call is
/// not worth it.
const SHARE_MIN: usize = 4096;

/// Most iovecs passed to one `writev` (Linux's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 64;

/// Record sets up to this size are sent from their files; larger ones (a fetch can ask for
/// more per partition) are read into memory. 64 MiB of zeros in `.bss`: never written or read,
/// so it costs address space only.
const PLACEHOLDER_MAX: usize = 64 << 20;
static PLACEHOLDER: [u8; PLACEHOLDER_MAX] = [0; PLACEHOLDER_MAX];

/// The records of one partition in a fetch response: a placeholder standing for `slices`,
/// which are appended to `files` (in response order), or the bytes themselves when the set is
/// small or very large.
pub(crate) fn record_set(
    slices: Vec<FileSlice>,
    files: &mut Vec<FileSlice>,
) -> std::io::Result<Bytes> {
    let len: usize = slices.iter().map(FileSlice::len).sum();
    if (SHARE_MIN..=PLACEHOLDER_MAX).contains(&len) {
        files.extend(slices);
        return Ok(Bytes::from_static(&PLACEHOLDER[..len]));
    }
    read_slices(&slices)
}

fn read_slices(slices: &[FileSlice]) -> std::io::Result<Bytes> {
    match slices {
        [one] => one.read().map(Bytes::from),
        many => {
            let mut out = Vec::with_capacity(many.iter().map(FileSlice::len).sum());
            for s in many {
                out.extend(s.read()?);
            }
            Ok(out.into())
        }
    }
}

fn is_placeholder(src: &[u8]) -> bool {
    std::ptr::eq(src.as_ptr(), PLACEHOLDER.as_ptr())
}

/// One piece of a frame.
#[derive(Debug, Clone)]
enum Chunk {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A range of a segment file, sent with `sendfile`.
    File(FileSlice),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(f) => f.len(),
        }
    }
}

/// An encoded response frame: its size prefix, header and body, as consecutive chunks.
#[derive(Debug)]
pub struct Frame {
    chunks: Vec<Chunk>,
}

impl Frame {
    /// Appends `next`'s chunks, so that one write sends both frames, in order.
    pub fn extend(&mut self, next: Frame) {
        self.chunks.extend(next.chunks);
    }

    /// Writes the frame: runs of bytes with as few vectored writes as the socket takes, file
    /// chunks with `sendfile`. A file found shorter than its chunk (a truncated segment) is an
    /// error: the frame cannot be completed, so the caller closes the connection.
    /// A frame with file chunks is written corked (`TCP_CORK`), so that its pieces leave as
    /// full segments instead of one segment per system call (see `cork`).
    pub async fn write_to(self, stream: &mut TcpStream) -> std::io::Result<()> {
        let has_files = self.chunks.iter().any(|c| matches!(c, Chunk::File(_)));
        let mut stream = super::cork::Corked::new(stream, has_files);
        let mut run: Vec<Bytes> = Vec::new();
        for chunk in self.chunks {
            match chunk {
                Chunk::Bytes(b) => run.push(b),
                Chunk::File(f) => {
                    write_all_vectored(&mut *stream, std::mem::take(&mut run)).await?;
                    send_file(&stream, &f).await?;
                }
            }
        }
        write_all_vectored(&mut *stream, run).await
    }
}

/// Writes all of `chunks` with as few vectored writes as `stream` takes.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut chunks: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let end = (first + MAX_IOVECS).min(chunks.len());
        let slices: Vec<IoSlice<'_>> = chunks[first..end].iter().map(|c| IoSlice::new(c)).collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Skip what was written: whole chunks, then the front of a partly written one.
        while n > 0 && first < chunks.len() {
            let len = chunks[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                let rest = chunks[first].slice(n..);
                chunks[first] = rest;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Sends all of `file` to `stream` with `sendfile`, waiting for room in the socket buffer.
async fn send_file(stream: &TcpStream, file: &FileSlice) -> std::io::Result<()> {
    let mut done = 0;
    while done < file.len() {
        match stream.try_io(Interest::WRITABLE, || file.send_to(stream.as_fd(), done)) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "segment file ended {} bytes into a {}-byte record set",
                        done,
                        file.len()
                    ),
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Encodes a whole response frame: size, header, body. Record sets of a fetch response are
/// not copied: placeholders become the file chunks `files` (in response order), and other
/// record sets of at least `SHARE_MIN` bytes are shared.
pub fn encode(
    correlation_id: i32,
    header_version: i16,
    version: i16,
    body: &Response,
    files: Vec<FileSlice>,
) -> Result<Frame, ConnectionError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let shared = match body {
        Response::Fetch(fetch) => {
            let mut buf = ChunkedBuf::new(shared_record_sets(fetch), files.clone());
            header
                .encode(&mut buf, header_version)
                .and_then(|()| {
                    if super::fetch_encode::encode(fetch, version, &mut buf) {
                        Ok(())
                    } else {
                        fetch.to_kafka().encode(&mut buf, version)
                    }
                })
                .map_err(failed)?;
            // `None` if the chunks cannot be trusted (the encoder went back into a chunk
            // already handed off, or the files did not match the placeholders): kafka-protocol
            // does neither for a fetch response today, but then the record sets are read and
            // the response is encoded the plain way.
            buf.finish()
        }
        Response::Kafka(_) => None,
    };
    let Some(mut chunks) = shared else {
        let converted;
        let body = match body {
            Response::Fetch(fetch) => {
                converted = ResponseKind::Fetch(fill_placeholders(fetch, files)?);
                &converted
            }
            Response::Kafka(body) => body,
        };
        // One buffer, the size written in front once known.
        let mut plain = BytesMut::with_capacity(256);
        plain.put_i32(0);
        header.encode(&mut plain, header_version).map_err(failed)?;
        body.encode(&mut plain, version).map_err(failed)?;
        let size = frame_size(plain.len() - 4)?;
        plain[..4].copy_from_slice(&size);
        return Ok(Frame {
            chunks: vec![Chunk::Bytes(plain.freeze())],
        });
    };
    let size = frame_size(chunks.iter().map(Chunk::len).sum())?;
    chunks.insert(0, Chunk::Bytes(Bytes::copy_from_slice(&size)));
    Ok(Frame { chunks })
}

/// `fetch` as kafka-protocol's type, with every placeholder replaced by the bytes of the files
/// it stands for.
fn fill_placeholders(
    fetch: &FetchAnswer,
    files: Vec<FileSlice>,
) -> Result<FetchResponse, ConnectionError> {
    let mut files = VecDeque::from(files);
    let mut fetch = fetch.to_kafka();
    for p in fetch
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if let Some(r) = p.records.as_mut().filter(|r| is_placeholder(r)) {
            let slices = take_slices(&mut files, r.len()).ok_or_else(|| {
                ConnectionError::Encode("fetch record sets do not match their files".into())
            })?;
            *r = read_slices(&slices).map_err(failed)?;
        }
    }
    Ok(fetch)
}

/// The slices at the front of `files` that make up exactly `len` bytes.
fn take_slices(files: &mut VecDeque<FileSlice>, len: usize) -> Option<Vec<FileSlice>> {
    let mut taken = Vec::new();
    let mut sum = 0;
    while sum < len {
        let s = files.pop_front()?;
        sum += s.len();
        taken.push(s);
    }
    (sum == len).then_some(taken)
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

/// The record sets of a fetch response worth sharing (real bytes, not placeholders).
fn shared_record_sets(fetch: &FetchAnswer) -> Vec<Bytes> {
    fetch
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.records.len() >= SHARE_MIN && !is_placeholder(&p.records))
        .map(|p| p.records.clone())
        .collect()
}

/// A [`ByteBufMut`] that writes into a growing tail buffer, except that a `put_slice` of
/// exactly one of `shared` (same address and length) becomes a chunk of its own, and one of a
/// placeholder becomes the next file chunks.
struct ChunkedBuf {
    shared: Vec<Bytes>,
    files: VecDeque<FileSlice>,
    chunks: Vec<Chunk>,
    /// Bytes in `chunks`.
    done: usize,
    tail: BytesMut,
    /// Set when the encoder seeks or reads before `tail`, or placeholders and files do not
    /// match: the chunks are then unusable.
    lost: bool,
    scratch: Vec<u8>,
}

impl ChunkedBuf {
    fn new(shared: Vec<Bytes>, files: Vec<FileSlice>) -> Self {
        ChunkedBuf {
            shared,
            files: files.into(),
            chunks: Vec::new(),
            done: 0,
            tail: BytesMut::with_capacity(256),
            lost: false,
            scratch: Vec::new(),
        }
    }

    fn finish(mut self) -> Option<Vec<Chunk>> {
        if self.lost || !self.files.is_empty() {
            return None;
        }
        if !self.tail.is_empty() {
            self.chunks.push(Chunk::Bytes(self.tail.freeze()));
        }
        Some(self.chunks)
    }

    /// The chunks that stand for `src` instead of its bytes, if any.
    fn take_chunks(&mut self, src: &[u8]) -> Option<Vec<Chunk>> {
        if src.len() < SHARE_MIN {
            return None;
        }
        if is_placeholder(src) {
            return match take_slices(&mut self.files, src.len()) {
                Some(slices) => Some(slices.into_iter().map(Chunk::File).collect()),
                None => {
                    self.lost = true;
                    None
                }
            };
        }
        let at = self
            .shared
            .iter()
            .position(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len())?;
        Some(vec![Chunk::Bytes(self.shared.swap_remove(at))])
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
        match self.take_chunks(src) {
            Some(chunks) => {
                if !self.tail.is_empty() {
                    let framing = self.tail.split().freeze();
                    self.done += framing.len();
                    self.chunks.push(Chunk::Bytes(framing));
                }
                self.done += src.len();
                self.chunks.extend(chunks);
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
    use crate::api::fetch_answer::{PartitionAnswer, TopicAnswer};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    impl Frame {
        fn len(&self) -> usize {
            self.chunks.iter().map(Chunk::len).sum()
        }

        fn chunks(&self) -> &[Chunk] {
            &self.chunks
        }

        /// The whole frame in one buffer, file chunks read.
        fn to_vec(&self) -> std::io::Result<Vec<u8>> {
            let mut out = Vec::with_capacity(self.len());
            for c in &self.chunks {
                match c {
                    Chunk::Bytes(b) => out.extend_from_slice(b),
                    Chunk::File(f) => out.extend(f.read()?),
                }
            }
            Ok(out)
        }
    }

    /// The frame the plain encoder makes: one buffer, records copied in.
    fn plain(correlation_id: i32, header_version: i16, version: i16, body: &Response) -> Vec<u8> {
        let body = body.clone().into_kafka();
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

    /// A fetch answer valid at `version` with record sets of every size class, empty ones
    /// and errors (a size of 1 stands for an error without records).
    fn fetch(version: i16, sizes: &[usize]) -> Response {
        let partitions = |topic: u8| -> Vec<PartitionAnswer> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| PartitionAnswer {
                    partition_index: i as i32,
                    error_code: if len == 1 { 3 } else { 0 },
                    high_watermark: 1000 + i as i64,
                    last_stable_offset: 999,
                    log_start_offset: 7,
                    records: if len == 1 {
                        Bytes::new()
                    } else {
                        records(len, topic + i as u8)
                    },
                })
                .collect()
        };
        let responses = (0..2u8)
            .map(|t| TopicAnswer {
                topic: if version >= 13 {
                    TopicName::default()
                } else {
                    TopicName(StrBytes::from_string(format!("topic-{t}")))
                },
                topic_id: if version >= 13 {
                    uuid::Uuid::from_u128(u128::from(t) + 1)
                } else {
                    uuid::Uuid::nil()
                },
                partitions: partitions(t),
            })
            .collect();
        Response::Fetch(FetchAnswer {
            throttle_time_ms: 3,
            read_committed: version % 2 == 0,
            responses,
            ..FetchAnswer::default()
        })
    }

    #[test]
    fn fetch_frames_equal_the_plain_encoding_and_share_large_record_sets() {
        let sizes = [0, 1, 100, SHARE_MIN - 1, SHARE_MIN, 70_000, 5000];
        for version in 4..=17 {
            let header_version = if version >= 12 { 1 } else { 0 };
            let body = fetch(version, &sizes);
            let frame = encode(42, header_version, version, &body, Vec::new()).unwrap();
            assert_eq!(
                frame.to_vec().unwrap(),
                plain(42, header_version, version, &body),
                "v{version}"
            );
            assert_eq!(frame.len(), frame.to_vec().unwrap().len());
            // Every record set of SHARE_MIN bytes or more is a chunk of its own, the very
            // bytes the response holds: not copied.
            let Response::Fetch(f) = &body else {
                unreachable!()
            };
            let large: Vec<&Bytes> = f
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| &p.records)
                .filter(|r| r.len() >= SHARE_MIN)
                .collect();
            assert_eq!(large.len(), 6);
            for r in large {
                assert!(
                    frame
                        .chunks()
                        .iter()
                        .any(|c| matches!(c, Chunk::Bytes(c) if c.as_ptr() == r.as_ptr() && c.len() == r.len())),
                    "v{version}: a {}-byte record set was copied",
                    r.len()
                );
            }
        }
    }

    #[test]
    fn other_responses_are_encoded_in_one_chunk() {
        let body = Response::Kafka(ResponseKind::ApiVersions(
            kafka_protocol::messages::ApiVersionsResponse::default().with_error_code(35),
        ));
        let frame = encode(7, 0, 3, &body, Vec::new()).unwrap();
        assert_eq!(frame.chunks().len(), 1);
        assert_eq!(frame.to_vec().unwrap(), plain(7, 0, 3, &body));
        // A fetch response without large record sets: its framing, and the size.
        let body = fetch(12, &[0, 100]);
        let frame = encode(7, 1, 12, &body, Vec::new()).unwrap();
        assert_eq!(frame.chunks().len(), 2);
        assert_eq!(frame.to_vec().unwrap(), plain(7, 1, 12, &body));
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
        let body = fetch(16, &[SHARE_MIN, 100, 9000, 0, 20_000]);
        let expected = plain(1, 1, 16, &body);
        for (step, vectored) in [
            (1, true),
            (7, false),
            (4096, true),
            (10_000, true),
            (1 << 20, true),
        ] {
            let frame = encode(1, 1, 16, &body, Vec::new()).unwrap();
            assert!(frame.chunks().len() > 2);
            let mut w = Trickle {
                out: Vec::new(),
                step,
                vectored,
            };
            let chunks = frame.chunks.into_iter().map(|c| match c {
                Chunk::Bytes(b) => b,
                Chunk::File(_) => unreachable!("no files in this frame"),
            });
            write_all_vectored(&mut w, chunks.collect()).await.unwrap();
            assert_eq!(w.out, expected, "step {step}");
        }
    }

    /// A log in `dir` holding `batches` batches of 40 records of 100 bytes (about 4.6 KiB
    /// each), in segments of about 3 batches.
    fn log_with(dir: &std::path::Path, batches: usize) -> fjord_log::Log {
        let config = fjord_log::LogConfig {
            segment_bytes: 14_000,
            ..fjord_log::LogConfig::default()
        };
        let mut log = fjord_log::Log::open(dir, config, 0).unwrap();
        let value = [b'r'; 100];
        for b in 0..batches {
            let records: Vec<_> = (0..40)
                .map(|i| (None, Some(&value[..]), (b * 40 + i) as i64))
                .collect();
            let batch = fjord_log::build_batch(0, &records);
            let headers = fjord_log::validate_batches(&batch).unwrap();
            log.append(&batch, &headers, 0, 0).unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        log
    }

    /// A fetch response of two partitions whose record sets come from `log`: one spanning
    /// segments, one small; placeholders where [`record_set`] puts them.
    fn fetch_from(log: &fjord_log::Log) -> (Response, Response, Vec<FileSlice>) {
        let end = log.log_end_offset();
        let mut files = Vec::new();
        let mut with_bytes = Vec::new();
        let mut partitions = Vec::new();
        for (i, (offset, max)) in [(0, 30_000), (end - 1, 10)].into_iter().enumerate() {
            let slices = log.read_slices(offset, end, max).unwrap();
            with_bytes.push(read_slices(&slices).unwrap());
            let records = record_set(slices, &mut files).unwrap();
            partitions.push(PartitionAnswer {
                records,
                ..PartitionAnswer::new(i as i32)
            });
        }
        let response = |partitions: Vec<PartitionAnswer>| {
            Response::Fetch(FetchAnswer {
                responses: vec![TopicAnswer {
                    topic: TopicName(StrBytes::from_static_str("t")),
                    topic_id: uuid::Uuid::nil(),
                    partitions,
                }],
                ..FetchAnswer::default()
            })
        };
        let real = partitions
            .iter()
            .zip(with_bytes)
            .map(|(p, b)| PartitionAnswer {
                records: b,
                ..p.clone()
            })
            .collect();
        (response(partitions), response(real), files)
    }

    #[tokio::test]
    async fn record_sets_are_sent_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_with(dir.path(), 12);
        let (body, real, files) = fetch_from(&log);
        assert!(files.len() >= 2, "the first record set spans segments");
        let frame = encode(9, 0, 11, &body, files.clone()).unwrap();
        let files_in_frame = frame
            .chunks()
            .iter()
            .filter(|c| matches!(c, Chunk::File(_)))
            .count();
        assert_eq!(files_in_frame, files.len());
        let expected = plain(9, 0, 11, &real);
        assert_eq!(frame.to_vec().unwrap(), expected);

        // Over a real socket: writev for the framing, sendfile for the records.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut got)
                .await
                .unwrap();
            got
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // As the broker's connections run, so that nothing but the cork holds pieces back.
        stream.set_nodelay(true).unwrap();
        assert!(expected.len() < 60_000, "fits one loopback segment");
        #[cfg(target_os = "linux")]
        let before = super::super::cork::segments_out(&stream);
        frame.write_to(&mut stream).await.unwrap();
        // Corked: the framing, the file chunks and the bytes after them leave as one
        // segment (uncorked, each system call sent its own: 5 here).
        #[cfg(target_os = "linux")]
        assert_eq!(super::super::cork::segments_out(&stream) - before, 1);
        drop(stream);
        assert_eq!(reader.await.unwrap(), expected);

        // Files that do not match the placeholders are refused, never sent as zeros.
        let mismatched = files[1..].to_vec();
        assert!(encode(9, 0, 11, &body, mismatched).is_err());
    }

    #[tokio::test]
    async fn a_segment_truncated_under_a_frame_fails_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_with(dir.path(), 2);
        let (body, _, files) = fetch_from(&log);
        let frame = encode(9, 0, 11, &body, files).unwrap();
        drop(log);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(100)
                    .unwrap();
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.unwrap() });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _peer = accept.await.unwrap();
        let err = frame.write_to(&mut stream).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    }
}
