//! The records of the metadata log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One change to cluster state. Serialized as one JSON line in the metadata log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// A topic was created with `partitions` partitions and these config overrides.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Topic id (UUID, hyphenated).
        id: String,
        /// Partition count.
        partitions: i32,
        /// Replication factor as requested (1 on a single node).
        replication_factor: i16,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// The topic now has `partitions` partitions (only grows).
    CreatePartitions {
        /// Topic name.
        name: String,
        /// New total partition count.
        partitions: i32,
    },
    /// The topic's config overrides were replaced by `configs`.
    SetTopicConfigs {
        /// Topic name.
        name: String,
        /// The complete new set of overrides.
        configs: BTreeMap<String, String>,
    },
    /// The topic was deleted.
    DeleteTopic {
        /// Topic name.
        name: String,
        /// Topic id.
        id: String,
    },
    /// A client quota was set (`value`) or removed (`None`).
    ClientQuota {
        /// Sorted (entity type, entity name) pairs; a `None` name is the default entity.
        entity: Vec<(String, Option<String>)>,
        /// Quota key, e.g. `producer_byte_rate`.
        key: String,
        /// New value.
        value: Option<f64>,
    },
    /// Producer ids below `next` have been handed out.
    ProducerIds {
        /// The next producer id that may be handed out.
        next: i64,
    },
}
