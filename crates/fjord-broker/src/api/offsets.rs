//! `ListOffsets` (key 2) and `DeleteRecords` (key 21).
//!
//! ListOffsets special timestamps: -1 latest (the high watermark — it counts records, not
//! batches; for read_committed the last stable offset, equal to it without transactions),
//! -2 earliest (log start offset), -3 max timestamp (KIP-734), -4 earliest local (the log
//! start: everything is local), -5 latest tiered (-1: nothing is tiered). Any other value is
//! a timestamp: the first offset whose record timestamp is >= it, or -1 past the end.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
};

use super::RequestContext;
use super::metadata::LEADER_EPOCH;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub(crate) fn list_offsets(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let broker = &ctx.broker;
    // The leader epoch exists in the response from v4 on; before that it must stay unset.
    let epoch = if ctx.api_version >= 4 {
        LEADER_EPOCH
    } else {
        -1
    };
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let resp = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(epoch);
            let Some(partition) = broker.partition(&t.name, p.partition_index) else {
                partitions.push(
                    resp.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_leader_epoch(-1),
                );
                continue;
            };
            if p.current_leader_epoch > LEADER_EPOCH {
                partitions.push(resp.with_error_code(ResponseError::UnknownLeaderEpoch.code()));
                continue;
            }
            let st = partition.lock();
            let log = &st.log;
            let found: Result<Option<(i64, i64)>, fjord_log::LogError> = match p.timestamp {
                LATEST => Ok(Some((log.high_watermark(), -1))),
                EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                MAX_TIMESTAMP => log.max_timestamp(),
                LATEST_TIERED => Ok(None),
                ts => log.offset_for_timestamp(ts),
            };
            drop(st);
            partitions.push(match found {
                Ok(Some((offset, ts))) => resp.with_offset(offset).with_timestamp(ts),
                Ok(None) => resp,
                Err(e) => {
                    tracing::error!(topic = %t.name.0, partition = p.partition_index, error = %e, "list offsets failed");
                    resp.with_error_code(ResponseError::KafkaStorageError.code())
                }
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// DeleteRecords: moves each partition's log start offset forward (-1 = to the high
/// watermark); whole segments below it are deleted.
pub(crate) fn delete_records(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let broker = &ctx.broker;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let resp = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let Some(partition) = broker.partition(&t.name, p.partition_index) else {
                partitions
                    .push(resp.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let (target, hw, start, checkpoint) = {
                let st = partition.lock();
                let hw = st.log.high_watermark();
                let target = if p.offset == -1 { hw } else { p.offset };
                (
                    target,
                    hw,
                    st.log.log_start_offset(),
                    st.log.start_checkpoint(),
                )
            };
            if target < 0 || target > hw {
                partitions.push(resp.with_error_code(ResponseError::OffsetOutOfRange.code()));
                continue;
            }
            let result = if target <= start {
                Ok(start)
            } else {
                // The new start is made durable (an fsync of the checkpoint and one of the
                // directory) without the partition's lock, which every produce and fetch of
                // the partition needs, then applied under it (renaming deleted segments' files,
                // also off the runtime).
                crate::broker::blocking(|| {
                    checkpoint.raise_to(target)?;
                    partition.lock().log.advance_log_start(target)
                })
            };
            partitions.push(match result {
                Ok(low) => resp.with_low_watermark(low),
                Err(fjord_log::LogError::OffsetOutOfRange { .. }) => resp.with_error_code(ResponseError::OffsetOutOfRange.code()),
                Err(e) => {
                    tracing::error!(topic = %t.name.0, partition = p.partition_index, error = %e, "delete records failed");
                    resp.with_error_code(ResponseError::KafkaStorageError.code())
                }
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
