//! Every advertised version of every API is answered and encodes (trap 14: never advertise a
//! version that does not work). Requests carry real content (a topic, a partition, configs)
//! so version-specific response fields are exercised, including error paths.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, SUPPORTED, dispatch};
use crate::broker::Broker;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn broker(dir: &std::path::Path) -> Arc<Broker> {
    Broker::open_for_test(dir, &["group.initial.rebalance.delay.ms=0"])
}

/// [`broker`] with `log.flush.interval.messages=1`: every write is fsynced before its answer.
fn flushing_broker(dir: &std::path::Path) -> Arc<Broker> {
    Broker::open_for_test(
        dir,
        &[
            "group.initial.rebalance.delay.ms=0",
            "log.flush.interval.messages=1",
        ],
    )
}

/// A request's context on a connection from 127.0.0.1.
fn context(
    broker: &Arc<Broker>,
    api_version: i16,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> RequestContext {
    RequestContext {
        broker: Arc::clone(broker),
        api_version,
        header: RequestHeader::default(),
        client_host: "/127.0.0.1".into(),
        fetch_waker: Arc::new(tokio::sync::Notify::new()),
        shutdown: shutdown.clone(),
        file_records: Default::default(),
    }
}

/// Requests for `key` with content; several per API to cover success and error paths.
pub(super) fn requests(
    key: ApiKey,
    version: i16,
    topic_id: uuid::Uuid,
    batch: &Bytes,
) -> Vec<RequestKind> {
    use RequestKind as R;
    match key {
        ApiKey::Produce => vec![R::Produce(
            ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![
                    produce_request::TopicProduceData::default()
                        .with_name(name("t"))
                        .with_topic_id(topic_id)
                        .with_partition_data(vec![
                            produce_request::PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch.clone())),
                            produce_request::PartitionProduceData::default()
                                .with_index(9)
                                .with_records(Some(batch.clone())),
                        ]),
                    produce_request::TopicProduceData::default().with_name(name("missing")),
                ]),
        )],
        ApiKey::Fetch => vec![R::Fetch(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![
                    fetch_request::FetchTopic::default()
                        .with_topic(name("t"))
                        .with_topic_id(topic_id)
                        .with_partitions(vec![
                            fetch_request::FetchPartition::default()
                                .with_partition(0)
                                .with_partition_max_bytes(1 << 20),
                            fetch_request::FetchPartition::default()
                                .with_partition(0)
                                .with_fetch_offset(1 << 40),
                        ]),
                ]),
        )],
        ApiKey::ListOffsets => vec![R::ListOffsets(ListOffsetsRequest::default().with_topics(
            vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(
                        [-1, -2, 0]
                            .into_iter()
                            .map(|ts| {
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_timestamp(ts)
                            })
                            .chain([list_offsets_request::ListOffsetsPartition::default()
                                .with_partition_index(7)])
                            .collect(),
                    ),
            ],
        ))],
        ApiKey::Metadata => vec![
            R::Metadata(MetadataRequest::default().with_topics(None)),
            R::Metadata(MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("t"))),
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("bad/name"))),
            ]))),
        ],
        ApiKey::ApiVersions => vec![R::ApiVersions(ApiVersionsRequest::default())],
        ApiKey::CreateTopics => vec![R::CreateTopics(
            CreateTopicsRequest::default()
                .with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(name("t"))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                    create_topics_request::CreatableTopic::default()
                        .with_name(name("fresh"))
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                        .with_configs(vec![
                            create_topics_request::CreatableTopicConfig::default()
                                .with_name(StrBytes::from_static_str("retention.ms"))
                                .with_value(Some(StrBytes::from_static_str("1000"))),
                        ]),
                ])
                .with_validate_only(true),
        )],
        ApiKey::DeleteTopics => vec![R::DeleteTopics(
            DeleteTopicsRequest::default()
                .with_topic_names(vec![name("missing")])
                .with_topics(vec![
                    delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(name("missing2"))),
                ]),
        )],
        ApiKey::DeleteRecords => vec![R::DeleteRecords(
            DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default().with_offset(0),
                    ]),
            ]),
        )],
        ApiKey::InitProducerId => vec![
            R::InitProducerId(
                InitProducerIdRequest::default()
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
            R::InitProducerId(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("x")))),
            ),
        ],
        ApiKey::DescribeConfigs => vec![R::DescribeConfigs(
            DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("t")),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("missing")),
                ]),
        )],
        ApiKey::AlterConfigs => vec![R::AlterConfigs(
            AlterConfigsRequest::default()
                .with_validate_only(true)
                .with_resources(vec![
                    alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("t"))
                        .with_configs(vec![
                            alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_static_str("retention.ms"))
                                .with_value(Some(StrBytes::from_static_str("5"))),
                        ]),
                ]),
        )],
        ApiKey::IncrementalAlterConfigs => vec![R::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default()
                .with_validate_only(true)
                .with_resources(vec![
                    incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("t"))
                        .with_configs(vec![
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_static_str("no.such"))
                                .with_value(Some(StrBytes::from_static_str("5"))),
                        ]),
                ]),
        )],
        ApiKey::DescribeLogDirs => vec![R::DescribeLogDirs(
            DescribeLogDirsRequest::default().with_topics(None),
        )],
        ApiKey::CreatePartitions => vec![R::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(name("t"))
                        .with_count(3),
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(name("t"))
                        .with_count(1),
                ]),
        )],
        ApiKey::DescribeCluster => vec![R::DescribeCluster(DescribeClusterRequest::default())],
        ApiKey::DescribeTopicPartitions => vec![R::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default()
                .with_response_partition_limit(1)
                .with_topics(vec![
                    describe_topic_partitions_request::TopicRequest::default().with_name(name("t")),
                    describe_topic_partitions_request::TopicRequest::default()
                        .with_name(name("missing")),
                ]),
        )],
        ApiKey::FindCoordinator => vec![
            R::FindCoordinator(
                FindCoordinatorRequest::default()
                    .with_key(StrBytes::from_static_str("g"))
                    .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
            ),
            R::FindCoordinator(
                FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_key(StrBytes::from_static_str("tx"))
                    .with_coordinator_keys(vec![StrBytes::from_static_str("tx")]),
            ),
        ],
        ApiKey::JoinGroup => vec![R::JoinGroup(
            JoinGroupRequest::default()
                // A group per version: each join then completes at once instead of waiting
                // for the previous version's member to rejoin.
                .with_group_id(GroupId(StrBytes::from_string(format!("g{version}"))))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(Bytes::from_static(&[
                            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 0,
                        ])),
                ]),
        )],
        ApiKey::SyncGroup => vec![R::SyncGroup(
            SyncGroupRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))),
        )],
        ApiKey::Heartbeat => vec![R::Heartbeat(
            HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))),
        )],
        ApiKey::LeaveGroup => vec![R::LeaveGroup(
            LeaveGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_member_id(StrBytes::from_static_str("nobody"))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default()
                        .with_member_id(StrBytes::from_static_str("nobody")),
                ]),
        )],
        ApiKey::OffsetCommit => vec![R::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name("t"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(1)
                                .with_committed_metadata(Some(StrBytes::from_static_str("m"))),
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(99),
                        ]),
                ]),
        )],
        ApiKey::OffsetFetch => vec![
            R::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(name("t"))
                            .with_partition_indexes(vec![0, 1]),
                    ]))
                    .with_groups(vec![
                        offset_fetch_request::OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                            .with_topics(Some(vec![
                                offset_fetch_request::OffsetFetchRequestTopics::default()
                                    .with_name(name("t"))
                                    .with_partition_indexes(vec![0, 1]),
                            ])),
                    ]),
            ),
            R::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                    .with_topics(None)
                    .with_groups(vec![
                        offset_fetch_request::OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                            .with_topics(None),
                    ]),
            ),
        ],
        ApiKey::DescribeGroups => vec![R::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![
                GroupId(StrBytes::from_static_str("g")),
                GroupId(StrBytes::from_static_str("simple")),
                GroupId(StrBytes::from_static_str("nope")),
                GroupId(StrBytes::from_static_str("cg")),
            ]),
        )],
        ApiKey::ListGroups => vec![R::ListGroups(ListGroupsRequest::default())],
        ApiKey::DeleteGroups => vec![R::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("nope"))]),
        )],
        ApiKey::OffsetDelete => vec![R::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name("t"))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default(),
                        ]),
                ]),
        )],
        ApiKey::ConsumerGroupHeartbeat => vec![R::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("cg")))
                .with_member_id(StrBytes::from_string(uuid::Uuid::new_v4().to_string()))
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![name("t")])),
        )],
        ApiKey::ConsumerGroupDescribe => vec![R::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![
                GroupId(StrBytes::from_static_str("cg")),
                GroupId(StrBytes::from_static_str("g")),
            ]),
        )],
        ApiKey::AlterClientQuotas => vec![R::AlterClientQuotas(
            AlterClientQuotasRequest::default().with_entries(vec![
                alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![
                        alter_client_quotas_request::EntityData::default()
                            .with_entity_type(StrBytes::from_static_str("client-id"))
                            .with_entity_name(Some(StrBytes::from_string(format!("c{version}")))),
                    ])
                    .with_ops(vec![
                        alter_client_quotas_request::OpData::default()
                            .with_key(StrBytes::from_static_str("producer_byte_rate"))
                            .with_value(1e9),
                    ]),
                alter_client_quotas_request::EntryData::default().with_entity(vec![
                    alter_client_quotas_request::EntityData::default()
                        .with_entity_type(StrBytes::from_static_str("ip")),
                ]),
            ]),
        )],
        ApiKey::DescribeClientQuotas => vec![R::DescribeClientQuotas(
            DescribeClientQuotasRequest::default().with_components(vec![
                describe_client_quotas_request::ComponentData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_match_type(2),
            ]),
        )],
        other => panic!("no request builder for {other:?}: add one when advertising it"),
    }
}

#[tokio::test]
async fn every_advertised_version_is_answered_and_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let topic_id = broker
        .create_test_topic("t", 2, Default::default())
        .await
        .id;
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(Some(&b"k"[..]), Some(&b"v"[..]), 1)],
    ));
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    for &(key, min, max) in SUPPORTED {
        for version in min..=max {
            // As the connection reads it (an old version identical to a newer one is that one).
            let version = crate::api::wire_version(key, version);
            for request in requests(key, version, topic_id, &batch) {
                let ctx = context(&broker, version, &shutdown);
                let response = dispatch(&ctx, request)
                    .await
                    .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
                let response =
                    response.unwrap_or_else(|| panic!("{key:?} v{version}: no response"));
                if std::env::var("FJORD_TEST_DUMP").is_ok() {
                    eprintln!("{key:?} v{version}: {response:?}");
                }
                let mut buf = BytesMut::new();
                response
                    .encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("{key:?} v{version} does not encode: {e}"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_under_flush_messages_answers_after_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let configs = [("flush.messages".to_string(), "1".to_string())].into();
    broker.create_test_topic("t", 2, configs).await;
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&b"a"[..]), 1), (None, Some(&b"b"[..]), 2)],
    ));
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let partition_data = |index| {
        produce_request::PartitionProduceData::default()
            .with_index(index)
            .with_records(Some(batch.clone()))
    };
    for round in 1..=3 {
        let request = RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![
                    produce_request::TopicProduceData::default()
                        .with_name(name("t"))
                        .with_partition_data(vec![partition_data(0), partition_data(1)]),
                ]),
        );
        let ctx = context(&broker, 9, &shutdown);
        let Some(ResponseKind::Produce(response)) = dispatch(&ctx, request).await.unwrap() else {
            panic!("no produce response");
        };
        for (index, part) in response.responses[0].partition_responses.iter().enumerate() {
            assert_eq!(part.error_code, 0, "{part:?}");
            assert_eq!(part.base_offset, 2 * (round - 1));
            let p = broker.partition("t", index as i32).unwrap();
            // The answer came after the fsync that covers the batch.
            assert_eq!(p.durable_offset(), 2 * round);
            assert_eq!(p.flush_jobs(), round as u64);
        }
    }
}

/// Under `log.flush.interval.messages` an OffsetCommit is answered once the commit is fsynced
/// (through the offsets partition's group commit, not inline under the coordinator's lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_under_a_flush_policy_answers_after_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let broker = flushing_broker(dir.path());
    broker.create_test_topic("t", 1, Default::default()).await;
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let offsets = broker
        .partition(
            crate::coordinator::group::OFFSETS_TOPIC,
            crate::coordinator::group::partition_for("g", broker.groups.config.offsets_partitions),
        )
        .unwrap();
    for round in 1..=3_i64 {
        let request = RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name("t"))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(round),
                        ]),
                ]),
        );
        let ctx = context(&broker, 8, &shutdown);
        let Some(ResponseKind::OffsetCommit(response)) = dispatch(&ctx, request).await.unwrap()
        else {
            panic!("no offset commit response");
        };
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        let end = offsets.lock().log.log_end_offset();
        assert_eq!(end, round);
        assert_eq!(offsets.durable_offset(), end, "answered before the fsync");
        assert_eq!(offsets.lock().log.unflushed_messages(), 0);
    }
}

/// Under `log.flush.interval.messages` the group APIs that write group state (SyncGroup,
/// LeaveGroup, DeleteGroups, ConsumerGroupHeartbeat) answer once the write is fsynced, through
/// the offsets partition's group commit (no fsync under the coordinator's lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_writes_under_a_flush_policy_answer_after_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let broker = flushing_broker(dir.path());
    broker.create_test_topic("t", 1, Default::default()).await;
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let offsets_partition = |group: &str| {
        broker
            .partition(
                crate::coordinator::group::OFFSETS_TOPIC,
                crate::coordinator::group::partition_for(
                    group,
                    broker.groups.config.offsets_partitions,
                ),
            )
            .unwrap()
    };
    // After each answer: the write is there, and fsynced by a flush job.
    let written_and_durable = |group: &str, before: i64| {
        let p = offsets_partition(group);
        let end = p.lock().log.log_end_offset();
        assert!(end > before, "{group}: nothing written");
        assert_eq!(p.lock().log.unflushed_messages(), 0, "{group}: not fsynced");
        assert_eq!(
            p.durable_offset(),
            end,
            "{group}: answered before the flush job"
        );
        end
    };
    let call = |version: i16, request: RequestKind| {
        let ctx = context(&broker, version, &shutdown);
        async move { dispatch(&ctx, request).await.unwrap().unwrap() }
    };

    let group = GroupId(StrBytes::from_static_str("fg"));
    let join = JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(&[
                    0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 0,
                ])),
        ]);
    let ResponseKind::JoinGroup(joined) = call(3, RequestKind::JoinGroup(join)).await else {
        panic!("no join response");
    };
    assert_eq!(joined.error_code, 0);
    let before = offsets_partition("fg").lock().log.log_end_offset();
    let sync = SyncGroupRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(Bytes::from_static(&[0, 0])),
        ]);
    let ResponseKind::SyncGroup(synced) = call(3, RequestKind::SyncGroup(sync)).await else {
        panic!("no sync response");
    };
    assert_eq!(synced.error_code, 0);
    let before = written_and_durable("fg", before);

    let leave = LeaveGroupRequest::default()
        .with_group_id(group.clone())
        .with_member_id(joined.member_id.clone());
    let ResponseKind::LeaveGroup(left) = call(2, RequestKind::LeaveGroup(leave)).await else {
        panic!("no leave response");
    };
    assert_eq!(left.error_code, 0);
    let before = written_and_durable("fg", before);

    let delete = DeleteGroupsRequest::default().with_groups_names(vec![group]);
    let ResponseKind::DeleteGroups(deleted) = call(2, RequestKind::DeleteGroups(delete)).await
    else {
        panic!("no delete response");
    };
    assert_eq!(deleted.results[0].error_code, 0);
    written_and_durable("fg", before);

    let before = offsets_partition("cg").lock().log.log_end_offset();
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("cg")))
        .with_member_id(StrBytes::from_string(uuid::Uuid::new_v4().to_string()))
        .with_rebalance_timeout_ms(10_000)
        .with_subscribed_topic_names(Some(vec![name("t")]));
    let ResponseKind::ConsumerGroupHeartbeat(beat) =
        call(0, RequestKind::ConsumerGroupHeartbeat(heartbeat)).await
    else {
        panic!("no heartbeat response");
    };
    assert_eq!(beat.error_code, 0, "{:?}", beat.error_message);
    written_and_durable("cg", before);
}

/// Creates topic "t" with one partition and the topic `configs`; returns the partition.
async fn create_t(
    broker: &Arc<Broker>,
    configs: std::collections::BTreeMap<String, String>,
) -> Arc<crate::partition::Partition> {
    broker.create_test_topic("t", 1, configs).await;
    broker.partition("t", 0).unwrap()
}

/// An acks=1 Produce request of `batch` to `topic`/`partition`.
fn produce_request(topic: &str, partition: i32, batch: Bytes) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch)),
                    ]),
            ]),
    )
}

/// Produces `batch` to partition 0 of "t" `times` times (acks=1), through `dispatch`.
async fn produce_t(broker: &Arc<Broker>, batch: &Bytes, times: usize) {
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    for _ in 0..times {
        let request = produce_request("t", 0, batch.clone());
        let response = dispatch(&context(broker, 9, &shutdown), request).await;
        assert!(matches!(response, Ok(Some(ResponseKind::Produce(_)))));
    }
}

/// Creates topic "t" with one partition and produces `batch` to it `times` times; returns the
/// partition and its log directory, everything flushed.
async fn topic_with_batches(
    broker: &Arc<Broker>,
    batch: &Bytes,
    times: usize,
) -> (Arc<crate::partition::Partition>, std::path::PathBuf) {
    let p = create_t(broker, Default::default()).await;
    produce_t(broker, batch, times).await;
    let log_dir = {
        let mut st = p.lock();
        st.log.flush().unwrap();
        st.log.dir().to_path_buf()
    };
    (p, log_dir)
}

/// Drops every segment file of `log_dir` from the page cache.
fn evict_segments(log_dir: &std::path::Path) {
    for entry in std::fs::read_dir(log_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            fjord_log::testing::evict_from_page_cache(&path).unwrap();
        }
    }
}

/// A fetch of partition 0 of "t" at `offset`, with `max_bytes` as both limits, not waiting.
fn fetch_t(offset: i64, max_bytes: i32) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(max_bytes)
            .with_topics(vec![
                fetch_request::FetchTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(vec![
                        fetch_request::FetchPartition::default()
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max_bytes),
                    ]),
            ]),
    )
}

/// A DeleteRecords request for partition 0 of "t" up to `offset`.
fn delete_records_t(offset: i64) -> RequestKind {
    RequestKind::DeleteRecords(
        DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(offset),
                    ]),
            ]),
    )
}

/// The file ranges a fetch answers with, taken as the response is handed to the writer.
async fn fetched_files(broker: &Arc<Broker>, request: RequestKind) -> Vec<fjord_log::FileSlice> {
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let ctx = context(broker, 12, &shutdown);
    let Ok(Some(ResponseKind::Fetch(r))) = dispatch(&ctx, request).await else {
        panic!("no fetch response");
    };
    let part = &r.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "{part:?}");
    std::mem::take(&mut *ctx.file_records.lock().unwrap())
}

fn read_files(files: &[fjord_log::FileSlice]) -> Vec<u8> {
    files.iter().flat_map(|f| f.read().unwrap()).collect()
}

/// A fetch of records no longer in the page cache reads them ahead on a blocking thread, off
/// the partition lock and the runtime, and then answers with exactly the records a warm
/// fetch returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_uncached_records_reads_them_ahead_off_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let value = vec![b'v'; 100 << 10];
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&value[..]), 1), (None, Some(&value[..]), 2)],
    ));
    let (p, log_dir) = topic_with_batches(&broker, &batch, 8).await;
    let warm = read_files(&fetched_files(&broker, fetch_t(4, 1 << 20)).await);
    assert!(warm.len() > 400 << 10, "{} bytes", warm.len());
    let warmed_before = super::fetch::COLD_SLICES_WARMED.load(std::sync::atomic::Ordering::Relaxed);
    evict_segments(&log_dir);
    let cold_now = !p.lock().log.cold_slices(4, 1 << 20).is_empty();
    if !fjord_log::testing::kernel_reports_page_cache() {
        assert!(!cold_now);
        eprintln!("no cachestat on this kernel: cold fetches are served as before");
        return;
    }
    assert!(cold_now, "eviction left the records cached");
    let cold = read_files(&fetched_files(&broker, fetch_t(4, 1 << 20)).await);
    assert_eq!(cold, warm, "the cold fetch answers with the same records");
    let warmed = super::fetch::COLD_SLICES_WARMED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(warmed > warmed_before, "the fetch read its records ahead");
    assert!(p.lock().log.cold_slices(4, 1 << 20).is_empty());
}

/// A first batch larger than the fetch's limits is sent whole (KIP-74), past the range the
/// probe covers: the part beyond it is read ahead too, so nothing the response sends is left
/// for `sendfile` to read from the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncached_batch_larger_than_the_fetch_limit_is_read_ahead_whole() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let value = vec![b'w'; 256 << 10];
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&value[..]), 1), (None, Some(&value[..]), 2)],
    ));
    let (_p, log_dir) = topic_with_batches(&broker, &batch, 1).await;
    evict_segments(&log_dir);
    if !fjord_log::testing::kernel_reports_page_cache() {
        eprintln!("no cachestat on this kernel: cold fetches are served as before");
        return;
    }
    let files = fetched_files(&broker, fetch_t(0, 1024)).await;
    let len: usize = files.iter().map(fjord_log::FileSlice::len).sum();
    assert_eq!(len, batch.len(), "the whole first batch is answered");
    let cold: Vec<_> = files.iter().filter(|f| f.is_cold()).collect();
    assert!(
        cold.is_empty(),
        "left for the send to read from disk: {cold:?}"
    );
    // Past the prefix the broker patches (base offset, length, leader epoch).
    assert_eq!(read_files(&files)[16..], batch[16..]);
}

/// A produce that rolls a segment is answered without waiting for the finished segment's
/// fsync: housekeeping hands the partition to a roll flush, which syncs it with no lock held
/// and then moves the recovery point to the new active segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_segment_is_fsynced_by_a_roll_flush_off_the_produce_path() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let configs = [("segment.bytes".to_string(), "200".to_string())].into();
    let p = create_t(&broker, configs).await;
    // Timestamped now, so that segment.ms (seven days) does not roll them again.
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&[b'v'; 100][..]), crate::broker::now_ms())],
    ));
    let opened_at = p.lock().log.recovery_point();
    produce_t(&broker, &batch, 3).await;
    // Every append after the first rolled: three segments, the recovery point not moved.
    let active_base = p.lock().log.log_end_offset() - 1;
    assert_eq!(p.lock().log.recovery_point(), opened_at);
    assert!(p.lock().log.roll_flush_due());
    let rolled = broker.housekeeping(false);
    assert!(
        rolled.iter().any(|r| Arc::ptr_eq(r, &p)),
        "housekeeping hands it over"
    );
    assert!(p.flush_rolled().unwrap());
    assert_eq!(p.lock().log.recovery_point(), active_base);
    assert!(!p.lock().log.roll_flush_due());
    assert!(!p.flush_rolled().unwrap(), "nothing left to do");
    assert!(broker.housekeeping(false).is_empty());
}

/// Housekeeping's walk skips, without its lock, a partition nobody has locked since the last
/// walk and with nothing due yet, and comes back to it when its time-based roll or `flush.ms`
/// fsync falls due, or at the next walk after anything locked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_skips_untouched_partitions_until_something_falls_due() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let configs = [("segment.ms".to_string(), "60000".to_string())].into();
    let p = create_t(&broker, configs).await;
    assert!(broker.housekeeping(false).is_empty());
    // Empty: no roll can fall due, so the walk leaves it alone however late it is.
    assert!(!p.housekeeping_due(i64::MAX - 1));
    let now = crate::broker::now_ms();
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&b"v"[..]), now)],
    ));
    let before = crate::broker::now_ms();
    produce_t(&broker, &batch, 1).await;
    let after = crate::broker::now_ms();
    assert!(
        p.housekeeping_due(after),
        "an append makes it due for a look"
    );
    broker.housekeeping(false);
    // The look found the roll a minute after the first append.
    assert!(!p.housekeeping_due(after));
    assert!(!p.housekeeping_due(before + 59_999));
    assert!(p.housekeeping_due(after + 60_000));
    // Whoever locks it may have changed something: the next walk looks again.
    drop(p.lock());
    assert!(p.housekeeping_due(after));
    broker.housekeeping(false);
    assert!(!p.housekeeping_due(after));

    // flush.ms: the fsync of unflushed records is due flush.ms after the last one.
    let created = crate::broker::now_ms();
    let configs = [("flush.ms".to_string(), "60000".to_string())].into();
    broker.create_test_topic("f", 1, configs).await;
    let f = broker.partition("f", 0).unwrap();
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let request = produce_request("f", 0, batch.clone());
    let response = dispatch(&context(&broker, 9, &shutdown), request).await;
    assert!(matches!(response, Ok(Some(ResponseKind::Produce(_)))));
    let after = crate::broker::now_ms();
    broker.housekeeping(false);
    assert!(!f.housekeeping_due(created + 59_999));
    assert!(f.housekeeping_due(after + 60_000));
}

/// A time-based roll still comes from housekeeping with no append to trigger it: the walk
/// that finds it due rolls the segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_rolls_an_idle_segment_when_segment_ms_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let configs = [("segment.ms".to_string(), "50".to_string())].into();
    let p = create_t(&broker, configs).await;
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&b"v"[..]), crate::broker::now_ms())],
    ));
    produce_t(&broker, &batch, 1).await;
    assert_eq!(p.lock().log.segment_count(), 1);
    // This walk looks and defers to the roll's time; wait for that without the lock (which
    // would make it look again).
    broker.housekeeping(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !p.housekeeping_due(crate::broker::now_ms()) {
        assert!(std::time::Instant::now() < deadline, "never due");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    broker.housekeeping(false);
    assert_eq!(p.lock().log.segment_count(), 2);
}

/// Admin changes wait for the disk inside `block_in_place` on a multi-thread runtime, and open
/// and delete partitions outside the partition map's lock. A topic deleted and created again
/// under its name gets a new, empty log: the old entry (another topic id) is removed and its
/// directory deleted before the new one opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_and_created_again_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let first = create_t(&broker, Default::default()).await;
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(Some(&b"k"[..]), Some(&b"v"[..]), 1)],
    ));
    produce_t(&broker, &batch, 3).await;
    assert_eq!(first.lock().log.log_end_offset(), 3);
    let old_id = first.topic_id;
    drop(first);
    broker.delete_topic("t").await.unwrap();
    assert!(broker.partition("t", 0).is_none());
    assert!(!dir.path().join("t-0").exists());
    // Renamed at once, removed after file.delete.delay.ms (a minute by default).
    let renamed = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("t-0.") && n.ends_with(".deleted"))
        .count();
    assert_eq!(renamed, 1);
    let again = create_t(&broker, Default::default()).await;
    assert_ne!(again.topic_id, old_id);
    assert_eq!(again.lock().log.log_end_offset(), 0);
    assert!(dir.path().join("t-0").is_dir());
    produce_t(&broker, &batch, 1).await;
    assert_eq!(again.lock().log.log_end_offset(), 1);
}

/// DeleteRecords makes the new start durable without the partition's lock: while its
/// checkpoint write waits (held here, as a slow fsync would hold it), produce and the log's
/// state stay available; once it is written the start moves and the answer carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_does_not_hold_the_partition_while_it_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(Some(&b"k"[..]), Some(&b"v"[..]), 1)],
    ));
    let (p, log_dir) = topic_with_batches(&broker, &batch, 5).await;
    let checkpoint = p.lock().log.start_checkpoint();
    let held = fjord_log::testing::hold_start_checkpoint(&checkpoint);
    let request = delete_records_t(3);
    let deleting = {
        let broker = Arc::clone(&broker);
        tokio::spawn(async move {
            let (_tx, shutdown) = tokio::sync::watch::channel(false);
            dispatch(&context(&broker, 2, &shutdown), request).await
        })
    };
    // The request is waiting for the checkpoint: produce goes through meanwhile. It runs on a
    // thread of its own, so that a produce stuck on the partition's lock fails the test here
    // instead of blocking this runtime.
    let (done_tx, done) = std::sync::mpsc::channel();
    {
        let (broker, batch) = (Arc::clone(&broker), batch.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(produce_t(&broker, &batch, 2));
            let _ = done_tx.send(());
        });
    }
    if done
        .recv_timeout(std::time::Duration::from_secs(10))
        .is_err()
    {
        drop(held);
        panic!("produce waited for the DeleteRecords fsync");
    }
    assert_eq!(p.lock().log.log_end_offset(), 7);
    assert_eq!(p.lock().log.log_start_offset(), 0);
    assert!(!deleting.is_finished());
    drop(held);
    let response = deleting.await.unwrap();
    let Ok(Some(ResponseKind::DeleteRecords(r))) = response else {
        panic!("{response:?}");
    };
    let part = &r.topics[0].partitions[0];
    assert_eq!((part.error_code, part.low_watermark), (0, 3));
    assert_eq!(p.lock().log.log_start_offset(), 3);
    assert_eq!(
        std::fs::read_to_string(log_dir.join("log-start-offset")).unwrap(),
        "3\n"
    );
}

/// Produces one batch of `records` records of `value_len` bytes each to `topic`/`partition`.
async fn produce_to(
    broker: &Arc<Broker>,
    topic: &str,
    partition: i32,
    records: usize,
    value_len: usize,
) {
    let value = vec![b'v'; value_len];
    let recs: Vec<_> = (0..records)
        .map(|i| (None, Some(&value[..]), i as i64 + 1))
        .collect();
    let batch = Bytes::from(fjord_log::testing::build_batch(0, &recs));
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let request = produce_request(topic, partition, batch);
    let Ok(Some(ResponseKind::Produce(r))) =
        dispatch(&context(broker, 9, &shutdown), request).await
    else {
        panic!("no produce response");
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

/// A fetch in session `id` at `epoch` (not waiting) naming `partitions` of `topic` (by name,
/// and by `topic_id` too) at their fetch offsets, and forgetting `forget`.
fn session_fetch(
    id: i32,
    epoch: i32,
    max_bytes: i32,
    topic: (&str, uuid::Uuid),
    partitions: &[(i32, i64)],
    forget: &[i32],
) -> FetchRequest {
    let topics = if partitions.is_empty() {
        Vec::new()
    } else {
        vec![
            fetch_request::FetchTopic::default()
                .with_topic(name(topic.0))
                .with_topic_id(topic.1)
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&(p, offset)| {
                            fetch_request::FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(max_bytes)
                        })
                        .collect(),
                ),
        ]
    };
    let forgotten = if forget.is_empty() {
        Vec::new()
    } else {
        vec![
            fetch_request::ForgottenTopic::default()
                .with_topic(name(topic.0))
                .with_topic_id(topic.1)
                .with_partitions(forget.to_vec()),
        ]
    };
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(max_bytes)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// Sends `request` at `version`; returns the answer and, per answered partition in order,
/// (partition, high watermark, bytes of records, error code).
async fn session_call(
    broker: &Arc<Broker>,
    version: i16,
    request: FetchRequest,
) -> (FetchResponse, Vec<(i32, i64, usize, i16)>) {
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let ctx = context(broker, version, &shutdown);
    let Ok(Some(ResponseKind::Fetch(r))) = dispatch(&ctx, RequestKind::Fetch(request)).await else {
        panic!("no fetch response");
    };
    let parts = r
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            let len = p.records.as_ref().map_or(0, Bytes::len);
            (p.partition_index, p.high_watermark, len, p.error_code)
        })
        .collect();
    (r, parts)
}

/// KIP-227: a full fetch at epoch 0 makes a session; incremental fetches answer only for
/// partitions with records or a changed high watermark, refuse wrong epochs and unknown ids,
/// drop forgotten partitions, and a full fetch naming the session closes it.
#[tokio::test]
async fn a_fetch_session_answers_only_for_partitions_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let topic = broker.create_test_topic("s", 3, Default::default()).await;
    let t = ("s", topic.id);
    produce_to(&broker, "s", 0, 2, 10).await;
    let all = [(0, 0), (1, 0), (2, 0)];

    // Epoch -1: a full fetch without a session, as before.
    let (r, parts) = session_call(&broker, 12, session_fetch(0, -1, 1 << 20, t, &all, &[])).await;
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(parts.len(), 3);
    assert_eq!(broker.fetch_sessions.len(), 0);

    // Epoch 0 makes a session; the full answer covers every partition.
    let (r, parts) = session_call(&broker, 12, session_fetch(0, 0, 1 << 20, t, &all, &[])).await;
    let id = r.session_id;
    assert_ne!(id, 0);
    assert_eq!(broker.fetch_sessions.len(), 1);
    assert_eq!(
        parts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        [(0, 2), (1, 0), (2, 0)]
    );
    assert!(parts[0].2 > 0);

    // The client moves partition 0 past its records: nothing changed, nothing is answered.
    let (r, parts) = session_call(
        &broker,
        12,
        session_fetch(id, 1, 1 << 20, t, &[(0, 2)], &[]),
    )
    .await;
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert_eq!(parts, []);
    assert!(r.responses.is_empty());

    // Records arrive on partition 2: only it is answered, with them.
    produce_to(&broker, "s", 2, 3, 10).await;
    let (_, parts) = session_call(&broker, 12, session_fetch(id, 2, 1 << 20, t, &[], &[])).await;
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!((parts[0].0, parts[0].1, parts[0].3), (2, 3, 0));
    assert!(parts[0].2 > 0);

    // The same epoch again, a future one, and an unknown session are refused.
    for (sid, epoch, code) in [(id, 2, 71), (id, 9, 71), (id ^ 1, 3, 70)] {
        let (r, parts) =
            session_call(&broker, 12, session_fetch(sid, epoch, 1 << 20, t, &[], &[])).await;
        assert_eq!((r.error_code, r.session_id, parts.len()), (code, 0, 0));
    }

    // The client moves partition 2 on and forgets partition 1; records on 1 are not answered.
    produce_to(&broker, "s", 1, 1, 10).await;
    let (_, parts) = session_call(
        &broker,
        12,
        session_fetch(id, 3, 1 << 20, t, &[(2, 3)], &[1]),
    )
    .await;
    assert_eq!(parts, []);
    // Taken back in at offset 0, partition 1 is answered with its record.
    let (_, parts) = session_call(
        &broker,
        12,
        session_fetch(id, 4, 1 << 20, t, &[(1, 0)], &[]),
    )
    .await;
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!((parts[0].0, parts[0].1), (1, 1));

    // A partition that does not exist is answered with its error every time.
    for epoch in [5, 6] {
        let (r, parts) = session_call(
            &broker,
            12,
            session_fetch(id, epoch, 1 << 20, t, &[(1, 1), (7, 0)], &[]),
        )
        .await;
        assert_eq!(r.session_id, id);
        assert_eq!(parts, [(7, -1, 0, 3)]);
    }
    // Forgetting everything ends the session.
    let (r, _) = session_call(
        &broker,
        12,
        session_fetch(id, 7, 1 << 20, t, &[], &[0, 1, 2, 7]),
    )
    .await;
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(broker.fetch_sessions.len(), 0);

    // A full fetch naming a session closes it, and with epoch 0 makes a new one.
    let (r, _) = session_call(&broker, 12, session_fetch(0, 0, 1 << 20, t, &all, &[])).await;
    let first = r.session_id;
    let (r, _) = session_call(&broker, 12, session_fetch(first, 0, 1 << 20, t, &all, &[])).await;
    let second = r.session_id;
    assert!(first != 0 && second != 0 && second != first);
    assert_eq!(broker.fetch_sessions.len(), 1);
    let (r, _) = session_call(
        &broker,
        12,
        session_fetch(second, -1, 1 << 20, t, &all, &[]),
    )
    .await;
    assert_eq!(r.session_id, 0);
    assert_eq!(broker.fetch_sessions.len(), 0);
    let (r, _) = session_call(&broker, 12, session_fetch(second, 1, 1 << 20, t, &[], &[])).await;
    assert_eq!(r.error_code, 70);

    // Before v7 there are no sessions: epoch 0 is not read.
    let (r, parts) = session_call(&broker, 6, session_fetch(0, 0, 1 << 20, t, &all, &[])).await;
    assert_eq!((r.session_id, parts.len()), (0, 3));
    assert_eq!(broker.fetch_sessions.len(), 0);
}

/// When the byte limit cuts an incremental fetch short, the partitions it answered go to the
/// end of the session's read order, so the next fetch starts with the others.
#[tokio::test]
async fn a_fetch_session_rotates_the_partitions_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let topic = broker.create_test_topic("s", 3, Default::default()).await;
    let t = ("s", topic.id);
    for p in 0..3 {
        produce_to(&broker, "s", p, 4, 1000).await;
    }
    // A limit below one batch: each fetch returns the first batch it reads (KIP-74) and
    // nothing more.
    let limit = 100;
    let all = [(0, 0), (1, 0), (2, 0)];
    let (r, parts) = session_call(&broker, 12, session_fetch(0, 0, limit, t, &all, &[])).await;
    let id = r.session_id;
    assert_eq!(parts.iter().filter(|p| p.2 > 0).count(), 1);
    let mut order = Vec::new();
    for epoch in 1..=4 {
        let (_, parts) =
            session_call(&broker, 12, session_fetch(id, epoch, limit, t, &[], &[])).await;
        assert_eq!(parts.len(), 1, "{parts:?}");
        assert!(parts[0].2 > 4000);
        order.push(parts[0].0);
    }
    assert_eq!(order, [0, 1, 2, 0]);
}

/// Sessions named by topic id (v13+) cannot be used by name (v12) and the other way round;
/// a cache of one slot answers a second client without a session; 0 slots make none.
#[tokio::test]
async fn fetch_sessions_keep_to_their_naming_and_to_the_cache_size() {
    let dir = tempfile::tempdir().unwrap();
    let broker =
        Broker::open_for_test(dir.path(), &["max.incremental.fetch.session.cache.slots=1"]);
    let topic = broker.create_test_topic("s", 2, Default::default()).await;
    let t = ("s", topic.id);
    let all = [(0, 0), (1, 0)];
    let (r, parts) = session_call(&broker, 13, session_fetch(0, 0, 1 << 20, t, &all, &[])).await;
    let id = r.session_id;
    assert_ne!(id, 0);
    assert_eq!(parts.len(), 2);
    produce_to(&broker, "s", 1, 1, 10).await;
    let (r, parts) = session_call(&broker, 13, session_fetch(id, 1, 1 << 20, t, &[], &[])).await;
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert_eq!(r.responses[0].topic_id, topic.id);
    assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), [1]);
    let (r, _) = session_call(&broker, 12, session_fetch(id, 2, 1 << 20, t, &[], &[])).await;
    assert_eq!(r.error_code, 106);
    // The one slot is taken and its session was used just now.
    let (r, parts) = session_call(&broker, 13, session_fetch(0, 0, 1 << 20, t, &all, &[])).await;
    assert_eq!((r.error_code, r.session_id, parts.len()), (0, 0, 2));

    let dir = tempfile::tempdir().unwrap();
    let broker =
        Broker::open_for_test(dir.path(), &["max.incremental.fetch.session.cache.slots=0"]);
    let topic = broker.create_test_topic("s", 1, Default::default()).await;
    let (r, _) = session_call(
        &broker,
        12,
        session_fetch(0, 0, 1 << 20, ("s", topic.id), &[(0, 0)], &[]),
    )
    .await;
    assert_eq!(r.session_id, 0);
}

/// A fetch at the high watermark is answered from the offsets the partition published when
/// its lock was last released: it needs no lock, and it carries the current offsets (a log
/// start moved by DeleteRecords included). One offset back, the records are read as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_at_the_high_watermark_needs_no_partition_lock() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&b"v"[..]), 1)],
    ));
    let (p, _) = topic_with_batches(&broker, &batch, 3).await;
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let delete = delete_records_t(1);
    let response = dispatch(&context(&broker, 2, &shutdown), delete).await;
    assert!(matches!(response, Ok(Some(ResponseKind::DeleteRecords(_)))));

    let fetch_in_thread = |offset: i64| {
        let (done_tx, done) = std::sync::mpsc::channel();
        let broker = Arc::clone(&broker);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (_tx, shutdown) = tokio::sync::watch::channel(false);
            let r = rt.block_on(dispatch(
                &context(&broker, 12, &shutdown),
                fetch_t(offset, 1 << 20),
            ));
            let _ = done_tx.send(r);
        });
        done
    };
    let held = p.lock();
    let answered = fetch_in_thread(3).recv_timeout(std::time::Duration::from_secs(10));
    drop(held);
    let Ok(Ok(Some(ResponseKind::Fetch(r)))) = answered else {
        panic!("a fetch at the high watermark waited for the partition lock: {answered:?}");
    };
    let part = &r.responses[0].partitions[0];
    assert_eq!(
        (
            part.error_code,
            part.high_watermark,
            part.last_stable_offset,
            part.log_start_offset
        ),
        (0, 3, 3, 1)
    );
    assert_eq!(part.records.as_ref().map(Bytes::len), Some(0));

    let Ok(Ok(Some(ResponseKind::Fetch(r)))) =
        fetch_in_thread(2).recv_timeout(std::time::Duration::from_secs(10))
    else {
        panic!("no fetch response");
    };
    let part = &r.responses[0].partitions[0];
    assert_eq!(
        (part.error_code, part.high_watermark, part.log_start_offset),
        (0, 3, 1)
    );
    assert_eq!(part.records.as_ref().map(Bytes::len), Some(batch.len()));
}

/// A broker whose topic "t" holds two one-record batches, the batch, and a v12 request context
/// (with its shutdown sender, kept so that long polls do not see a shutdown).
async fn two_batches_v12() -> (
    tempfile::TempDir,
    Arc<Broker>,
    Bytes,
    tokio::sync::watch::Sender<bool>,
    RequestContext,
) {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let batch = Bytes::from(fjord_log::testing::build_batch(
        0,
        &[(None, Some(&b"v"[..]), 1)],
    ));
    topic_with_batches(&broker, &batch, 2).await;
    let (tx, shutdown) = tokio::sync::watch::channel(false);
    let ctx = context(&broker, 12, &shutdown);
    (dir, broker, batch, tx, ctx)
}

/// Before a long poll waits it registers its waker and reads the published high watermarks:
/// an append after the registration wakes it, and one since its read makes it read again
/// instead of waiting.
#[tokio::test]
async fn a_long_poll_registers_before_waiting_and_sees_appends_since_its_read() {
    let (_dir, broker, batch, _tx, ctx) = two_batches_v12().await;
    let Ok(Some(super::Response::Fetch(read))) =
        super::handle(&ctx, fetch_t(2, 1 << 20).into()).await
    else {
        panic!("no fetch response");
    };
    assert_eq!(read.responses[0].partitions[0].high_watermark, 2);
    assert!(!super::fetch::register_and_check(&ctx, &read));
    produce_t(&broker, &batch, 1).await;
    let woken = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        ctx.fetch_waker.notified(),
    )
    .await;
    assert!(
        woken.is_ok(),
        "the append did not wake the registered waker"
    );
    assert!(super::fetch::register_and_check(&ctx, &read));
}

/// As Kafka answers: no aborted-transaction list (null) under READ_UNCOMMITTED, and under
/// READ_COMMITTED an empty one (the broker holds no aborted transactions), for a partition
/// with records and one at the high watermark alike.
#[tokio::test]
async fn aborted_transactions_are_null_unless_read_committed() {
    let (_dir, _broker, _batch, _tx, ctx) = two_batches_v12().await;
    for (isolation, expected) in [(0i8, None), (1, Some(Vec::new()))] {
        for offset in [0, 2] {
            let RequestKind::Fetch(req) = fetch_t(offset, 1 << 20) else {
                unreachable!()
            };
            let request = RequestKind::Fetch(req.with_isolation_level(isolation));
            let Ok(Some(ResponseKind::Fetch(r))) = dispatch(&ctx, request).await else {
                panic!("no fetch response");
            };
            let part = &r.responses[0].partitions[0];
            assert_eq!(part.error_code, 0);
            assert_eq!(
                part.aborted_transactions, expected,
                "isolation {isolation}, offset {offset}"
            );
        }
    }
}
