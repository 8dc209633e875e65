//! Target `request`: request frames through `parse_request` (header and every served body).
//!
//! Input layout: a mode byte, then
//!
//! * mode bit 0 clear — **raw**: the rest is the frame body (after the 4-byte size prefix),
//!   exactly as a client would send it. This covers the api key/version checks and the header.
//! * mode bit 0 set — **selected**: one byte picks an entry of [`fjord_broker::api::SUPPORTED`]
//!   (modulo its length), one byte a version from one below its minimum to its maximum (so the
//!   unsupported-version path, answered per KIP-511 for ApiVersions, is reached too). With mode
//!   bit 1 set the harness writes a well-formed request header itself and the rest of the input
//!   is the body, so the fuzzer spends its time in the body decoders; with bit 1 clear the rest
//!   is header and body.
//!
//! `parse_request` must never panic, and what it returns must agree with the frame: the api
//! key and version are the frame's, the version is served, the header repeats them and the
//! correlation id, and the body is the variant of that api key. A Fetch it returns must equal
//! kafka-protocol's decoding of the same body (Fjord reads most Fetch bodies itself).
//!
//! `parse_request` bounds every count and length of the body
//! ([`fjord_broker::api::bounds::check_body`]) before decoding it. The harness also runs that
//! walker alone and checks that it never refuses a body the decoder accepts: whenever it
//! refuses one, the decoder must fail on it too. Two refusals are exempt: a count far beyond
//! the bytes left (decoding it would allocate what the walker is there to prevent) and a
//! known tagged field that does not fill its announced size (the walker is stricter there on
//! purpose).

use bytes::{BufMut, Bytes, BytesMut};
use fjord_broker::api::bounds::{BoundsError, check_body};
use fjord_broker::api::fetch_wanted::FetchWanted;
use fjord_broker::api::{Request, SUPPORTED, supported_versions};
use fjord_broker::server::connection::{ParsedRequest, parse_request};
use kafka_protocol::messages::{ApiKey, FetchRequest, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::input::Input;

/// Correlation id of the headers the harness writes.
pub const CORRELATION_ID: i32 = 0x0102_0304;

/// Runs one input; panics when `parse_request` panics or breaks an invariant.
pub fn run(data: &[u8]) {
    check_frame(&frame(data));
}

/// Parses one frame (without its size prefix) and checks the result against the frame, and
/// the bounds walker against the decoder.
pub fn check_frame(frame: &[u8]) {
    check(frame, parse_request(Bytes::copy_from_slice(frame)));
    check_walker(frame);
}

/// Counts up to this far beyond the bytes left are decoded to check that the decoder fails
/// on them too; larger ones would make it reserve more than a fuzz run should.
const DECODABLE_LIE: u64 = 1 << 16;

/// On a served request whose header decodes: a body the walker refuses must not decode.
fn check_walker(frame: &[u8]) {
    let [k0, k1, v0, v1, ..] = *frame else { return };
    let version = i16::from_be_bytes([v0, v1]);
    let Ok(key) = ApiKey::try_from(i16::from_be_bytes([k0, k1])) else {
        return;
    };
    match supported_versions(key) {
        Some((min, max)) if (min..=max).contains(&version) => {}
        _ => return,
    }
    let mut body = Bytes::copy_from_slice(frame);
    if RequestHeader::decode(&mut body, key.request_header_version(version)).is_err() {
        return;
    }
    let refused = match check_body(key, version, &body) {
        Ok(used) => {
            assert!(used <= body.len(), "walked {used} of {} bytes", body.len());
            return;
        }
        Err(BoundsError::TooLong { len, .. }) if len > DECODABLE_LIE => return,
        Err(BoundsError::TagSize { .. }) => return,
        Err(e) => e,
    };
    if crate::tracing() {
        eprintln!("{key:?} v{version}: walker refuses: {refused}");
    }
    let decoded = RequestKind::decode(key, &mut body, version);
    assert!(
        decoded.is_err(),
        "{key:?} v{version}: the walker refuses a body the decoder accepts ({refused}): {decoded:?}"
    );
}

/// Turns fuzzer input into a request frame (without its size prefix); see the module docs.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let mut input = Input::new(data);
    let mode = input.u8();
    if mode & 1 == 0 {
        return input.rest().to_vec();
    }
    let (key, min, max) = SUPPORTED[usize::from(input.u8()) % SUPPORTED.len()];
    let span = u16::try_from(max - min).unwrap_or(0) + 2;
    let version = min - 1 + (u16::from(input.u8()) % span) as i16;
    let mut out = BytesMut::new();
    if mode & 2 != 0 {
        header_bytes(key, version, &mut out);
    } else {
        out.put_i16(key as i16);
        out.put_i16(version);
    }
    out.put_slice(input.rest());
    out.to_vec()
}

/// Writes a well-formed request header for `key` at `version` (client id "fuzz").
pub fn header_bytes(key: ApiKey, version: i16, out: &mut BytesMut) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(CORRELATION_ID)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let header_version = key.request_header_version(version);
    if header.encode(out, header_version).is_err() {
        // Only a version the header does not know fails to encode; fall back to the fixed
        // prefix so the input still reaches the api/version checks.
        out.put_i16(key as i16);
        out.put_i16(version);
        out.put_i32(CORRELATION_ID);
    }
}

fn check(frame: &[u8], parsed: Result<ParsedRequest, impl std::fmt::Debug>) {
    let Ok(parsed) = parsed else { return };
    // Parsing succeeded, so the fixed 8-byte prefix was there.
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let served = SUPPORTED.iter().find(|(k, _, _)| *k as i16 == key);
    match parsed {
        ParsedRequest::Request {
            api_key,
            version: parsed_version,
            correlation_id,
            header,
            request,
        } => {
            let (_, min, max) = served.expect("a parsed request has a served api key");
            assert_eq!(api_key as i16, key);
            // The version the body was read as (an old version identical to a newer one is it).
            assert_eq!(
                parsed_version,
                fjord_broker::api::wire_version(api_key, version)
            );
            assert!((*min..=*max).contains(&version), "v{version} is not served");
            assert_eq!(correlation_id, correlation);
            assert_eq!(header.request_api_key, key);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, correlation);
            assert!(
                body_matches(&request, api_key),
                "body variant does not match {api_key:?}"
            );
            if api_key == ApiKey::Fetch {
                check_fetch_reader(frame, version, &request);
            }
        }
        ParsedRequest::UnsupportedApiVersions { correlation_id } => {
            let (k, min, max) = served.expect("ApiVersions is served");
            assert_eq!(*k, ApiKey::ApiVersions);
            assert!(!(*min..=*max).contains(&version));
            assert_eq!(correlation_id, correlation);
        }
    }
}

/// A Fetch body may be read by Fjord's own reader (`server::fetch_decode`) rather than
/// kafka-protocol's decoder: whatever `parse_request` made of it, kafka-protocol must decode
/// the body to the same request.
fn check_fetch_reader(frame: &[u8], version: i16, parsed: &Request) {
    let mut body = Bytes::copy_from_slice(frame);
    RequestHeader::decode(&mut body, ApiKey::Fetch.request_header_version(version))
        .expect("parse_request decoded this header");
    let theirs = FetchRequest::decode(&mut body, version).map(FetchWanted::from);
    let ours = match parsed {
        Request::Fetch(wanted) => Some(wanted),
        Request::Kafka(_) => None,
    };
    assert_eq!(
        theirs.as_ref().ok(),
        ours,
        "Fetch v{version}: Fjord's reader and kafka-protocol disagree: {theirs:?}"
    );
}

/// Whether the decoded body is the variant of `key`. `RequestKind` has no accessor for its
/// key, but its variants are named like `ApiKey`'s, so the variant name is read from the
/// start of its `Debug` output (formatting stops at the first parenthesis).
fn body_matches(request: &Request, key: ApiKey) -> bool {
    let request = match request {
        Request::Fetch(_) => return key == ApiKey::Fetch,
        Request::Kafka(request) => request,
    };
    struct Head(String);
    impl std::fmt::Write for Head {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.push_str(s);
            if self.0.contains('(') {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut head = Head(String::new());
    let _ = std::fmt::write(&mut head, format_args!("{request:?}"));
    head.0.split('(').next() == Some(format!("{key:?}").as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports which served (api key, version) pairs the local corpus decodes successfully,
    /// and checks that every served api key is among them. (Versions that decode through the
    /// same branches as another add no coverage, so libFuzzer keeps no input for them.)
    /// Run after fuzzing: `cargo test --lib corpus_reaches -- --ignored --nocapture`.
    #[test]
    #[ignore = "reads the local fuzz/corpus/request, which is not committed"]
    fn corpus_reaches_every_served_api() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/request");
        let mut decoded = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(ParsedRequest::Request {
                api_key, version, ..
            }) = parse_request(Bytes::from(frame(&data)))
            {
                decoded.insert((api_key as i16, version));
            }
        }
        let served: usize = SUPPORTED
            .iter()
            .map(|(_, lo, hi)| (hi - lo + 1) as usize)
            .sum();
        println!("decoded {} of {served} served versions", decoded.len());
        let missing: Vec<_> = SUPPORTED
            .iter()
            .filter(|(k, _, _)| !decoded.iter().any(|(d, _)| *d == *k as i16))
            .map(|(k, _, _)| format!("{k:?}"))
            .collect();
        assert!(missing.is_empty(), "never decoded: {missing:?}");
    }
}
