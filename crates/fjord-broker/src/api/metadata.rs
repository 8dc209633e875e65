//! `Metadata` (key 3) and `DescribeTopicPartitions` (key 75): brokers, topics, partitions,
//! leaders.
//!
//! Metadata may create missing topics (trap 6 of the protocol notes): when the request allows
//! it (always for v0-v3) and `auto.create.topics.enable` is true, a missing topic with a valid
//! name is created with `num.partitions` partitions before the response is built.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use uuid::Uuid;

use super::{RequestContext, sb};
use crate::broker::{NewTopic, validate_topic_name};
use crate::metadata::TopicImage;

/// Leader epoch of every partition on a single node; it changes only with leadership, which
/// a single node never hands over.
pub(crate) const LEADER_EPOCH: i32 = 0;

/// Value of `*_authorized_operations` when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub(crate) async fn handle(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let v = ctx.api_version;
    let node = broker.config.node_id;
    let (host, port) = broker.advertised();
    let brokers = vec![
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(sb(host))
            .with_port(port.into()),
    ];
    let allow_auto_create =
        (v < 4 || req.allow_auto_topic_creation) && broker.config.auto_create_topics;
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let wanted = match req.topics {
        None => None,
        Some(t) if t.is_empty() && v == 0 => None,
        Some(t) => Some(t),
    };
    let mut topics = Vec::new();
    match wanted {
        None => {
            let image = broker.image();
            for t in image.topics() {
                topics.push(topic_response(t, node));
            }
        }
        Some(requested) => {
            for rt in requested {
                let image = broker.image();
                let (name, found) = match &rt.name {
                    Some(name) => (Some(name.0.to_string()), image.topic(name).cloned()),
                    None => (None, image.topic_by_id(&rt.topic_id).cloned()),
                };
                if let Some(t) = found {
                    topics.push(topic_response(&t, node));
                    continue;
                }
                let Some(name) = name else {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(rt.topic_id)
                            .with_error_code(ResponseError::UnknownTopicId.code()),
                    );
                    continue;
                };
                topics.push(missing_topic(ctx, name, allow_auto_create).await);
            }
        }
    }
    let ops = |wanted: bool| if wanted { 0 } else { OPERATIONS_NOT_REQUESTED };
    for t in &mut topics {
        t.topic_authorized_operations = ops(req.include_topic_authorized_operations);
    }
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(sb(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(node))
        .with_topics(topics)
        .with_cluster_authorized_operations(ops(req.include_cluster_authorized_operations))
}

async fn missing_topic(
    ctx: &RequestContext,
    name: String,
    allow_auto_create: bool,
) -> MetadataResponseTopic {
    let error_topic = |name: &str, e: ResponseError| {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(sb(name))))
            .with_error_code(e.code())
    };
    if let Err(e) = validate_topic_name(&name) {
        return error_topic(&name, e.error);
    }
    if !allow_auto_create {
        return error_topic(&name, ResponseError::UnknownTopicOrPartition);
    }
    let new = NewTopic {
        name: name.clone(),
        partitions: -1,
        replication_factor: -1,
        configs: Default::default(),
    };
    let created = ctx.broker.create_topics(vec![new], false).await.pop();
    match created {
        Some(Ok(t)) => {
            tracing::info!(topic = %name, partitions = t.partitions, "auto-created topic");
            topic_response(&t, ctx.broker.config.node_id)
        }
        // Lost a race with another creator: answer with what exists now.
        Some(Err(e)) if e.error == ResponseError::TopicAlreadyExists => {
            match ctx.broker.image().topic(&name) {
                Some(t) => topic_response(t, ctx.broker.config.node_id),
                None => error_topic(&name, ResponseError::LeaderNotAvailable),
            }
        }
        Some(Err(e)) => error_topic(&name, e.error),
        None => error_topic(&name, ResponseError::UnknownServerError),
    }
}

fn topic_response(t: &TopicImage, node: i32) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|i| {
            MetadataResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(BrokerId(node))
                .with_leader_epoch(LEADER_EPOCH)
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.name.starts_with("__"))
        .with_partitions(partitions)
}

/// `DescribeTopicPartitions` v0 (KIP-966): topics in name order, partitions paged by
/// `response_partition_limit` with a cursor.
pub(crate) fn describe_topic_partitions(
    ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.image();
    let node = ctx.broker.config.node_id;
    let limit = req.response_partition_limit.max(1) as usize;
    let mut names: Vec<String> = if req.topics.is_empty() {
        image.topics().map(|t| t.name.clone()).collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (c.topic_name.0.to_string(), c.partition_index.max(0)),
        None => (String::new(), 0),
    };
    let mut topics = Vec::new();
    let mut budget = limit;
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        let Some(t) = image.topic(&name) else {
            let code = match validate_topic_name(&name) {
                Err(e) => e.error.code(),
                Ok(()) => ResponseError::UnknownTopicOrPartition.code(),
            };
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(TopicName(sb(name))))
                    .with_topic_id(Uuid::nil())
                    .with_error_code(code),
            );
            continue;
        };
        if budget == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(sb(name)))
                    .with_partition_index(0),
            );
            break;
        }
        let first = if name == start_topic {
            start_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        let mut index = first;
        while index < t.partitions && budget > 0 {
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(index)
                    .with_leader_id(BrokerId(node))
                    .with_leader_epoch(LEADER_EPOCH)
                    .with_replica_nodes(vec![BrokerId(node)])
                    .with_isr_nodes(vec![BrokerId(node)])
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![])),
            );
            index += 1;
            budget -= 1;
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(sb(t.name.clone()))))
                .with_topic_id(t.id)
                .with_is_internal(t.name.starts_with("__"))
                .with_partitions(partitions)
                .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED),
        );
        if index < t.partitions {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(sb(t.name.clone())))
                    .with_partition_index(index),
            );
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
