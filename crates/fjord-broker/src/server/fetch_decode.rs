//! A Fetch request body (versions 4–17) read field by field into the broker's own type
//! ([`FetchWanted`]).
//!
//! A consumer that does not use fetch sessions (librdkafka never does) names every partition
//! it reads in every Fetch. kafka-protocol's generic decoder, its per-field `Result`s and the
//! moves of each decoded partition through them were about 12 % of the broker's samples at
//! 1,000 partitions (session 18). This reader handles the shape clients send: no tagged
//! fields, no null arrays or strings, the body read exactly to its end. Anything else returns
//! `None`, and the caller checks the body's bounds and decodes it with kafka-protocol, so its
//! results and its errors are unchanged. The reader runs before the bounds check, so it never
//! reserves room for more elements than the bytes left can hold. A test compares both
//! decoders over generated requests of every version, and over every cut of them.

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::ForgottenTopic;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::api::fetch_wanted::{FetchWanted, WantedPartition, WantedTopic};

/// The request in `body` at `version`, or `None` when this reader does not cover it (see the
/// module's doc): the caller then decodes it with kafka-protocol.
pub(crate) fn decode(body: &Bytes, version: i16) -> Option<FetchWanted> {
    if !(4..=17).contains(&version) {
        return None;
    }
    let mut r = Reader {
        src: body,
        at: 0,
        flexible: version >= 12,
    };
    let mut req = FetchWanted::default();
    if version <= 14 {
        r.i32()?; // replica_id: not used by the broker
    }
    req.max_wait_ms = r.i32()?;
    req.min_bytes = r.i32()?;
    req.max_bytes = r.i32()?;
    req.isolation_level = r.i8()?;
    if version >= 7 {
        req.session_id = r.i32()?;
        req.session_epoch = r.i32()?;
    }
    let topics = r.len()?;
    // The fewest bytes a topic and a partition take on the wire at this version.
    let (topic_min, partition_min) = match version {
        4 => (6, 16),
        5..=8 => (6, 24),
        9..=11 => (6, 28),
        12 => (3, 33),
        _ => (18, 33),
    };
    req.topics = Vec::with_capacity(r.capacity(topics, topic_min));
    for _ in 0..topics {
        let mut topic = WantedTopic::default();
        if version <= 12 {
            topic.topic = TopicName(r.string()?);
        } else {
            topic.topic_id = r.uuid()?;
        }
        let partitions = r.len()?;
        topic.partitions = Vec::with_capacity(r.capacity(partitions, partition_min));
        for _ in 0..partitions {
            let partition = r.i32()?;
            let current_leader_epoch = if version >= 9 { r.i32()? } else { -1 };
            let fetch_offset = r.i64()?;
            let last_fetched_epoch = if version >= 12 { r.i32()? } else { -1 };
            let log_start_offset = if version >= 5 { r.i64()? } else { -1 };
            let partition_max_bytes = r.i32()?;
            r.no_tagged_fields()?;
            topic.partitions.push(WantedPartition {
                partition,
                current_leader_epoch,
                fetch_offset,
                last_fetched_epoch,
                log_start_offset,
                partition_max_bytes,
            });
        }
        r.no_tagged_fields()?;
        req.topics.push(topic);
    }
    if version >= 7 {
        let forgotten = r.len()?;
        req.forgotten_topics_data = Vec::with_capacity(r.capacity(forgotten, topic_min));
        for _ in 0..forgotten {
            let mut topic = ForgottenTopic::default();
            if version <= 12 {
                topic.topic = TopicName(r.string()?);
            } else {
                topic.topic_id = r.uuid()?;
            }
            let partitions = r.len()?;
            topic.partitions = Vec::with_capacity(r.capacity(partitions, 4));
            for _ in 0..partitions {
                topic.partitions.push(r.i32()?);
            }
            r.no_tagged_fields()?;
            req.forgotten_topics_data.push(topic);
        }
    }
    if version >= 11 {
        r.string()?; // rack_id: not used (no fetching from the closest replica, KIP-392)
    }
    r.no_tagged_fields()?;
    (r.at == body.len()).then_some(req)
}

/// A cursor over a request body. Every read returns `None` past the end.
struct Reader<'a> {
    src: &'a Bytes,
    at: usize,
    flexible: bool,
}

impl Reader<'_> {
    /// Room for `count` elements of at least `min` bytes each, but never more than the bytes
    /// left could hold, whatever a count claims: what is reserved stays in proportion to the
    /// body, as [`crate::api::bounds`] ensures for kafka-protocol's decoder.
    fn capacity(&self, count: usize, min: usize) -> usize {
        count.min(self.src.len().saturating_sub(self.at) / min)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.src.get(self.at..self.at + N)?;
        self.at += N;
        bytes.try_into().ok()
    }

    fn i8(&mut self) -> Option<i8> {
        self.take::<1>().map(i8::from_be_bytes)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    fn uuid(&mut self) -> Option<Uuid> {
        self.take::<16>().map(Uuid::from_bytes)
    }

    /// An unsigned varint, read as kafka-protocol reads it
    /// ([`crate::api::bounds::read_uvarint`]).
    fn uvarint(&mut self) -> Option<u32> {
        let (value, len) = crate::api::bounds::read_uvarint(self.src.get(self.at..)?)?;
        self.at += len;
        Some(value)
    }

    /// An array's length; `None` for a null array.
    fn len(&mut self) -> Option<usize> {
        if self.flexible {
            let n = self.uvarint()?;
            usize::try_from(n.checked_sub(1)?).ok()
        } else {
            usize::try_from(self.i32()?).ok()
        }
    }

    /// A string, shared with the body; `None` for a null or non-UTF-8 one.
    fn string(&mut self) -> Option<StrBytes> {
        let len = if self.flexible {
            usize::try_from(self.uvarint()?.checked_sub(1)?).ok()?
        } else {
            usize::try_from(self.i16()?).ok()?
        };
        let end = self.at.checked_add(len).filter(|&e| e <= self.src.len())?;
        let bytes = self.src.slice(self.at..end);
        self.at = end;
        StrBytes::from_utf8(bytes).ok()
    }

    /// An empty tagged-field section (flexible versions); `None` for a non-empty one.
    fn no_tagged_fields(&mut self) -> Option<()> {
        if self.flexible && self.uvarint()? != 0 {
            return None;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::*;
    use crate::server::xorshift::Gen;

    fn name(g: &mut Gen) -> StrBytes {
        // Long names need multi-byte length prefixes; some are not ASCII.
        let base = ["t", "é", "topic-ü"][g.below(3) as usize];
        StrBytes::from_string(base.repeat([1, 70, 300][g.below(3) as usize]))
    }

    fn request(g: &mut Gen, version: i16) -> FetchRequest {
        let topics = (0..[0, 1, 3][g.below(3) as usize])
            .map(|_| {
                let partitions = (0..[0, 1, 5, 140][g.below(4) as usize])
                    .map(|p| {
                        let mut fp = FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(g.next() as i64)
                            .with_partition_max_bytes(g.next() as i32);
                        if version >= 9 {
                            fp.current_leader_epoch = g.next() as i32;
                        }
                        if version >= 12 {
                            fp.last_fetched_epoch = g.next() as i32;
                        }
                        if version >= 5 {
                            fp.log_start_offset = g.next() as i64;
                        }
                        fp
                    })
                    .collect();
                let t = FetchTopic::default().with_partitions(partitions);
                if version <= 12 {
                    t.with_topic(TopicName(name(g)))
                } else {
                    t.with_topic_id(Uuid::from_u128(u128::from(g.next())))
                }
            })
            .collect();
        let mut req = FetchRequest::default()
            .with_max_wait_ms(g.next() as i32)
            .with_min_bytes(g.next() as i32)
            .with_max_bytes(g.next() as i32)
            .with_isolation_level(g.below(2) as i8)
            .with_topics(topics);
        if version <= 14 {
            req.replica_id = (g.below(3) as i32 - 1).into();
        }
        if version >= 7 {
            req.session_id = g.next() as i32;
            req.session_epoch = g.next() as i32;
            req.forgotten_topics_data = (0..g.below(3))
                .map(|_| {
                    let t = ForgottenTopic::default()
                        .with_partitions((0..g.below(200)).map(|p| p as i32).collect());
                    if version <= 12 {
                        t.with_topic(TopicName(name(g)))
                    } else {
                        t.with_topic_id(Uuid::from_u128(u128::from(g.next())))
                    }
                })
                .collect();
        }
        if version >= 11 {
            req.rack_id = name(g);
        }
        req
    }

    fn encoded(req: &FetchRequest, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    /// kafka-protocol's decoding of `body`, as the broker's type.
    fn kafka_protocol(body: &Bytes, version: i16) -> Option<FetchWanted> {
        FetchRequest::decode(&mut body.clone(), version)
            .ok()
            .map(FetchWanted::from)
    }

    #[test]
    fn requests_decode_as_kafka_protocol_decodes_them_at_every_version() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        for version in 4..=17 {
            for _ in 0..40 {
                let req = request(&mut g, version);
                let body = encoded(&req, version);
                let ours = decode(&body, version);
                assert_eq!(ours, Some(FetchWanted::from(req)), "v{version}");
                assert_eq!(ours, kafka_protocol(&body, version), "v{version}");
            }
        }
    }

    /// A body cut short anywhere, or with a byte more, is left to kafka-protocol (which
    /// refuses the cut ones).
    #[test]
    fn cut_or_longer_bodies_are_left_to_kafka_protocol() {
        let mut g = Gen(99);
        for version in [4, 7, 11, 12, 13, 17] {
            let req = request(&mut g, version);
            let body = encoded(&req, version);
            for cut in 0..body.len() {
                assert_eq!(
                    decode(&body.slice(..cut), version),
                    None,
                    "v{version} cut {cut}"
                );
            }
            let mut longer = body.to_vec();
            longer.push(0);
            assert_eq!(decode(&Bytes::from(longer), version), None, "v{version}");
        }
    }

    /// Tagged fields, null arrays and versions outside 4–17 are left to kafka-protocol.
    #[test]
    fn other_shapes_are_left_to_kafka_protocol() {
        let partition = FetchPartition::default().with_partition(1);
        let topic = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![partition.clone()]);
        let plain = FetchRequest::default().with_topics(vec![topic.clone()]);
        let tagged_partition =
            FetchRequest::default().with_topics(vec![topic.clone().with_partitions(vec![
                partition.with_unknown_tagged_fields([(7, Bytes::from_static(b"x"))].into()),
            ])]);
        let cluster_id = plain
            .clone()
            .with_cluster_id(Some(StrBytes::from_static_str("c")));
        for (version, req) in [(12, &tagged_partition), (12, &cluster_id)] {
            let body = encoded(req, version);
            assert_eq!(decode(&body, version), None, "v{version}");
            assert_eq!(
                kafka_protocol(&body, version),
                Some(FetchWanted::from(req.clone()))
            );
        }
        for version in [3, 18] {
            assert_eq!(decode(&encoded(&plain, 12), version), None, "v{version}");
        }
        // A null topics array (-1), which kafka-protocol decides about.
        let mut body = encoded(&plain.clone().with_topics(Vec::new()), 11).to_vec();
        let at = 4 * 4 + 1 + 4 * 2;
        body[at..at + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(decode(&Bytes::from(body), 11), None);
        // A count far above what the body holds reserves only what the body could hold.
        let mut body = encoded(&plain, 12).to_vec();
        let at = 4 * 4 + 1 + 4 * 2 + 1 + 2;
        assert_eq!(body[at], 2, "one partition, compact");
        body.splice(at..=at, [0xff, 0xff, 0xff, 0xff, 0x07]);
        assert_eq!(decode(&Bytes::from(body), 12), None);
        let r = Reader {
            src: &Bytes::from_static(&[0; 100]),
            at: 10,
            flexible: true,
        };
        assert_eq!(r.capacity(usize::MAX, 33), 2);
    }
}
