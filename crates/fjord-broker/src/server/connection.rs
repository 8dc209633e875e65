//! One client connection: frame codec, request header, dispatch, response.
//!
//! A frame is a 4-byte big-endian size followed by that many bytes. The size is checked
//! against `socket.request.max.bytes` before anything is allocated, and the buffer grows only
//! as bytes actually arrive, so a client announcing 2 GiB costs nothing until it sends them.
//! Requests on one connection are handled one at a time, in order, as Kafka does; responses
//! therefore go out in request order without a reorder buffer.
//!
//! A producer pipelines its requests, so one read often brings several. While the next
//! buffered frame is another whole produce request, the response to a produce request is held
//! back and goes out with the following ones in one write (`HOLD_MAX` at most): fewer
//! system calls and loopback packets on both sides, and no response waits on anything but the
//! handling of requests that had already arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::watch;

use crate::api;
use crate::broker::Broker;

/// Bytes a read may reserve at once while a frame arrives.
pub const READ_CHUNK: usize = 64 * 1024;

/// Most produce responses held back to go out in one write.
const HOLD_MAX: usize = 32;

/// Whether a request frame (after its size prefix) is a Produce request: its API key.
fn is_produce(frame: &[u8]) -> bool {
    frame
        .first_chunk::<2>()
        .is_some_and(|k| i16::from_be_bytes(*k) == ApiKey::Produce as i16)
}

/// Whether `buf` starts with a whole Produce request frame (the next request is then handled
/// without waiting for the socket).
fn produce_frame_buffered(buf: &[u8]) -> bool {
    let Some((size, rest)) = buf.split_first_chunk::<4>() else {
        return false;
    };
    usize::try_from(i32::from_be_bytes(*size))
        .is_ok_and(|size| rest.len() >= size && is_produce(&rest[..size]))
}

/// Why a connection is closed by the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The frame size is negative or above `socket.request.max.bytes`.
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    FrameTooLarge {
        /// Announced size.
        size: i64,
        /// The limit.
        max: usize,
    },
    /// The request could not be parsed.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// No request arrived within `connections.max.idle.ms`.
    #[error("idle for {0:?}")]
    Idle(std::time::Duration),
    /// A response could not be encoded (a bug; logged and the connection closed).
    #[error("cannot encode response: {0}")]
    Encode(String),
}

/// Serves one connection until the peer closes it, an error closes it, it idles past
/// `connections.max.idle.ms`, or shutdown.
pub(crate) async fn serve(
    broker: Arc<Broker>,
    mut stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
    limits: Arc<super::Limits>,
) {
    tracing::debug!(%peer, "connection opened");
    let max = broker.config.socket_request_max_bytes;
    let stop = super::stopped(shutdown.clone());
    tokio::pin!(stop);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let fetch_waker = Arc::new(tokio::sync::Notify::new());
    // Kafka's form of the client's address, as group APIs report it; made once, not per request.
    let client_host: Arc<str> = format!("/{}", peer.ip()).into();
    let mut low_water = super::low_water::LowWater::new(&stream);
    // Produce responses held back while more produce requests are buffered (module docs).
    let mut held_back: Option<super::frame::Frame> = None;
    let mut held_count = 0;
    loop {
        let frame = tokio::select! {
            _ = &mut stop => break,
            f = read_frame_with(&mut stream, &mut buf, max, &limits, |n| low_water.set(n)) => f,
        };
        // The permit (for large frames) is held until the response is written.
        let (frame, permit) = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // A client going away mid-frame is routine; anything else is worth a warning.
            Err(ConnectionError::Io(e)) => {
                tracing::debug!(%peer, error = %e, "connection closed by peer");
                break;
            }
            Err(ConnectionError::Idle(after)) => {
                tracing::info!(%peer, idle_ms = after.as_millis() as u64, "closing idle connection");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let produce = is_produce(&frame);
        match handle_frame(&broker, frame, &shutdown, &client_host, &fetch_waker).await {
            Ok(handled) => {
                if let Some(response) = handled.response {
                    match &mut held_back {
                        Some(held) => held.extend(response),
                        None => held_back = Some(response),
                    }
                    held_count += 1;
                }
                let hold = produce
                    && permit.is_none()
                    && handled.throttle_ms == 0
                    && held_count < HOLD_MAX
                    && produce_frame_buffered(&buf);
                if !hold && let Some(held) = held_back.take() {
                    held_count = 0;
                    if let Err(e) = held.write_to(&mut stream).await {
                        tracing::debug!(%peer, error = %e, "write failed");
                        break;
                    }
                }
                if handled.throttle_ms > 0 {
                    // KIP-219: the response went out at once with its throttle time; now the
                    // connection is muted for that long, whatever the client does.
                    tracing::debug!(%peer, throttle_ms = handled.throttle_ms, "throttling client");
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(Duration::from_millis(handled.throttle_ms as u64)) => {}
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        }
    }
    // Shutdown or an error while responses were held back: they were handled, so send them.
    if let Some(held) = held_back.take() {
        let _ = held.write_to(&mut stream).await;
    }
    tracing::debug!(%peer, "connection closed");
}

/// Frames up to this size are read without taking memory from the shared request pool:
/// the connection's read buffer already bounds them.
pub const SMALL_FRAME: usize = 64 * 1024;

/// Reads the next frame from `stream`, buffering in `buf` (which may already hold the start
/// of it, or of later pipelined frames). `Ok(None)` is a clean close between frames; the
/// frame's permit, if any, must be held until its response is written.
///
/// Bounds: the announced size is checked against `max` (`socket.request.max.bytes`) before
/// anything is allocated; the buffer grows only as bytes arrive; a frame larger than
/// [`SMALL_FRAME`] first takes its size from the broker-wide `queued.max.request.bytes` pool
/// of `limits`, so slow or many senders wait for memory instead of pinning it. Only the wait
/// for the first byte of a frame is bounded by `limits`' idle time
/// (`connections.max.idle.ms`): that is where a connection idles. Generic over the reader so
/// that the `frame_stream` fuzz target drives this very function over in-memory streams.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max: usize,
    limits: &super::Limits,
) -> Result<Option<(Bytes, Option<OwnedSemaphorePermit>)>, ConnectionError> {
    read_frame_with(stream, buf, max, limits, |_| {}).await
}

/// Most bytes a connection asks the socket to gather before waking it (`SO_RCVLOWAT`).
pub(crate) const LOW_WATER_MAX: usize = 512 * 1024;

/// [`read_frame`], telling `low_water` before each read how many bytes are worth waking up
/// for: 1 between frames, and in the middle of a large frame what the next read can take (at
/// most the rest of the frame and [`LOW_WATER_MAX`]). A TCP connection passes it on as
/// `SO_RCVLOWAT`, so that a 1 MiB produce wakes its task a few times instead of once per
/// arriving segment.
pub(crate) async fn read_frame_with<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max: usize,
    limits: &super::Limits,
    mut low_water: impl FnMut(usize),
) -> Result<Option<(Bytes, Option<OwnedSemaphorePermit>)>, ConnectionError> {
    let mut permit = None;
    loop {
        if buf.len() >= 4 {
            let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            if size < 0 || size as usize > max {
                return Err(ConnectionError::FrameTooLarge {
                    size: size.into(),
                    max,
                });
            }
            let size = size as usize;
            if buf.len() >= 4 + size {
                buf.advance(4);
                return Ok(Some((buf.split_to(size).freeze(), permit)));
            }
            if size > SMALL_FRAME && permit.is_none() {
                permit = limits.reserve_request_memory(size).await;
            }
            // Reserve at most as much again as has arrived (at least a read chunk): memory
            // doubles with the data. Following the capacity instead doubled it on every
            // read, so a sender trickling bytes pinned the whole announced size.
            let missing = 4 + size - buf.len();
            buf.reserve(missing.min(READ_CHUNK.max(buf.len())));
            let room = buf.capacity() - buf.len();
            low_water(if missing > READ_CHUNK {
                missing.min(room).min(LOW_WATER_MAX)
            } else {
                1
            });
        } else {
            buf.reserve(READ_CHUNK);
            low_water(1);
        }
        let n = if buf.is_empty() {
            // Between requests: this is where a connection idles.
            match tokio::time::timeout(limits.idle, stream.read_buf(buf)).await {
                Ok(r) => r?,
                Err(_) => return Err(ConnectionError::Idle(limits.idle)),
            }
        } else {
            stream.read_buf(buf).await?
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(ConnectionError::Io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

/// A request frame after parsing.
#[derive(Debug)]
pub enum ParsedRequest {
    /// A request this broker serves.
    Request {
        /// API key.
        api_key: ApiKey,
        /// API version.
        version: i16,
        /// Correlation id.
        correlation_id: i32,
        /// Header.
        header: RequestHeader,
        /// Body (boxed: request bodies are large, the other variant tiny).
        request: Box<api::Request>,
    },
    /// ApiVersions at a version we do not know: answered per KIP-511.
    UnsupportedApiVersions {
        /// Correlation id.
        correlation_id: i32,
    },
}

/// Parses one request frame (without its size prefix): key and version checked against what
/// is served, header decoded, body bounded ([`api::bounds::check_body`]) and decoded. Never
/// panics; `Err` closes the connection. The fuzz target `request` drives this function.
pub fn parse_request(mut frame: Bytes) -> Result<ParsedRequest, ConnectionError> {
    if frame.len() < 8 {
        return Err(ConnectionError::Malformed(format!(
            "request of {} bytes is shorter than a header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(key)
        .map_err(|_| ConnectionError::Malformed(format!("unknown api key {key}")))?;
    let Some(range) = api::supported_versions(api_key) else {
        return Err(ConnectionError::Malformed(format!(
            "api {api_key:?} is not served"
        )));
    };
    if version < range.0 || version > range.1 {
        if api_key == ApiKey::ApiVersions {
            return Ok(ParsedRequest::UnsupportedApiVersions { correlation_id });
        }
        return Err(ConnectionError::Malformed(format!(
            "{api_key:?} v{version} is not supported (served: v{}..=v{})",
            range.0, range.1
        )));
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| ConnectionError::Malformed(format!("{api_key:?} v{version} header: {e}")))?;
    // From here on, the version whose bytes the body has (the same header versions).
    let version = api::wire_version(api_key, version);
    // A Fetch of the usual shape is read by Fjord's own reader, which bounds what it reserves
    // by the bytes left itself (see `fetch_decode`).
    let fast = match api_key {
        ApiKey::Fetch => super::fetch_decode::decode(&frame, version).map(api::Request::Fetch),
        _ => None,
    };
    let request = match fast {
        Some(request) => request,
        None => {
            // Every count and length against the bytes left, before the decoder sizes a Vec
            // by them.
            api::bounds::check_body(api_key, version, &frame).map_err(|e| {
                ConnectionError::Malformed(format!("{api_key:?} v{version} body: {e}"))
            })?;
            RequestKind::decode(api_key, &mut frame, version)
                .map_err(|e| {
                    ConnectionError::Malformed(format!("{api_key:?} v{version} body: {e}"))
                })?
                .into()
        }
    };
    Ok(ParsedRequest::Request {
        api_key,
        version,
        correlation_id,
        header,
        request: Box::new(request),
    })
}

/// What handling one request produced.
pub(crate) struct Handled {
    /// The encoded response; `None` for Produce with acks=0, which gets none.
    pub response: Option<super::frame::Frame>,
    /// How long to stop reading this connection's requests (quota throttling), in ms.
    pub throttle_ms: i32,
}

/// Parses, dispatches and encodes one request, applying client quotas.
pub(crate) async fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    shutdown: &watch::Receiver<bool>,
    client_host: &Arc<str>,
    fetch_waker: &Arc<tokio::sync::Notify>,
) -> Result<Handled, ConnectionError> {
    let frame_len = frame.len();
    let started = std::time::Instant::now();
    let (api_key, version, correlation_id, header, request) = match parse_request(frame)? {
        ParsedRequest::Request {
            api_key,
            version,
            correlation_id,
            header,
            request,
        } => (api_key, version, correlation_id, header, request),
        ParsedRequest::UnsupportedApiVersions { correlation_id } => {
            // KIP-511: answer in the v0 layout with UNSUPPORTED_VERSION and our ranges, so
            // the client can retry at a version both sides know.
            let body = api::api_versions::unsupported_version_response();
            let body =
                api::Response::Kafka(kafka_protocol::messages::ResponseKind::ApiVersions(body));
            let response = super::frame::encode(correlation_id, 0, 0, &body, Vec::new())?;
            return Ok(Handled {
                response: Some(response),
                throttle_ms: 0,
            });
        }
    };
    tracing::trace!(?api_key, version, correlation_id, client_id = ?header.client_id, "request");
    let ctx = api::RequestContext {
        broker: Arc::clone(broker),
        api_version: version,
        header,
        client_host: Arc::clone(client_host),
        fetch_waker: Arc::clone(fetch_waker),
        shutdown: shutdown.clone(),
        file_records: Default::default(),
    };
    let response = api::handle(&ctx, *request).await?;
    let throttle_ms = quota_throttle(
        broker,
        api_key,
        version,
        ctx.header.client_id.as_deref().unwrap_or_default(),
        frame_len,
        started,
        response.as_ref(),
    );
    let Some(mut response) = response else {
        return Ok(Handled {
            response: None,
            throttle_ms,
        });
    };
    if throttle_ms > 0 {
        api::set_throttle(&mut response, throttle_ms);
    }
    let response_header_version = api_key.response_header_version(version);
    let files = std::mem::take(
        &mut *ctx
            .file_records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let response = super::frame::encode(
        correlation_id,
        response_header_version,
        version,
        &response,
        files,
    )?;
    Ok(Handled {
        response: Some(response),
        throttle_ms,
    })
}

/// Records the request against the client's quotas and returns the throttle time: produce
/// bytes (the request size), fetch bytes (the response size) and handler time (excluding a
/// fetch's long-poll wait, which costs no thread time).
fn quota_throttle(
    broker: &Broker,
    api_key: ApiKey,
    version: i16,
    client_id: &str,
    frame_len: usize,
    started: std::time::Instant,
    response: Option<&api::Response>,
) -> i32 {
    use crate::quota::{CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE};
    // Without quotas there is nothing to record, and sizing a fetch response walks all of it.
    if broker.image().quotas().is_empty() {
        return 0;
    }
    let mut throttle = 0;
    match (api_key, response) {
        (ApiKey::Produce, _) => {
            throttle = broker.record_quota(PRODUCER_BYTE_RATE, client_id, frame_len as f64)
        }
        (ApiKey::Fetch, Some(api::Response::Fetch(r))) => {
            let size = super::fetch_encode::encoded_len(r, version)
                .or_else(|| r.to_kafka().compute_size(version).ok())
                .unwrap_or(0);
            throttle = broker.record_quota(CONSUMER_BYTE_RATE, client_id, size as f64);
        }
        _ => {}
    }
    if api_key != ApiKey::Fetch {
        // Percent of one thread: seconds of handler time x 100.
        let percent_seconds = started.elapsed().as_secs_f64() * 100.0;
        throttle =
            throttle.max(broker.record_quota(REQUEST_PERCENTAGE, client_id, percent_seconds));
    }
    throttle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(api_key: i16, body_len: usize) -> Vec<u8> {
        let size = 2 + body_len;
        let mut f = (size as i32).to_be_bytes().to_vec();
        f.extend(api_key.to_be_bytes());
        f.extend(std::iter::repeat_n(0u8, body_len));
        f
    }

    #[test]
    fn only_a_whole_buffered_produce_frame_counts() {
        let produce = frame(ApiKey::Produce as i16, 10);
        assert!(produce_frame_buffered(&produce));
        assert!(
            !produce_frame_buffered(&produce[..produce.len() - 1]),
            "partial"
        );
        assert!(!produce_frame_buffered(&produce[..5]), "partial key");
        assert!(!produce_frame_buffered(&[]));
        assert!(!produce_frame_buffered(&frame(ApiKey::Fetch as i16, 10)));
        let mut two = produce.clone();
        two.extend(frame(ApiKey::Fetch as i16, 3));
        assert!(produce_frame_buffered(&two), "the first frame decides");
        assert!(
            !produce_frame_buffered(&(-1i32).to_be_bytes()),
            "negative size"
        );
        assert!(
            !produce_frame_buffered(&[0, 0, 0, 1, 0]),
            "too short for a key"
        );
    }
}
