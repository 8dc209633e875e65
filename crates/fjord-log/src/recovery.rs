//! [`Log::open`]: loading a partition directory and recovering it after a crash.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{
    CLEAN_SHUTDOWN_FILE, LOG_START_FILE, RECOVERY_POINT_FILE, RecoveryPoint, StartCheckpoint,
    TMP_SUFFIX, read_offset, sync_dir,
};
use crate::error::LogError;
use crate::log::{Log, LogConfig};
use crate::segment::{
    INDEX_EXT, LOG_EXT, Segment, TIME_INDEX_EXT, delete_segment_files, parse_file_name,
    remove_if_exists,
};
use crate::spare::Spare;

/// Lists the base offsets of the `.log` files in `dir` (sorted) and removes leftovers: temp
/// checkpoint files, index files without a log file, and (on the background thread) deleted
/// segments' files. Other files are left alone.
fn scan_dir(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io("read dir", dir))? {
        let entry = entry.map_err(LogError::io("read dir", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if [LOG_START_FILE, RECOVERY_POINT_FILE]
            .iter()
            .any(|f| name == format!("{f}{TMP_SUFFIX}"))
        {
            remove_if_exists(&entry.path())?;
            continue;
        }
        // Segments deleted before a stop or crash, whose delay has passed or does not matter
        // now: removed on the background thread.
        if crate::io::remove_if_deleted(&entry.path()) {
            continue;
        }
        match parse_file_name(name) {
            Some((base, LOG_EXT)) => bases.push(base),
            Some((base, ext)) if ext == INDEX_EXT || ext == TIME_INDEX_EXT => {
                indexes.push((base, entry.path()))
            }
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if bases.binary_search(&base).is_err() {
            tracing::warn!(path = %path.display(), "removing index file without a segment");
            remove_if_exists(&path)?;
        }
    }
    Ok(bases)
}

impl Log {
    /// Opens (creating if absent) the partition directory `dir` and recovers it.
    ///
    /// * Without a clean-shutdown marker, every segment from the one containing the persisted
    ///   recovery point on is re-read batch by batch with CRC checks; the first invalid or torn
    ///   batch and everything after it in that segment is cut off, later segments are deleted
    ///   and the indexes of recovered segments are rebuilt. The recovered state is then fsynced
    ///   and the recovery point set to the log end offset.
    /// * Other segments are loaded cheaply: their indexes are sanity-checked (missing,
    ///   partial, non-monotone or pointing past the end means the segment is recovered as
    ///   above, even after a clean shutdown) and only the batch headers after the last index
    ///   entry are walked.
    /// * An empty directory becomes an empty log at the persisted log start offset (or 0).
    ///
    /// The log end offset is one past the last valid batch. The high watermark is set to the
    /// log end offset: Fjord is single-node, so everything on disk was committed. `now_ms`
    /// restarts the `roll_ms` clock of the active segment (it counts from the smaller of
    /// `now_ms` and the segment's first batch timestamp).
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir).map_err(LogError::io("create dir", dir))?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let bases = scan_dir(dir)?;
        Spare::remove_leftovers(dir)?;
        let persisted_start = read_offset(dir, LOG_START_FILE)?;
        let recover_from = if clean {
            bases.len()
        } else {
            let point = read_offset(dir, RECOVERY_POINT_FILE)?.unwrap_or(0);
            bases.partition_point(|&b| b <= point).saturating_sub(1)
        };
        let interval = config.index_interval_bytes;
        let mut segments: Vec<Segment> = Vec::new();
        let mut discard_from = bases.len();
        for (i, &base) in bases.iter().enumerate() {
            if let Some(prev) = segments.last()
                && base < prev.next_offset()
            {
                tracing::warn!(dir = %dir.display(), base, "segment overlaps its predecessor; discarding it and later ones");
                discard_from = i;
                break;
            }
            let mut segment = Segment::open(dir, base)?;
            let truncated = if i >= recover_from {
                segment.recover(interval)?
            } else if segment.load(interval)? {
                0
            } else {
                tracing::warn!(segment = %segment.path().display(), "indexes missing or inconsistent; rebuilding");
                segment.recover(interval)?
            };
            segments.push(segment);
            if truncated > 0 {
                discard_from = i + 1;
                break;
            }
        }
        for &base in &bases[discard_from..] {
            tracing::warn!(dir = %dir.display(), base, "deleting segment after truncated data");
            delete_segment_files(dir, base)?;
        }
        let mut log_start = persisted_start.unwrap_or(0);
        if let Some(first) = segments.first() {
            log_start = persisted_start.map_or(first.base_offset(), |p| p.max(first.base_offset()));
        }
        let leo = segments.last().map_or(log_start, Segment::next_offset);
        if segments.is_empty() || log_start > leo {
            if !segments.is_empty() {
                tracing::warn!(dir = %dir.display(), log_start, leo, "log start offset beyond the data; starting empty");
            }
            for segment in segments.drain(..) {
                segment.delete(std::time::Duration::ZERO)?;
            }
            segments.push(Segment::create(dir, log_start)?);
        }
        if clean {
            remove_if_exists(&marker)?;
        }
        let spare = Spare::new(dir);
        let space_calls_seen = crate::spare::space_calls_now(spare.dev());
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset: log_start,
            high_watermark: 0,
            recovery: Arc::new(Mutex::new(RecoveryPoint {
                value: if clean {
                    read_offset(dir, RECOVERY_POINT_FILE)?.unwrap_or(-1)
                } else {
                    -1
                },
                epoch: 0,
            })),
            roll_flush_running: false,
            unflushed: 0,
            dir_dirty: true,
            flushes_in_flight: 0,
            spare,
            start_checkpoint: StartCheckpoint::new(dir, persisted_start),
            space_calls_seen,
        };
        if !clean {
            // A crash leaves the active segment's reserve (up to a whole segment when it came
            // from a spare) allocated past its end, where no release will find it.
            log.active_mut().free_blocks_past_end()?;
        }
        log.high_watermark = log.log_end_offset();
        let first_ts = log.active().first_batch_max_timestamp()?;
        let roll_base = first_ts.map(|ts| if ts < 0 { now_ms } else { ts.min(now_ms) });
        log.active_mut().set_roll_base_ms(roll_base);
        if persisted_start.is_some_and(|p| p != log.log_start_offset) {
            log.start_checkpoint.set(log.log_start_offset)?;
        }
        if clean {
            sync_dir(dir)?;
            log.dir_dirty = false;
        } else {
            log.flush()?;
        }
        Ok(log)
    }
}
