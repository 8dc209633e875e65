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
//!
//! A nearly full disk. A spare holds blocks another partition on the same disk may need, so
//! it is made only while at least as much again stays free ([`Spare::make`]), and an append
//! that finds the disk full takes back the blocks of every ready spare on that disk and tries
//! once more ([`give_back_space`]). The same call tells the disk's segments to free the blocks
//! they hold ahead of their ends at their next append ([`space_calls_on`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError, Weak};
use std::time::{Duration, Instant};

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
/// How long a partition whose spare was refused (too little free space) waits before it asks
/// again: without it, each append past [`SPARE_MIN`] would queue a request.
const DECLINED_FOR: Duration = Duration::from_secs(10);

/// Every live spare, so that an append that finds its disk full can take their blocks back.
static SPARES: Mutex<Vec<Weak<Spare>>> = Mutex::new(Vec::new());
/// How many times an append has found a disk full, over all disks (read on every append).
static SPACE_CALLS: AtomicU64 = AtomicU64::new(0);
/// The same per disk (device number), for the disks that have filled.
static FULL_DISKS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// How many times an append has found a disk full since the process started, over all disks:
/// unchanged (the common case) means nothing to do, and a change is looked up with
/// [`space_calls_on`].
pub(crate) fn space_calls() -> u64 {
    SPACE_CALLS.load(Ordering::Relaxed)
}

/// How many times an append has found the disk `dev` full. A log on it that sees the count
/// change frees the blocks its active segment holds past its end (see
/// `Log::free_reserve_if_disk_filled`): those are the only ones not freed by
/// [`give_back_space`], as the append that would write over them holds its own partition's
/// lock.
pub(crate) fn space_calls_on(dev: u64) -> u64 {
    let full = FULL_DISKS.lock().unwrap_or_else(PoisonError::into_inner);
    full.iter().find(|(d, _)| *d == dev).map_or(0, |(_, n)| *n)
}

/// [`space_calls`] and [`space_calls_on`] `dev`, read together.
pub(crate) fn space_calls_now(dev: u64) -> (u64, u64) {
    (space_calls(), space_calls_on(dev))
}

/// The device number of the file system holding `path` (0 when it cannot be read).
fn device_of(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.dev())
}

/// An append found the disk `dev` full: removes every ready spare on it (a spare is made again
/// when there is room) and every deleted file still waiting for its delay, counts the call so that the disk's active segments free their
/// reserves at their next append, and says whether any blocks were freed here, which makes a
/// retry worth it.
pub(crate) fn give_back_space(dev: u64) -> bool {
    {
        let mut full = FULL_DISKS.lock().unwrap_or_else(PoisonError::into_inner);
        match full.iter_mut().find(|(d, _)| *d == dev) {
            Some((_, n)) => *n += 1,
            None => full.push((dev, 1)),
        }
    }
    SPACE_CALLS.fetch_add(1, Ordering::Relaxed);
    let spares: Vec<Arc<Spare>> = {
        let mut all = SPARES.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|s| s.strong_count() > 0);
        all.iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.dev == dev)
            .collect()
    };
    let mut freed = false;
    for spare in spares {
        freed |= spare.give_back();
    }
    // Deleted segments and topics waiting out `file.delete.delay.ms` (on any disk: removing
    // them early only shortens the delay) go now; bounded, as the caller holds a partition.
    freed | crate::io::remove_deleted_now(std::time::Duration::from_secs(5))
}

#[derive(Debug)]
enum State {
    /// No spare, and none asked for.
    Empty,
    /// The background thread has been asked to make one.
    Queued,
    /// The files exist; the log file has `reserved` bytes allocated.
    Ready { reserved: u64 },
    /// Refused for want of free space (or failed): not asked for again before `until`.
    Declined { until: Instant },
    /// The log is closed or deleted: no more spares.
    Closed,
}

/// A partition's spare segment (see the module docs). Shared with the background thread.
#[derive(Debug)]
pub(crate) struct Spare {
    dir: PathBuf,
    /// Device number of the disk it is on (see [`give_back_space`]).
    dev: u64,
    /// Held while the background thread makes the files, so closing waits for it and a roll
    /// (which only tries the lock) never does.
    state: Mutex<State>,
}

impl Spare {
    pub(crate) fn new(dir: &Path) -> Arc<Self> {
        let spare = Arc::new(Spare {
            dir: dir.to_path_buf(),
            dev: device_of(dir),
            state: Mutex::new(State::Empty),
        });
        let mut all = SPARES.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|s| s.strong_count() > 0);
        all.push(Arc::downgrade(&spare));
        spare
    }

    fn paths(dir: &Path) -> [(PathBuf, &'static str); 3] {
        [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT].map(|ext| (dir.join(format!("{STEM}.{ext}")), ext))
    }

    /// Device number of the disk the partition is on.
    pub(crate) fn dev(&self) -> u64 {
        self.dev
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
        if let State::Declined { until } = *state
            && Instant::now() >= until
        {
            *state = State::Empty;
        }
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

    /// Background thread: makes the files, if the disk keeps at least `reserve` bytes free
    /// besides them. Otherwise, or on a failure (a full disk), it leaves no files behind and
    /// no spare, and the partition asks again after [`DECLINED_FOR`]; the roll meanwhile
    /// creates its files as without one.
    pub(crate) fn make(self: &Arc<Self>, reserve: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Only this job holds it once the log is gone (dropped without a close).
        if !matches!(*state, State::Queued) || Arc::strong_count(self) == 1 {
            return;
        }
        let made = match crate::io::available_bytes(&self.dir) {
            Ok(free) if free / 2 < reserve => Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("{free} bytes free, fewer than twice the {reserve} a spare would take"),
            )),
            _ => self.create_files(reserve),
        };
        match made {
            Ok(()) => *state = State::Ready { reserved: reserve },
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "no spare segment");
                let _ = Spare::remove_leftovers(&self.dir);
                *state = State::Declined {
                    until: Instant::now() + DECLINED_FOR,
                };
            }
        }
    }

    /// Removes a ready spare's files, freeing its blocks; true if there was one. A spare being
    /// made is left alone (the thread making it checked the free space first).
    fn give_back(&self) -> bool {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        if !matches!(*state, State::Ready { .. }) {
            return false;
        }
        *state = State::Declined {
            until: Instant::now() + DECLINED_FOR,
        };
        match Spare::remove_leftovers(&self.dir) {
            Ok(()) => {
                tracing::info!(dir = %self.dir.display(), "disk full: spare segment given back");
                true
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "disk full: could not remove the spare segment");
                false
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

    /// Whether a spare has been asked for and the background thread has not got to it.
    pub(crate) fn is_pending(&self) -> bool {
        match self.state.try_lock() {
            Ok(state) => matches!(*state, State::Queued),
            // The background thread holds the lock while it makes the files.
            Err(_) => true,
        }
    }

    /// Closing or deleting the log: waits for a spare being made and removes its files, which
    /// frees the blocks it held.
    pub(crate) fn close(&self) -> Result<(), LogError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = State::Closed;
        Spare::remove_leftovers(&self.dir)
    }
}
