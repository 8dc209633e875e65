//! Helpers for tests (of this crate and of crates using it): build valid magic-v2 batches and
//! decode fetched bytes back into records. Not meant for production paths.

pub use crate::io::{evict_from_page_cache, kernel_reports_page_cache};

use crate::batch::{BATCH_HEADER_LEN, BatchHeader, LENGTH_OVERHEAD, write_crc};
use crate::error::BatchError;
use crate::record::{iter_records, put_varint, put_varlong};

/// Whether `log` has a spare segment ready for its next roll (docs/design.md §8): made on a
/// background thread, so tests wait for it.
pub fn spare_ready(log: &crate::Log) -> bool {
    log.spare.is_ready()
}

/// Whether a spare asked for by `log` is still waiting for the background thread.
pub fn spare_pending(log: &crate::Log) -> bool {
    log.spare.is_pending()
}

/// Holds `log`'s start checkpoint, as a DeleteRecords whose fsync waits for a slow disk
/// would, until the guard is dropped: for tests of what must not wait for it.
pub fn hold_start_checkpoint(
    checkpoint: &crate::StartCheckpoint,
) -> std::sync::MutexGuard<'_, Option<i64>> {
    checkpoint.hold()
}

/// A small tmpfs mounted at a directory, to fill a disk in a test; unmounted when dropped.
/// Mounting needs root: [`SmallDisk::mount`] returns `None` where it is not allowed.
#[derive(Debug)]
pub struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` at the existing, empty directory `at`.
    pub fn mount(at: &std::path::Path, bytes: u64) -> Option<SmallDisk> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .status();
        mounted.is_ok_and(|s| s.success()).then(|| SmallDisk {
            at: at.to_path_buf(),
        })
    }

    /// Grows (or shrinks) it to `bytes`, keeping its files; false if the remount failed.
    pub fn resize(&self, bytes: u64) -> bool {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.at)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Bytes still free on it.
    pub fn available(&self) -> u64 {
        crate::io::available_bytes(&self.at).unwrap_or(0)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.at)
            .status();
    }
}

/// A record to build: `(key, value, timestamp)`, `None` meaning null.
pub type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// Producer and header fields of a batch built by [`build_batch_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSpec {
    /// `baseOffset`.
    pub base_offset: i64,
    /// `partitionLeaderEpoch`.
    pub partition_leader_epoch: i32,
    /// `attributes` (the codec bits should be 0: records are written uncompressed).
    pub attributes: i16,
    /// `producerId` (-1 for a non-idempotent producer).
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence`.
    pub base_sequence: i32,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// Builds a valid uncompressed magic-v2 batch (correct CRC) holding `records`, each a
/// `(key, value, timestamp)`; `base_timestamp` is the first record's timestamp and
/// `max_timestamp` the largest. With no records the result is a (invalid) zero-record batch.
pub fn build_batch(base_offset: i64, records: &[TestRecord<'_>]) -> Vec<u8> {
    build_batch_with(
        &BatchSpec {
            base_offset,
            ..BatchSpec::default()
        },
        records,
    )
}

/// A gzip-compressed batch (codec 1) of `records`, as a producer with
/// `compression.type=gzip` would send it.
pub fn build_gzip_batch(base_offset: i64, records: &[TestRecord<'_>]) -> Vec<u8> {
    use std::io::Write;
    let plain = build_batch(base_offset, records);
    let base_timestamp = records.first().map_or(-1, |r| r.2);
    let max_timestamp = records.iter().map(|r| r.2).max().unwrap_or(-1);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&plain[crate::BATCH_HEADER_LEN..]);
    let body = gz.finish().unwrap_or_default();
    let spec = BatchSpec {
        base_offset,
        attributes: 1,
        ..BatchSpec::default()
    };
    let count = records.len() as i32;
    raw_batch(
        &spec,
        count - 1,
        count,
        base_timestamp,
        max_timestamp,
        &body,
    )
}

/// [`build_batch`] with the header fields of `spec` (producer id, epoch, sequence, ...).
pub fn build_batch_with(spec: &BatchSpec, records: &[TestRecord<'_>]) -> Vec<u8> {
    let base_timestamp = records.first().map_or(-1, |r| r.2);
    let max_timestamp = records.iter().map(|r| r.2).max().unwrap_or(-1);
    let mut body = Vec::new();
    for (i, (key, value, timestamp)) in records.iter().enumerate() {
        let mut rec = vec![0u8]; // attributes
        put_varlong(&mut rec, timestamp.wrapping_sub(base_timestamp));
        put_varint(&mut rec, i as i32);
        put_nullable(&mut rec, *key);
        put_nullable(&mut rec, *value);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut body, rec.len() as i32);
        body.extend(rec);
    }
    let count = records.len() as i32;
    raw_batch(spec, count - 1, count, base_timestamp, max_timestamp, &body)
}

/// Builds a batch whose records section is `payload` taken as is (`attributes` may set codec
/// bits), e.g. to test what validation makes of a compressed body that does not hold
/// `records_count` records. The CRC is correct; `last_offset_delta` is `records_count - 1`.
pub fn build_opaque_batch(
    base_offset: i64,
    attributes: i16,
    records_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    payload: &[u8],
) -> Vec<u8> {
    let spec = BatchSpec {
        base_offset,
        attributes,
        ..BatchSpec::default()
    };
    raw_batch(
        &spec,
        records_count - 1,
        records_count,
        base_timestamp,
        max_timestamp,
        payload,
    )
}

fn raw_batch(
    spec: &BatchSpec,
    last_offset_delta: i32,
    records_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.extend(spec.base_offset.to_be_bytes());
    out.extend(((BATCH_HEADER_LEN - LENGTH_OVERHEAD + body.len()) as i32).to_be_bytes());
    out.extend(spec.partition_leader_epoch.to_be_bytes());
    out.push(2); // magic
    out.extend(0u32.to_be_bytes()); // crc, filled in below
    out.extend(spec.attributes.to_be_bytes());
    out.extend(last_offset_delta.to_be_bytes());
    out.extend(base_timestamp.to_be_bytes());
    out.extend(max_timestamp.to_be_bytes());
    out.extend(spec.producer_id.to_be_bytes());
    out.extend(spec.producer_epoch.to_be_bytes());
    out.extend(spec.base_sequence.to_be_bytes());
    out.extend(records_count.to_be_bytes());
    out.extend(body);
    write_crc(&mut out);
    out
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend(b);
        }
    }
}

/// A record decoded by [`decode_records`], with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Absolute offset (`base_offset + offset_delta`).
    pub offset: i64,
    /// Timestamp (the batch's `max_timestamp` for `LogAppendTime` batches).
    pub timestamp: i64,
    /// Key, `None` when null.
    pub key: Option<Vec<u8>>,
    /// Value, `None` when null.
    pub value: Option<Vec<u8>>,
}

/// Decodes every record of the uncompressed batches in `buf` (e.g. [`crate::ReadResult::records`]).
pub fn decode_records(buf: &[u8]) -> Result<Vec<DecodedRecord>, BatchError> {
    let mut out = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let header = BatchHeader::parse_at(&buf[position..], position)?;
        let batch = &buf[position..];
        for record in iter_records(batch)? {
            let record = record?;
            let timestamp = if header.log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(record.timestamp_delta)
            };
            out.push(DecodedRecord {
                offset: header.base_offset + i64::from(record.offset_delta),
                timestamp,
                key: record.key.map(<[u8]>::to_vec),
                value: record.value.map(<[u8]>::to_vec),
            });
        }
        position += header.total_len();
    }
    Ok(out)
}

/// The bytes the log stores for `batches` (whole batches back to back, as given to
/// [`crate::Log::append`]) appended at `first_offset` with `leader_epoch`: each batch with its
/// base offset and leader epoch written in. The log itself writes them without copying the
/// batches; tests compare reads against this.
pub fn as_stored(batches: &[u8], first_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut out = batches.to_vec();
    let (mut pos, mut next) = (0, first_offset);
    while let Ok(h) = crate::BatchHeader::parse(&out[pos..]) {
        let total = h.total_len();
        if pos + total > out.len() {
            break;
        }
        crate::batch::set_offset_and_epoch(&mut out[pos..pos + total], next, leader_epoch);
        next += i64::from(h.last_offset_delta) + 1;
        pos += total;
    }
    out
}
