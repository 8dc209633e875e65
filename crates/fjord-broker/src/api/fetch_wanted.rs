//! The broker's own type for the Fetch requests it serves.
//!
//! kafka-protocol's `FetchPartition` is 96 bytes with a map of unknown tagged fields, and a
//! consumer without a fetch session (librdkafka) names every partition it reads in every
//! Fetch: at 1,000 partitions, storing those elements and dropping their maps was most of the
//! request's remaining cost after Fjord's own reader (session 18). A [`WantedPartition`] holds
//! the fields the broker reads, in 32 bytes, and is `Copy`. The fields keep kafka-protocol's
//! names. What the broker does not read (replica id and state, cluster id, rack id, tagged
//! fields) is not kept. Fetch sessions store [`WantedTopic`]s.

use kafka_protocol::messages::fetch_request::ForgottenTopic;
use kafka_protocol::messages::{FetchRequest, TopicName};
use uuid::Uuid;

/// A Fetch request body.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchWanted {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    /// The fetch session (v7+; 0 and -1 before).
    pub session_id: i32,
    pub session_epoch: i32,
    pub topics: Vec<WantedTopic>,
    /// Partitions to drop from the session (v7+); kafka-protocol's type, since few requests
    /// carry any.
    pub forgotten_topics_data: Vec<ForgottenTopic>,
}

/// One topic's partitions to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WantedTopic {
    /// The topic's name (v4–12), shared with the request's bytes.
    pub topic: TopicName,
    /// The topic's id (v13+).
    pub topic_id: Uuid,
    pub partitions: Vec<WantedPartition>,
}

/// One partition to read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WantedPartition {
    pub partition: i32,
    /// -1 when the version has no field for it (before v9).
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// -1 before v12.
    pub last_fetched_epoch: i32,
    /// -1 before v5.
    pub log_start_offset: i64,
    pub partition_max_bytes: i32,
}

impl WantedPartition {
    /// Partition `partition` from offset 0, with kafka-protocol's defaults for the rest.
    pub fn new(partition: i32) -> Self {
        WantedPartition {
            partition,
            current_leader_epoch: -1,
            fetch_offset: 0,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: 0,
        }
    }
}

impl Default for FetchWanted {
    /// kafka-protocol's defaults: no session (epoch -1), no byte limit.
    fn default() -> Self {
        FetchWanted {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: Vec::new(),
            forgotten_topics_data: Vec::new(),
        }
    }
}

impl From<FetchRequest> for FetchWanted {
    /// What the broker reads of a request kafka-protocol decoded.
    fn from(req: FetchRequest) -> Self {
        FetchWanted {
            max_wait_ms: req.max_wait_ms,
            min_bytes: req.min_bytes,
            max_bytes: req.max_bytes,
            isolation_level: req.isolation_level,
            session_id: req.session_id,
            session_epoch: req.session_epoch,
            topics: req
                .topics
                .into_iter()
                .map(|t| WantedTopic {
                    topic: t.topic,
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| WantedPartition {
                            partition: p.partition,
                            current_leader_epoch: p.current_leader_epoch,
                            fetch_offset: p.fetch_offset,
                            last_fetched_epoch: p.last_fetched_epoch,
                            log_start_offset: p.log_start_offset,
                            partition_max_bytes: p.partition_max_bytes,
                        })
                        .collect(),
                })
                .collect(),
            forgotten_topics_data: req.forgotten_topics_data,
        }
    }
}
