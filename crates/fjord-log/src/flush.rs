//! Group commit: a flush taken under the partition lock and synced outside it.
//!
//! [`Log::flush`] fsyncs while its caller holds the log, so every append waits for the disk.
//! [`Log::begin_flush`] instead only collects the files changed since the last flush (and marks
//! them clean); [`FlushJob::sync`] fsyncs them with no lock held, while appends go on; and
//! [`Log::finish_flush`] records the outcome. Every append made before `begin_flush` is durable
//! once `sync` returns `Ok`, so callers that serialise their jobs get one fsync for all the
//! appends that arrived while the previous one ran.
//!
//! The persisted recovery point is not moved by a job (that would take two more fsyncs per
//! flush); it moves at roll, close and [`Log::flush`], as without a flush policy. While a job
//! is outstanding, those fsync every segment regardless of its dirty flag, because the job may
//! have taken a segment's changes without having synced them yet.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::checkpoint::sync_dir;
use crate::error::LogError;
use crate::log::Log;

/// Files to fsync for one flush; see the module documentation.
#[derive(Debug)]
#[must_use = "a flush job must be synced and then finished with Log::finish_flush"]
pub struct FlushJob {
    files: Vec<(Arc<File>, PathBuf)>,
    /// The partition directory, when files were created or removed in it since its last fsync.
    dir: Option<PathBuf>,
    end_offset: i64,
    records: u64,
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

    /// Fsyncs the job's files and directory. Needs no access to the log.
    pub fn sync(&self) -> Result<(), LogError> {
        for (file, path) in &self.files {
            file.sync_data().map_err(LogError::io("fsync", path))?;
        }
        if let Some(dir) = &self.dir {
            sync_dir(dir)?;
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
        let mut files = Vec::new();
        for segment in &mut self.segments {
            if let Some(taken) = segment.take_dirty_files() {
                files.extend(taken.map(|(f, p)| (f, p.to_path_buf())));
            }
        }
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        self.flushes_in_flight += 1;
        let records = std::mem::take(&mut self.unflushed);
        FlushJob {
            files,
            dir,
            end_offset: self.log_end_offset(),
            records,
        }
    }

    /// Records how a job's [`FlushJob::sync`] ended. On failure every segment is marked
    /// changed again, so the next flush syncs them all, and the error is returned.
    pub fn finish_flush(
        &mut self,
        job: FlushJob,
        synced: Result<(), LogError>,
    ) -> Result<(), LogError> {
        self.flushes_in_flight = self.flushes_in_flight.saturating_sub(1);
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
