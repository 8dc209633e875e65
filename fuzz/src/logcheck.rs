//! Oracles for a [`Log`] under test: a scratch directory on tmpfs, a full read of the log
//! batch by batch, and brute-force models of the timestamp lookups to compare against.
//!
//! The models look at every batch the walk returned, in order, with no index; the log's
//! answers must agree with them whenever the walk saw every batch on disk.

use std::path::{Path, PathBuf};

use fjord_log::{BATCH_HEADER_LEN, BatchHeader, Log, batch_records};

/// Byte range of `partitionLeaderEpoch`, which lies outside the CRC.
pub const EPOCH_FIELD: std::ops::Range<usize> = 12..16;

/// A fresh, empty directory for target `name`, private to this process.
///
/// Lives on `/dev/shm` when there is one: fsyncs and file creation are then memory
/// operations, which keeps the per-input cost of log targets low.
pub fn scratch_dir(name: &str) -> PathBuf {
    let root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = root
        .join(format!("fjord-fuzz-{}", std::process::id()))
        .join(name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            panic!("cannot clear {}: {e}", dir.display())
        }
        _ => {}
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// One batch as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBatch {
    /// Its parsed header.
    pub header: BatchHeader,
    /// The whole batch.
    pub bytes: Vec<u8>,
}

impl ReadBatch {
    /// First offset.
    pub fn base(&self) -> i64 {
        self.header.base_offset
    }

    /// Last offset.
    pub fn last(&self) -> i64 {
        self.header.last_offset()
    }
}

/// Splits a read result into batches (headers parsed; the caller validates them).
pub fn split_batches(mut buf: &[u8]) -> Result<Vec<ReadBatch>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let header = BatchHeader::parse(buf).map_err(|e| format!("unparsable batch: {e}"))?;
        let total = header.total_len();
        if total > buf.len() {
            return Err(format!("batch of {total} bytes, {} left", buf.len()));
        }
        out.push(ReadBatch {
            header,
            bytes: buf[..total].to_vec(),
        });
        buf = &buf[total..];
    }
    Ok(out)
}

/// Whether `a` and `b` are the same batch apart from the leader epoch (outside the CRC, so a
/// corrupted epoch survives recovery) and, unless `same_offsets`, the base offset.
pub fn same_batch(a: &[u8], b: &[u8], same_offsets: bool) -> bool {
    if a.len() != b.len() || a.len() < BATCH_HEADER_LEN {
        return false;
    }
    let from = if same_offsets { 0 } else { 8 };
    a[from..EPOCH_FIELD.start] == b[from..EPOCH_FIELD.start]
        && a[EPOCH_FIELD.end..] == b[EPOCH_FIELD.end..]
}

/// Reads the whole log from its start offset to its end offset, `max_bytes` at a time.
///
/// Checks what holds for any log: every read succeeds, returns whole batches in strictly
/// increasing offset order, the first one containing (or following) the offset asked for, and
/// nothing at or past the log end offset. An empty read below the log end offset ends the
/// walk (`complete` stays true: the read looked at every later segment); whether that is
/// allowed is the caller's call.
pub fn walk(log: &Log, max_bytes: usize) -> Result<Walk, String> {
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    let mut batches: Vec<ReadBatch> = Vec::new();
    let mut offset = start;
    let mut empty_read_at = None;
    while offset < end {
        let read = log
            .read(offset, i64::MAX, max_bytes)
            .map_err(|e| format!("read at {offset}: {e}"))?;
        if read.log_end_offset != end || read.log_start_offset != start {
            return Err(format!("read at {offset} reports other bounds: {read:?}"));
        }
        let got = split_batches(&read.records).map_err(|e| format!("read at {offset}: {e}"))?;
        let Some(first) = got.first() else {
            empty_read_at = Some(offset);
            break;
        };
        if first.last() < offset {
            return Err(format!(
                "read at {offset} starts with batch {}..={}",
                first.base(),
                first.last()
            ));
        }
        for b in got {
            if let Some(prev) = batches.last()
                && b.base() <= prev.last()
            {
                return Err(format!(
                    "batch {}..={} follows batch {}..={}",
                    b.base(),
                    b.last(),
                    prev.base(),
                    prev.last()
                ));
            }
            if b.last() >= end {
                return Err(format!(
                    "batch {}..={} reaches the log end offset {end}",
                    b.base(),
                    b.last()
                ));
            }
            batches.push(b);
        }
        offset = batches.last().map_or(end, |b| b.last() + 1);
    }
    Ok(Walk {
        log_start: start,
        log_end: end,
        batches,
        empty_read_at,
    })
}

/// What [`walk`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Log start offset during the walk.
    pub log_start: i64,
    /// Log end offset during the walk.
    pub log_end: i64,
    /// Every batch read, in order.
    pub batches: Vec<ReadBatch>,
    /// Offset below the log end offset at which a read came back empty, if any.
    pub empty_read_at: Option<i64>,
}

/// `(offset, timestamp)` of each record of `b` (every record carries the batch's max timestamp
/// in a `LogAppendTime` batch).
fn record_times(b: &ReadBatch) -> Result<Vec<(i64, i64)>, String> {
    let records = batch_records(&b.bytes).map_err(|e| format!("batch {}: {e}", b.base()))?;
    let mut out = Vec::new();
    for r in records.iter() {
        let r = r.map_err(|e| format!("batch {}: {e}", b.base()))?;
        let offset = b.base() + i64::from(r.offset_delta);
        let ts = if b.header.log_append_time() {
            b.header.max_timestamp
        } else {
            b.header.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        out.push((offset, ts));
    }
    Ok(out)
}

/// Model of [`Log::offset_for_timestamp`]: the first record at or after `min_offset` whose
/// timestamp is at least `ts`.
pub fn model_offset_for_timestamp(
    batches: &[ReadBatch],
    min_offset: i64,
    ts: i64,
) -> Result<Option<(i64, i64)>, String> {
    for b in batches {
        if b.last() < min_offset || b.header.max_timestamp < ts {
            continue;
        }
        if b.header.log_append_time() {
            return Ok(Some((b.base().max(min_offset), b.header.max_timestamp)));
        }
        if let Some(found) = record_times(b)?
            .into_iter()
            .find(|&(o, t)| o >= min_offset && t >= ts)
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Model of [`Log::max_timestamp`] over every batch on disk: the first record carrying the
/// largest batch max timestamp (the batch's base offset for `LogAppendTime` batches).
pub fn model_max_timestamp(batches: &[ReadBatch]) -> Result<Option<(i64, i64)>, String> {
    let mut best: Option<&ReadBatch> = None;
    for b in batches {
        if best.is_none_or(|x| b.header.max_timestamp > x.header.max_timestamp) {
            best = Some(b);
        }
    }
    let Some(b) = best else { return Ok(None) };
    let ts = b.header.max_timestamp;
    if !b.header.log_append_time()
        && let Some(found) = record_times(b)?.into_iter().find(|&(_, t)| t == ts)
    {
        return Ok(Some(found));
    }
    Ok(Some((b.base(), ts)))
}

/// Timestamps worth asking about: the extremes and every batch's first and max timestamps
/// (and their neighbours), so that ties and boundaries are hit.
pub fn probe_timestamps(batches: &[ReadBatch]) -> Vec<i64> {
    let mut out = vec![i64::MIN, -1, 0, i64::MAX];
    for b in batches {
        for t in [b.header.base_timestamp, b.header.max_timestamp] {
            out.extend([t.saturating_sub(1), t, t.saturating_add(1)]);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Compares the log's timestamp lookups with the models over `batches`. `all_on_disk` says
/// whether the batches are every batch on disk (needed for the max-timestamp model, which
/// Kafka computes over batches below the log start offset too).
///
/// Where the model cannot decode a batch it needs (a compressed batch with a corrupt payload
/// was accepted: produce does not decompress), the log may fail too; only its answers are
/// compared with the model's.
pub fn check_lookups(log: &Log, batches: &[ReadBatch], all_on_disk: bool) -> Result<(), String> {
    let start = log.log_start_offset();
    for ts in probe_timestamps(batches) {
        let got = log.offset_for_timestamp(ts);
        let Ok(want) = model_offset_for_timestamp(batches, start, ts) else {
            continue;
        };
        let got = got.map_err(|e| format!("offset_for_timestamp({ts}): {e}"))?;
        if got != want {
            return Err(format!(
                "offset_for_timestamp({ts}) = {got:?}, model says {want:?}"
            ));
        }
    }
    let got = log.max_timestamp();
    if all_on_disk && let Ok(want) = model_max_timestamp(batches) {
        let got = got.map_err(|e| format!("max_timestamp: {e}"))?;
        if got != want {
            return Err(format!("max_timestamp = {got:?}, model says {want:?}"));
        }
    }
    Ok(())
}
