//! The next segment's files, made and allocated ahead of a roll (docs/design.md §8).
//!
//! A segment that fills keeps blocks allocated past its end ([`crate::segment`]'s reserve),
//! topped up as it grows. A top-up's `fallocate` runs ext4's block allocator on the active
//! segment's inode and holds that inode's lock while the allocator reads block bitmaps from
//! the disk, and every append needs the lock: on a busy disk appends waited 12–30 ms, once
//! 595 ms. Allocating on an inode nobody appends to removes the wait. Once a fast-filling
//! segment is half full, a background thread ("fjord-spare") creates the three files of a spare segment
//! (`spare.log`, `spare.index`, `spare.timeindex`) and allocates the spare log file's blocks
//! for as much as the partition appends in [`SPARE_HORIZON_MS`] at its current rate, at most
//! a whole segment. The roll renames them into place, so it creates no inode either, and the
//! new active segment starts with its reserve in hand.
//!
//! A segment not made from a spare (a partition's first, the active one after a restart) asks
//! for one at [`SPARE_MIN`] and rolls as soon as it is ready, before it is full
//! (`Log::hands_over_to_spare`): otherwise it would grow to `segment.bytes` with top-ups.
//!
//! The spare files are not segments (their names do not parse as one), so a crash leaves them
//! for [`Spare::remove_leftovers`] at the next open.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use crate::error::LogError;
use crate::index::open_rw;
use crate::segment::{
    INDEX_EXT, LOG_EXT, TIME_INDEX_EXT, delete_segment_files, file_name, remove_if_exists,
};

/// Stem of the spare files' names.
const STEM: &str = "spare";
/// Seconds of appends, at the segment's rate so far, that a spare reserves.
pub(crate) const SPARE_HORIZON_MS: u64 = 60_000;
/// Smallest reserve worth a spare: below it the active segment's own reserve is topped up
/// rarely enough (the segment fills at under about 1 MB/s).
pub(crate) const SPARE_MIN: u64 = 64 * 1024 * 1024;

#[derive(Debug)]
enum State {
    /// No spare, and none asked for.
    Empty,
    /// The background thread has been asked to make one.
    Queued,
    /// The files exist; the log file has `reserved` bytes allocated.
    Ready { reserved: u64 },
    /// The log is closed or deleted: no more spares.
    Closed,
}

/// A partition's spare segment (see the module docs). Shared with the background thread.
#[derive(Debug)]
pub(crate) struct Spare {
    dir: PathBuf,
    /// Held while the background thread makes the files, so closing waits for it and a roll
    /// (which only tries the lock) never does.
    state: Mutex<State>,
}

impl Spare {
    pub(crate) fn new(dir: &Path) -> Arc<Self> {
        Arc::new(Spare {
            dir: dir.to_path_buf(),
            state: Mutex::new(State::Empty),
        })
    }

    fn paths(dir: &Path) -> [(PathBuf, &'static str); 3] {
        [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT].map(|ext| (dir.join(format!("{STEM}.{ext}")), ext))
    }

    /// Removes spare files a crash left in `dir`.
    pub(crate) fn remove_leftovers(dir: &Path) -> Result<(), LogError> {
        for (path, _) in Spare::paths(dir) {
            remove_if_exists(&path)?;
        }
        Ok(())
    }

    /// Asks the spare thread for a spare reserving `reserve` bytes, unless one is made,
    /// being made, or the log is closed.
    pub(crate) fn request(self: &Arc<Self>, reserve: u64) {
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        if matches!(*state, State::Empty) {
            *state = State::Queued;
            drop(state);
            if !crate::io::prepare_spare_in_background(self, reserve) {
                // The spare thread is far behind: ask again at a later append.
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if matches!(*state, State::Queued) {
                    *state = State::Empty;
                }
            }
        }
    }

    /// Background thread: makes the files. A failure (a full disk) leaves no files behind and
    /// no spare; the roll then creates its files as without one, and the next half-full
    /// segment asks again.
    pub(crate) fn make(self: &Arc<Self>, reserve: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Only this job holds it once the log is gone (dropped without a close).
        if !matches!(*state, State::Queued) || Arc::strong_count(self) == 1 {
            return;
        }
        match self.create_files(reserve) {
            Ok(()) => *state = State::Ready { reserved: reserve },
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "no spare segment");
                let _ = Spare::remove_leftovers(&self.dir);
                *state = State::Empty;
            }
        }
    }

    fn create_files(&self, reserve: u64) -> std::io::Result<()> {
        for (path, ext) in Spare::paths(&self.dir) {
            let file = open_rw(&path, true).map_err(std::io::Error::other)?;
            if ext == LOG_EXT {
                crate::io::allocate_past_end(&file, 0, reserve)?;
            }
        }
        Ok(())
    }

    /// At a roll: renames a ready spare's files to those of the segment starting at `base`
    /// and returns the bytes its log file has allocated; `None` (the caller creates the files)
    /// when no spare is ready, the background thread is making one, or a rename failed.
    pub(crate) fn take(&self, base: i64) -> Option<u64> {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let State::Ready { reserved } = *state else {
            return None;
        };
        *state = State::Empty;
        for (path, ext) in Spare::paths(&self.dir) {
            if let Err(e) = std::fs::rename(&path, self.dir.join(file_name(base, ext))) {
                tracing::warn!(path = %path.display(), error = %e, "could not use the spare segment");
                let _ = delete_segment_files(&self.dir, base);
                let _ = Spare::remove_leftovers(&self.dir);
                return None;
            }
        }
        Some(reserved)
    }

    /// Whether a spare is ready to be taken (false while the background thread works on one).
    pub(crate) fn is_ready(&self) -> bool {
        self.state
            .try_lock()
            .is_ok_and(|state| matches!(*state, State::Ready { .. }))
    }

    /// Closing or deleting the log: waits for a spare being made and removes its files, which
    /// frees the blocks it held.
    pub(crate) fn close(&self) -> Result<(), LogError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = State::Closed;
        Spare::remove_leftovers(&self.dir)
    }
}
