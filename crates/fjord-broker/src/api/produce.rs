//! `Produce` (key 0): validate each partition's record batch and append it.
//!
//! Per partition: find the partition (by name, or by topic id from v13), check the size
//! against the topic's `max.message.bytes`, validate the batch (exactly one magic-v2 batch,
//! CRC-32C, counts), run the idempotent-producer checks, append, and advance the high
//! watermark. Failures are error codes on that partition; the others still succeed.
//! With acks=0 no response is sent at all, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use uuid::Uuid;

use super::metadata::LEADER_EPOCH;
use super::{RequestContext, sb};
use crate::broker::now_ms;
use std::sync::Arc;

use crate::partition::{AppendError, AppendOutcome, Partition};

pub(crate) async fn handle(ctx: &RequestContext, req: ProduceRequest) -> Option<ProduceResponse> {
    let broker = &ctx.broker;
    let by_id = ctx.api_version >= 13;
    let acks = req.acks;
    let image = broker.image();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    // Partitions whose flush.messages count was reached: (topic, partition slot, partition,
    // offset to flush through). Their answers wait until the fsync is done.
    let mut flushes = Vec::new();
    for topic in req.topic_data {
        let found = if by_id {
            image.topic_by_id(&topic.topic_id)
        } else {
            image.topic(&topic.name)
        };
        let unknown = if by_id {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let result = match (acks, found) {
                (-1..=1, Some(t)) => match broker.partition(&t.name, pd.index) {
                    Some(p) => {
                        let result = produce_one(&p, pd.records.as_deref(), acks);
                        if let Ok(Produced {
                            flush_through: Some(offset),
                            ..
                        }) = result
                        {
                            flushes.push((responses.len(), partitions.len(), p, offset));
                        }
                        result.map(|r| r.offsets)
                    }
                    None => Err((unknown, None)),
                },
                (-1..=1, None) => Err((unknown, None)),
                _ => Err((ResponseError::InvalidRequiredAcks, None)),
            };
            let resp = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_log_append_time_ms(-1);
            partitions.push(match result {
                Ok((base_offset, log_append_time, log_start)) => resp
                    .with_base_offset(base_offset)
                    .with_log_append_time_ms(log_append_time)
                    .with_log_start_offset(log_start),
                Err((e, message)) => resp
                    .with_error_code(e.code())
                    .with_base_offset(-1)
                    .with_log_start_offset(-1)
                    .with_error_message(message.map(sb)),
            });
        }
        let (name, id) = match found {
            Some(t) => (t.name.clone(), t.id),
            None => (topic.name.0.to_string(), topic.topic_id),
        };
        let name = if by_id { String::new() } else { name };
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(sb(name)))
                .with_topic_id(if by_id { id } else { Uuid::nil() })
                .with_partition_responses(partitions),
        );
    }
    for ((topic, slot, p, _), result) in flushes.iter().zip(flush_all(&flushes).await) {
        if let Err(e) = result {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            if let Some(resp) = responses
                .get_mut(*topic)
                .and_then(|t| t.partition_responses.get_mut(*slot))
            {
                resp.error_code = ResponseError::KafkaStorageError.code();
                resp.base_offset = -1;
                resp.log_start_offset = -1;
                resp.error_message = Some(sb(e.to_string()));
            }
        }
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

/// Waits for the flushes of `flush.messages` partitions, all at once (one task each when
/// there are several), and returns their results in order.
async fn flush_all(
    flushes: &[(usize, usize, Arc<Partition>, i64)],
) -> Vec<Result<(), fjord_log::LogError>> {
    if let [(_, _, p, offset)] = flushes {
        return vec![p.flush_through(*offset).await];
    }
    let tasks: Vec<_> = flushes
        .iter()
        .map(|(_, _, p, offset)| {
            let (p, offset) = (Arc::clone(p), *offset);
            tokio::spawn(async move { p.flush_through(offset).await })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for (task, (_, _, p, _)) in tasks.into_iter().zip(flushes) {
        results.push(task.await.unwrap_or_else(|e| {
            Err(fjord_log::LogError::Io {
                op: "fsync",
                path: p.lock().log.dir().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })
        }));
    }
    results
}

/// What appending to one partition gave: base offset, log append time and log start offset,
/// and the offset to fsync through before answering when `flush.messages` asks for it.
struct Produced {
    offsets: (i64, i64, i64),
    flush_through: Option<i64>,
}

type ProduceResult = Result<Produced, (ResponseError, Option<String>)>;

fn produce_one(
    p: &crate::partition::Partition,
    records: Option<&[u8]>,
    acks: i16,
) -> ProduceResult {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err((
            ResponseError::InvalidRecord,
            Some("produce request has no records".into()),
        ));
    };
    // A compacted topic keeps the latest record per key, so every record needs one; the
    // key check is part of the same walk over the records (compressed batches included).
    let keys_required = p.lock().config.compact;
    let validated = if keys_required {
        fjord_log::validate_keyed_batches(records)
    } else {
        fjord_log::validate_batches(records)
    };
    let headers = match validated {
        Ok(h) => h,
        Err(e) => {
            let code = batch_error_code(&e);
            tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "rejected produce batch");
            return Err((code, Some(e.to_string())));
        }
    };
    let [header] = headers.as_slice() else {
        return Err((
            ResponseError::InvalidRecord,
            Some("produce requests may contain exactly one record batch per partition".into()),
        ));
    };
    let mut st = p.lock();
    if records.len() > st.config.max_message_bytes {
        return Err((
            ResponseError::MessageTooLarge,
            Some(format!(
                "batch of {} bytes exceeds max.message.bytes {}",
                records.len(),
                st.config.max_message_bytes
            )),
        ));
    }
    // A single node is the whole ISR; min.insync.replicas above 1 cannot be met.
    if acks == -1 && st.config.min_insync_replicas > 1 {
        return Err((
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "min.insync.replicas is {} but only 1 replica is in sync",
                st.config.min_insync_replicas
            )),
        ));
    }
    let now = now_ms();
    match st.append(records, header, LEADER_EPOCH, now) {
        Ok(AppendOutcome::Appended(info)) => {
            let append_time = if st.config.log_append_time { now } else { -1 };
            let flush_through = st.log.flush_due().then_some(info.last_offset + 1);
            drop(st);
            p.wake_waiters();
            Ok(Produced {
                offsets: (info.first_offset, append_time, info.log_start_offset),
                flush_through,
            })
        }
        Ok(AppendOutcome::Duplicate { first_offset }) => {
            // The original may still be waiting for its fsync (or its flush failed): under a
            // flush policy the retry is answered only once those offsets are on disk.
            let flush_through = st
                .log
                .config()
                .flush_interval_messages
                .map(|_| first_offset + i64::from(header.last_offset_delta) + 1);
            Ok(Produced {
                offsets: (first_offset, -1, st.log.log_start_offset()),
                flush_through,
            })
        }
        Err(AppendError::Refused { error, message }) => Err((error, Some(message))),
        Err(AppendError::Log(e)) => {
            tracing::error!(topic = %p.topic, partition = p.index, error = %e, "append failed");
            Err((ResponseError::KafkaStorageError, Some(e.to_string())))
        }
    }
}

/// Maps a batch validation failure to Kafka's error code.
pub(crate) fn batch_error_code(e: &fjord_log::BatchError) -> ResponseError {
    use fjord_log::BatchError as B;
    match e {
        B::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat,
        B::InvalidRecord { .. } => ResponseError::InvalidRecord,
        _ => ResponseError::CorruptMessage,
    }
}
