//! Timestamp lookups: ListOffsets by timestamp and the KIP-734 max-timestamp query.

use crate::batch::BatchHeader;
use crate::error::LogError;
use crate::log::Log;
use crate::record::batch_records;
use crate::segment::Segment;

/// Timestamp of a record of batch `h` with the given timestamp delta.
fn record_timestamp(h: &BatchHeader, delta: i64) -> i64 {
    if h.log_append_time() {
        h.max_timestamp
    } else {
        h.base_timestamp.wrapping_add(delta)
    }
}

/// Whether a batch's records must be looked at individually for timestamps (compressed
/// batches are decompressed for it, as Kafka does).
fn has_record_timestamps(h: &BatchHeader) -> bool {
    !h.log_append_time()
}

/// Reads the batch `h` at `pos` and returns the first record, at or after `min_offset`, whose
/// timestamp satisfies `matches`.
fn find_record(
    segment: &Segment,
    pos: u64,
    h: &BatchHeader,
    min_offset: i64,
    matches: impl Fn(i64) -> bool,
) -> Result<Option<(i64, i64)>, LogError> {
    let bytes = segment.read(pos, h.total_len())?;
    let corrupt = |e: crate::BatchError| LogError::Corrupt {
        path: segment.path().to_path_buf(),
        position: pos,
        reason: e.to_string(),
    };
    let records = batch_records(&bytes).map_err(corrupt)?;
    for record in records.iter() {
        let record = record.map_err(corrupt)?;
        let offset = h.base_offset + i64::from(record.offset_delta);
        let timestamp = record_timestamp(h, record.timestamp_delta);
        if offset >= min_offset && matches(timestamp) {
            return Ok(Some((offset, timestamp)));
        }
    }
    Ok(None)
}

/// First record of `segment` at or after `min_offset` with timestamp `>= ts`.
fn segment_offset_for_timestamp(
    segment: &Segment,
    ts: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    let base = segment.base_offset();
    // Every batch before the entry's batch has a max timestamp below the entry's, hence below ts.
    let times = segment.time_entries();
    let from_index = times
        .partition_point(|e| e.timestamp < ts)
        .checked_sub(1)
        .map_or(base, |i| base + i64::from(times[i].rel));
    let Some((start, _)) = segment.find_batch(from_index.max(min_offset))? else {
        return Ok(None);
    };
    for item in segment.walk(start) {
        let (pos, h) = item?;
        if h.last_offset() < min_offset || h.max_timestamp < ts {
            continue;
        }
        if !has_record_timestamps(&h) {
            return Ok(Some((h.base_offset.max(min_offset), h.max_timestamp)));
        }
        if let Some(found) = find_record(segment, pos, &h, min_offset, |t| t >= ts)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

impl Log {
    /// ListOffsets by timestamp: the first offset (at or after the log start offset) whose
    /// record timestamp is `>= ts`, with that record's timestamp; `None` when there is none.
    ///
    /// Segments are skipped by their largest timestamp, the time index gives a starting batch,
    /// then batch max timestamps are scanned. Inside an uncompressed `CreateTime` batch the exact
    /// record is found. For a compressed batch (whose records the log does not decompress) the
    /// answer is the batch's base offset and its max timestamp; for a `LogAppendTime` batch every
    /// record carries the max timestamp, so the base offset is exact.
    ///
    /// The result is not limited by the high watermark; that is the caller's job.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        for segment in &self.segments {
            if segment.next_offset() <= self.log_start_offset
                || segment.max_timestamp().is_none_or(|(m, _)| m < ts)
            {
                continue;
            }
            if let Some(found) = segment_offset_for_timestamp(segment, ts, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// KIP-734 max timestamp: `(offset, timestamp)` of the first record carrying the largest
    /// timestamp in the log; `None` when the log is empty. Exact for uncompressed `CreateTime`
    /// batches; the batch's base offset for compressed and `LogAppendTime` ones.
    ///
    /// Like Kafka, it considers every batch still on disk, including any below the log start
    /// offset in the first segment.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<(&Segment, i64, i64)> = None;
        for segment in &self.segments {
            if let Some((ts, offset)) = segment.max_timestamp()
                && best.is_none_or(|(_, best_ts, _)| ts > best_ts)
            {
                best = Some((segment, ts, offset));
            }
        }
        let Some((segment, ts, offset)) = best else {
            return Ok(None);
        };
        let Some((pos, h)) = segment.find_batch(offset)? else {
            return Ok(Some((offset, ts)));
        };
        if has_record_timestamps(&h)
            && let Some(found) = find_record(segment, pos, &h, h.base_offset, |t| t == ts)?
        {
            return Ok(Some(found));
        }
        Ok(Some((h.base_offset, ts)))
    }
}
