//! A Fetch response body written field by field (versions 4–17).
//!
//! kafka-protocol's encoder decides whether each partition's tagged fields (diverging epoch,
//! current leader, snapshot id) are written by building their default values and comparing
//! against them, twice, and dropping them again: at 1,000 partitions per fetch that, and the
//! encoder's general walk, was about a quarter of the broker's samples (session 17). The
//! broker's answers ([`FetchAnswer`]) have none of those fields, so this writer puts the bytes
//! down directly. Versions outside 4–17, and lengths a prefix cannot carry, are left to
//! kafka-protocol (through [`FetchAnswer::to_kafka`]). A test compares both encoders byte for
//! byte over every version.

use bytes::BufMut;

use crate::api::fetch_answer::{FetchAnswer, PartitionAnswer};

/// Writes the body of `fetch` at `version` exactly as kafka-protocol would write
/// `fetch.to_kafka()`, and returns true; or writes nothing and returns false when this writer
/// does not cover it.
///
/// Everything but record sets is gathered in a local buffer and handed to `buf` in one
/// `put_slice` before each non-empty record set and at the end, so that `buf` sees few
/// writes and each record set as a slice of its own.
pub(super) fn encode<O: Out>(fetch: &FetchAnswer, version: i16, buf: &mut O) -> bool {
    if !is_covered(fetch, version) {
        return false;
    }
    let mut framing = Framing {
        out: buf,
        pending: Vec::with_capacity(256),
    };
    write(fetch, version, &mut framing);
    framing.flush();
    true
}

/// The length of the body [`encode`] writes, counted by writing it without keeping the
/// bytes (the quota's response size); `None` when it does not cover `fetch`.
pub(super) fn encoded_len(fetch: &FetchAnswer, version: i16) -> Option<usize> {
    let mut count = Count(0);
    encode(fetch, version, &mut count).then_some(count.0)
}

/// Where [`Framing`] hands its bytes: a buffer, or a [`Count`].
pub(super) trait Out {
    fn put(&mut self, bytes: &[u8]);
}

impl<B: BufMut> Out for B {
    fn put(&mut self, bytes: &[u8]) {
        self.put_slice(bytes);
    }
}

/// Counts the bytes handed to it.
struct Count(usize);

impl Out for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Framing bytes on their way to `out`; record sets go straight through.
struct Framing<'a, O: ?Sized> {
    out: &'a mut O,
    pending: Vec<u8>,
}

impl<O: Out + ?Sized> Framing<'_, O> {
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.out.put(&self.pending);
            self.pending.clear();
        }
    }

    fn records(&mut self, records: &[u8]) {
        if !records.is_empty() {
            self.flush();
            self.out.put(records);
        }
    }
}

fn write<O: Out + ?Sized>(fetch: &FetchAnswer, version: i16, buf: &mut Framing<'_, O>) {
    let flexible = version >= 12;
    buf.pending.put_i32(fetch.throttle_time_ms);
    if version >= 7 {
        buf.pending.put_i16(fetch.error_code);
        buf.pending.put_i32(fetch.session_id);
    }
    put_len(&mut buf.pending, flexible, fetch.responses.len());
    for topic in &fetch.responses {
        if version <= 12 {
            let name = topic.topic.0.as_bytes();
            if flexible {
                put_uvarint(&mut buf.pending, name.len() as u32 + 1);
            } else {
                buf.pending.put_i16(name.len() as i16);
            }
            buf.pending.put_slice(name);
        }
        if version >= 13 {
            buf.pending.put_slice(topic.topic_id.as_bytes());
        }
        put_len(&mut buf.pending, flexible, topic.partitions.len());
        // The fixed part of a partition's answer is at most 47 bytes.
        buf.pending.reserve(topic.partitions.len() * 48);
        for p in &topic.partitions {
            put_partition(buf, p, fetch.read_committed, version);
        }
        if flexible {
            buf.pending.put_u8(0); // no tagged fields
        }
    }
    if flexible {
        buf.pending.put_u8(0);
    }
}

fn put_partition<O: Out + ?Sized>(
    buf: &mut Framing<'_, O>,
    p: &PartitionAnswer,
    read_committed: bool,
    version: i16,
) {
    let flexible = version >= 12;
    // The fields before the record set, gathered on the stack and appended at once: a `Vec`
    // write per field reloads and stores its length each time.
    let mut head = Head::default();
    head.put(&p.partition_index.to_be_bytes());
    head.put(&p.error_code.to_be_bytes());
    head.put(&p.high_watermark.to_be_bytes());
    head.put(&p.last_stable_offset.to_be_bytes());
    if version >= 5 {
        head.put(&p.log_start_offset.to_be_bytes());
    }
    // Aborted transactions: an empty list under READ_COMMITTED, else null.
    match (read_committed, flexible) {
        (true, true) => head.put(&[1]),
        (true, false) => head.put(&0i32.to_be_bytes()),
        (false, true) => head.put(&[0]),
        (false, false) => head.put(&(-1i32).to_be_bytes()),
    }
    if version >= 11 {
        head.put(&(-1i32).to_be_bytes()); // no preferred read replica
    }
    buf.pending.extend_from_slice(head.bytes());
    if flexible {
        put_uvarint(&mut buf.pending, p.records.len() as u32 + 1);
    } else {
        buf.pending.put_i32(p.records.len() as i32);
    }
    // The very slice, so that a chunked buffer can tell a record set by its address.
    buf.records(&p.records);
    if flexible {
        buf.pending.put_u8(0);
    }
}

/// Room for the fixed fields of a partition's answer: at most 4 + 2 + 3 x 8 + 4 + 4 = 38
/// bytes.
struct Head {
    bytes: [u8; 40],
    len: usize,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl Head {
    fn put(&mut self, field: &[u8]) {
        self.bytes[self.len..self.len + field.len()].copy_from_slice(field);
        self.len += field.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Whether [`encode`] writes `fetch` at `version`: a version it knows, every length within
/// its prefix, and no session id where the version has no field for it (kafka-protocol
/// refuses that).
fn is_covered(fetch: &FetchAnswer, version: i16) -> bool {
    (4..=17).contains(&version)
        && (version >= 7 || fetch.session_id == 0)
        && fits(fetch.responses.len())
        && fetch.responses.iter().all(|t| {
            t.topic.0.len() <= i16::MAX as usize
                && fits(t.partitions.len())
                && t.partitions.iter().all(|p| fits(p.records.len()))
        })
}

/// A length every prefix here can carry (an `i32`, or a `u32` varint of length + 1).
fn fits(len: usize) -> bool {
    len < i32::MAX as usize
}

/// An array's length: an `i32`, or in flexible versions a varint of length + 1.
fn put_len(buf: &mut Vec<u8>, flexible: bool, len: usize) {
    if flexible {
        put_uvarint(buf, len as u32 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_uvarint(buf: &mut Vec<u8>, v: u32) {
    fjord_log::put_unsigned(buf, u64::from(v));
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::api::fetch_answer::TopicAnswer;
    use crate::server::xorshift::Gen;

    fn answer(g: &mut Gen, version: i16) -> FetchAnswer {
        let responses = (0..g.below(4))
            .map(|t| {
                // Long names and many partitions need multi-byte length prefixes.
                let name = "t".repeat([1, 130, 300][g.below(3) as usize]) + &t.to_string();
                let partitions = (0..[0, 1, 3, 140][g.below(4) as usize])
                    .map(|i| PartitionAnswer {
                        partition_index: i,
                        error_code: g.below(3) as i16,
                        high_watermark: g.i64(),
                        last_stable_offset: g.i64(),
                        log_start_offset: g.i64(),
                        records: match g.below(4) {
                            0 => Bytes::new(),
                            1 => Bytes::from(vec![7u8; 20_000]),
                            _ => Bytes::from(vec![i as u8; g.below(300) as usize]),
                        },
                    })
                    .collect();
                TopicAnswer {
                    topic: TopicName(StrBytes::from_string(if version <= 12 {
                        name
                    } else {
                        String::new()
                    })),
                    topic_id: if version >= 13 {
                        uuid::Uuid::from_u128(u128::from(g.next()))
                    } else {
                        uuid::Uuid::nil()
                    },
                    partitions,
                }
            })
            .collect();
        let (error_code, session_id) = if version >= 7 {
            (g.below(2) as i16, g.next() as i32)
        } else {
            (0, 0)
        };
        FetchAnswer {
            throttle_time_ms: g.below(100) as i32,
            error_code,
            session_id,
            read_committed: g.below(2) == 0,
            responses,
        }
    }

    fn kafka_protocol_bytes(fetch: &FetchAnswer, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        fetch.to_kafka().encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    #[test]
    fn answers_encode_as_kafka_protocol_does_at_every_version() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for version in 4..=17 {
            for _ in 0..60 {
                let fetch = answer(&mut g, version);
                let mut buf = BytesMut::new();
                assert!(encode(&fetch, version, &mut buf), "v{version}: not covered");
                assert_eq!(
                    buf.to_vec(),
                    kafka_protocol_bytes(&fetch, version),
                    "v{version}"
                );
                assert_eq!(encoded_len(&fetch, version), Some(buf.len()), "v{version}");
            }
        }
    }

    /// Versions outside 4–17, and a session id below v7, are left to kafka-protocol, with
    /// nothing written.
    #[test]
    fn other_versions_are_left_to_kafka_protocol() {
        let mut g = Gen(7);
        let plain = answer(&mut g, 4);
        let with_session = FetchAnswer {
            session_id: 5,
            ..plain.clone()
        };
        for (version, fetch) in [(3, &plain), (18, &plain), (6, &with_session)] {
            let mut buf = BytesMut::new();
            assert!(!encode(fetch, version, &mut buf), "v{version}: {fetch:?}");
            assert!(buf.is_empty());
            assert_eq!(encoded_len(fetch, version), None);
        }
    }
}
