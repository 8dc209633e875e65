//! Topic administration and producer ids: `CreateTopics` (19), `DeleteTopics` (20),
//! `CreatePartitions` (37), `InitProducerId` (22).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProducerId, TopicName,
};
use uuid::Uuid;

use super::{RequestContext, sb};
use crate::broker::{ApiError, NewTopic};
use crate::topic_config::{TOPIC_PROPERTIES, resolve};

pub(crate) async fn create_topics(
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let broker = &ctx.broker;
    let node = broker.config.node_id;
    let mut new_topics = Vec::with_capacity(req.topics.len());
    let mut pre_errors = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut configs = BTreeMap::new();
        for c in &t.configs {
            if let Some(v) = &c.value {
                configs.insert(c.name.to_string(), v.to_string());
            }
        }
        let mut partitions = t.num_partitions;
        let mut rf = t.replication_factor;
        let mut error = None;
        if !t.assignments.is_empty() {
            // Manual assignment: every partition's replica list must be exactly this broker.
            if partitions != -1 || rf != -1 {
                error = Some(ApiError::new(
                    ResponseError::InvalidRequest,
                    "both numPartitions or replicationFactor and replicasAssignments were set",
                ));
            } else if t
                .assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.is_empty())
            {
                error = Some(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!("only broker {node} exists"),
                ));
            } else {
                partitions = t.assignments.len() as i32;
                rf = t
                    .assignments
                    .iter()
                    .map(|a| a.broker_ids.len() as i16)
                    .max()
                    .unwrap_or(1);
            }
        }
        pre_errors.push(error);
        new_topics.push(NewTopic {
            name: t.name.0.to_string(),
            partitions,
            replication_factor: rf,
            configs,
        });
    }
    // Topics named twice in one request are all refused, as Kafka does.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &new_topics {
        *counts.entry(t.name.as_str()).or_default() += 1;
    }
    let dupes: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.to_string())
        .collect();
    let mut to_create = Vec::new();
    let mut slots = Vec::new();
    for (t, pre) in new_topics.into_iter().zip(pre_errors) {
        if dupes.contains(&t.name) {
            slots.push((
                t.name.clone(),
                Some(ApiError::new(
                    ResponseError::InvalidRequest,
                    "topic is listed more than once",
                )),
            ));
        } else if let Some(e) = pre {
            slots.push((t.name.clone(), Some(e)));
        } else {
            slots.push((t.name.clone(), None));
            to_create.push(t);
        }
    }
    let mut created = broker
        .create_topics(to_create, req.validate_only)
        .await
        .into_iter();
    let mut results = Vec::with_capacity(slots.len());
    for (name, pre) in slots {
        let outcome = match pre {
            Some(e) => Err(e),
            None => created.next().unwrap_or_else(|| {
                Err(ApiError::new(
                    ResponseError::UnknownServerError,
                    "missing result",
                ))
            }),
        };
        let base = CreatableTopicResult::default().with_name(TopicName(sb(name)));
        results.push(match outcome {
            Ok(_) if ctx.api_version < 5 => base,
            Ok(t) => {
                let configs = TOPIC_PROPERTIES
                    .iter()
                    .map(|p| {
                        let r = resolve(p, &t.configs, &broker.config);
                        CreatableTopicConfigs::default()
                            .with_name(sb(p.name))
                            .with_value(Some(sb(r.value)))
                            .with_config_source(r.source.code())
                    })
                    .collect();
                base.with_topic_id(t.id)
                    .with_num_partitions(t.partitions)
                    .with_replication_factor(t.replication_factor)
                    .with_configs(Some(configs))
            }
            Err(e) => {
                tracing::debug!(error = %e.error, message = %e.message, "create topic refused");
                base.with_error_code(e.error.code())
                    .with_error_message(Some(sb(e.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_topic_config_error_code(0)
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) async fn delete_topics(
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let broker = &ctx.broker;
    // v0-v5 name topics in `topic_names`; v6 uses `topics` with a name or an id.
    let mut wanted: Vec<(Option<String>, Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), Uuid::nil()))
        .collect();
    wanted.extend(
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let image = broker.image();
        let resolved = match &name {
            Some(n) => image
                .topic(n)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicOrPartition),
            None => image
                .topic_by_id(&id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
        };
        let base = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(sb(n))))
            .with_topic_id(id);
        let result = match resolved {
            Ok(n) => broker.delete_topic(&n).await.map_err(|e| e.error),
            Err(e) => Err(e),
        };
        responses.push(match result {
            Ok(t) => {
                tracing::info!(topic = %t.name, "deleted topic");
                base.with_name(Some(TopicName(sb(t.name))))
                    .with_topic_id(t.id)
            }
            Err(e) => base.with_error_code(e.code()),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(crate) async fn create_partitions(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let node = ctx.broker.config.node_id;
        let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
            a.iter()
                .any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| b.0 != node))
        });
        let result = if bad_assignment {
            Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!("only broker {node} exists"),
            ))
        } else {
            ctx.broker
                .create_partitions(&t.name, t.count, req.validate_only)
                .await
        };
        let base = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match result {
            Ok(()) => base,
            Err(e) => base
                .with_error_code(e.error.code())
                .with_error_message(Some(sb(e.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// InitProducerId for idempotent producers. Transactions are not implemented yet, so a
/// transactional id is refused; librdkafka and the Java client report that clearly.
pub(crate) async fn init_producer_id(
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let base = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return base.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // KIP-360: a producer that already has an id asks for an epoch bump to recover from an
    // unknown sequence; keep its id and increase the epoch.
    if req.producer_id.0 >= 0 && (0..i16::MAX - 1).contains(&req.producer_epoch) {
        return base
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    match ctx.broker.allocate_producer_id().await {
        Ok(id) => base.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => base.with_error_code(e.error.code()),
    }
}
