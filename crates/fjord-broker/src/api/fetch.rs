//! `Fetch` (key 1): read whole record batches, long-polling until enough data arrives.
//!
//! A read starts with the batch that contains the fetch offset, even in its middle (the
//! client skips the records before its offset; returning nothing there would hang it), and
//! stops at the high watermark. The first batch of the response is returned whole even when
//! it is larger than `max_bytes` / `partition_max_bytes` (KIP-74), so a big batch can never
//! block a consumer.
//!
//! Long poll: when fewer than `min_bytes` are available the handler waits, up to
//! `max_wait_ms`, on a waker that the partitions it reads notify on append — woken by the
//! append itself, not by a timer — and reads again. The waker is registered only when the
//! handler is about to wait, after which it checks that no partition moved since its read.
//!
//! A partition whose fetch offset is at its high watermark has nothing to read; it is
//! answered from the offsets the partition publishes when its lock is released, without the
//! lock or the log ([`crate::partition::Partition::published_offsets`]).
//!
//! Fetch sessions (KIP-227, v7+): a full fetch with epoch 0 makes a session, and incremental
//! fetches then read the session's partitions and answer only for those that changed; see
//! [`super::fetch_session`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use uuid::Uuid;

use super::RequestContext;
use super::fetch_answer::{FetchAnswer, PartitionAnswer, TopicAnswer};
use super::fetch_session::Plan;
use super::fetch_wanted::{FetchWanted, WantedTopic};
use super::metadata::LEADER_EPOCH;
use crate::broker::TopicPartitions;
use crate::partition::Partition;

/// READ_COMMITTED isolation level.
const READ_COMMITTED: i8 = 1;

pub(crate) async fn handle(ctx: &RequestContext, req: FetchWanted) -> FetchAnswer {
    let sessions = &ctx.broker.fetch_sessions;
    let by_id = ctx.api_version >= 13;
    let plan = if ctx.api_version >= 7 {
        sessions.plan(&req, by_id, Instant::now())
    } else {
        Plan::Full { create: false }
    };
    match plan {
        Plan::Refused(error) => FetchAnswer::refused(error.code()),
        Plan::Full { create } => {
            let mut response = serve(ctx, &req, &req.topics).await;
            if create {
                response.session_id =
                    sessions.create(by_id, &req.topics, &response, Instant::now());
            }
            response
        }
        Plan::Incremental { id, epoch, topics } => {
            let mut response = serve(ctx, &req, &topics).await;
            sessions.finish(id, epoch, topics, &mut response);
            response.session_id = id;
            response
        }
    }
}

/// Reads `topics` (the request's own, or its session's) with the request's limits, waiting
/// up to `max_wait_ms` for `min_bytes`, and answers for every partition of `topics`.
async fn serve(ctx: &RequestContext, req: &FetchWanted, topics: &[WantedTopic]) -> FetchAnswer {
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let stop = crate::server::stopped(ctx.shutdown.clone());
    tokio::pin!(stop);
    let mut warm_rounds = 0;
    loop {
        let probe = warm_rounds < WARM_ROUNDS;
        let (response, bytes, errors, files, cold) = read_all(ctx, req, topics, probe);
        if !cold.is_empty() {
            warm_rounds += 1;
            warm(cold).await;
            continue;
        }
        let now = tokio::time::Instant::now();
        if bytes >= req.min_bytes.max(0) as usize
            || errors
            || now >= deadline
            || *ctx.shutdown.borrow()
        {
            // The probe covers what the read was expected to take. What it took can reach
            // further (a first batch larger than the limits, KIP-74) or may have been evicted
            // since the warm-up; the send must not read those from the disk on the runtime.
            let cold_sent: Vec<_> = files.iter().filter(|f| f.is_cold()).cloned().collect();
            if !cold_sent.is_empty() {
                warm(cold_sent).await;
            }
            *ctx.file_records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = files;
            return response;
        }
        if register_and_check(ctx, &response) {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = ctx.fetch_waker.notified() => {}
            _ = &mut stop => {}
        }
    }
}

/// Before a long poll waits: registers the connection's waker with every partition
/// `response` answers for, then tells whether any of them has moved past the high watermark
/// the answer carries, in which case the caller reads again instead of waiting. An append
/// published before a registration is seen here; one after it wakes the waker. Registering
/// only fetches that wait spares the many that find records on their first read a lock per
/// partition, and leaves fewer stale wake-ups behind.
pub(super) fn register_and_check(ctx: &RequestContext, response: &FetchAnswer) -> bool {
    let mut moved = false;
    for answered in &response.responses {
        let Some(hosted) = hosted_partitions(ctx, &answered.topic, &answered.topic_id) else {
            continue;
        };
        for p in &answered.partitions {
            if let Some(partition) = partition_at(&hosted, p.partition_index) {
                partition.register_waiter(&ctx.fetch_waker);
                moved |= partition.published_offsets().0 != p.high_watermark;
            }
        }
    }
    moved
}

/// The partitions this broker hosts of the topic a fetch names: by id from v13, else by name.
fn hosted_partitions(ctx: &RequestContext, name: &TopicName, id: &Uuid) -> Option<TopicPartitions> {
    let image = ctx.broker.image();
    let found = if ctx.api_version >= 13 {
        image.topic_by_id(id)
    } else {
        image.topic(name)
    };
    found.and_then(|t| ctx.broker.topic_partitions(&t.name))
}

/// Partition `index` of `hosted`, if this broker hosts it.
fn partition_at(hosted: &TopicPartitions, index: i32) -> Option<&Arc<Partition>> {
    hosted.get(usize::try_from(index).ok()?)?.as_ref()
}

/// Rounds of reading cold data into the page cache one fetch may take before it reads
/// whatever is there: pages can be evicted between the warm-up and the read again, and a
/// fetch must not chase them forever.
const WARM_ROUNDS: u32 = 2;

/// Record ranges fetches have read into the page cache on a blocking thread.
pub(crate) static COLD_SLICES_WARMED: AtomicU64 = AtomicU64::new(0);

/// Reads `cold` into the page cache on the blocking pool: the disk's wait then holds neither
/// the partition lock (so appends to the partition go on) nor a runtime worker (so other
/// connections go on). A failure is only logged: the read that follows reports it.
async fn warm(cold: Vec<fjord_log::FileSlice>) {
    let slices = cold.len() as u64;
    let bytes: usize = cold.iter().map(fjord_log::FileSlice::len).sum();
    tracing::debug!(
        slices,
        bytes,
        "fetch reads records from the disk on a blocking thread"
    );
    let warmed = tokio::task::spawn_blocking(move || {
        for slice in &cold {
            slice.warm()?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    match warmed {
        Ok(Ok(())) => {
            COLD_SLICES_WARMED.fetch_add(slices, Ordering::Relaxed);
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "reading cold records ahead failed"),
        Err(e) => tracing::debug!(error = %e, "reading cold records ahead did not finish"),
    }
}

/// Reads every requested partition once. Returns the response, the bytes of records in it,
/// whether any partition has an error (which ends a long poll at once), the file ranges its
/// placeholder record sets stand for (see [`crate::server::frame::record_set`]), and, when
/// `probe` is set, the ranges of partitions left unread because their records are not in the
/// page cache ([`fjord_log::Log::cold_slices`]): the caller reads those ahead off the runtime
/// and calls again, since the response is incomplete.
fn read_all(
    ctx: &RequestContext,
    req: &FetchWanted,
    topics_wanted: &[WantedTopic],
    probe: bool,
) -> (
    FetchAnswer,
    usize,
    bool,
    Vec<fjord_log::FileSlice>,
    Vec<fjord_log::FileSlice>,
) {
    let mut files = Vec::new();
    let mut cold = Vec::new();
    let by_id = ctx.api_version >= 13;
    let mut remaining = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(topics_wanted.len());
    for ft in topics_wanted {
        let unknown = if by_id {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        // The topic's partitions, looked up once for all it names.
        let hosted = hosted_partitions(ctx, &ft.topic, &ft.topic_id);
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let mut base = PartitionAnswer::new(fp.partition);
            let partition = hosted.as_ref().and_then(|h| partition_at(h, fp.partition));
            let Some(partition) = partition else {
                any_error = true;
                base.error_code = unknown.code();
                partitions.push(base);
                continue;
            };
            if fp.current_leader_epoch > LEADER_EPOCH {
                any_error = true;
                base.error_code = ResponseError::UnknownLeaderEpoch.code();
                partitions.push(base);
                continue;
            }
            // At the high watermark there is nothing to read: the answer is the offsets,
            // taken without the partition's lock or its log (most partitions of a fetch of
            // many are idle).
            let (hw, start) = partition.published_offsets();
            if fp.fetch_offset == hw && hw >= start {
                base.high_watermark = hw;
                base.last_stable_offset = hw;
                base.log_start_offset = start;
                partitions.push(base);
                continue;
            }
            let st = partition.lock();
            let hw = st.log.high_watermark();
            base.high_watermark = hw;
            base.last_stable_offset = hw;
            base.log_start_offset = st.log.log_start_offset();
            let limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            // KIP-74: only the first data of the whole response may exceed the limits.
            // Only where the batches lie is read under the lock; their bytes are sent from the
            // page cache when the response is written.
            let skip = limit == 0 && total > 0;
            // Records not in the page cache are read ahead by the caller, off the lock and the
            // runtime; this partition is read again after that.
            let uncached = if probe && !skip {
                st.log.cold_slices(fp.fetch_offset, limit.max(1))
            } else {
                Vec::new()
            };
            let read = if skip || !uncached.is_empty() {
                None
            } else {
                Some(st.log.read_slices(fp.fetch_offset, hw, limit.max(1)))
            };
            drop(st);
            cold.extend(uncached);
            match read {
                None => partitions.push(base),
                Some(Ok(slices)) => {
                    let len: usize = slices.iter().map(fjord_log::FileSlice::len).sum();
                    if total > 0 && len > limit {
                        partitions.push(base);
                        continue;
                    }
                    match crate::server::frame::record_set(slices, &mut files) {
                        Ok(records) => {
                            total += len;
                            remaining = remaining.saturating_sub(len);
                            base.records = records;
                            partitions.push(base);
                        }
                        Err(e) => {
                            tracing::error!(topic = %partition.topic, partition = fp.partition, error = %e, "fetch read failed");
                            any_error = true;
                            base.error_code = ResponseError::KafkaStorageError.code();
                            partitions.push(base);
                        }
                    }
                }
                Some(Err(fjord_log::LogError::OffsetOutOfRange { .. })) => {
                    any_error = true;
                    base.error_code = ResponseError::OffsetOutOfRange.code();
                    partitions.push(base);
                }
                Some(Err(e)) => {
                    tracing::error!(topic = %partition.topic, partition = fp.partition, error = %e, "fetch read failed");
                    any_error = true;
                    base.error_code = ResponseError::KafkaStorageError.code();
                    partitions.push(base);
                }
            }
        }
        // The request's own name (a shared string, not copied), or its id from v13.
        let (name, id) = if by_id {
            (TopicName::default(), ft.topic_id)
        } else {
            (ft.topic.clone(), Uuid::nil())
        };
        topics.push(TopicAnswer {
            topic: name,
            topic_id: id,
            partitions,
        });
    }
    // No transactions exist yet, so nothing is aborted: under READ_COMMITTED each partition
    // carries an empty list.
    let answer = FetchAnswer {
        read_committed: req.isolation_level == READ_COMMITTED,
        responses: topics,
        ..FetchAnswer::default()
    };
    (answer, total, any_error, files, cold)
}
