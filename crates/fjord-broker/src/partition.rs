//! One partition hosted by this broker: its log, its effective topic config and the
//! idempotent-producer state, behind one lock.
//!
//! The lock is per partition, so produce and fetch on different partitions never contend.
//! It is a `std` mutex held only for the in-memory bookkeeping and the write into the page
//! cache, never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use fjord_log::{AppendInfo, BatchHeader, Log, LogError};
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use crate::topic_config::EffectiveTopicConfig;

/// How many recent batches per producer are remembered for duplicate detection (Kafka: 5,
/// the most in-flight requests an idempotent producer may have).
const PRODUCER_BATCH_WINDOW: usize = 5;

/// A partition of a topic on this broker.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    state: Mutex<PartitionState>,
    /// Long-polling fetches waiting for an append here (one entry per connection at most).
    waiters: Mutex<Vec<Arc<Notify>>>,
    /// The high watermark and log start offset as of the last release of `state`'s lock
    /// ([`StateGuard`] stores them), so that a fetch of a partition with nothing new needs
    /// neither the lock nor the log ([`Partition::published_offsets`]).
    published_hw: AtomicI64,
    published_start: AtomicI64,
    /// Every offset below this one has been fsynced by a flush job (see [`Partition::flush_through`]).
    durable: AtomicI64,
    /// Held by the one flush job running for this partition (group commit).
    flushing: Arc<tokio::sync::Mutex<()>>,
    flush_jobs: AtomicU64,
    /// Wall-clock ms before which housekeeping has nothing to do here (a time-based roll or a
    /// `flush.ms` fsync), so that its walk skips the partition without the lock. Every release
    /// of `state`'s lock sets it to 0 (look again), unless housekeeping set it
    /// ([`StateGuard::defer_housekeeping`]): whatever a lock holder changed is looked at on the
    /// next walk.
    housekeeping_at: AtomicI64,
}

/// The mutable part of a partition.
pub struct PartitionState {
    /// The log on disk.
    pub log: Log,
    /// The topic's effective config.
    pub config: EffectiveTopicConfig,
    producers: HashMap<i64, ProducerEntry>,
    /// Wall-clock time of the last fsync, for `flush.ms`.
    pub last_flush_ms: i64,
    /// First offsets of the appends that reached `flush.messages` and wait for their fsync,
    /// oldest first. The high watermark stays below the first: as in Kafka, whose append
    /// fsyncs before the high watermark moves, a record whose append asked for an fsync is
    /// not served before it is on disk, so a power cut cannot take back what a consumer saw.
    flush_pending: VecDeque<i64>,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    /// (first sequence, last sequence, first offset) of the last few batches.
    batches: VecDeque<(i32, i32, i64)>,
}

/// What appending a produce batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended at these offsets.
    Appended(AppendInfo),
    /// An idempotent retry of a batch already in the log, which starts at this offset.
    Duplicate {
        /// First offset of the original batch.
        first_offset: i64,
    },
}

/// Why a produce batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A protocol-level refusal with its Kafka error code.
    #[error("{error}: {message}")]
    Refused {
        /// The Kafka error.
        error: ResponseError,
        /// Human-readable detail.
        message: String,
    },
    /// The log failed (disk error).
    #[error(transparent)]
    Log(#[from] LogError),
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(
        topic: String,
        topic_id: Uuid,
        index: i32,
        log: Log,
        config: EffectiveTopicConfig,
        now_ms: i64,
    ) -> Self {
        let mut state = PartitionState {
            log,
            config,
            producers: HashMap::new(),
            last_flush_ms: now_ms,
            flush_pending: VecDeque::new(),
        };
        state.rebuild_producer_state(&topic, index);
        let (hw, start) = (state.log.high_watermark(), state.log.log_start_offset());
        Partition {
            topic,
            topic_id,
            index,
            state: Mutex::new(state),
            waiters: Mutex::new(Vec::new()),
            published_hw: AtomicI64::new(hw),
            published_start: AtomicI64::new(start),
            durable: AtomicI64::new(0),
            flushing: Arc::new(tokio::sync::Mutex::new(())),
            flush_jobs: AtomicU64::new(0),
            housekeeping_at: AtomicI64::new(0),
        }
    }

    /// Returns once every offset below `offset` is on disk (fsynced), for `flush.messages`.
    ///
    /// Group commit: one flush job runs per partition at a time, outside the partition lock,
    /// so appends go on while it syncs; a caller that finds a job running waits for it, and
    /// if that job did not cover `offset` the next one covers every append made meanwhile —
    /// one fsync for all of them instead of one each under the lock.
    pub async fn flush_through(self: &Arc<Self>, offset: i64) -> Result<(), LogError> {
        if self.durable.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let turn = Arc::clone(&self.flushing).lock_owned().await;
        if self.durable.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let partition = Arc::clone(self);
        // The guard moves into the blocking task, so a caller that goes away (its connection
        // closed) cannot let a second job start while this one is still syncing.
        let job = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            partition.flush_now()
        });
        match job.await {
            Ok(result) => result,
            Err(e) => Err(LogError::Io {
                op: "fsync",
                path: self.lock().log.dir().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// Every offset below this one has been fsynced by a flush job.
    pub fn durable_offset(&self) -> i64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Flush jobs run so far (fsync rounds; each may cover many appends).
    pub fn flush_jobs(&self) -> u64 {
        self.flush_jobs.load(Ordering::Relaxed)
    }

    /// Runs one flush job now, blocking: takes the changed files under the lock, fsyncs them
    /// without it, and records the result. The caller must hold the `flushing` turn.
    fn flush_now(&self) -> Result<(), LogError> {
        let job = self.lock().log.begin_flush();
        self.flush_jobs.fetch_add(1, Ordering::Relaxed);
        let synced = job.sync();
        let end = job.end_offset();
        let mut st = self.lock();
        st.log.finish_flush(job, synced)?;
        st.last_flush_ms = crate::broker::now_ms();
        let visible = st.flushed_through(end);
        drop(st);
        self.durable.fetch_max(end, Ordering::AcqRel);
        if visible {
            self.wake_waiters();
        }
        Ok(())
    }

    /// Fsyncs the segments a roll finished and moves the recovery point to the active segment,
    /// with the partition lock held only to take and finish the job (appends and fetches go on
    /// meanwhile). Returns whether there was anything to do. Blocking.
    pub fn flush_rolled(&self) -> Result<bool, LogError> {
        let Some(job) = self.lock().log.begin_roll_flush() else {
            return Ok(false);
        };
        let synced = job.sync();
        self.lock().log.finish_flush(job, synced)?;
        Ok(true)
    }

    /// Fsyncs when `flush.ms` has passed since the last flush with data pending, or when
    /// appends wait for an fsync to become visible that no produce is waiting for any more
    /// (its connection closed before the job started). Skips the round when a flush job is
    /// running (it is flushing already). Blocking.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<(), LogError> {
        let due = {
            let st = self.lock();
            !st.flush_pending.is_empty()
                || st.config.flush_ms.is_some_and(|ms| {
                    st.log.unflushed_messages() > 0 && now_ms - st.last_flush_ms >= ms
                })
        };
        if !due {
            return Ok(());
        }
        match Arc::clone(&self.flushing).try_lock_owned() {
            Ok(_turn) => self.flush_now(),
            Err(_) => Ok(()),
        }
    }

    /// Asks to be woken by the next append. A connection registers its one waker at most once
    /// per partition, so the list stays as short as the number of waiting connections.
    pub fn register_waiter(&self, waker: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if !waiters.iter().any(|w| Arc::ptr_eq(w, waker)) {
            waiters.push(Arc::clone(waker));
        }
    }

    /// Wakes every fetch waiting on this partition (called after an append).
    pub fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiters {
            // A stored permit wakes the waiter even if it has not started waiting yet.
            w.notify_one();
        }
    }

    /// Locks the partition state. Releasing the lock publishes the high watermark and log
    /// start offset ([`Partition::published_offsets`]).
    pub fn lock(&self) -> StateGuard<'_> {
        StateGuard {
            state: self.state.lock().unwrap_or_else(|p| p.into_inner()),
            published_hw: &self.published_hw,
            published_start: &self.published_start,
            housekeeping_at: &self.housekeeping_at,
            next_housekeeping_ms: 0,
        }
    }

    /// Whether housekeeping has something to look at here at `now_ms` (see
    /// `housekeeping_at`); read without the lock.
    pub fn housekeeping_due(&self, now_ms: i64) -> bool {
        self.housekeeping_at.load(Ordering::Acquire) <= now_ms
    }

    /// The high watermark and log start offset as of the last release of the state lock.
    /// A fetch whose offset is at this high watermark has nothing to read. One that then
    /// waits registers its waker ([`Partition::register_waiter`]) and reads these values
    /// again: an append published before the registration shows there, one after it wakes
    /// the waker. Each value is read on its own; a log start offset newer than the high
    /// watermark can only be larger, which such a fetch takes as a reason to lock.
    pub fn published_offsets(&self) -> (i64, i64) {
        let hw = self.published_hw.load(Ordering::Acquire);
        let start = self.published_start.load(Ordering::Acquire);
        (hw, start)
    }

    /// Consumes the partition and returns its state (for a clean close).
    pub fn into_state(self) -> PartitionState {
        self.state.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the directory name of a partition: `<topic>-<partition>`.
    pub fn dir_name(topic: &str, index: i32) -> String {
        format!("{topic}-{index}")
    }
}

/// The partition state, locked. Dropping it publishes the high watermark and log start
/// offset before the lock is released, so every change to them, by whatever path, is
/// published.
pub struct StateGuard<'a> {
    state: MutexGuard<'a, PartitionState>,
    published_hw: &'a AtomicI64,
    published_start: &'a AtomicI64,
    housekeeping_at: &'a AtomicI64,
    /// Stored in `housekeeping_at` on release: 0 unless housekeeping deferred itself.
    next_housekeeping_ms: i64,
}

impl StateGuard<'_> {
    /// Lets housekeeping skip this partition until `ms` (wall clock), unless something
    /// takes the lock before then. Only housekeeping calls this, having just looked at
    /// everything it checks.
    pub fn defer_housekeeping(&mut self, ms: i64) {
        self.next_housekeeping_ms = ms;
    }
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = PartitionState;

    fn deref(&self) -> &PartitionState {
        &self.state
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut PartitionState {
        &mut self.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        self.published_hw
            .store(self.state.log.high_watermark(), Ordering::Release);
        self.published_start
            .store(self.state.log.log_start_offset(), Ordering::Release);
        // Still under the lock (the mutex guard is released after this), so a later holder's
        // store comes after this one.
        self.housekeeping_at
            .store(self.next_housekeeping_ms, Ordering::Release);
    }
}

impl PartitionState {
    /// When housekeeping next has something to do here, as things stand: now (0) while a
    /// flush waits or rolled segments wait for their fsync; otherwise the earlier of the
    /// time-based roll and the `flush.ms` fsync of unflushed records, `i64::MAX` if neither
    /// is pending. Retention is checked on its own schedule, for every partition.
    pub fn next_housekeeping_ms(&self) -> i64 {
        if !self.flush_pending.is_empty() || self.log.roll_flush_due() {
            return 0;
        }
        let roll = self.log.roll_due_at().unwrap_or(i64::MAX);
        let flush = match self.config.flush_ms {
            Some(ms) if self.log.unflushed_messages() > 0 => self.last_flush_ms.saturating_add(ms),
            _ => i64::MAX,
        };
        roll.min(flush)
    }

    /// Appends one validated batch (`header` describes `batch`), applying the idempotent
    /// producer checks, `LogAppendTime` stamping and the single-node high watermark.
    pub fn append(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendOutcome, AppendError> {
        let mut header = header.clone();
        if header.producer_id >= 0
            && let Some(first_offset) = self.check_sequence(&header)?
        {
            return Ok(AppendOutcome::Duplicate { first_offset });
        }
        // Stamping rewrites the batch (attributes, max timestamp, CRC), so it needs a copy;
        // otherwise the log writes the request's bytes as they are.
        let mut stamped_batch = Vec::new();
        let mut batch = batch;
        if self.config.log_append_time {
            stamped_batch.extend_from_slice(batch);
            let stamped = fjord_log::set_log_append_time(&mut stamped_batch, now_ms)
                .map_err(LogError::from)?;
            if let Some(h) = stamped.into_iter().next() {
                header = h;
            }
            batch = &stamped_batch;
        }
        let info = self
            .log
            .append(batch, std::slice::from_ref(&header), leader_epoch, now_ms)?;
        // Single node: every replica in the ISR (just us) has the data once it is written —
        // and, when this append reached `flush.messages`, once it is fsynced (see
        // `flush_pending`); so are the appends after one that waits.
        if self.log.flush_due() {
            self.flush_pending.push_back(info.first_offset);
        }
        if self.flush_pending.is_empty() {
            let leo = self.log.log_end_offset();
            self.log.set_high_watermark(leo);
        }
        if header.producer_id >= 0 {
            self.remember_batch(&header, info.first_offset);
        }
        Ok(AppendOutcome::Appended(info))
    }

    /// Records that every offset below `durable` is fsynced: the appends waiting for it become
    /// visible, up to the first that still waits. Returns whether the high watermark moved.
    fn flushed_through(&mut self, durable: i64) -> bool {
        while self
            .flush_pending
            .front()
            .is_some_and(|&first| first < durable)
        {
            self.flush_pending.pop_front();
        }
        let visible = match self.flush_pending.front() {
            Some(&first) => first,
            None => self.log.log_end_offset(),
        };
        if visible > self.log.high_watermark() {
            self.log.set_high_watermark(visible);
            return true;
        }
        false
    }

    /// Rebuilds idempotent-producer state from the batches of the last two segments, so that a
    /// producer retrying a batch whose acknowledgement a restart swallowed gets the original
    /// offset instead of a second copy (Kafka rebuilds the same state when it loads a log).
    /// Producers whose last batches are older than that are unknown and accepted at any
    /// sequence, as after Kafka's producer-state expiry.
    fn rebuild_producer_state(&mut self, topic: &str, index: i32) {
        const SEGMENTS: usize = 2;
        let headers = match self.log.tail_batch_headers(SEGMENTS) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(%topic, partition = index, error = %e, "cannot rebuild producer state");
                return;
            }
        };
        for h in headers
            .iter()
            .filter(|h| h.producer_id >= 0 && !h.is_control())
        {
            self.remember_batch(h, h.base_offset);
        }
    }

    /// Records an appended idempotent batch in its producer's window.
    fn remember_batch(&mut self, header: &BatchHeader, first_offset: i64) {
        let entry = self.producers.entry(header.producer_id).or_default();
        if entry.epoch != header.producer_epoch {
            entry.batches.clear();
            entry.epoch = header.producer_epoch;
        }
        let last_seq = header.base_sequence.wrapping_add(header.last_offset_delta);
        entry
            .batches
            .push_back((header.base_sequence, last_seq, first_offset));
        while entry.batches.len() > PRODUCER_BATCH_WINDOW {
            entry.batches.pop_front();
        }
    }

    /// Checks an idempotent batch's epoch and sequence. Returns the original first offset when
    /// the batch is a duplicate of one of the last few.
    ///
    /// A producer this partition has no state for is accepted at any sequence, as Kafka does
    /// (its state may have been lost to retention or, here, to a restart).
    fn check_sequence(&self, h: &BatchHeader) -> Result<Option<i64>, AppendError> {
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(None);
        };
        let refuse =
            |error: ResponseError, message: String| Err(AppendError::Refused { error, message });
        if h.producer_epoch < entry.epoch {
            return refuse(
                ResponseError::InvalidProducerEpoch,
                format!(
                    "producer {} epoch {} is older than {}",
                    h.producer_id, h.producer_epoch, entry.epoch
                ),
            );
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return refuse(
                    ResponseError::OutOfOrderSequenceNumber,
                    format!(
                        "new epoch {} must start at sequence 0, got {}",
                        h.producer_epoch, h.base_sequence
                    ),
                );
            }
            return Ok(None);
        }
        let last_seq = h.base_sequence.wrapping_add(h.last_offset_delta);
        if let Some(&(_, _, offset)) = entry
            .batches
            .iter()
            .find(|(f, l, _)| *f == h.base_sequence && *l == last_seq)
        {
            return Ok(Some(offset));
        }
        if let Some(&(_, prev_last, _)) = entry.batches.back() {
            let expected = if prev_last == i32::MAX {
                0
            } else {
                prev_last + 1
            };
            if h.base_sequence != expected {
                return refuse(
                    ResponseError::OutOfOrderSequenceNumber,
                    format!(
                        "producer {} expected sequence {expected}, got {}",
                        h.producer_id, h.base_sequence
                    ),
                );
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &std::path::Path) -> PartitionState {
        let broker = crate::config::BrokerConfig::default();
        let config = crate::topic_config::effective(&Default::default(), &broker);
        let log = Log::open(dir, config.log.clone(), 0).unwrap();
        PartitionState {
            log,
            config,
            producers: HashMap::new(),
            last_flush_ms: 0,
            flush_pending: VecDeque::new(),
        }
    }

    fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
        let recs: Vec<fjord_log::testing::TestRecord<'_>> =
            (0..n).map(|_| (None, Some(&b"v"[..]), 1)).collect();
        let spec = fjord_log::testing::BatchSpec {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            ..Default::default()
        };
        fjord_log::testing::build_batch_with(&spec, &recs)
    }

    fn append(s: &mut PartitionState, b: Vec<u8>) -> Result<AppendOutcome, AppendError> {
        let headers = fjord_log::validate_batches(&b).unwrap();
        s.append(&b, &headers[0], 0, 10)
    }

    fn flushing_partition(dir: &std::path::Path) -> Arc<Partition> {
        let mut st = state(dir);
        st.config.log.flush_interval_messages = Some(1);
        st.log.set_config(st.config.log.clone());
        let PartitionState { log, config, .. } = st;
        Arc::new(Partition::new("t".into(), Uuid::nil(), 0, log, config, 0))
    }

    fn append_one(p: &Partition) -> i64 {
        let b = fjord_log::testing::build_batch(0, &[(None, Some(&b"v"[..]), 1)]);
        let headers = fjord_log::validate_batches(&b).unwrap();
        let mut st = p.lock();
        assert!(matches!(
            st.append(&b, &headers[0], 0, 10),
            Ok(AppendOutcome::Appended(_))
        ));
        assert!(st.log.flush_due());
        st.log.log_end_offset()
    }

    #[tokio::test]
    async fn one_flush_job_covers_every_append_made_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = flushing_partition(dir.path());
        let ends: Vec<i64> = (0..10).map(|_| append_one(&p)).collect();
        let waits: Vec<_> = ends
            .iter()
            .map(|&end| {
                let p = Arc::clone(&p);
                tokio::spawn(async move { p.flush_through(end).await })
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        assert_eq!(p.durable_offset(), 10);
        assert_eq!(p.flush_jobs(), 1, "ten waiting appends, one fsync");
        assert!(!p.lock().log.flush_due());
        // Already durable: no new job.
        p.flush_through(10).await.unwrap();
        assert_eq!(p.flush_jobs(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_during_a_flush_are_covered_by_the_next_job() {
        let dir = tempfile::tempdir().unwrap();
        let p = flushing_partition(dir.path());
        let mut waits = Vec::new();
        for _ in 0..200 {
            let end = append_one(&p);
            let q = Arc::clone(&p);
            waits.push((end, tokio::spawn(async move { q.flush_through(end).await })));
            tokio::task::yield_now().await;
        }
        for (end, w) in waits {
            w.await.unwrap().unwrap();
            assert!(p.durable_offset() >= end);
        }
        assert_eq!(p.durable_offset(), 200);
        let jobs = p.flush_jobs();
        assert!((1..=200).contains(&jobs), "{jobs} jobs");
        assert!(!p.lock().log.flush_due());
    }

    /// Under `flush.messages`, an append that reached the count is served only once fsynced
    /// (Kafka fsyncs inside the append, before the high watermark moves), and a long poll
    /// waiting for it is woken by the flush.
    #[tokio::test]
    async fn records_waiting_for_their_fsync_are_not_served_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = flushing_partition(dir.path());
        let waker = Arc::new(Notify::new());
        p.register_waiter(&waker);
        let end = append_one(&p);
        assert_eq!(p.lock().log.high_watermark(), 0, "not fsynced, not served");
        let second = append_one(&p);
        assert_eq!(p.lock().log.high_watermark(), 0);
        p.flush_through(end).await.unwrap();
        assert_eq!(p.durable_offset(), second, "the job covered both");
        assert_eq!(p.lock().log.high_watermark(), second);
        tokio::time::timeout(std::time::Duration::from_secs(10), waker.notified())
            .await
            .expect("the flush wakes the long poll");
    }

    /// With `flush.messages` above 1, appends that did not reach the count are served at once,
    /// as in Kafka, unless an earlier append still waits for its fsync (the high watermark
    /// cannot pass it); the flush then shows them all.
    #[tokio::test]
    async fn appends_below_the_count_are_served_unless_behind_one_that_waits() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = state(dir.path());
        st.config.log.flush_interval_messages = Some(2);
        st.log.set_config(st.config.log.clone());
        let PartitionState { log, config, .. } = st;
        let p = Arc::new(Partition::new("t".into(), Uuid::nil(), 0, log, config, 0));
        let one = || fjord_log::testing::build_batch(0, &[(None, Some(&b"v"[..]), 1)]);
        assert!(matches!(
            append(&mut p.lock(), one()),
            Ok(AppendOutcome::Appended(_))
        ));
        assert_eq!(
            p.lock().log.high_watermark(),
            1,
            "below the count: served at once"
        );
        append(&mut p.lock(), one()).unwrap();
        assert!(p.lock().log.flush_due());
        assert_eq!(
            p.lock().log.high_watermark(),
            1,
            "the second waits for its fsync"
        );
        p.flush_through(2).await.unwrap();
        assert_eq!(p.lock().log.high_watermark(), 2);
        append(&mut p.lock(), one()).unwrap();
        assert_eq!(p.lock().log.high_watermark(), 3);
    }

    /// An append whose produce went away before its flush job started still becomes visible:
    /// housekeeping runs the flush.
    #[test]
    fn housekeeping_flushes_appends_no_produce_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = flushing_partition(dir.path());
        let end = append_one(&p);
        assert_eq!(p.lock().log.high_watermark(), 0);
        p.flush_if_due(0).unwrap();
        assert_eq!(p.lock().log.high_watermark(), end);
        assert_eq!(p.durable_offset(), end);
    }

    #[test]
    fn flush_ms_skips_while_a_job_runs_and_flushes_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let p = flushing_partition(dir.path());
        p.lock().config.flush_ms = Some(5);
        append_one(&p);
        let turn = Arc::clone(&p.flushing).try_lock_owned().unwrap();
        p.flush_if_due(100).unwrap();
        assert_eq!(p.flush_jobs(), 0, "a running job is flushing already");
        drop(turn);
        p.flush_if_due(100).unwrap();
        assert_eq!((p.flush_jobs(), p.durable_offset()), (1, 1));
    }

    #[test]
    fn idempotent_duplicates_and_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        assert!(
            matches!(append(&mut s, idempotent_batch(7, 0, 0, 3)), Ok(AppendOutcome::Appended(i)) if i.first_offset == 0)
        );
        assert!(
            matches!(append(&mut s, idempotent_batch(7, 0, 3, 2)), Ok(AppendOutcome::Appended(i)) if i.first_offset == 3)
        );
        // A retry of the first batch is answered with its original offset and not appended.
        assert_eq!(
            append(&mut s, idempotent_batch(7, 0, 0, 3)).unwrap(),
            AppendOutcome::Duplicate { first_offset: 0 }
        );
        assert_eq!(s.log.log_end_offset(), 5);
        let gap = append(&mut s, idempotent_batch(7, 0, 9, 1));
        assert!(matches!(
            gap,
            Err(AppendError::Refused {
                error: ResponseError::OutOfOrderSequenceNumber,
                ..
            })
        ));
        let old = append(&mut s, idempotent_batch(7, -1, 5, 1));
        assert!(matches!(
            old,
            Err(AppendError::Refused {
                error: ResponseError::InvalidProducerEpoch,
                ..
            })
        ));
        assert!(matches!(
            append(&mut s, idempotent_batch(7, 1, 0, 1)),
            Ok(AppendOutcome::Appended(_))
        ));
        assert_eq!(s.log.high_watermark(), 6);
    }

    #[test]
    fn producer_state_is_rebuilt_from_the_log_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        append(&mut s, idempotent_batch(9, 0, 0, 3)).unwrap();
        append(&mut s, idempotent_batch(9, 0, 3, 2)).unwrap();
        drop(s); // crash: the acknowledgement of the second batch may have been lost
        let broker = crate::config::BrokerConfig::default();
        let config = crate::topic_config::effective(&Default::default(), &broker);
        let log = Log::open(dir.path(), config.log.clone(), 0).unwrap();
        let p = Partition::new("t".into(), Uuid::nil(), 0, log, config, 0);
        let mut s = p.into_state();
        // The producer retries the second batch: answered with its original offset.
        assert_eq!(
            append(&mut s, idempotent_batch(9, 0, 3, 2)).unwrap(),
            AppendOutcome::Duplicate { first_offset: 3 }
        );
        assert_eq!(s.log.log_end_offset(), 5);
        // And a gap is still refused.
        let gap = append(&mut s, idempotent_batch(9, 0, 7, 1));
        assert!(matches!(
            gap,
            Err(AppendError::Refused {
                error: ResponseError::OutOfOrderSequenceNumber,
                ..
            })
        ));
    }

    #[test]
    fn log_append_time_stamps_and_keeps_crc_valid() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = state(dir.path());
        s.config.log_append_time = true;
        let b = fjord_log::testing::build_batch(0, &[(None, Some(&b"v"[..]), 5)]);
        let headers = fjord_log::validate_batches(&b).unwrap();
        s.append(&b, &headers[0], 0, 12345).unwrap();
        let read = s.log.read(0, 1, 1 << 20).unwrap();
        let h = fjord_log::validate_batches(&read.records).unwrap();
        assert_eq!(h[0].max_timestamp, 12345);
        assert!(h[0].log_append_time());
    }
}
