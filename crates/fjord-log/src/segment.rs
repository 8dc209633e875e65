//! One segment: a `.log` file of whole batches plus its offset and time indexes.
//!
//! A segment covers offsets `[base_offset, next_offset)`. Its file only ever holds whole,
//! validated batches: appends write whole batches, truncation cuts at batch boundaries and
//! recovery cuts at the first batch that fails to check out.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::batch::{BATCH_HEADER_LEN, BatchHeader, check_crc};
use crate::error::LogError;
use crate::index::{IndexFile, OffsetEntry, TimeEntry, floor_index, open_rw};
use crate::io::Reservation;
use crate::reader::{ChunkReader, HEADER_CHUNK, HeaderWalker, SCAN_CHUNK, read_exact};

/// Extension of segment data files.
pub(crate) const LOG_EXT: &str = "log";
/// Extension of offset index files.
pub(crate) const INDEX_EXT: &str = "index";
/// Extension of time index files.
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";

/// Appended to the names of a deleted segment's files, which the "fjord-delete" thread removes
/// after `file.delete.delay.ms` (see [`Segment::delete`]); open hands over any it finds.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// File name of the `ext` file of the segment starting at `base`: 20 zero-padded digits.
pub(crate) fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// Parses a segment file name into (base offset, extension).
pub(crate) fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base: i64 = stem.parse().ok()?;
    // Leave room for 32-bit relative offsets above the base.
    (base < i64::MAX - i64::from(u32::MAX)).then_some((base, ext))
}

/// Running state derived from the batches of a segment, shared by append, load and recovery
/// so that all three place index entries the same way.
#[derive(Debug, Clone)]
struct Tracker {
    next_offset: i64,
    /// (largest batch max-timestamp, base offset of the first batch carrying it).
    max_timestamp: Option<(i64, i64)>,
    bytes_since_index: u64,
    last_time_entry: Option<i64>,
}

impl Tracker {
    fn new(base: i64) -> Self {
        Tracker {
            next_offset: base,
            max_timestamp: None,
            bytes_since_index: 0,
            last_time_entry: None,
        }
    }

    /// Accounts for the batch `h` at `pos` and returns the index entries to add for it.
    fn observe(
        &mut self,
        base: i64,
        pos: u64,
        h: &BatchHeader,
        interval: u32,
        may_index: bool,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        let mut offset_entry = None;
        if may_index && self.bytes_since_index >= u64::from(interval) {
            offset_entry = Some(OffsetEntry {
                rel: (h.base_offset - base) as u32,
                pos: pos as u32,
            });
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len() as u64;
        if self.max_timestamp.is_none_or(|(t, _)| h.max_timestamp > t) {
            self.max_timestamp = Some((h.max_timestamp, h.base_offset));
        }
        let mut time_entry = None;
        if offset_entry.is_some()
            && let Some((t, o)) = self.max_timestamp
            && self.last_time_entry.is_none_or(|last| t > last)
        {
            time_entry = Some(TimeEntry {
                timestamp: t,
                rel: (o - base) as u32,
            });
            self.last_time_entry = Some(t);
        }
        self.next_offset = h.last_offset() + 1;
        (offset_entry, time_entry)
    }
}

/// Checks what a header must satisfy to be accepted from disk at `pos` after `next_offset`.
fn check_stored(h: &BatchHeader, pos: u64, next_offset: i64, base: i64) -> Result<(), String> {
    if h.base_offset < next_offset {
        return Err(format!(
            "batch base offset {} is below the expected {next_offset}",
            h.base_offset
        ));
    }
    if h.last_offset_delta < 0 {
        return Err(format!(
            "negative last offset delta {}",
            h.last_offset_delta
        ));
    }
    if h.last_offset() - base > i64::from(u32::MAX) || pos > u64::from(u32::MAX) {
        return Err("batch does not fit the segment's 32-bit index".into());
    }
    Ok(())
}

/// Offset index entries must increase strictly and point inside the file.
fn offsets_sane(offsets: &[OffsetEntry], file_len: u64) -> bool {
    offsets
        .windows(2)
        .all(|w| w[0].rel < w[1].rel && w[0].pos < w[1].pos)
        && offsets.last().is_none_or(|e| u64::from(e.pos) < file_len)
}

/// Time entries must increase (timestamps strictly) and pair up with offset entries.
fn times_sane(times: &[TimeEntry], offsets: &[OffsetEntry]) -> bool {
    times
        .windows(2)
        .all(|w| w[0].timestamp < w[1].timestamp && w[0].rel <= w[1].rel)
        && times.is_empty() == offsets.is_empty()
        && match (times.last(), offsets.last()) {
            (Some(t), Some(o)) => t.rel <= o.rel,
            _ => true,
        }
}

/// Appended bytes after which a segment asks the kernel to start writing them back. Without
/// it, dirty page cache piles up to the kernel's background threshold (10 % of memory by
/// default, gigabytes here) and is then written back at once, stalling appends and fetches
/// for tens of milliseconds. Starting writeback is asynchronous; durability still comes only
/// from fsync.
const WRITEBACK_BYTES: u64 = 8 * 1024 * 1024;

/// Segments at least this large keep disk blocks allocated ahead of their end (docs/design.md
/// §8): as much again as they hold, at most [`RESERVE_MAX`]. Small partitions reserve nothing.
const RESERVE_FROM: u64 = 1024 * 1024;
/// Most bytes a segment keeps allocated past its end.
const RESERVE_MAX: u64 = 16 * 1024 * 1024;

/// Batches a segment remembers of its latest appends (see [`Segment::tail_range`]): enough
/// for a consumer that keeps up, whose fetch asks for the last few batches, at 32 bytes each.
const RECENT_BATCHES: usize = 32;

/// Where one recently appended batch lies.
#[derive(Debug, Clone, Copy)]
struct RecentBatch {
    pos: u64,
    base_offset: i64,
    last_offset: i64,
    len: u64,
}

/// A segment of the log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    /// Shared with the writeback thread (see [`crate::io::start_writeback_in_background`]).
    file: Arc<File>,
    size: u64,
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    state: Tracker,
    roll_base_ms: Option<i64>,
    dirty: bool,
    /// End of the range whose writeback has been started (see [`WRITEBACK_BYTES`]).
    writeback_from: u64,
    /// Blocks allocated ahead of the end (see [`RESERVE_FROM`]).
    reservation: Arc<Reservation>,
    /// End of the range asked to be allocated (at least the file's end).
    reserved_to: u64,
    /// Made from a spare, with its blocks allocated ahead (see [`crate::spare`]).
    from_spare: bool,
    /// The last batches appended, oldest first, the last one ending at `size` (empty after
    /// open, recovery and truncation; see [`Segment::tail_range`]).
    recent: VecDeque<RecentBatch>,
}

impl Segment {
    /// Creates a new empty segment starting at `base` in `dir` (replacing stale files).
    pub fn create(dir: &Path, base: i64) -> Result<Self, LogError> {
        let log_path = dir.join(file_name(base, LOG_EXT));
        let file = open_rw(&log_path, true)?;
        Segment::new_empty(dir, base, log_path, file, 0)
    }

    /// Creates the segment starting at `base` from spare files just renamed to its names (see
    /// [`crate::spare`]): empty, with `reserved` bytes already allocated for its log file.
    pub fn create_from_spare(dir: &Path, base: i64, reserved: u64) -> Result<Self, LogError> {
        let log_path = dir.join(file_name(base, LOG_EXT));
        // Not truncated: on ext4 that would free the allocated blocks.
        let file = open_rw(&log_path, false)?;
        let len = file
            .metadata()
            .map_err(LogError::io("stat", &log_path))?
            .len();
        let reserved = if len == 0 {
            reserved
        } else {
            // Not what a spare is: start from nothing, as a new segment does.
            file.set_len(0)
                .map_err(LogError::io("truncate", &log_path))?;
            0
        };
        Segment::new_empty(dir, base, log_path, file, reserved)
    }

    /// An empty segment on the empty `file`, with `reserved` bytes allocated past its end;
    /// creates (empties) its index files.
    fn new_empty(
        dir: &Path,
        base: i64,
        log_path: PathBuf,
        file: File,
        reserved: u64,
    ) -> Result<Self, LogError> {
        let file = Arc::new(file);
        Ok(Segment {
            base_offset: base,
            reservation: Arc::new(Reservation::new(Arc::clone(&file))),
            reserved_to: reserved,
            from_spare: reserved > 0,
            file,
            size: 0,
            offset_index: IndexFile::create(dir.join(file_name(base, INDEX_EXT)))?,
            time_index: IndexFile::create(dir.join(file_name(base, TIME_INDEX_EXT)))?,
            log_path,
            state: Tracker::new(base),
            roll_base_ms: None,
            dirty: true,
            writeback_from: 0,
            recent: VecDeque::new(),
        })
    }

    /// Whether the segment was made from a spare (see [`crate::spare`]).
    pub fn made_from_spare(&self) -> bool {
        self.from_spare
    }

    /// Frees blocks allocated past the end of the file that no reservation accounts for (a
    /// crash left them), as a release does ([`crate::io::free_past_end`]).
    pub fn free_blocks_past_end(&mut self) -> Result<(), LogError> {
        use std::os::unix::fs::MetadataExt;
        let meta = self
            .file
            .metadata()
            .map_err(LogError::io("stat", &self.log_path))?;
        let whole_pages = self.size.div_ceil(4096) * 4096;
        let allocated = meta.blocks() * 512;
        if allocated > whole_pages {
            // The blocks past the end lie within as many bytes again as are allocated.
            crate::io::free_past_end(&self.file, self.size, whole_pages + allocated)
                .map_err(LogError::io("truncate", &self.log_path))?;
        }
        Ok(())
    }

    /// Opens an existing segment. Its state is unknown until [`Segment::load`] or
    /// [`Segment::recover`] has run.
    pub fn open(dir: &Path, base: i64) -> Result<Self, LogError> {
        let log_path = dir.join(file_name(base, LOG_EXT));
        let file = Arc::new(open_rw(&log_path, false)?);
        Ok(Segment {
            base_offset: base,
            reservation: Arc::new(Reservation::new(Arc::clone(&file))),
            reserved_to: 0,
            from_spare: false,
            file,
            size: 0,
            offset_index: IndexFile::open(dir.join(file_name(base, INDEX_EXT)))?,
            time_index: IndexFile::open(dir.join(file_name(base, TIME_INDEX_EXT)))?,
            log_path,
            state: Tracker::new(base),
            roll_base_ms: None,
            dirty: false,
            writeback_from: 0,
            recent: VecDeque::new(),
        })
    }

    fn file_len(&self) -> Result<u64, LogError> {
        Ok(self
            .file
            .metadata()
            .map_err(LogError::io("stat", &self.log_path))?
            .len())
    }

    /// Loads a segment trusted to hold whole valid batches (clean shutdown, or below the
    /// recovery point): sanity-checks the indexes and walks the batch headers after the last
    /// index entry to find the segment's end and max timestamp, adding index entries missing at
    /// the tail. Returns false, changing nothing, when anything looks wrong; the caller then runs
    /// [`Segment::recover`].
    pub fn load(&mut self, interval: u32) -> Result<bool, LogError> {
        let file_len = self.file_len()?;
        let base = self.base_offset;
        let offsets = self.offset_index.entries();
        let times = self.time_index.entries();
        if !self.offset_index.intact()
            || !self.time_index.intact()
            || !offsets_sane(offsets, file_len)
            || !times_sane(times, offsets)
        {
            return Ok(false);
        }
        let mut state = Tracker::new(base);
        let resume = offsets
            .last()
            .map(|e| (u64::from(e.pos), base + i64::from(e.rel)));
        if let Some((_, offset)) = resume {
            state.next_offset = offset;
        }
        if let Some(t) = times.last() {
            state.max_timestamp = Some((t.timestamp, base + i64::from(t.rel)));
            state.last_time_entry = Some(t.timestamp);
        }
        let mut reader = ChunkReader::new(&self.file, &self.log_path, file_len, HEADER_CHUNK);
        let (mut new_offsets, mut new_times) = (Vec::new(), Vec::new());
        let mut pos = resume.map_or(0, |(p, _)| p);
        let mut first = true;
        while pos < file_len {
            let Some(bytes) = reader.slice(pos, BATCH_HEADER_LEN)? else {
                return Ok(false);
            };
            let Ok(h) = BatchHeader::parse(bytes) else {
                return Ok(false);
            };
            let resumed_here = first && resume.is_some();
            if check_stored(&h, pos, state.next_offset, base).is_err()
                || pos + h.total_len() as u64 > file_len
                || (resumed_here && resume.is_some_and(|(_, offset)| offset != h.base_offset))
            {
                return Ok(false);
            }
            let (o, t) = state.observe(base, pos, &h, interval, !resumed_here);
            new_offsets.extend(o);
            new_times.extend(t);
            pos += h.total_len() as u64;
            first = false;
        }
        drop(reader);
        self.size = file_len;
        self.recent.clear();
        self.state = state;
        if !new_offsets.is_empty() {
            // Written at once: the files are whole again after an open.
            self.dirty = true;
            self.offset_index.append(&new_offsets)?;
            self.offset_index.write_pending()?;
            self.time_index.append(&new_times)?;
            self.time_index.write_pending()?;
        }
        Ok(true)
    }

    /// Re-reads the whole segment, checking every batch (header, length, CRC, offsets), cuts
    /// the file at the first batch that fails and rebuilds both indexes. Returns the number of
    /// bytes cut off.
    pub fn recover(&mut self, interval: u32) -> Result<u64, LogError> {
        let file_len = self.file_len()?;
        let base = self.base_offset;
        let mut state = Tracker::new(base);
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        let mut reader = ChunkReader::new(&self.file, &self.log_path, file_len, SCAN_CHUNK);
        let mut pos = 0;
        while pos < file_len {
            match next_valid_batch(&mut reader, pos, state.next_offset, base)? {
                Ok(h) => {
                    let (o, t) = state.observe(base, pos, &h, interval, true);
                    offsets.extend(o);
                    times.extend(t);
                    pos += h.total_len() as u64;
                }
                Err(reason) => {
                    tracing::warn!(
                        segment = %self.log_path.display(),
                        position = pos,
                        bytes = file_len - pos,
                        %reason,
                        "truncating invalid data at the end of segment"
                    );
                    break;
                }
            }
        }
        drop(reader);
        if pos < file_len {
            self.file
                .set_len(pos)
                .map_err(LogError::io("truncate", &self.log_path))?;
        }
        self.size = pos;
        self.recent.clear();
        self.state = state;
        self.offset_index.rewrite(offsets)?;
        self.time_index.rewrite(times)?;
        self.dirty = true;
        Ok(file_len - pos)
    }

    /// First offset of the segment.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// One past the last offset in the segment (`base_offset` when empty).
    pub fn next_offset(&self) -> i64 {
        self.state.next_offset
    }

    /// Bytes of batch data.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the segment holds no batch.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// (largest batch max-timestamp, base offset of the first batch carrying it).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.state.max_timestamp
    }

    /// The time-index entries (for timestamp lookups).
    pub fn time_entries(&self) -> &[TimeEntry] {
        self.time_index.entries()
    }

    /// Time from which `roll_ms` is counted: the first append's `now_ms` (or, for a segment
    /// loaded from disk, as set by the log at open).
    pub fn roll_base_ms(&self) -> Option<i64> {
        self.roll_base_ms
    }

    /// Sets the time from which `roll_ms` is counted.
    pub fn set_roll_base_ms(&mut self, ms: Option<i64>) {
        self.roll_base_ms = ms;
    }

    /// Path of the `.log` file.
    pub fn path(&self) -> &Path {
        &self.log_path
    }

    /// Appends the `len` bytes of `parts` (written back to back), which hold exactly the
    /// batches `headers` (base offsets already assigned).
    pub fn append(
        &mut self,
        parts: &[&[u8]],
        len: u64,
        headers: &[BatchHeader],
        interval: u32,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let start = self.size;
        if let Err(e) = crate::io::write_all_vectored_at(&self.file, parts, start) {
            // Best effort: do not leave a partial batch behind.
            let _ = self.file.set_len(start);
            return Err(LogError::io("write", &self.log_path)(e));
        }
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        let mut pos = start;
        for h in headers {
            let (o, t) = self.state.observe(self.base_offset, pos, h, interval, true);
            offsets.extend(o);
            times.extend(t);
            let len = h.total_len() as u64;
            if self.recent.len() == RECENT_BATCHES {
                self.recent.pop_front();
            }
            self.recent.push_back(RecentBatch {
                pos,
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                len,
            });
            pos += len;
        }
        self.size = start + len;
        self.dirty = true;
        // Whole pages only: the last, partial one is written again with the next append.
        let written = self.size & !4095;
        if written.saturating_sub(self.writeback_from) >= WRITEBACK_BYTES {
            let (from, len) = (self.writeback_from, written - self.writeback_from);
            self.writeback_from = written;
            crate::io::start_writeback_in_background(&self.file, from, len);
        }
        self.reserve_ahead();
        self.roll_base_ms.get_or_insert(now_ms);
        // The batches are written and will be acknowledged. The indexes only speed up lookups
        // and are checked and rebuilt at open, so a failed index write (a full disk) must not
        // fail the append: that would leave data in the file behind an unchanged end offset.
        if let Err(e) = self.offset_index.append(&offsets) {
            tracing::warn!(error = %e, "offset index write failed; it will be rebuilt at open");
        }
        if let Err(e) = self.time_index.append(&times) {
            tracing::warn!(error = %e, "time index write failed; it will be rebuilt at open");
        }
        Ok(())
    }

    /// Asks for blocks ahead of the end once less than half the wanted reserve is left, so
    /// that writeback finds them allocated and never runs ext4's block allocator (whose
    /// bitmap reads, under the inode's `i_data_sem`, stalled appends for up to 190 ms on a
    /// busy disk) and appends skip delayed allocation's per-page reservations.
    fn reserve_ahead(&mut self) {
        if self.size < RESERVE_FROM {
            return;
        }
        let ahead = self.size.min(RESERVE_MAX);
        if self.reserved_to >= self.size + ahead / 2 {
            return;
        }
        let from = self.reserved_to.max(self.size & !4095);
        let to = self.size + ahead;
        self.reserved_to = to;
        self.reservation.extend_in_background(from, to - from);
    }

    /// Frees the blocks reserved past the end (and stops reservations still queued): called
    /// when the segment stops being the active one and when the log closes. A failure leaves
    /// at most [`RESERVE_MAX`] bytes allocated behind the segment until it is deleted, so it is
    /// logged, not returned.
    pub fn release_reservation(&mut self) {
        if let Err(e) = self.reservation.release(self.size, self.reserved_to) {
            tracing::warn!(path = %self.log_path.display(), error = %e,
                "could not free the blocks reserved past the segment's end");
        }
        self.reserved_to = self.reserved_to.max(self.size);
    }

    /// [`Segment::release_reservation`] at a roll, under the partition's lock: the blocks are
    /// freed on the background thread (see [`Reservation::release_in_background`]).
    pub fn release_reservation_in_background(&mut self) {
        self.reservation
            .release_in_background(self.size, self.reserved_to);
        self.reserved_to = self.reserved_to.max(self.size);
    }

    /// `len` bytes at `pos` of the file, to be sent without reading them (see
    /// [`crate::Log::read_slices`]).
    pub fn slice(&self, pos: u64, len: u64) -> crate::io::FileSlice {
        crate::io::FileSlice::new(Arc::clone(&self.file), pos, len as usize)
    }

    /// Walks batch headers from the batch boundary `pos`.
    pub fn walk(&self, pos: u64) -> HeaderWalker<'_> {
        HeaderWalker::new(&self.file, &self.log_path, self.size, pos)
    }

    /// Finds the batch containing `offset` (or the first batch after it, when `offset` falls
    /// below the segment or into a gap): its position and header. `None` past the end.
    pub fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        for item in self.walk(self.index_floor(offset)) {
            let (pos, h) = item?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
        }
        Ok(None)
    }

    /// The byte range a read from `offset` takes when the batches it needs are among the last
    /// appended: from the batch holding `offset`, whole batches up to `max_bytes` (the first
    /// one even if larger, KIP-74), stopping before a batch that reaches `max_offset`. The
    /// same answer a walk of the file's headers gives, without reading them back: a consumer
    /// at the tail fetches after every append. `None` when the remembered batches do not reach
    /// back to `offset`; `Some(None)` when nothing is to be read.
    pub fn tail_range(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Option<Option<(u64, u64)>> {
        if self.recent.front()?.base_offset > offset {
            return None;
        }
        let mut range: Option<(u64, u64)> = None;
        for b in self.recent.iter().filter(|b| b.last_offset >= offset) {
            if b.last_offset >= max_offset {
                break;
            }
            match &mut range {
                None => range = Some((b.pos, b.pos + b.len)),
                Some((from, to)) => {
                    if (*to - *from + b.len) as usize > max_bytes {
                        break;
                    }
                    *to += b.len;
                }
            }
        }
        Some(range)
    }

    /// Where [`Segment::find_batch`] starts walking for `offset`: the position of the last
    /// offset-index entry at or below it (0 when none is).
    pub fn index_floor(&self, offset: i64) -> u64 {
        let offsets = self.offset_index.entries();
        floor_index(offsets, offset - self.base_offset, |e| i64::from(e.rel))
            .map_or(0, |i| u64::from(offsets[i].pos))
    }

    /// The last batch boundary the offset index knows in `(after, limit]` whose batch starts
    /// at or below `max_offset` (so every batch before it ends below `max_offset`). A read
    /// takes the batches up to it without reading their headers: the index names a batch
    /// start at least every `index_interval_bytes`, so a walk from there to the read's limit
    /// covers at most one interval and one batch, where walking the whole range read every
    /// header in it (with batches of a few KiB, most of the range itself).
    pub fn indexed_boundary(&self, after: u64, limit: u64, max_offset: i64) -> Option<u64> {
        let offsets = self.offset_index.entries();
        let limit = limit.min(self.size);
        let by_pos = offsets.partition_point(|e| u64::from(e.pos) <= limit);
        let by_offset =
            offsets.partition_point(|e| self.base_offset + i64::from(e.rel) <= max_offset);
        let entry = offsets.get(by_pos.min(by_offset).checked_sub(1)?)?;
        let pos = u64::from(entry.pos);
        (pos > after).then_some(pos)
    }

    /// Reads `len` bytes at `pos`.
    pub fn read(&self, pos: u64, len: usize) -> Result<Vec<u8>, LogError> {
        read_exact(&self.file, &self.log_path, pos, len)
    }

    /// Cuts the segment so that it ends before the batch containing `offset`; returns the new
    /// next offset.
    pub fn truncate_to(&mut self, offset: i64, interval: u32) -> Result<i64, LogError> {
        let Some((pos, _)) = self.find_batch(offset)? else {
            return Ok(self.next_offset());
        };
        self.reservation
            .cut(pos)
            .map_err(LogError::io("truncate", &self.log_path))?;
        let offsets = self.offset_index.entries();
        let keep_offsets = offsets.partition_point(|e| u64::from(e.pos) < pos);
        let keep_times = match keep_offsets.checked_sub(1).map(|i| offsets[i].rel) {
            Some(last_rel) => self
                .time_index
                .entries()
                .partition_point(|t| t.rel <= last_rel),
            None => 0,
        };
        self.offset_index.truncate(keep_offsets)?;
        self.time_index.truncate(keep_times)?;
        self.dirty = true;
        if !self.load(interval)? {
            self.recover(interval)?;
        }
        if self.is_empty() {
            self.roll_base_ms = None;
        }
        Ok(self.next_offset())
    }

    /// Max timestamp of the first batch, if any (used to restart `roll_ms` after a reopen).
    pub fn first_batch_max_timestamp(&self) -> Result<Option<i64>, LogError> {
        match self.walk(0).next() {
            Some(item) => Ok(Some(item?.1.max_timestamp)),
            None => Ok(None),
        }
    }

    /// Fsyncs data and indexes if anything changed since the last flush, or always when
    /// `force` is set (a flush job may have taken the changes and still be syncing them).
    pub fn flush(&mut self, force: bool) -> Result<(), LogError> {
        if self.dirty || force {
            self.file
                .sync_data()
                .map_err(LogError::io("fsync", &self.log_path))?;
            self.offset_index.sync()?;
            self.time_index.sync()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// When anything changed since the last flush (or always, with `force`), marks the segment
    /// clean and returns its files, which the caller must fsync (see [`crate::FlushJob`]).
    pub fn take_dirty_files(&mut self, force: bool) -> Option<[(Arc<File>, &Path); 3]> {
        if !self.dirty && !force {
            return None;
        }
        self.dirty = false;
        let offset_index = Arc::clone(self.offset_index.file_to_sync());
        let time_index = Arc::clone(self.time_index.file_to_sync());
        Some([
            (Arc::clone(&self.file), self.log_path.as_path()),
            (offset_index, self.offset_index.path()),
            (time_index, self.time_index.path()),
        ])
    }

    /// Marks the segment as changed since the last flush (a flush job that took its files failed).
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Deletes the segment: its files are renamed with [`DELETED_SUFFIX`] and removed on a
    /// background thread after `delay` (Kafka's `file.delete.delay.ms`). Removing a written
    /// segment frees its blocks, which waits for the disk where the file system discards them,
    /// and the caller holds the partition's lock. The delay also keeps a fetch that still sends
    /// from the file from being the one that frees them when it lets go of it.
    pub fn delete(self, delay: Duration) -> Result<(), LogError> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ];
        // Closed while the files still have their names: closing frees no blocks then.
        drop(self);
        let mut deleted = Vec::with_capacity(paths.len());
        for path in paths {
            let mut to = path.clone().into_os_string();
            to.push(DELETED_SUFFIX);
            match std::fs::rename(&path, &to) {
                Ok(()) => deleted.push(PathBuf::from(to)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("rename", &path)(e)),
            }
        }
        crate::io::remove_in_background(deleted, delay);
        Ok(())
    }
}

/// Reads and checks the batch at `pos`: `Ok(Err(reason))` when it is invalid or torn.
fn next_valid_batch(
    reader: &mut ChunkReader<'_>,
    pos: u64,
    next_offset: i64,
    base: i64,
) -> Result<Result<BatchHeader, String>, LogError> {
    let Some(bytes) = reader.slice(pos, BATCH_HEADER_LEN)? else {
        return Ok(Err("torn batch header".into()));
    };
    let h = match BatchHeader::parse(bytes) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Err(reason) = check_stored(&h, pos, next_offset, base) {
        return Ok(Err(reason));
    }
    let Some(batch) = reader.slice(pos, h.total_len())? else {
        return Ok(Err("torn batch".into()));
    };
    Ok(check_crc(batch, &h, 0)
        .map(|()| h)
        .map_err(|e| e.to_string()))
}

/// Deletes the files of the segment starting at `base` in `dir`.
pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<(), LogError> {
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
        remove_if_exists(&dir.join(file_name(base, ext)))?;
    }
    Ok(())
}

/// Removes a file, treating "not found" as success.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io("remove", path)(e)),
        _ => Ok(()),
    }
}
