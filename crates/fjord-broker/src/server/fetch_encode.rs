//! A Fetch response body written field by field (versions 4–17).
//!
//! kafka-protocol's encoder decides whether each partition's tagged fields (diverging epoch,
//! current leader, snapshot id) are written by building their default values and comparing
//! against them, twice, and dropping them again: at 1,000 partitions per fetch that, and the
//! encoder's general walk, was about a quarter of the broker's samples (session 17). The broker
//! never sets those fields, so this writer checks the plain shape with a few field loads and
//! writes the bytes directly. A response with anything else (tagged or unknown fields, node
//! endpoints, a field the version does not have) is left to kafka-protocol. A test compares
//! both encoders byte for byte over every version.

use bytes::BufMut;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};

/// Writes the body of `fetch` at `version` exactly as kafka-protocol would, and returns true;
/// or writes nothing and returns false when the response is not of the plain shape.
///
/// Everything but record sets is gathered in a local buffer and handed to `buf` in one
/// `put_slice` before each non-empty record set and at the end, so that `buf` sees few
/// writes and each record set as a slice of its own.
pub(super) fn encode<B: BufMut>(fetch: &FetchResponse, version: i16, buf: &mut B) -> bool {
    if !is_plain(fetch, version) {
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

/// Framing bytes on their way to `out`; record sets go straight through.
struct Framing<'a, B> {
    out: &'a mut B,
    pending: Vec<u8>,
}

impl<B: BufMut> Framing<'_, B> {
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.out.put_slice(&self.pending);
            self.pending.clear();
        }
    }

    fn records(&mut self, records: &[u8]) {
        if !records.is_empty() {
            self.flush();
            self.out.put_slice(records);
        }
    }
}

fn write<B: BufMut>(fetch: &FetchResponse, version: i16, buf: &mut Framing<'_, B>) {
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
        for p in &topic.partitions {
            put_partition(buf, p, version);
        }
        if flexible {
            buf.pending.put_u8(0); // no tagged fields
        }
    }
    if flexible {
        buf.pending.put_u8(0);
    }
}

fn put_partition<B: BufMut>(buf: &mut Framing<'_, B>, p: &PartitionData, version: i16) {
    let flexible = version >= 12;
    buf.pending.put_i32(p.partition_index);
    buf.pending.put_i16(p.error_code);
    buf.pending.put_i64(p.high_watermark);
    buf.pending.put_i64(p.last_stable_offset);
    if version >= 5 {
        buf.pending.put_i64(p.log_start_offset);
    }
    match &p.aborted_transactions {
        None if flexible => buf.pending.put_u8(0),
        None => buf.pending.put_i32(-1),
        Some(aborted) => {
            put_len(&mut buf.pending, flexible, aborted.len());
            for a in aborted {
                buf.pending.put_i64(a.producer_id.0);
                buf.pending.put_i64(a.first_offset);
                if flexible {
                    buf.pending.put_u8(0);
                }
            }
        }
    }
    if version >= 11 {
        buf.pending.put_i32(p.preferred_read_replica.0);
    }
    match &p.records {
        None if flexible => buf.pending.put_u8(0),
        None => buf.pending.put_i32(-1),
        Some(records) => {
            if flexible {
                put_uvarint(&mut buf.pending, records.len() as u32 + 1);
            } else {
                buf.pending.put_i32(records.len() as i32);
            }
            // The very slice, so that a chunked buffer can tell a record set by its address.
            buf.records(records);
        }
    }
    if flexible {
        buf.pending.put_u8(0);
    }
}

/// Whether `fetch` has only what [`encode`] writes, within the limits of each field's length
/// prefix, and no field `version` lacks that kafka-protocol would refuse.
fn is_plain(fetch: &FetchResponse, version: i16) -> bool {
    (4..=17).contains(&version)
        && fetch.unknown_tagged_fields.is_empty()
        && fetch.node_endpoints.is_empty()
        && (version >= 7 || fetch.session_id == 0)
        && fits(fetch.responses.len())
        && fetch.responses.iter().all(|t| is_plain_topic(t, version))
}

fn is_plain_topic(t: &FetchableTopicResponse, version: i16) -> bool {
    t.unknown_tagged_fields.is_empty()
        && t.topic.0.len() <= i16::MAX as usize
        && fits(t.partitions.len())
        && t.partitions.iter().all(|p| is_plain_partition(p, version))
}

fn is_plain_partition(p: &PartitionData, version: i16) -> bool {
    let d = &p.diverging_epoch;
    let l = &p.current_leader;
    let s = &p.snapshot_id;
    p.unknown_tagged_fields.is_empty()
        && (d.epoch, d.end_offset) == (-1, -1)
        && d.unknown_tagged_fields.is_empty()
        && (l.leader_id.0, l.leader_epoch) == (-1, -1)
        && l.unknown_tagged_fields.is_empty()
        && (s.end_offset, s.epoch) == (-1, -1)
        && s.unknown_tagged_fields.is_empty()
        && (version >= 11 || p.preferred_read_replica.0 == -1)
        && p.aborted_transactions
            .as_ref()
            .is_none_or(|a| fits(a.len()) && a.iter().all(|a| a.unknown_tagged_fields.is_empty()))
        && p.records.as_ref().is_none_or(|r| fits(r.len()))
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
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, LeaderIdAndEpoch, NodeEndpoint, SnapshotId,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    /// A small deterministic generator (xorshift), so the shapes vary without a dependency.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn i64(&mut self) -> i64 {
            match self.below(4) {
                0 => -1,
                1 => 0,
                2 => self.next() as i64,
                _ => self.below(1 << 20) as i64,
            }
        }
    }

    fn response(g: &mut Gen, version: i16) -> FetchResponse {
        let topics = (0..g.below(4))
            .map(|t| {
                // Long names and many partitions need multi-byte length prefixes.
                let name = "t".repeat([1, 130, 300][g.below(3) as usize]) + &t.to_string();
                let partitions = (0..[0, 1, 3, 140][g.below(4) as usize])
                    .map(|i| {
                        let records = match g.below(5) {
                            0 => None,
                            1 => Some(Bytes::new()),
                            2 => Some(Bytes::from(vec![7u8; 20_000])),
                            _ => Some(Bytes::from(vec![i as u8; g.below(300) as usize])),
                        };
                        let aborted = match g.below(3) {
                            0 => None,
                            1 => Some(Vec::new()),
                            _ => Some(vec![
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(g.i64()))
                                    .with_first_offset(g.i64());
                                g.below(3) as usize
                            ]),
                        };
                        PartitionData::default()
                            .with_partition_index(i)
                            .with_error_code(g.below(3) as i16)
                            .with_high_watermark(g.i64())
                            .with_last_stable_offset(g.i64())
                            .with_log_start_offset(g.i64())
                            .with_aborted_transactions(aborted)
                            .with_preferred_read_replica(BrokerId(if version >= 11 {
                                g.below(3) as i32 - 1
                            } else {
                                -1
                            }))
                            .with_records(records)
                    })
                    .collect();
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(if version <= 12 {
                        name
                    } else {
                        String::new()
                    })))
                    .with_topic_id(if version >= 13 {
                        uuid::Uuid::from_u128(u128::from(g.next()))
                    } else {
                        uuid::Uuid::nil()
                    })
                    .with_partitions(partitions)
            })
            .collect();
        let r = FetchResponse::default()
            .with_throttle_time_ms(g.below(100) as i32)
            .with_responses(topics);
        if version >= 7 {
            r.with_error_code(g.below(2) as i16)
                .with_session_id(g.next() as i32)
        } else {
            r
        }
    }

    fn kafka_protocol_bytes(fetch: &FetchResponse, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        fetch.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    #[test]
    fn plain_responses_encode_as_kafka_protocol_does_at_every_version() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for version in 4..=17 {
            for _ in 0..60 {
                let fetch = response(&mut g, version);
                let mut buf = BytesMut::new();
                assert!(encode(&fetch, version, &mut buf), "v{version}: not plain");
                assert_eq!(
                    buf.to_vec(),
                    kafka_protocol_bytes(&fetch, version),
                    "v{version}"
                );
            }
        }
    }

    /// Anything else is left to kafka-protocol, with nothing written.
    #[test]
    fn other_responses_are_left_to_kafka_protocol() {
        let part = PartitionData::default();
        let with = |p: PartitionData| {
            FetchResponse::default().with_responses(vec![
                FetchableTopicResponse::default().with_partitions(vec![p]),
            ])
        };
        let cases =
            [
                (
                    12,
                    with(part.clone().with_diverging_epoch(
                        EpochEndOffset::default().with_epoch(3).with_end_offset(9),
                    )),
                ),
                (
                    12,
                    with(part.clone().with_current_leader(
                        LeaderIdAndEpoch::default().with_leader_id(BrokerId(1)),
                    )),
                ),
                (
                    12,
                    with(
                        part.clone()
                            .with_snapshot_id(SnapshotId::default().with_epoch(2)),
                    ),
                ),
                (
                    12,
                    with(
                        part.clone()
                            .with_unknown_tagged_fields([(9, Bytes::from_static(b"x"))].into()),
                    ),
                ),
                (
                    10,
                    with(part.clone().with_preferred_read_replica(BrokerId(1))),
                ),
                (6, with(part.clone()).with_session_id(5)),
                (
                    16,
                    with(part.clone()).with_node_endpoints(vec![NodeEndpoint::default()]),
                ),
                (3, with(part.clone())),
                (18, with(part.clone())),
            ];
        for (version, fetch) in cases {
            let mut buf = BytesMut::new();
            assert!(!encode(&fetch, version, &mut buf), "v{version}: {fetch:?}");
            assert!(buf.is_empty());
        }
    }
}
