//! Group commit: a flush taken under the partition lock and synced outside it.
//!
//! [`Log::flush`] fsyncs while its caller holds the log, so every append waits for the disk.
//! [`Log::begin_flush`] instead only collects the files changed since the last flush (and marks
//! them clean); [`FlushJob::sync`] fsyncs them with no lock held, while appends go on; and
//! [`Log::finish_flush`] records the outcome. Every append made before `begin_flush` is durable
//! once `sync` returns `Ok`, so callers that serialise their jobs get one fsync for all the
//! appends that arrived while the previous one ran.
//!
//! The persisted recovery point is not moved by these jobs (that would take two more fsyncs
//! per flush); it moves at close and [`Log::flush`], and after a roll: a roll leaves the
//! finished segment to a *roll flush job* ([`Log::begin_roll_flush`]), which fsyncs the
//! segments below the active one and then persists the recovery point at the active segment's
//! base, all with no lock held, so a roll never makes appends or fetches wait for the disk.
//! While any job is outstanding, [`Log::flush`] and a roll flush job fsync every segment they
//! cover regardless of its dirty flag, because the job may have taken a segment's changes
//! without having synced them yet. Recovery point writes are serialised by their own mutex,
//! and a truncation that lowers the point fences off jobs taken before it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::checkpoint::{RecoveryPoint, sync_dir};
use crate::error::LogError;
use crate::log::Log;
use crate::segment::Segment;

/// Files to fsync for one flush; see the module documentation.
#[derive(Debug)]
#[must_use = "a flush job must be synced and then finished with Log::finish_flush"]
pub struct FlushJob {
    files: Vec<(Arc<File>, PathBuf)>,
    /// The partition directory, when files were created or removed in it since its last fsync.
    dir: Option<PathBuf>,
    end_offset: i64,
    records: u64,
    /// For a roll flush job: the recovery point to persist once the files are synced.
    recovery: Option<RecoveryTarget>,
}

/// Where a roll flush job moves the recovery point.
#[derive(Debug)]
struct RecoveryTarget {
    shared: Arc<Mutex<RecoveryPoint>>,
    dir: PathBuf,
    /// The recovery point's epoch when the job was taken.
    epoch: u64,
}

impl FlushJob {
    /// Every offset below this one is durable once [`FlushJob::sync`] has returned `Ok`.
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// How many files the job fsyncs (the directory included).
    pub fn file_count(&self) -> usize {
        self.files.len() + usize::from(self.dir.is_some())
    }

    /// Whether this is a roll flush job (it also persists the recovery point).
    pub fn moves_recovery_point(&self) -> bool {
        self.recovery.is_some()
    }

    /// Fsyncs the job's files and directory, then, for a roll flush job, persists the
    /// recovery point at [`FlushJob::end_offset`] (unless a truncation lowered it since the
    /// job was taken, or something else raised it further). Needs no access to the log.
    pub fn sync(&self) -> Result<(), LogError> {
        for (file, path) in &self.files {
            file.sync_data().map_err(LogError::io("fsync", path))?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
        }
        if let Some(target) = &self.recovery {
            let mut point = target.shared.lock().unwrap_or_else(|p| p.into_inner());
            point.raise(&target.dir, self.end_offset, target.epoch)?;
        }
        Ok(())
    }
}

impl Log {
    /// Whether `flush_interval_messages` records are waiting for an fsync (`flush.messages`).
    /// [`Log::append`] never fsyncs; the caller flushes when this says so.
    pub fn flush_due(&self) -> bool {
        self.config
            .flush_interval_messages
            .is_some_and(|n| self.unflushed >= n)
    }

    /// Takes the files changed since the last flush and marks them clean; see the module
    /// documentation. Every job must be passed to [`Log::finish_flush`].
    pub fn begin_flush(&mut self) -> FlushJob {
        let (files, dir) = self.take_job_files(self.segments.len(), |_| false);
        let records = std::mem::take(&mut self.unflushed);
        FlushJob {
            files,
            dir,
            end_offset: self.log_end_offset(),
            records,
            recovery: None,
        }
    }

    /// Whether segments below the active one wait for the fsync that a roll leaves to a roll
    /// flush job (none is out yet). The caller runs one: [`Log::begin_roll_flush`].
    pub fn roll_flush_due(&self) -> bool {
        !self.roll_flush_running && self.recovery_point() < self.active().base_offset()
    }

    /// Takes a roll flush job when [`Log::roll_flush_due`]: the files of the segments below the
    /// active one that changed since their last flush (all of them while another job is out,
    /// which may have taken changes it has not synced yet) and the directory if needed. Once
    /// [`FlushJob::sync`] returns `Ok`, every offset below the active segment's base is durable
    /// and the recovery point is persisted there. The job must be passed to
    /// [`Log::finish_flush`].
    pub fn begin_roll_flush(&mut self) -> Option<FlushJob> {
        if !self.roll_flush_due() {
            return None;
        }
        let force = self.flushes_in_flight > 0;
        let durable = self.recovery_point();
        // Segments wholly below the recovery point are on disk already.
        let (files, dir) = self.take_job_files(self.segments.len() - 1, |segment| {
            force && segment.next_offset() > durable
        });
        self.roll_flush_running = true;
        let epoch = self.recovery().epoch;
        Some(FlushJob {
            files,
            dir,
            end_offset: self.active().base_offset(),
            records: 0,
            recovery: Some(RecoveryTarget {
                shared: Arc::clone(&self.recovery),
                dir: self.dir.clone(),
                epoch,
            }),
        })
    }

    /// For a new job: takes the files of the first `count` segments that changed since their
    /// last flush, or that `force` picks, marking them clean, and the directory if files were
    /// created or removed in it; counts the job as out.
    fn take_job_files(
        &mut self,
        count: usize,
        force: impl Fn(&Segment) -> bool,
    ) -> (Vec<(Arc<File>, PathBuf)>, Option<PathBuf>) {
        let mut files = Vec::new();
        for segment in &mut self.segments[..count] {
            let forced = force(segment);
            if let Some(taken) = segment.take_dirty_files(forced) {
                files.extend(taken.map(|(f, p)| (f, p.to_path_buf())));
            }
        }
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        self.flushes_in_flight += 1;
        (files, dir)
    }

    /// Records how a job's [`FlushJob::sync`] ended. On failure every segment is marked
    /// changed again, so the next flush syncs them all, and the error is returned.
    pub fn finish_flush(
        &mut self,
        job: FlushJob,
        synced: Result<(), LogError>,
    ) -> Result<(), LogError> {
        self.flushes_in_flight = self.flushes_in_flight.saturating_sub(1);
        if job.recovery.is_some() {
            self.roll_flush_running = false;
        }
        if let Err(e) = synced {
            for segment in &mut self.segments {
                segment.mark_dirty();
            }
            self.dir_dirty |= job.dir.is_some();
            self.unflushed += job.records;
            return Err(e);
        }
        Ok(())
    }
}
