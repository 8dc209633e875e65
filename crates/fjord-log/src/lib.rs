//! `fjord-log`: one Kafka partition's log on disk.
//!
//! The crate stores magic-v2 record batches for a single partition: segments, sparse offset
//! and time indexes, appends, reads, truncation, retention, DeleteRecords (the log start
//! offset) and crash recovery. It knows record batches as bytes with a 61-byte header (and can
//! walk the records of uncompressed ones); it knows nothing of sockets or Kafka requests.
//!
//! # Main types
//!
//! * [`Log`] — the partition log; [`LogConfig`] its settings; [`AppendInfo`] and
//!   [`ReadResult`] what appends and reads return.
//! * [`BatchHeader`], [`validate_batches`] and [`validate_keyed_batches`] (compacted topics) —
//!   parsing and validating produce payloads.
//! * [`LogError`] and [`BatchError`] — errors with structured fields.
//! * [`testing`] — builders for valid batches, for this crate's and other crates' tests.
//!
//! Time is never read from a clock: every operation that needs it takes `now_ms`.
//!
//! # On-disk layout
//!
//! Inside the partition directory (`<topic>-<partition>`):
//!
//! * `<base offset, 20 digits>.log` — a segment: whole batches back to back, as received
//!   (with the log's base offsets and leader epoch written into their headers).
//! * `<base>.index` — sparse offset index: big-endian `(relative offset u32, position u32)`
//!   entries, one every `index_interval_bytes` of log data.
//! * `<base>.timeindex` — sparse time index: `(timestamp i64, relative offset u32)` entries,
//!   written with an offset index entry when the segment's max timestamp has grown.
//! * `log-start-offset`, `recovery-point` — decimal offset checkpoints (written to a temp
//!   file, fsynced and renamed).
//! * `clean-shutdown` — written by [`Log::close`], removed by [`Log::open`].
//!
//! Indexes live in memory as well; their files only serve restarts.
//!
//! # Flows
//!
//! **Append**: the broker validates a produce payload with [`validate_batches`], then calls
//! [`Log::append`], which assigns base offsets and the leader epoch (both outside the CRC),
//! rolls a new segment if the active one is full or old, writes each batch as its patched first
//! 16 bytes followed by the caller's bytes with one vectored positional write (no copy; a killed
//! process loses nothing that was acknowledged), and updates the indexes. Fsyncs happen on
//! [`Log::flush`], or when [`Log::flush_due`] says `flush_interval_messages` records wait and the
//! caller flushes (group commit: [`Log::begin_flush`] under the lock, [`FlushJob::sync`] outside
//! it, [`Log::finish_flush`] under it again). A roll fsyncs nothing itself: the caller runs a
//! roll flush job ([`Log::roll_flush_due`], [`Log::begin_roll_flush`]) that makes the finished
//! segments durable outside its lock and then moves the recovery point. Every 8 MiB appended to
//! a segment the kernel is asked to start writing it back, so dirty page cache never piles up.
//!
//! **Read**: [`Log::read`] finds the segment by base offset, the nearest index entry at or
//! below the offset, walks batch headers to the batch containing the offset, then collects
//! whole batches up to `max_offset` and `max_bytes` (always at least one) with positional
//! reads, so reads only need `&self`.
//!
//! **Open**: without a clean-shutdown marker, segments from the recovery point on are re-read
//! with CRC checks and cut at the first bad batch; see [`Log::open`].

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod batch;
mod checkpoint;
pub mod codec;
mod error;
mod flush;
mod index;
mod io;
mod log;
mod lookup;
mod maintenance;
mod reader;
mod record;
mod recovery;
mod segment;
mod spare;
pub mod testing;

pub use batch::{
    BATCH_HEADER_LEN, BatchHeader, set_log_append_time, validate_batches, validate_keyed_batches,
};
pub use checkpoint::{MAX_OFFSET, StartCheckpoint};
pub use error::{BatchError, LogError};
pub use flush::FlushJob;
pub use io::{DiskSpace, FileSlice, disk_space, remove_if_deleted};
pub use log::{AppendInfo, Log, LogConfig, ReadResult, delete_dir};
pub use record::{BatchRecords, Record, RecordIter, batch_records, iter_records, put_unsigned};
/// Builds an uncompressed magic-v2 batch; the broker uses it for its internal topics.
pub use testing::build_batch;
