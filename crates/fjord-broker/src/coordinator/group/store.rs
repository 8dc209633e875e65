//! Reading and writing group state in `__consumer_offsets`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CommittedOffset, Group, partition_for};
use crate::broker::{Broker, now_ms};

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

fn append(
    broker: &Broker,
    partitions: i32,
    group: &str,
    records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
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
        return Ok(());
    };
    let mut st = partition.lock();
    st.append(&batch, header, crate::api::metadata::LEADER_EPOCH, now)?;
    // The caller acknowledges the commit when this returns, so under a flush policy
    // (`flush.messages`, which covers this topic too) it must be on disk first, as an
    // acknowledged produce is. Commits are few and small: one fsync each, under the lock.
    if st.log.flush_due() {
        st.log
            .flush()
            .map_err(crate::partition::AppendError::from)?;
    }
    drop(st);
    partition.wake_waiters();
    Ok(())
}

/// Writes committed offsets.
pub fn write_offsets(
    broker: &Broker,
    partitions: i32,
    group: &str,
    offsets: &[((String, i32), CommittedOffset)],
    _now: i64,
) -> Result<(), StoreError> {
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

/// Writes a group snapshot.
pub fn write_group(
    broker: &Broker,
    partitions: i32,
    group_id: &str,
    group: &Group,
) -> Result<(), StoreError> {
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
) -> Result<(), StoreError> {
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
    use crate::config::BrokerConfig;

    /// Under `log.flush.interval.messages=1` an offset commit is on disk when the write
    /// returns (the coordinator acknowledges it then): the crash harness's power cuts lost
    /// acknowledged commits when appends stopped fsyncing inline and only produce waited.
    #[test]
    fn commits_are_fsynced_before_they_return_under_a_flush_policy() {
        for flush in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut b = BrokerConfig::builder();
            b.override_kv(&format!("log.dirs={}", dir.path().display()))
                .unwrap();
            b.override_kv("listeners=PLAINTEXT://127.0.0.1:0").unwrap();
            if flush {
                b.override_kv("log.flush.interval.messages=1").unwrap();
            }
            let broker = Broker::open(b.build().unwrap()).unwrap();
            let partitions = broker.groups.config.offsets_partitions;
            let offset = CommittedOffset {
                offset: 42,
                leader_epoch: -1,
                metadata: None,
                commit_timestamp_ms: 0,
            };
            write_offsets(&broker, partitions, "g", &[(("t".into(), 0), offset)], 0).unwrap();
            let p = broker
                .partition(OFFSETS_TOPIC, partition_for("g", partitions))
                .unwrap();
            let st = p.lock();
            assert_eq!(st.log.log_end_offset(), 1);
            let unflushed = st.log.unflushed_messages();
            assert_eq!(unflushed, if flush { 0 } else { 1 }, "flush policy {flush}");
        }
    }
}
