//! The request bodies the bounds walker follows: for every served API, the fields of its
//! request in wire order, the versions that carry each, and the version from which the body
//! is flexible (KIP-482: compact lengths and tagged-field sections).
//!
//! Transcribed from Kafka's message definitions (`common/message/*Request.json`) for the
//! versions Fjord serves. Only the wire shape is kept: a field's name is its comment, and its
//! nullability is left out (a null is a length of -1, or 0 when compact, which the walker
//! takes anywhere; the decoder then rejects it where the field is not nullable). The unit
//! tests prove each entry against `kafka-protocol`'s decoder and encoder, version by version.

use kafka_protocol::messages::ApiKey;

use super::{Field, Ty};

// Field constructors: `all` versions, `from` one on, `upto` one, a `span`, and `tagged` fields
// (flexible versions from `since`; a tag the schema lacks is skipped by its size).
const fn span(since: i16, until: i16, ty: Ty) -> Field {
    Field {
        ty,
        since,
        until,
        tag: None,
    }
}
const fn all(ty: Ty) -> Field {
    span(0, i16::MAX, ty)
}
const fn from(since: i16, ty: Ty) -> Field {
    span(since, i16::MAX, ty)
}
const fn upto(until: i16, ty: Ty) -> Field {
    span(0, until, ty)
}
const fn tagged(tag: u32, since: i16, ty: Ty) -> Field {
    Field {
        ty,
        since,
        until: i16::MAX,
        tag: Some(tag),
    }
}
const fn array(elem: &'static Ty) -> Ty {
    Ty::Array(elem)
}
const fn strukt(fields: &'static [Field]) -> Ty {
    Ty::Struct(fields)
}

const BOOL: Ty = Ty::Fixed(1);
const I8: Ty = Ty::Fixed(1);
const I16: Ty = Ty::Fixed(2);
const I32: Ty = Ty::Fixed(4);
const I64: Ty = Ty::Fixed(8);
const F64: Ty = Ty::Fixed(8);
const UUID: Ty = Ty::Fixed(16);
const STR: Ty = Ty::Str;
const BYTES: Ty = Ty::Bytes;
const RECORDS: Ty = Ty::Bytes;
const NEVER: i16 = i16::MAX;

/// Every served API's request body: the API, its first flexible version (`NEVER` when none
/// is) and the body's fields.
pub(super) const MESSAGES: &[(ApiKey, i16, &[Field])] = &[
    (ApiKey::Produce, 9, PRODUCE),
    (ApiKey::Fetch, 12, FETCH),
    (ApiKey::ListOffsets, 6, LIST_OFFSETS),
    (ApiKey::Metadata, 9, METADATA),
    (ApiKey::ApiVersions, 3, API_VERSIONS),
    (ApiKey::CreateTopics, 5, CREATE_TOPICS),
    (ApiKey::DeleteTopics, 4, DELETE_TOPICS),
    (ApiKey::DeleteRecords, 2, DELETE_RECORDS),
    (ApiKey::InitProducerId, 2, INIT_PRODUCER_ID),
    (ApiKey::DescribeConfigs, 4, DESCRIBE_CONFIGS),
    (ApiKey::AlterConfigs, 2, ALTER_CONFIGS),
    (ApiKey::DescribeLogDirs, 2, DESCRIBE_LOG_DIRS),
    (ApiKey::CreatePartitions, 2, CREATE_PARTITIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        1,
        INCREMENTAL_ALTER_CONFIGS,
    ),
    (ApiKey::DescribeCluster, 0, DESCRIBE_CLUSTER),
    (
        ApiKey::DescribeTopicPartitions,
        0,
        DESCRIBE_TOPIC_PARTITIONS,
    ),
    (ApiKey::OffsetCommit, 8, OFFSET_COMMIT),
    (ApiKey::OffsetFetch, 6, OFFSET_FETCH),
    (ApiKey::FindCoordinator, 3, FIND_COORDINATOR),
    (ApiKey::JoinGroup, 6, JOIN_GROUP),
    (ApiKey::Heartbeat, 4, HEARTBEAT),
    (ApiKey::LeaveGroup, 4, LEAVE_GROUP),
    (ApiKey::SyncGroup, 4, SYNC_GROUP),
    (ApiKey::DescribeGroups, 5, DESCRIBE_GROUPS),
    (ApiKey::ListGroups, 3, LIST_GROUPS),
    (ApiKey::DeleteGroups, 2, DELETE_GROUPS),
    (ApiKey::OffsetDelete, NEVER, OFFSET_DELETE),
    (ApiKey::ConsumerGroupHeartbeat, 0, CONSUMER_GROUP_HEARTBEAT),
    (ApiKey::ConsumerGroupDescribe, 0, CONSUMER_GROUP_DESCRIBE),
    (ApiKey::DescribeClientQuotas, 1, DESCRIBE_CLIENT_QUOTAS),
    (ApiKey::AlterClientQuotas, 1, ALTER_CLIENT_QUOTAS),
];

/// Returns the first flexible version and the body fields of `key`'s requests, or `None` when
/// it has no schema here.
pub(super) fn message(key: ApiKey) -> Option<(i16, &'static [Field])> {
    MESSAGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, flexible, body)| (flexible, body))
}

// Produce (0).
const PRODUCE_PARTITION: Ty = strukt(&[
    all(I32),     // index
    all(RECORDS), // records
]);
const PRODUCE_TOPIC: Ty = strukt(&[
    upto(12, STR),                  // name
    from(13, UUID),                 // topic_id
    all(array(&PRODUCE_PARTITION)), // partition_data
]);
const PRODUCE: &[Field] = &[
    all(STR),                   // transactional_id
    all(I16),                   // acks
    all(I32),                   // timeout_ms
    all(array(&PRODUCE_TOPIC)), // topic_data
];

// Fetch (1).
const FETCH_PARTITION: Ty = strukt(&[
    all(I32),            // partition
    from(9, I32),        // current_leader_epoch
    all(I64),            // fetch_offset
    from(12, I32),       // last_fetched_epoch
    from(5, I64),        // log_start_offset
    all(I32),            // partition_max_bytes
    tagged(0, 17, UUID), // replica_directory_id
    tagged(1, 18, I64),  // high_watermark
]);
const FETCH_TOPIC: Ty = strukt(&[
    upto(12, STR),                // topic
    from(13, UUID),               // topic_id
    all(array(&FETCH_PARTITION)), // partitions
]);
const FETCH_FORGOTTEN_TOPIC: Ty = strukt(&[
    span(7, 12, STR),     // topic
    from(13, UUID),       // topic_id
    from(7, array(&I32)), // partitions
]);
const FETCH_REPLICA_STATE: Ty = strukt(&[
    from(15, I32), // replica_id
    from(15, I64), // replica_epoch
]);
const FETCH: &[Field] = &[
    upto(14, I32),                          // replica_id
    all(I32),                               // max_wait_ms
    all(I32),                               // min_bytes
    all(I32),                               // max_bytes
    all(I8),                                // isolation_level
    from(7, I32),                           // session_id
    from(7, I32),                           // session_epoch
    all(array(&FETCH_TOPIC)),               // topics
    from(7, array(&FETCH_FORGOTTEN_TOPIC)), // forgotten_topics_data
    from(11, STR),                          // rack_id
    tagged(0, 12, STR),                     // cluster_id
    tagged(1, 15, FETCH_REPLICA_STATE),     // replica_state
];

// ListOffsets (2).
const LIST_OFFSETS_PARTITION: Ty = strukt(&[
    all(I32),     // partition_index
    from(4, I32), // current_leader_epoch
    all(I64),     // timestamp
]);
const LIST_OFFSETS_TOPIC: Ty = strukt(&[
    all(STR),                            // name
    all(array(&LIST_OFFSETS_PARTITION)), // partitions
]);
const LIST_OFFSETS: &[Field] = &[
    all(I32),                        // replica_id
    from(2, I8),                     // isolation_level
    all(array(&LIST_OFFSETS_TOPIC)), // topics
    from(10, I32),                   // timeout_ms
];

// Metadata (3).
const METADATA_TOPIC: Ty = strukt(&[
    from(10, UUID), // topic_id
    all(STR),       // name
]);
const METADATA: &[Field] = &[
    all(array(&METADATA_TOPIC)), // topics
    from(4, BOOL),               // allow_auto_topic_creation
    span(8, 10, BOOL),           // include_cluster_authorized_operations
    from(8, BOOL),               // include_topic_authorized_operations
];

// ApiVersions (18).
const API_VERSIONS: &[Field] = &[
    from(3, STR), // client_software_name
    from(3, STR), // client_software_version
];

// CreateTopics (19).
const CREATE_TOPICS_ASSIGNMENT: Ty = strukt(&[
    all(I32),         // partition_index
    all(array(&I32)), // broker_ids
]);
const CREATE_TOPICS_CONFIG: Ty = strukt(&[
    all(STR), // name
    all(STR), // value
]);
const CREATE_TOPICS_TOPIC: Ty = strukt(&[
    all(STR),                              // name
    all(I32),                              // num_partitions
    all(I16),                              // replication_factor
    all(array(&CREATE_TOPICS_ASSIGNMENT)), // assignments
    all(array(&CREATE_TOPICS_CONFIG)),     // configs
]);
const CREATE_TOPICS: &[Field] = &[
    all(array(&CREATE_TOPICS_TOPIC)), // topics
    all(I32),                         // timeout_ms
    all(BOOL),                        // validate_only
];

// DeleteTopics (20).
const DELETE_TOPICS_TOPIC: Ty = strukt(&[
    from(6, STR),  // name
    from(6, UUID), // topic_id
]);
const DELETE_TOPICS: &[Field] = &[
    from(6, array(&DELETE_TOPICS_TOPIC)), // topics
    upto(5, array(&STR)),                 // topic_names
    all(I32),                             // timeout_ms
];

// DeleteRecords (21).
const DELETE_RECORDS_PARTITION: Ty = strukt(&[
    all(I32), // partition_index
    all(I64), // offset
]);
const DELETE_RECORDS_TOPIC: Ty = strukt(&[
    all(STR),                              // name
    all(array(&DELETE_RECORDS_PARTITION)), // partitions
]);
const DELETE_RECORDS: &[Field] = &[
    all(array(&DELETE_RECORDS_TOPIC)), // topics
    all(I32),                          // timeout_ms
];

// InitProducerId (22).
const INIT_PRODUCER_ID: &[Field] = &[
    all(STR),     // transactional_id
    all(I32),     // transaction_timeout_ms
    from(3, I64), // producer_id
    from(3, I16), // producer_epoch
];

// DescribeConfigs (32).
const DESCRIBE_CONFIGS_RESOURCE: Ty = strukt(&[
    all(I8),          // resource_type
    all(STR),         // resource_name
    all(array(&STR)), // configuration_keys
]);
const DESCRIBE_CONFIGS: &[Field] = &[
    all(array(&DESCRIBE_CONFIGS_RESOURCE)), // resources
    all(BOOL),                              // include_synonyms
    from(3, BOOL),                          // include_documentation
];

// AlterConfigs (33).
const ALTER_CONFIGS_CONFIG: Ty = strukt(&[
    all(STR), // name
    all(STR), // value
]);
const ALTER_CONFIGS_RESOURCE: Ty = strukt(&[
    all(I8),                           // resource_type
    all(STR),                          // resource_name
    all(array(&ALTER_CONFIGS_CONFIG)), // configs
]);
const ALTER_CONFIGS: &[Field] = &[
    all(array(&ALTER_CONFIGS_RESOURCE)), // resources
    all(BOOL),                           // validate_only
];

// DescribeLogDirs (35).
const DESCRIBE_LOG_DIRS_TOPIC: Ty = strukt(&[
    all(STR),         // topic
    all(array(&I32)), // partitions
]);
const DESCRIBE_LOG_DIRS: &[Field] = &[
    all(array(&DESCRIBE_LOG_DIRS_TOPIC)), // topics
];

// CreatePartitions (37).
const CREATE_PARTITIONS_ASSIGNMENT: Ty = strukt(&[
    all(array(&I32)), // broker_ids
]);
const CREATE_PARTITIONS_TOPIC: Ty = strukt(&[
    all(STR),                                  // name
    all(I32),                                  // count
    all(array(&CREATE_PARTITIONS_ASSIGNMENT)), // assignments
]);
const CREATE_PARTITIONS: &[Field] = &[
    all(array(&CREATE_PARTITIONS_TOPIC)), // topics
    all(I32),                             // timeout_ms
    all(BOOL),                            // validate_only
];

// IncrementalAlterConfigs (44).
const INCREMENTAL_ALTER_CONFIGS_CONFIG: Ty = strukt(&[
    all(STR), // name
    all(I8),  // config_operation
    all(STR), // value
]);
const INCREMENTAL_ALTER_CONFIGS_RESOURCE: Ty = strukt(&[
    all(I8),                                       // resource_type
    all(STR),                                      // resource_name
    all(array(&INCREMENTAL_ALTER_CONFIGS_CONFIG)), // configs
]);
const INCREMENTAL_ALTER_CONFIGS: &[Field] = &[
    all(array(&INCREMENTAL_ALTER_CONFIGS_RESOURCE)), // resources
    all(BOOL),                                       // validate_only
];

// DescribeCluster (60).
const DESCRIBE_CLUSTER: &[Field] = &[
    all(BOOL),     // include_cluster_authorized_operations
    from(1, I8),   // endpoint_type
    from(2, BOOL), // include_fenced_brokers
];

// DescribeTopicPartitions (75).
const DESCRIBE_TOPIC_PARTITIONS_TOPIC: Ty = strukt(&[
    all(STR), // name
]);
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[Field] = &[
    all(STR), // topic_name
    all(I32), // partition_index
];
const DESCRIBE_TOPIC_PARTITIONS: &[Field] = &[
    all(array(&DESCRIBE_TOPIC_PARTITIONS_TOPIC)), // topics
    all(I32),                                     // response_partition_limit
    all(Ty::OptStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR)), // cursor
];

// OffsetCommit (8).
const OFFSET_COMMIT_PARTITION: Ty = strukt(&[
    all(I32),     // partition_index
    all(I64),     // committed_offset
    from(6, I32), // committed_leader_epoch
    all(STR),     // committed_metadata
]);
const OFFSET_COMMIT_TOPIC: Ty = strukt(&[
    all(STR),                             // name
    all(array(&OFFSET_COMMIT_PARTITION)), // partitions
]);
const OFFSET_COMMIT: &[Field] = &[
    all(STR),                         // group_id
    all(I32),                         // generation_id_or_member_epoch
    all(STR),                         // member_id
    from(7, STR),                     // group_instance_id
    upto(4, I64),                     // retention_time_ms
    all(array(&OFFSET_COMMIT_TOPIC)), // topics
];

// OffsetFetch (9): one group up to v7, a batch of groups from v8 (KIP-709).
const OFFSET_FETCH_TOPIC: Ty = strukt(&[
    all(STR),         // name
    all(array(&I32)), // partition_indexes
]);
const OFFSET_FETCH_GROUP: Ty = strukt(&[
    all(STR),                        // group_id
    from(9, STR),                    // member_id
    from(9, I32),                    // member_epoch
    all(array(&OFFSET_FETCH_TOPIC)), // topics
]);
const OFFSET_FETCH: &[Field] = &[
    upto(7, STR),                        // group_id
    upto(7, array(&OFFSET_FETCH_TOPIC)), // topics
    from(8, array(&OFFSET_FETCH_GROUP)), // groups
    from(7, BOOL),                       // require_stable
];

// FindCoordinator (10).
const FIND_COORDINATOR: &[Field] = &[
    upto(3, STR),         // key
    from(1, I8),          // key_type
    from(4, array(&STR)), // coordinator_keys
];

// JoinGroup (11).
const JOIN_GROUP_PROTOCOL: Ty = strukt(&[
    all(STR),   // name
    all(BYTES), // metadata
]);
const JOIN_GROUP: &[Field] = &[
    all(STR),                         // group_id
    all(I32),                         // session_timeout_ms
    from(1, I32),                     // rebalance_timeout_ms
    all(STR),                         // member_id
    from(5, STR),                     // group_instance_id
    all(STR),                         // protocol_type
    all(array(&JOIN_GROUP_PROTOCOL)), // protocols
    from(8, STR),                     // reason
];

// Heartbeat (12).
const HEARTBEAT: &[Field] = &[
    all(STR),     // group_id
    all(I32),     // generation_id
    all(STR),     // member_id
    from(3, STR), // group_instance_id
];

// LeaveGroup (13): one member up to v2, a batch from v3 (KIP-345).
const LEAVE_GROUP_MEMBER: Ty = strukt(&[
    all(STR),     // member_id
    all(STR),     // group_instance_id
    from(5, STR), // reason
]);
const LEAVE_GROUP: &[Field] = &[
    all(STR),                            // group_id
    upto(2, STR),                        // member_id
    from(3, array(&LEAVE_GROUP_MEMBER)), // members
];

// SyncGroup (14).
const SYNC_GROUP_ASSIGNMENT: Ty = strukt(&[
    all(STR),   // member_id
    all(BYTES), // assignment
]);
const SYNC_GROUP: &[Field] = &[
    all(STR),                           // group_id
    all(I32),                           // generation_id
    all(STR),                           // member_id
    from(3, STR),                       // group_instance_id
    from(5, STR),                       // protocol_type
    from(5, STR),                       // protocol_name
    all(array(&SYNC_GROUP_ASSIGNMENT)), // assignments
];

// DescribeGroups (15).
const DESCRIBE_GROUPS: &[Field] = &[
    all(array(&STR)), // groups
    from(3, BOOL),    // include_authorized_operations
];

// ListGroups (16).
const LIST_GROUPS: &[Field] = &[
    from(4, array(&STR)), // states_filter
    from(5, array(&STR)), // types_filter
];

// DeleteGroups (42).
const DELETE_GROUPS: &[Field] = &[
    all(array(&STR)), // groups_names
];

// OffsetDelete (47).
const OFFSET_DELETE_PARTITION: Ty = strukt(&[
    all(I32), // partition_index
]);
const OFFSET_DELETE_TOPIC: Ty = strukt(&[
    all(STR),                             // name
    all(array(&OFFSET_DELETE_PARTITION)), // partitions
]);
const OFFSET_DELETE: &[Field] = &[
    all(STR),                         // group_id
    all(array(&OFFSET_DELETE_TOPIC)), // topics
];

// ConsumerGroupHeartbeat (68, KIP-848).
const CONSUMER_GROUP_HEARTBEAT_TOPIC: Ty = strukt(&[
    all(UUID),        // topic_id
    all(array(&I32)), // partitions
]);
const CONSUMER_GROUP_HEARTBEAT: &[Field] = &[
    all(STR),                                    // group_id
    all(STR),                                    // member_id
    all(I32),                                    // member_epoch
    all(STR),                                    // instance_id
    all(STR),                                    // rack_id
    all(I32),                                    // rebalance_timeout_ms
    all(array(&STR)),                            // subscribed_topic_names
    from(1, STR),                                // subscribed_topic_regex
    all(STR),                                    // server_assignor
    all(array(&CONSUMER_GROUP_HEARTBEAT_TOPIC)), // topic_partitions
];

// ConsumerGroupDescribe (69).
const CONSUMER_GROUP_DESCRIBE: &[Field] = &[
    all(array(&STR)), // group_ids
    all(BOOL),        // include_authorized_operations
];

// DescribeClientQuotas (48).
const DESCRIBE_CLIENT_QUOTAS_COMPONENT: Ty = strukt(&[
    all(STR), // entity_type
    all(I8),  // match_type
    all(STR), // match
]);
const DESCRIBE_CLIENT_QUOTAS: &[Field] = &[
    all(array(&DESCRIBE_CLIENT_QUOTAS_COMPONENT)), // components
    all(BOOL),                                     // strict
];

// AlterClientQuotas (49).
const ALTER_CLIENT_QUOTAS_ENTITY: Ty = strukt(&[
    all(STR), // entity_type
    all(STR), // entity_name
]);
const ALTER_CLIENT_QUOTAS_OP: Ty = strukt(&[
    all(STR),  // key
    all(F64),  // value
    all(BOOL), // remove
]);
const ALTER_CLIENT_QUOTAS_ENTRY: Ty = strukt(&[
    all(array(&ALTER_CLIENT_QUOTAS_ENTITY)), // entity
    all(array(&ALTER_CLIENT_QUOTAS_OP)),     // ops
]);
const ALTER_CLIENT_QUOTAS: &[Field] = &[
    all(array(&ALTER_CLIENT_QUOTAS_ENTRY)), // entries
    all(BOOL),                              // validate_only
];
