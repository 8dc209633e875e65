//! Reading and writing group state in `__consumer_offsets`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CommittedOffset, Group, partition_for};
use crate::broker::{Broker, now_ms};
use crate::partition::Partition;

/// The internal topic holding committed offsets and group snapshots.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes read per step while replaying.
const REPLAY_CHUNK: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

/// A failed write to `__consumer_offsets`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The partition is not hosted (the internal topic is missing).
    #[error("partition {0} of {OFFSETS_TOPIC} is not available")]
    Unavailable(i32),
    /// The log refused the append.
    #[error(transparent)]
    Append(#[from] crate::partition::AppendError),
    /// Encoding failed.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A write to `__consumer_offsets` that the partition's flush policy (`flush.messages`, which
/// covers this topic too) wants on disk before it is acknowledged.
#[derive(Clone)]
#[must_use = "an acknowledgement must wait for the flush (Unflushed::wait)"]
pub struct Unflushed {
    partition: Arc<Partition>,
    through: i64,
}

impl std::fmt::Debug for Unflushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unflushed")
            .field("topic", &self.partition.topic)
            .field("partition", &self.partition.index)
            .field("through", &self.through)
            .finish()
    }
}

impl Unflushed {
    /// Waits for `unflushed` when there is one; a failed fsync is logged and answered
    /// COORDINATOR_NOT_AVAILABLE, which clients retry.
    pub async fn wait_for(
        unflushed: Option<Unflushed>,
        group: &str,
    ) -> Result<(), kafka_protocol::error::ResponseError> {
        let Some(u) = unflushed else {
            return Ok(());
        };
        u.wait().await.map_err(|e| {
            tracing::error!(group, error = %e, "flushing a group write failed");
            kafka_protocol::error::ResponseError::CoordinatorNotAvailable
        })
    }

    /// Waits until the write is fsynced, through the partition's group commit: outside every
    /// lock, one fsync for all the commits (and produces) that arrived meanwhile.
    pub async fn wait(self) -> Result<(), fjord_log::LogError> {
        self.partition.flush_through(self.through).await
    }
}

/// Appends one batch to the group's partition. Returns what must be flushed before the write
/// is acknowledged, when the flush policy asks for it.
fn append(
    broker: &Broker,
    partitions: i32,
    group: &str,
    records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<Option<Unflushed>, StoreError> {
    if records.is_empty() {
        return Ok(None);
    }
    let index = partition_for(group, partitions);
    let partition = broker
        .partition(OFFSETS_TOPIC, index)
        .ok_or(StoreError::Unavailable(index))?;
    let now = now_ms();
    let refs: Vec<fjord_log::testing::TestRecord<'_>> = records
        .iter()
        .map(|(k, v)| (Some(k.as_slice()), v.as_deref(), now))
        .collect();
    let batch = fjord_log::build_batch(0, &refs);
    let headers = fjord_log::validate_batches(&batch)
        .map_err(fjord_log::LogError::from)
        .map_err(crate::partition::AppendError::from)?;
    let Some(header) = headers.first() else {
        return Ok(None);
    };
    let mut st = partition.lock();
    st.append(&batch, header, crate::api::metadata::LEADER_EPOCH, now)?;
    let through = st.log.flush_due().then(|| st.log.log_end_offset());
    drop(st);
    partition.wake_waiters();
    Ok(through.map(|through| Unflushed { partition, through }))
}

/// Writes committed offsets. Under a flush policy the caller acknowledges them only after
/// [`Unflushed::wait`].
pub fn write_offsets(
    broker: &Broker,
    partitions: i32,
    group: &str,
    offsets: &[((String, i32), CommittedOffset)],
    _now: i64,
) -> Result<Option<Unflushed>, StoreError> {
    let mut records = Vec::with_capacity(offsets.len());
    for ((topic, partition), off) in offsets {
        let key = Key::Offset {
            group: group.to_string(),
            topic: topic.clone(),
            partition: *partition,
        };
        records.push((serde_json::to_vec(&key)?, Some(serde_json::to_vec(off)?)));
    }
    append(broker, partitions, group, records)
}

/// Writes a group snapshot; under a flush policy, answers that depend on it wait for
/// [`Unflushed::wait`].
pub fn write_group(
    broker: &Broker,
    partitions: i32,
    group_id: &str,
    group: &Group,
) -> Result<Option<Unflushed>, StoreError> {
    let key = Key::Group {
        group: group_id.to_string(),
    };
    append(
        broker,
        partitions,
        group_id,
        vec![(serde_json::to_vec(&key)?, Some(serde_json::to_vec(group)?))],
    )
}

/// Writes tombstones for offsets (and the group itself when `group_too`).
pub fn write_tombstones(
    broker: &Broker,
    partitions: i32,
    group: &str,
    offsets: &[(String, i32)],
    group_too: bool,
) -> Result<Option<Unflushed>, StoreError> {
    let mut records = Vec::new();
    for (topic, partition) in offsets {
        let key = Key::Offset {
            group: group.to_string(),
            topic: topic.clone(),
            partition: *partition,
        };
        records.push((serde_json::to_vec(&key)?, None));
    }
    if group_too {
        records.push((
            serde_json::to_vec(&Key::Group {
                group: group.to_string(),
            })?,
            None,
        ));
    }
    append(broker, partitions, group, records)
}

type Replayed = (
    BTreeMap<String, Group>,
    BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
);

/// Reads every partition of `__consumer_offsets` from its start; the last record per key wins.
pub fn replay(broker: &Broker, partitions: i32) -> Replayed {
    let mut groups = BTreeMap::new();
    let mut offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>> = BTreeMap::new();
    for index in 0..partitions {
        let Some(p) = broker.partition(OFFSETS_TOPIC, index) else {
            continue;
        };
        let st = p.lock();
        let mut offset = st.log.log_start_offset();
        let end = st.log.high_watermark();
        while offset < end {
            let read = match st.log.read(offset, end, REPLAY_CHUNK) {
                Ok(r) if !r.records.is_empty() => r,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(partition = index, offset, error = %e, "replaying {OFFSETS_TOPIC} failed");
                    break;
                }
            };
            let Ok(headers) = fjord_log::validate_batches(&read.records) else {
                break;
            };
            let mut pos = 0usize;
            for h in headers {
                let batch = &read.records[pos..pos + h.total_len()];
                pos += h.total_len();
                offset = h.last_offset() + 1;
                let Ok(records) = fjord_log::iter_records(batch) else {
                    continue;
                };
                for r in records.flatten() {
                    apply(&mut groups, &mut offsets, r.key, r.value);
                }
            }
        }
    }
    (groups, offsets)
}

fn apply(
    groups: &mut BTreeMap<String, Group>,
    offsets: &mut BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let Some(Ok(key)) = key.map(serde_json::from_slice::<Key>) else {
        return;
    };
    match key {
        Key::Offset {
            group,
            topic,
            partition,
        } => match value.map(serde_json::from_slice::<CommittedOffset>) {
            Some(Ok(v)) => {
                offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), v);
            }
            None => {
                if let Some(o) = offsets.get_mut(&group) {
                    o.remove(&(topic, partition));
                }
            }
            Some(Err(e)) => tracing::warn!(%group, error = %e, "skipping unreadable offset record"),
        },
        Key::Group { group } => match value.map(serde_json::from_slice::<Group>) {
            Some(Ok(g)) => {
                groups.insert(group, g);
            }
            None => {
                groups.remove(&group);
                offsets.remove(&group);
            }
            Some(Err(e)) => tracing::warn!(%group, error = %e, "skipping unreadable group record"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(dir: &std::path::Path, flush: bool) -> Arc<Broker> {
        let overrides: &[&str] = if flush {
            &["log.flush.interval.messages=1"]
        } else {
            &[]
        };
        Broker::open_for_test(dir, overrides)
    }

    /// A broker, its offsets-topic partition count and the partition that holds group "g".
    fn broker_for_g(dir: &std::path::Path, flush: bool) -> (Arc<Broker>, i32, Arc<Partition>) {
        let broker = broker(dir, flush);
        let partitions = broker.groups.config.offsets_partitions;
        let p = broker
            .partition(OFFSETS_TOPIC, partition_for("g", partitions))
            .unwrap();
        (broker, partitions, p)
    }

    fn offset(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: 0,
        }
    }

    /// Under `log.flush.interval.messages=1` an offset commit is acknowledged only once it is on
    /// disk: the crash harness's power cuts lost acknowledged commits when appends stopped
    /// fsyncing inline and only produce waited. The write hands back what to wait for; the wait
    /// fsyncs it.
    #[tokio::test]
    async fn commits_wait_for_their_fsync_under_a_flush_policy() {
        for flush in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let (broker, partitions, p) = broker_for_g(dir.path(), flush);
            let unflushed = write_offsets(
                &broker,
                partitions,
                "g",
                &[(("t".into(), 0), offset(42))],
                0,
            )
            .unwrap();
            assert_eq!(p.lock().log.log_end_offset(), 1);
            assert_eq!(p.lock().log.unflushed_messages(), 1, "flush policy {flush}");
            match unflushed {
                Some(u) => {
                    assert!(flush, "nothing to wait for without a policy");
                    u.wait().await.unwrap();
                    assert_eq!(p.lock().log.unflushed_messages(), 0);
                    assert!(p.durable_offset() >= 1);
                }
                None => assert!(!flush, "a flush policy must hand back a wait"),
            }
        }
    }

    /// Commits that arrive while no flush runs share one fsync (the partition's group commit),
    /// instead of one each under the locks.
    #[tokio::test]
    async fn concurrent_commits_share_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let (broker, partitions, p) = broker_for_g(dir.path(), true);
        let jobs_before = p.flush_jobs();
        let waits: Vec<Unflushed> = (0..20)
            .map(|i| {
                write_offsets(&broker, partitions, "g", &[(("t".into(), 0), offset(i))], 0)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let tasks: Vec<_> = waits.into_iter().map(|u| tokio::spawn(u.wait())).collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(p.lock().log.unflushed_messages(), 0);
        assert_eq!(
            p.flush_jobs() - jobs_before,
            1,
            "one job covers all 20 commits"
        );
    }

    /// Group snapshots and tombstones hand back a wait under a flush policy, as commits do, and
    /// one wait covers both.
    #[tokio::test]
    async fn snapshots_and_tombstones_hand_back_a_wait_under_a_flush_policy() {
        let dir = tempfile::tempdir().unwrap();
        let (broker, partitions, p) = broker_for_g(dir.path(), true);
        let group = Group::Classic(super::super::ClassicGroup::new("g"));
        let snapshot = write_group(&broker, partitions, "g", &group).unwrap();
        assert_eq!(p.lock().log.log_end_offset(), 1);
        let tombstones =
            write_tombstones(&broker, partitions, "g", &[("t".into(), 0)], true).unwrap();
        assert_eq!(p.lock().log.log_end_offset(), 3);
        assert_eq!(p.lock().log.unflushed_messages(), 3);
        let (Some(snapshot), Some(tombstones)) = (snapshot, tombstones) else {
            panic!("a flush policy must hand back waits");
        };
        tombstones.wait().await.unwrap();
        assert_eq!(p.lock().log.unflushed_messages(), 0);
        assert_eq!(p.durable_offset(), 3);
        let jobs = p.flush_jobs();
        snapshot.wait().await.unwrap();
        assert_eq!(p.flush_jobs(), jobs, "already covered");
        // Without a policy there is nothing to wait for.
        let dir = tempfile::tempdir().unwrap();
        let (broker, partitions, _) = broker_for_g(dir.path(), false);
        assert!(
            write_group(&broker, partitions, "g", &group)
                .unwrap()
                .is_none()
        );
    }
}
