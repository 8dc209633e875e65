//! `DescribeCluster` (60) and `DescribeLogDirs` (35).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};

use super::{RequestContext, sb};

pub(crate) fn describe_cluster(
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let broker = &ctx.broker;
    let (host, port) = broker.advertised();
    let node = BrokerId(broker.config.node_id);
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(sb(broker.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(sb(host))
                .with_port(port.into()),
        ])
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            0
        } else {
            i32::MIN
        })
}

/// Sizes of hosted partitions in the one log dir. `topics: null` means every partition.
pub(crate) fn describe_log_dirs(
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let broker = &ctx.broker;
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in broker.all_partitions() {
        let included = wanted.as_ref().is_none_or(|w| {
            w.iter()
                .any(|(t, ps)| *t == p.topic && ps.contains(&p.index))
        });
        if !included {
            continue;
        }
        let size = p.lock().log.size_bytes();
        by_topic.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(size as i64)
                .with_offset_lag(0),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut parts)| {
            parts.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(sb(name)))
                .with_partitions(parts)
        })
        .collect();
    let dir = std::fs::canonicalize(&broker.config.data_dir)
        .unwrap_or_else(|_| broker.config.data_dir.clone());
    // KIP-827: the volume's size and what is left of it; -1 (unknown) if statvfs fails.
    let (total, usable) = match fjord_log::disk_space(&dir) {
        Ok(space) => (
            i64::try_from(space.total).unwrap_or(i64::MAX),
            i64::try_from(space.available).unwrap_or(i64::MAX),
        ),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "statvfs of the log dir failed");
            (-1, -1)
        }
    };
    let result = DescribeLogDirsResult::default()
        .with_log_dir(sb(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    DescribeLogDirsResponse::default().with_results(vec![result])
}
