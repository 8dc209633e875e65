//! Operations that remove data or reshape segments: truncation, DeleteRecords, retention and
//! time-based rolling.

use crate::checkpoint::StartCheckpoint;
use crate::error::LogError;
use crate::log::Log;
use crate::segment::Segment;

impl Log {
    /// Truncates the log so that its end offset becomes `offset`, removing every batch from
    /// `offset` on. `offset` should be a batch boundary (or the log end offset); when it falls
    /// inside a batch the whole batch goes and the new log end offset is that batch's base
    /// offset. Returns the new log end offset.
    ///
    /// `offset >= log_end_offset` changes nothing. `offset < log_start_offset` empties the log
    /// and restarts it at `offset` (which becomes the log start offset), as a replica does when
    /// truncating below its start. Negative offsets are [`LogError::OffsetOutOfRange`]. The high
    /// watermark and recovery point are lowered to the new end if needed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64, LogError> {
        let leo = self.log_end_offset();
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        if offset >= leo {
            return Ok(leo);
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        let idx = self.segment_of(offset);
        while self.segments.len() > idx + 1 {
            if let Some(segment) = self.segments.pop() {
                segment.delete(self.config.file_delete_delay())?;
            }
        }
        self.dir_dirty = true;
        let interval = self.config.index_interval_bytes;
        let new_leo = self.active_mut().truncate_to(offset, interval)?;
        if new_leo < self.log_start_offset {
            self.log_start_offset = new_leo;
            self.start_checkpoint.set(new_leo)?;
        }
        self.after_truncation(new_leo)?;
        Ok(new_leo)
    }

    fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<i64, LogError> {
        // Persist the new start first: a crash in between then leaves an empty log at `offset`.
        self.start_checkpoint.set(offset)?;
        for segment in self.segments.drain(..) {
            segment.delete(self.config.file_delete_delay())?;
        }
        self.segments.push(Segment::create(&self.dir, offset)?);
        self.dir_dirty = true;
        self.log_start_offset = offset;
        self.after_truncation(offset)?;
        Ok(offset)
    }

    fn after_truncation(&mut self, new_leo: i64) -> Result<(), LogError> {
        self.high_watermark = self.high_watermark.min(new_leo);
        let mut recovery = self.recovery();
        if recovery.value > new_leo {
            recovery.set(&self.dir, new_leo)?;
        }
        drop(recovery);
        tracing::info!(dir = %self.dir.display(), new_leo, "truncated log");
        Ok(())
    }

    /// DeleteRecords: advances the log start offset to `offset`, persists it (it survives
    /// restarts) and deletes the segments wholly below it. Returns the new low watermark.
    ///
    /// `offset` must be within `[0, high_watermark]`, else [`LogError::OffsetOutOfRange`];
    /// an offset at or below the current log start offset changes nothing. The active segment
    /// is never deleted: offsets below the start stay on disk but can no longer be read.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset < 0 || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        if offset > self.log_start_offset {
            self.start_checkpoint.raise_to(offset)?;
            self.advance_log_start(offset)?;
        }
        Ok(self.log_start_offset)
    }

    /// The log's persisted start offset, for DeleteRecords to raise without the partition's
    /// lock ([`StartCheckpoint::raise_to`]) before it calls [`Log::advance_log_start`] under
    /// it: [`Log::delete_records_before`] in two steps.
    pub fn start_checkpoint(&self) -> std::sync::Arc<StartCheckpoint> {
        std::sync::Arc::clone(&self.start_checkpoint)
    }

    /// Moves the log start offset up to `offset` (already persisted with
    /// [`StartCheckpoint::raise_to`]) and deletes the segments wholly below it; an offset at or
    /// below the current start changes nothing. Returns the new low watermark.
    /// [`LogError::OffsetOutOfRange`] past the high watermark.
    pub fn advance_log_start(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.delete_segments_below_start()?;
        }
        Ok(self.log_start_offset)
    }

    /// Deletes leading segments that end at or below the log start offset.
    fn delete_segments_below_start(&mut self) -> Result<usize, LogError> {
        let mut deleted = 0;
        while self.segments.len() > 1 && self.segments[1].base_offset() <= self.log_start_offset {
            self.delete_oldest_segment()?;
            deleted += 1;
        }
        Ok(deleted)
    }

    fn delete_oldest_segment(&mut self) -> Result<(), LogError> {
        let segment = self.segments.remove(0);
        tracing::info!(segment = %segment.path().display(), "deleting segment");
        segment.delete(self.config.file_delete_delay())?;
        self.dir_dirty = true;
        if let Some(first) = self.segments.first() {
            self.log_start_offset = self.log_start_offset.max(first.base_offset());
            self.high_watermark = self.high_watermark.max(self.log_start_offset);
        }
        Ok(())
    }

    /// Whether the oldest segment may go: never the active one, and only data below the high
    /// watermark.
    fn oldest_deletable(&self) -> bool {
        self.segments.len() > 1 && self.segments[1].base_offset() <= self.high_watermark
    }

    /// Applies retention, oldest segments first, and returns how many segments were deleted:
    ///
    /// * segments wholly below the log start offset;
    /// * by time: segments whose largest timestamp is older than `now_ms - retention_ms` (an
    ///   empty segment counts as expired). When every segment, the non-empty active one
    ///   included, has expired, a new active segment is rolled first so that all data can go;
    /// * by size: while the log is larger than `retention_bytes`, the oldest segment is
    ///   deleted if the log stays at least `retention_bytes` without it (Kafka's rule).
    ///
    /// The active segment is never deleted and only data below the high watermark is. The log
    /// start offset advances to the first remaining segment.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let mut deleted = self.delete_segments_below_start()?;
        if let Some(retention_ms) = self.config.retention_ms {
            let cutoff = now_ms.saturating_sub(retention_ms);
            let expired = |s: &Segment| s.max_timestamp().is_none_or(|(ts, _)| ts < cutoff);
            let all_expired = self.segments.iter().all(expired);
            if all_expired && !self.active().is_empty() {
                self.roll()?;
            }
            while self.oldest_deletable() && expired(&self.segments[0]) {
                self.delete_oldest_segment()?;
                deleted += 1;
            }
        }
        if let Some(limit) = self.config.retention_bytes {
            let mut total = self.size_bytes();
            while self.oldest_deletable() && total >= limit.saturating_add(self.segments[0].size())
            {
                total -= self.segments[0].size();
                self.delete_oldest_segment()?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Rolls a new segment when the active one is not empty and `roll_ms` has passed since its
    /// first append, even without new appends (the broker calls this periodically). Returns
    /// whether it rolled.
    pub fn maybe_roll(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if self.roll_time_elapsed(now_ms) {
            self.roll()?;
            return Ok(true);
        }
        Ok(false)
    }
}
