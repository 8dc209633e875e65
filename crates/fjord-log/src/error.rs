//! Error types: [`BatchError`] for malformed record batches, [`LogError`] for everything a
//! [`crate::Log`] operation can fail with.

use std::path::{Path, PathBuf};

/// Why a buffer is not a valid sequence of magic-v2 record batches.
///
/// Positions are byte offsets into the buffer that was being parsed or validated.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The buffer holds no batch at all.
    #[error("no record batches in buffer")]
    Empty,
    /// The buffer ends before the batch (or its header) does.
    #[error(
        "record batch at byte {position} is truncated: needs {needed} bytes, {available} available"
    )]
    Truncated {
        /// Where the batch starts.
        position: usize,
        /// Bytes the batch (or the part parsed so far) needs.
        needed: usize,
        /// Bytes available from `position` on.
        available: usize,
    },
    /// The magic byte is not 2 (only the v2 batch format is supported).
    #[error("unsupported record batch magic {magic} (only magic 2 is supported)")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The stored CRC-32C does not match the batch contents.
    #[error(
        "record batch at byte {position} is corrupt: stored CRC {stored:#010x}, computed {computed:#010x}"
    )]
    CorruptCrc {
        /// Where the batch starts.
        position: usize,
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// The batch length field is impossible (smaller than a header).
    #[error("record batch at byte {position} has invalid length {batch_length}")]
    InvalidLength {
        /// Where the batch starts.
        position: usize,
        /// The `batchLength` field.
        batch_length: i32,
    },
    /// `recordsCount` is not positive or disagrees with `lastOffsetDelta`.
    #[error(
        "record batch at byte {position} has records_count {records_count} and last_offset_delta {last_offset_delta}"
    )]
    InvalidRecordCount {
        /// Where the batch starts.
        position: usize,
        /// The `recordsCount` field.
        records_count: i32,
        /// The `lastOffsetDelta` field.
        last_offset_delta: i32,
    },
    /// A record inside an uncompressed batch is malformed, or the batch uses an unknown codec.
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// What is wrong (includes the batch position).
        reason: String,
    },
}

/// Errors of [`crate::Log`] operations.
#[derive(thiserror::Error, Debug)]
pub enum LogError {
    /// A file system operation failed.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What was being done (`"write"`, `"fsync"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The requested offset is outside `[log_start_offset, log_end_offset]` (or above the high
    /// watermark for [`crate::Log::delete_records_before`]).
    #[error(
        "offset {offset} is out of range (log start {log_start_offset}, log end {log_end_offset})"
    )]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The log start offset at the time.
        log_start_offset: i64,
        /// The log end offset at the time.
        log_end_offset: i64,
    },
    /// A record batch is malformed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The arguments of [`crate::Log::append`] are inconsistent.
    #[error("invalid append: {reason}")]
    InvalidAppend {
        /// What is inconsistent.
        reason: String,
    },
    /// Data already in the log could not be parsed (the file changed under us or the disk is bad).
    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position inside the file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

impl LogError {
    /// Returns a closure turning an `io::Error` into [`LogError::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.to_path_buf();
        move |source| LogError::Io { op, path, source }
    }

    /// Whether this is a write that found its disk full (`ENOSPC`).
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, LogError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
    }
}
