//! Small durable files in the partition directory: offset checkpoints (written to a temp file,
//! fsynced, then renamed over the old one) and the clean-shutdown marker.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::LogError;

/// Checkpoint holding the log start offset (advanced by DeleteRecords).
pub(crate) const LOG_START_FILE: &str = "log-start-offset";
/// Checkpoint holding the recovery point: every offset below it has been fsynced.
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Marker written by a clean close; its presence at open skips the recovery scan.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Suffix of checkpoint files being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// The end of a log's offset space: segments are named by base offsets below it (a segment
/// addresses its records by 32-bit offsets relative to its base), so no checkpoint holds it and
/// no append ends past it. A log whose end reaches it refuses appends with
/// [`crate::LogError::InvalidAppend`].
pub const MAX_OFFSET: i64 = i64::MAX - u32::MAX as i64;

/// Reads an offset checkpoint; `None` when missing, unreadable as a number or out of range
/// (with a warning).
pub(crate) fn read_offset(dir: &Path, name: &str) -> Result<Option<i64>, LogError> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => String::new(),
        Err(e) => return Err(LogError::io("read", &path)(e)),
    };
    match text.trim().parse::<i64>() {
        // An offset must leave room for a segment based at it (32-bit relative offsets);
        // anything larger is damage, not an offset this log could have reached.
        Ok(v) if (0..MAX_OFFSET).contains(&v) => Ok(Some(v)),
        _ => {
            tracing::warn!(path = %path.display(), "ignoring unreadable checkpoint file");
            Ok(None)
        }
    }
}

/// The persisted recovery point, shared by a [`crate::Log`] and the roll flush jobs it hands out
/// (see [`crate::Log::begin_roll_flush`]), which persist it with no partition lock held. Its
/// mutex serialises every write of the checkpoint file (they share one temp file).
#[derive(Debug)]
pub(crate) struct RecoveryPoint {
    /// The value in the checkpoint file (or -1: none; recovery scans everything).
    pub(crate) value: i64,
    /// Bumped whenever the value is lowered (truncation), so that a job taken before cannot
    /// raise it again past data that is gone.
    pub(crate) epoch: u64,
}

impl RecoveryPoint {
    /// Persists `value` when it is higher than the current one and no truncation happened since
    /// `epoch` was read; returns whether it did.
    pub(crate) fn raise(&mut self, dir: &Path, value: i64, epoch: u64) -> Result<bool, LogError> {
        if self.epoch != epoch || value <= self.value {
            return Ok(false);
        }
        write_offset(dir, RECOVERY_POINT_FILE, value)?;
        self.value = value;
        Ok(true)
    }

    /// Persists `value`, whatever it is (a lower value also fences off older jobs).
    pub(crate) fn set(&mut self, dir: &Path, value: i64) -> Result<(), LogError> {
        if value == self.value {
            return Ok(());
        }
        write_offset(dir, RECOVERY_POINT_FILE, value)?;
        if value < self.value {
            self.epoch += 1;
        }
        self.value = value;
        Ok(())
    }
}

/// Durably replaces the checkpoint `name` with `value`.
pub(crate) fn write_offset(dir: &Path, name: &str, value: i64) -> Result<(), LogError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = File::create(&tmp).map_err(LogError::io("create", &tmp))?;
    file.write_all(format!("{value}\n").as_bytes())
        .map_err(LogError::io("write", &tmp))?;
    file.sync_all().map_err(LogError::io("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(LogError::io("rename", &path))?;
    sync_dir(dir)
}

/// A log's persisted start offset (the `log-start-offset` file), shared so that DeleteRecords
/// can write it without holding the partition's lock: its fsync, and the directory's, wait for
/// a busy disk for as long as that takes (over a second behind gigabytes of writeback), and
/// every produce and fetch of the partition would wait with it. Writes are serialized here and
/// DeleteRecords only ever moves the file up, so two concurrent requests cannot leave the
/// smaller one on disk.
#[derive(Debug)]
pub struct StartCheckpoint {
    dir: PathBuf,
    /// What the file holds (`None`: no file).
    persisted: Mutex<Option<i64>>,
}

impl StartCheckpoint {
    pub(crate) fn new(dir: &Path, persisted: Option<i64>) -> Arc<Self> {
        Arc::new(StartCheckpoint {
            dir: dir.to_path_buf(),
            persisted: Mutex::new(persisted),
        })
    }

    /// Durably records `offset` as the log start offset, unless the file already holds as
    /// much. The first half of DeleteRecords; the second is `Log::advance_log_start`.
    pub fn raise_to(&self, offset: i64) -> Result<(), LogError> {
        let mut persisted = self.hold();
        if persisted.is_some_and(|p| p >= offset) {
            return Ok(());
        }
        self.write(&mut persisted, offset)
    }

    /// The write lock, held (see `testing::hold_start_checkpoint`).
    pub(crate) fn hold(&self) -> std::sync::MutexGuard<'_, Option<i64>> {
        self.persisted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Durably records `offset`, also when it is lower (a truncation below the start).
    pub(crate) fn set(&self, offset: i64) -> Result<(), LogError> {
        self.write(&mut self.hold(), offset)
    }

    fn write(&self, persisted: &mut Option<i64>, offset: i64) -> Result<(), LogError> {
        write_offset(&self.dir, LOG_START_FILE, offset)?;
        *persisted = Some(offset);
        Ok(())
    }
}

/// Durably creates the (empty) file `name`.
pub(crate) fn write_marker(dir: &Path, name: &str) -> Result<(), LogError> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(LogError::io("create", &path))?;
    file.sync_all().map_err(LogError::io("fsync", &path))?;
    sync_dir(dir)
}

/// Fsyncs a directory so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), None);
        write_offset(dir.path(), "x", 42).unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), Some(42));
        write_offset(dir.path(), "x", 7).unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), Some(7));
        std::fs::write(dir.path().join("x"), b"\xffnot a number").unwrap();
        assert_eq!(read_offset(dir.path(), "x").unwrap(), None);
        assert!(!dir.path().join(format!("x{TMP_SUFFIX}")).exists());
    }
}
