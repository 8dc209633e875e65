//! The broker's own type for the Fetch responses it makes.
//!
//! kafka-protocol's `PartitionData` is about 230 bytes, with three tagged-field structs and
//! four maps of unknown tagged fields that the broker never fills. A fetch names every
//! partition it reads (librdkafka never uses fetch sessions), so at 1,000 partitions moving
//! each into the answer (5.5 %) and dropping those maps and lists (about 10 %) were about 15 %
//! of the broker's samples (session 18). A [`PartitionAnswer`] holds only what the broker
//! sets, in 64 bytes, and its drop is the record set's. The server writes it with its own
//! encoder (`server::fetch_encode`); [`FetchAnswer::to_kafka`] gives kafka-protocol's response
//! for everything else (versions that encoder does not write, and tests), and a test keeps
//! the two encodings byte-identical.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchResponse, TopicName};
use uuid::Uuid;

/// A Fetch response body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchAnswer {
    /// Quota throttle (KIP-219).
    pub throttle_time_ms: i32,
    /// Top-level error (fetch sessions, v7+).
    pub error_code: i16,
    /// The fetch session's id, 0 for none (v7+).
    pub session_id: i32,
    /// READ_COMMITTED: each partition carries an aborted-transaction list (empty: the broker
    /// holds no aborted transactions); otherwise none (null).
    pub read_committed: bool,
    /// One answer per topic, in request order.
    pub responses: Vec<TopicAnswer>,
}

/// The answers for one topic's partitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicAnswer {
    /// The topic's name (v4–12), shared with the request.
    pub topic: TopicName,
    /// The topic's id (v13+).
    pub topic_id: Uuid,
    /// One answer per partition.
    pub partitions: Vec<PartitionAnswer>,
}

/// One partition's answer. Its preferred read replica is always none (-1).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionAnswer {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// The record set, empty when there is none to send (never null), or a placeholder
    /// standing for file ranges ([`crate::server::frame::record_set`]).
    pub records: Bytes,
}

impl PartitionAnswer {
    /// A partition answered without an error, offsets (-1) or records: what is read fills
    /// them in.
    pub fn new(partition_index: i32) -> Self {
        PartitionAnswer {
            partition_index,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records: Bytes::new(),
        }
    }
}

impl FetchAnswer {
    /// A response refused as a whole with `error_code`.
    pub fn refused(error_code: i16) -> Self {
        FetchAnswer {
            error_code,
            ..FetchAnswer::default()
        }
    }

    /// The same response as kafka-protocol's type.
    pub fn to_kafka(&self) -> FetchResponse {
        let aborted = self.read_committed.then(Vec::new);
        let responses = self
            .responses
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(p.error_code)
                            .with_high_watermark(p.high_watermark)
                            .with_last_stable_offset(p.last_stable_offset)
                            .with_log_start_offset(p.log_start_offset)
                            .with_aborted_transactions(aborted.clone())
                            .with_preferred_read_replica((-1).into())
                            .with_records(Some(p.records.clone()))
                    })
                    .collect();
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(partitions)
            })
            .collect();
        FetchResponse::default()
            .with_throttle_time_ms(self.throttle_time_ms)
            .with_error_code(self.error_code)
            .with_session_id(self.session_id)
            .with_responses(responses)
    }
}
