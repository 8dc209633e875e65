//! [`Log`]: one partition's log, its configuration and the append/read paths.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::batch::{BatchHeader, LENGTH_OVERHEAD, PATCHED_PREFIX, set_offset_and_epoch};
use crate::checkpoint::{CLEAN_SHUTDOWN_FILE, RecoveryPoint, sync_dir, write_marker};
use crate::error::LogError;
use crate::io::FileSlice;
use crate::segment::Segment;
use crate::spare::{SPARE_HORIZON_MS, SPARE_MIN, Spare};

/// Settings of one partition's log (Kafka's topic-level `segment.bytes`, `segment.ms`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when an append would make the active one larger (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is this old (`segment.ms`); `None` = never.
    pub roll_ms: Option<i64>,
    /// Delete segments whose newest timestamp is older than this (`retention.ms`); `None` = keep forever.
    pub retention_ms: Option<i64>,
    /// Delete oldest segments while the log is larger than this (`retention.bytes`); `None` = unlimited.
    pub retention_bytes: Option<u64>,
    /// Fsync after this many appended records (`flush.messages`); `None` = never by count.
    pub flush_interval_messages: Option<u64>,
    /// Bytes of log data between offset index entries (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// How long a deleted segment's files stay before they are removed
    /// (`file.delete.delay.ms`; see `Segment::delete`).
    pub file_delete_delay_ms: u64,
}

/// Seven days in milliseconds.
const SEVEN_DAYS_MS: i64 = 7 * 24 * 60 * 60 * 1000;

impl LogConfig {
    /// [`LogConfig::file_delete_delay_ms`] as a duration.
    pub fn file_delete_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.file_delete_delay_ms)
    }
}

impl Default for LogConfig {
    /// Kafka's defaults: 1 GiB segments, 7-day roll and retention, no size limit, no forced
    /// flushes, an index entry every 4 KiB, deleted segments removed a minute later.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            roll_ms: Some(SEVEN_DAYS_MS),
            retention_ms: Some(SEVEN_DAYS_MS),
            retention_bytes: None,
            flush_interval_messages: None,
            index_interval_bytes: 4096,
            file_delete_delay_ms: 60_000,
        }
    }
}

/// What [`Log::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub first_offset: i64,
    /// Offset given to the last record.
    pub last_offset: i64,
    /// Largest `max_timestamp` of the appended batches.
    pub max_timestamp: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
}

/// What [`Log::read`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, back to back (possibly empty).
    pub records: Bytes,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// One partition's log on disk. See the crate documentation for the layout and flows.
///
/// Invariants: `segments` is never empty, is sorted by base offset, and the last one is the
/// active segment that appends go to; `log_start_offset <= high_watermark <= log_end_offset`.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) high_watermark: i64,
    /// Every offset below it is on disk; shared with roll flush jobs.
    pub(crate) recovery: Arc<Mutex<RecoveryPoint>>,
    /// A roll flush job ([`Log::begin_roll_flush`]) is out.
    pub(crate) roll_flush_running: bool,
    pub(crate) unflushed: u64,
    /// Files were created or removed since the directory was last fsynced.
    pub(crate) dir_dirty: bool,
    /// [`crate::FlushJob`]s taken and not yet finished.
    pub(crate) flushes_in_flight: u32,
    /// The next segment's files, made ahead of the roll (see [`crate::spare`]).
    pub(crate) spare: Arc<Spare>,
    /// The persisted log start offset (see [`Log::start_checkpoint`]).
    pub(crate) start_checkpoint: Arc<crate::checkpoint::StartCheckpoint>,
    /// [`crate::spare::space_calls_now`] when the log last looked (see
    /// [`Log::free_reserve_if_disk_filled`]).
    pub(crate) space_calls_seen: (u64, u64),
}

impl Log {
    /// Every offset below this one is known to be on disk (the persisted recovery point; -1
    /// when there is none): recovery after a crash re-checks the batches from it on.
    pub fn recovery_point(&self) -> i64 {
        self.recovery().value
    }

    pub(crate) fn recovery(&self) -> MutexGuard<'_, RecoveryPoint> {
        self.recovery.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration (topic config change); applies from the next operation on.
    pub fn set_config(&mut self, c: LogConfig) {
        self.config = c;
    }

    /// First offset that can be read.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// The high watermark (last committed offset + 1).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Sets the high watermark, clamped to `[log_start_offset, log_end_offset]`. The broker
    /// calls it; a single-node broker sets it to the log end offset after each append.
    pub fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw.clamp(self.log_start_offset, self.log_end_offset());
    }

    /// Records appended since the last flush.
    pub fn unflushed_messages(&self) -> u64 {
        self.unflushed
    }

    /// Total bytes of all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Number of segments (including the active one).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub(crate) fn active(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Appends already-validated batches: `batches` is the produce payload and `headers` what
    /// [`crate::validate_batches`] returned for it.
    ///
    /// Writes the base offsets (starting at the log end offset) and `leader_epoch` in place into
    /// each batch header (both lie outside the CRC), then writes the bytes with a single
    /// positional write to the active segment, so they are in the page cache (and survive a
    /// process crash) when this returns. Rolls to a new segment first when the active one is
    /// not empty and would exceed `segment_bytes` (or 32-bit index limits), or when its first
    /// append is `roll_ms` older than `now_ms`. Updates the indexes. Never fsyncs: the caller
    /// flushes when [`Log::flush_due`] says so (with [`Log::flush`], or outside its lock with
    /// [`Log::begin_flush`]).
    pub fn append(
        &mut self,
        batches: &[u8],
        headers: &[BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let invalid = |reason: String| Err(LogError::InvalidAppend { reason });
        if headers.is_empty() {
            return invalid("no batches to append".into());
        }
        let first_offset = self.log_end_offset();
        let mut next = first_offset;
        let mut pos = 0;
        let mut max_timestamp = i64::MIN;
        let mut records = 0u64;
        let mut assigned = Vec::with_capacity(headers.len());
        // Each batch is written as its patched first bytes (base offset, length, leader
        // epoch) followed by the rest straight from `batches`: one vectored write, no copy.
        let mut prefixes = Vec::with_capacity(headers.len());
        for h in headers {
            let total = h.total_len();
            let fits = pos + total <= batches.len() && batches.len() >= pos + LENGTH_OVERHEAD;
            if !fits
                || batches[pos + 8..pos + 12] != h.batch_length.to_be_bytes()
                || h.last_offset_delta < 0
            {
                return invalid(format!(
                    "batch header {} does not describe the bytes at {pos}",
                    assigned.len()
                ));
            }
            if next
                .checked_add(h.offset_count())
                .is_none_or(|end| end >= crate::checkpoint::MAX_OFFSET)
            {
                return invalid(format!("offsets would overflow past {next}"));
            }
            let mut prefix = [0u8; PATCHED_PREFIX];
            prefix.copy_from_slice(&batches[pos..pos + PATCHED_PREFIX]);
            set_offset_and_epoch(&mut prefix, next, leader_epoch);
            prefixes.push(prefix);
            assigned.push(BatchHeader {
                base_offset: next,
                partition_leader_epoch: leader_epoch,
                ..h.clone()
            });
            next += h.offset_count();
            max_timestamp = max_timestamp.max(h.max_timestamp);
            records += u64::try_from(h.records_count).unwrap_or(0);
            pos += total;
        }
        if pos != batches.len() {
            return invalid(format!("headers cover {pos} of {} bytes", batches.len()));
        }
        let last_offset = next - 1;
        if self.should_roll(batches.len() as u64, last_offset, now_ms) {
            self.roll()?;
        }
        let active = self.active();
        if active.size() + batches.len() as u64 > u64::from(u32::MAX)
            || last_offset - active.base_offset() > i64::from(u32::MAX)
        {
            return invalid("append is too large for one segment".into());
        }
        let interval = self.config.index_interval_bytes;
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * headers.len());
        let mut pos = 0;
        for (prefix, h) in prefixes.iter().zip(&assigned) {
            parts.push(prefix);
            parts.push(&batches[pos + PATCHED_PREFIX..pos + h.total_len()]);
            pos += h.total_len();
        }
        let len = batches.len() as u64;
        match self
            .active_mut()
            .append(&parts, len, &assigned, interval, now_ms)
        {
            // Spares' and deleted data's blocks were freed: once more.
            Err(e) if e.is_disk_full() && crate::spare::give_back_space(self.spare.dev()) => self
                .active_mut()
                .append(&parts, len, &assigned, interval, now_ms)?,
            appended => appended?,
        }
        self.free_reserve_if_disk_filled();
        self.unflushed += records;
        self.request_spare(now_ms);
        Ok(AppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            log_start_offset: self.log_start_offset,
        })
    }

    /// Asks for a spare segment once the active one fills fast enough to want at least
    /// [`SPARE_MIN`] in [`SPARE_HORIZON_MS`] and is half full, or, when it was not made from a
    /// spare (a partition's first segment, the active one after a restart), holds
    /// [`SPARE_MIN`]: such a segment hands over to the spare as soon as it is ready (see
    /// [`Log::hands_over_to_spare`]).
    fn request_spare(&self, now_ms: i64) {
        let active = self.active();
        let size = active.size();
        let due = if active.made_from_spare() {
            self.config.segment_bytes / 2
        } else {
            0
        };
        if size < due || size < SPARE_MIN {
            return;
        }
        let Some(since) = active.roll_base_ms() else {
            return;
        };
        let elapsed = u64::try_from(now_ms.saturating_sub(since))
            .unwrap_or(0)
            .max(1);
        let want = u128::from(size) * u128::from(SPARE_HORIZON_MS) / u128::from(elapsed);
        let reserve = u64::try_from(want)
            .unwrap_or(u64::MAX)
            .min(self.config.segment_bytes);
        if reserve >= SPARE_MIN {
            self.spare.request(reserve);
        }
    }

    /// An append on this log's disk found it full since the log last looked
    /// ([`crate::spare::space_calls_on`]): the active segment frees the blocks it holds past its
    /// end, here under the partition's lock, as the next append would write over them, and
    /// asks for no more. The global count is checked first, so the common case costs one
    /// atomic load.
    fn free_reserve_if_disk_filled(&mut self) {
        if crate::spare::space_calls() == self.space_calls_seen.0 {
            return;
        }
        let seen = self.space_calls_seen;
        self.space_calls_seen = crate::spare::space_calls_now(self.spare.dev());
        if self.space_calls_seen.1 != seen.1 {
            self.active_mut().release_reservation();
        }
    }

    /// A fast active segment not made from a spare rolls before it is full once a spare is
    /// ready: until then every 8 MiB it grows tops its reserve up with a `fallocate` on its
    /// own inode, which appends wait for while ext4 reads block bitmaps from a busy disk
    /// (docs/design.md §8). `segment.bytes` is a maximum, so a shorter segment changes nothing
    /// a client sees; a fast partition's first segment ends near [`SPARE_MIN`].
    fn hands_over_to_spare(&self) -> bool {
        let active = self.active();
        !active.made_from_spare() && active.size() >= SPARE_MIN && self.spare.is_ready()
    }

    fn should_roll(&self, len: u64, last_offset: i64, now_ms: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        let size = active.size() + len;
        size > self.config.segment_bytes
            || size > u64::from(u32::MAX)
            || last_offset - active.base_offset() > i64::from(u32::MAX)
            || self.roll_time_elapsed(now_ms)
            || self.hands_over_to_spare()
    }

    /// The wall-clock time at which `roll_ms` rolls the active segment (with or without
    /// appends), or `None` while nothing will (no `roll_ms`, or an empty active segment).
    pub fn roll_due_at(&self) -> Option<i64> {
        let active = self.active();
        match (self.config.roll_ms, active.roll_base_ms()) {
            (Some(roll_ms), Some(base)) if !active.is_empty() => Some(base.saturating_add(roll_ms)),
            _ => None,
        }
    }

    pub(crate) fn roll_time_elapsed(&self, now_ms: i64) -> bool {
        let active = self.active();
        match (self.config.roll_ms, active.roll_base_ms()) {
            (Some(roll_ms), Some(base)) => {
                !active.is_empty() && now_ms.saturating_sub(base) >= roll_ms
            }
            _ => false,
        }
    }

    /// Returns the headers of every batch in the last `segments` segments, oldest first. The
    /// broker rebuilds idempotent-producer state from them at start-up (the batches a retry
    /// could duplicate are the most recent ones). Only headers are read, not records.
    pub fn tail_batch_headers(&self, segments: usize) -> Result<Vec<BatchHeader>, LogError> {
        let first = self.segments.len().saturating_sub(segments);
        let mut out = Vec::new();
        for segment in &self.segments[first..] {
            for item in segment.walk(0) {
                let (_, header) = item?;
                out.push(header);
            }
        }
        Ok(out)
    }

    /// Starts a new empty active segment at the log end offset (no-op if the active one is empty).
    pub(crate) fn roll(&mut self) -> Result<(), LogError> {
        if self.active().is_empty() {
            return Ok(());
        }
        let base = self.log_end_offset();
        // As Kafka does on roll, the finished segment is made durable and the recovery point
        // moved to its end, so that recovery after a crash rescans only the new active segment
        // even when no flush policy is configured — but not here: the fsync of a segment of up
        // to a gigabyte would hold the partition (appends and fetches) for as long as the disk
        // takes. A roll flush job does it with no lock held (`Log::begin_roll_flush`); until it
        // has, recovery rescans from the older recovery point.
        if let Some(finished) = self.segments.last_mut() {
            finished.release_reservation_in_background();
        }
        let segment = match self.spare.take(base) {
            Some(reserved) => Segment::create_from_spare(&self.dir, base, reserved)?,
            None => Segment::create(&self.dir, base)?,
        };
        tracing::debug!(dir = %self.dir.display(), base, "rolled new segment");
        self.segments.push(segment);
        self.dir_dirty = true;
        Ok(())
    }

    /// Reads whole batches starting with the batch that contains `offset` (even when `offset`
    /// is in its middle), taking only batches whose last offset is below `max_offset` (the
    /// caller passes the high watermark or the last stable offset), up to `max_bytes` in total —
    /// but always the first whole batch when there is one, however large (KIP-74). Reads may
    /// span segments.
    ///
    /// `offset` outside `[log_start_offset, log_end_offset]` is
    /// [`LogError::OffsetOutOfRange`]; `offset == log_end_offset` gives empty records.
    pub fn read(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        if offset < self.log_start_offset || offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset == self.log_end_offset() {
            return Ok(self.empty_read());
        }
        let mut out = Vec::new();
        for (idx, from, to) in self.read_ranges(offset, max_offset, max_bytes)? {
            let data = self.segments[idx].read(from, (to - from) as usize)?;
            if out.is_empty() {
                out = data;
            } else {
                out.extend(data);
            }
        }
        Ok(ReadResult {
            records: Bytes::from(out),
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        })
    }

    /// [`Log::read`] without reading: the same batches as ranges of segment files, to be sent
    /// straight from the page cache (`sendfile`). The bytes of a range never change while the
    /// log is open, except that a truncation can shorten it: a sender must treat a short file
    /// as an error.
    pub fn read_slices(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<FileSlice>, LogError> {
        if offset < self.log_start_offset || offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset == self.log_end_offset() {
            return Ok(Vec::new());
        }
        Ok(self
            .read_ranges(offset, max_offset, max_bytes)?
            .into_iter()
            .map(|(idx, from, to)| self.segments[idx].slice(from, to - from))
            .collect())
    }

    /// The parts of the segment files that [`Log::read_slices`] at `offset` with `max_bytes`
    /// would touch and that are not in the page cache: from the offset-index entry its walk
    /// starts at, `max_bytes` plus one index interval on, into the following segments if the
    /// first ends sooner. Empty when all of it is cached, when the kernel cannot tell, or when
    /// `offset` is out of range or at the end. A caller on an async runtime reads these on a
    /// blocking thread ([`FileSlice::warm`]) before it reads under the partition's lock, so
    /// that a consumer catching up from disk does not hold the lock, or a runtime worker,
    /// while the disk answers. A first batch larger than `max_bytes` (KIP-74) can reach past
    /// the probed range; its tail is then read from the disk by the send.
    pub fn cold_slices(&self, offset: i64, max_bytes: usize) -> Vec<FileSlice> {
        if offset < self.log_start_offset || offset >= self.log_end_offset() {
            return Vec::new();
        }
        let idx = self.segment_of(offset);
        let mut pos = self.segments[idx].index_floor(offset);
        let mut want = max_bytes as u64 + u64::from(self.config.index_interval_bytes);
        let mut cold = Vec::new();
        for segment in &self.segments[idx..] {
            if want == 0 {
                break;
            }
            let len = segment.size().saturating_sub(pos).min(want);
            let slice = segment.slice(pos, len);
            if slice.is_cold() {
                cold.push(slice);
            }
            want -= len;
            pos = 0;
        }
        cold
    }

    /// Where the batches of a read lie: `(segment index, from, to)` byte ranges, in order.
    /// `offset` must be in range and below the log end offset.
    fn read_ranges(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<(usize, u64, u64)>, LogError> {
        let idx = self.segment_of(offset);
        if idx + 1 == self.segments.len()
            && let Some(range) = self.segments[idx].tail_range(offset, max_offset, max_bytes)
        {
            return Ok(range
                .map(|(from, to)| (idx, from, to))
                .into_iter()
                .collect());
        }
        self.walk_ranges(idx, offset, max_offset, max_bytes)
    }

    /// Index of the segment holding `offset` (the first when it is below all of them).
    pub(crate) fn segment_of(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    /// [`Log::read_ranges`] by walking the batch headers in the files, from the segment `idx`.
    /// The batch holding `offset` is found from the offset index and read once; past it the
    /// read jumps to the last batch start the index names within its limits
    /// ([`Segment::indexed_boundary`]) and walks only from there.
    fn walk_ranges(
        &self,
        idx: usize,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<(usize, u64, u64)>, LogError> {
        let mut ranges = Vec::new();
        let mut taken = 0usize;
        let (mut idx, mut found) = match self.segments[idx].find_batch(offset)? {
            Some(found) => (idx, Some(found)),
            None if idx + 1 < self.segments.len() => (idx + 1, None),
            None => return Ok(ranges),
        };
        loop {
            let segment = &self.segments[idx];
            // The first batch of the read is taken whole, however large (KIP-74).
            let (from, mut to) = match found.take() {
                Some((_, h)) if h.last_offset() >= max_offset => break,
                Some((pos, h)) => (pos, pos + h.total_len() as u64),
                None => (0, 0),
            };
            let room = max_bytes.saturating_sub(taken) as u64;
            if let Some(pos) = segment.indexed_boundary(to, from.saturating_add(room), max_offset) {
                to = pos;
            }
            let mut done = false;
            for item in segment.walk(to) {
                let (pos, h) = item?;
                let total = h.total_len();
                let first = taken == 0 && to == from;
                if h.last_offset() >= max_offset
                    || (!first && taken + (to - from) as usize + total > max_bytes)
                {
                    done = true;
                    break;
                }
                to = pos + total as u64;
            }
            if to > from {
                taken += (to - from) as usize;
                ranges.push((idx, from, to));
            }
            if done || idx + 1 == self.segments.len() {
                break;
            }
            idx += 1;
        }
        Ok(ranges)
    }

    fn empty_read(&self) -> ReadResult {
        ReadResult {
            records: Bytes::new(),
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Fsyncs every segment changed since the last flush (data and indexes), then advances the
    /// persisted recovery point to the log end offset.
    pub fn flush(&mut self) -> Result<(), LogError> {
        let force = self.flushes_in_flight > 0;
        for segment in &mut self.segments {
            segment.flush(force)?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        let leo = self.log_end_offset();
        self.recovery().set(&self.dir, leo)?;
        self.unflushed = 0;
        Ok(())
    }

    /// Flushes, then writes the clean-shutdown marker so that the next open skips the recovery scan.
    pub fn close(mut self) -> Result<(), LogError> {
        if let Some(active) = self.segments.last_mut() {
            active.release_reservation();
        }
        self.spare.close()?;
        self.flush()?;
        write_marker(&self.dir, CLEAN_SHUTDOWN_FILE)
    }

    /// Deletes the log: its directory is renamed at once (`<dir>.<nanos>.deleted`), so a
    /// topic created again under the same name starts in a new, empty one, and removed with
    /// everything in it on the "fjord-delete" thread after `file.delete.delay.ms`, as Kafka
    /// does. Removing gigabytes frees their blocks, which waits for the disk where the file
    /// system discards them (0.75 s per written GiB on this project's VM); the caller is
    /// answering a DeleteTopics request.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        let delay = self.config.file_delete_delay();
        // Waits for a spare being made, which would otherwise add files to the directory
        // while it is renamed.
        self.spare.close()?;
        drop(self);
        delete_dir(&dir, delay)
    }
}

/// Renames the partition directory `dir` to `<dir>.<nanos>.deleted` and has the "fjord-delete"
/// thread remove it with everything in it after `delay` (see [`Log::delete`]; for a directory
/// whose log could not be closed first, because a request still held it).
pub fn delete_dir(dir: &Path, delay: std::time::Duration) -> Result<(), LogError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut to = dir.as_os_str().to_os_string();
    to.push(format!(".{nanos}{}", crate::segment::DELETED_SUFFIX));
    let to = PathBuf::from(to);
    std::fs::rename(dir, &to).map_err(LogError::io("rename", dir))?;
    crate::io::remove_in_background(vec![to], delay);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{HEADER_CHUNK, bytes_read_here};
    use crate::testing::build_batch;

    /// A log of `batches` batches of `records` records with `value_len`-byte values, closed
    /// and opened again, so that its segment remembers no recent batches and reads walk the
    /// file.
    fn reopened(dir: &Path, batches: usize, records: usize, value_len: usize) -> Log {
        let value = vec![b'v'; value_len];
        let recs: Vec<_> = (0..records).map(|_| (None, Some(&value[..]), 0)).collect();
        let mut log = Log::open(dir, LogConfig::default(), 0).unwrap();
        for _ in 0..batches {
            let bytes = build_batch(0, &recs);
            let headers = crate::validate_batches(&bytes).unwrap();
            log.append(&bytes, &headers, 0, 0).unwrap();
        }
        log.set_high_watermark(log.log_end_offset());
        log.close().unwrap();
        let mut log = Log::open(dir, LogConfig::default(), 0).unwrap();
        log.set_high_watermark(log.log_end_offset());
        log
    }

    /// A 1 MiB read over batches smaller than a header chunk (a Java producer's default
    /// 16 KiB batches, single records, 100-byte records) reads a couple of headers and at most
    /// two chunks: the index names where to stop. Walking every header of the range read most
    /// of the range itself (about 540 KiB for the 15 KiB batches).
    #[test]
    fn a_read_over_small_batches_reads_few_headers() {
        for (batches, records, value_len) in [(200, 15, 1000), (2000, 1, 1000), (8000, 3, 100)] {
            let dir = tempfile::tempdir().unwrap();
            let log = reopened(dir.path(), batches, records, value_len);
            let leo = log.log_end_offset();
            let before = bytes_read_here();
            let slices = log.read_slices(leo / 3, leo, 1 << 20).unwrap();
            let read = bytes_read_here() - before;
            let sent: usize = slices.iter().map(|s| s.len()).sum();
            assert!(
                sent > (1 << 20) - 16 * 1024 && sent <= 1 << 20,
                "sent {sent}"
            );
            assert!(
                read <= 2 * HEADER_CHUNK as u64 + 1024,
                "{records} x {value_len}: read {read} bytes of headers for {sent}"
            );
        }
    }
}
