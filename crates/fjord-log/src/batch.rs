//! Magic-v2 record batch headers: parsing, validation of produce payloads, and in-place edits.
//!
//! The log stores a batch as the bytes it was given, with a 61-byte big-endian header. On
//! produce, [`validate_batches`] also walks the records (see [`crate::record`]): in place for
//! uncompressed batches, through a streaming decompressor for compressed ones.

use crate::error::BatchError;
use crate::record::iter_records;

/// Size of the fixed magic-v2 batch header, in bytes.
pub const BATCH_HEADER_LEN: usize = 61;

/// Bytes before and including the `batchLength` field (`baseOffset` + `batchLength`).
pub(crate) const LENGTH_OVERHEAD: usize = 12;
/// Position of the `partitionLeaderEpoch` field.
pub(crate) const LEADER_EPOCH_POS: usize = 12;
/// The leading bytes of a batch that an append rewrites: base offset, batch length (kept)
/// and partition leader epoch.
pub(crate) const PATCHED_PREFIX: usize = LEADER_EPOCH_POS + 4;
/// Position of the magic byte (the same in every message format version).
const MAGIC_POS: usize = 16;
/// Position of the CRC field.
const CRC_POS: usize = 17;
/// Position of the attributes field; the CRC covers everything from here on.
const ATTRIBUTES_POS: usize = 21;
/// Position of the `maxTimestamp` field.
const MAX_TIMESTAMP_POS: usize = 35;
/// Highest known compression codec (zstd).
const MAX_CODEC: u8 = 4;

/// The fixed header of a magic-v2 record batch, as stored on the wire and on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the log on append).
    pub base_offset: i64,
    /// Bytes after the `batchLength` field; the whole batch is `batch_length + 12` bytes.
    pub batch_length: i32,
    /// Leader epoch of the appending leader (assigned by the log on append).
    pub partition_leader_epoch: i32,
    /// Format version; always 2 for a parsed header.
    pub magic: i8,
    /// CRC-32C over the bytes from `attributes` to the end of the batch.
    pub crc: u32,
    /// Codec (bits 0-2), timestamp type (bit 3), transactional (bit 4), control (bit 5).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time for `LogAppendTime` batches).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

impl BatchHeader {
    /// Parses the header at the start of `buf`.
    ///
    /// Needs at least the 17 bytes up to the magic byte to report
    /// [`BatchError::UnsupportedMagic`], and [`BATCH_HEADER_LEN`] bytes for a v2 header. Also
    /// rejects a `batchLength` too small to hold the header ([`BatchError::InvalidLength`]).
    /// Does not check the CRC or that `buf` holds the whole batch.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        Self::parse_at(buf, 0)
    }

    /// [`BatchHeader::parse`], reporting `position` as the batch position in errors.
    pub(crate) fn parse_at(buf: &[u8], position: usize) -> Result<BatchHeader, BatchError> {
        let truncated = |needed| BatchError::Truncated {
            position,
            needed,
            available: buf.len(),
        };
        if buf.len() <= MAGIC_POS {
            return Err(truncated(MAGIC_POS + 1));
        }
        let magic = i8::from_be_bytes([buf[MAGIC_POS]]);
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        if buf.len() < BATCH_HEADER_LEN {
            return Err(truncated(BATCH_HEADER_LEN));
        }
        let header = BatchHeader {
            base_offset: i64::from_be_bytes(array(buf, 0)),
            batch_length: i32::from_be_bytes(array(buf, 8)),
            partition_leader_epoch: i32::from_be_bytes(array(buf, LEADER_EPOCH_POS)),
            magic,
            crc: u32::from_be_bytes(array(buf, CRC_POS)),
            attributes: i16::from_be_bytes(array(buf, ATTRIBUTES_POS)),
            last_offset_delta: i32::from_be_bytes(array(buf, 23)),
            base_timestamp: i64::from_be_bytes(array(buf, 27)),
            max_timestamp: i64::from_be_bytes(array(buf, MAX_TIMESTAMP_POS)),
            producer_id: i64::from_be_bytes(array(buf, 43)),
            producer_epoch: i16::from_be_bytes(array(buf, 51)),
            base_sequence: i32::from_be_bytes(array(buf, 53)),
            records_count: i32::from_be_bytes(array(buf, 57)),
        };
        if (header.batch_length as i64) < (BATCH_HEADER_LEN - LENGTH_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength {
                position,
                batch_length: header.batch_length,
            });
        }
        Ok(header)
    }

    /// Total size of the batch in bytes (`batch_length + 12`).
    pub fn total_len(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0) + LENGTH_OVERHEAD
    }

    /// Offset of the last record (`base_offset + last_offset_delta`, saturating).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Whether the timestamp type is `LogAppendTime` (all records carry `max_timestamp`).
    pub fn log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    /// Number of offsets the batch occupies (`last_offset_delta + 1`).
    pub(crate) fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }
}

/// Computes the CRC-32C a batch should carry (over the bytes from `attributes` to the end).
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    let covered = &batch[ATTRIBUTES_POS.min(batch.len())..];
    // CRC-32C is the iSCSI polynomial; the checksum fits 32 bits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, covered) as u32
}

/// Checks a whole batch's CRC against its header.
pub(crate) fn check_crc(
    batch: &[u8],
    header: &BatchHeader,
    position: usize,
) -> Result<(), BatchError> {
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CorruptCrc {
            position,
            stored: header.crc,
            computed,
        });
    }
    Ok(())
}

/// Validates every batch in `buf` (a produce request's records for one partition: one or more
/// whole batches back to back).
///
/// Checks that the length fields are consistent and the batches exactly fill `buf`, that the
/// magic is 2, that the CRC-32C matches, that `records_count >= 1` and
/// `last_offset_delta == records_count - 1`, that the codec is known, and that the records
/// (decompressed, for compressed batches) parse, their offset deltas are `0..n-1` in order and
/// their number matches `records_count`. Returns the parsed headers in order. Record keys may
/// be null; see [`validate_keyed_batches`].
pub fn validate_batches(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    validate(buf, false)
}

/// [`validate_batches`] for a compacted topic: every record must also have a key (Kafka
/// answers INVALID_RECORD otherwise). The key is checked in the same walk over the records,
/// compressed batches included, so nothing is decompressed twice.
pub fn validate_keyed_batches(buf: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    validate(buf, true)
}

/// Kafka's message for a record without a key on a compacted topic.
const KEY_REQUIRED: &str = "Compacted topic cannot accept message without key";

fn validate(buf: &[u8], keys_required: bool) -> Result<Vec<BatchHeader>, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut headers = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let rest = &buf[position..];
        let header = BatchHeader::parse_at(rest, position)?;
        let total = header.total_len();
        if total > rest.len() {
            return Err(BatchError::Truncated {
                position,
                needed: total,
                available: rest.len(),
            });
        }
        let batch = &rest[..total];
        check_crc(batch, &header, position)?;
        if header.records_count < 1 || header.last_offset_delta != header.records_count - 1 {
            return Err(BatchError::InvalidRecordCount {
                position,
                records_count: header.records_count,
                last_offset_delta: header.last_offset_delta,
            });
        }
        if header.compression() > MAX_CODEC {
            return Err(BatchError::InvalidRecord {
                reason: format!(
                    "batch at byte {position} uses unknown compression codec {}",
                    header.compression()
                ),
            });
        }
        // `parse_at` checked that a batch is at least a header long.
        let body = batch.get(BATCH_HEADER_LEN..).unwrap_or_default();
        if header.compression() == 0 {
            check_records(batch, body, &header, position, keys_required)?;
        } else {
            check_compressed_records(body, &header, position, keys_required)?;
        }
        headers.push(header);
        position += total;
    }
    Ok(headers)
}

/// Checks the records of an uncompressed batch (`body`, its records section): they parse,
/// offset deltas run `0..n-1` (and each has a key, if `keys_required`).
fn check_records(
    batch: &[u8],
    body: &[u8],
    header: &BatchHeader,
    position: usize,
    keys_required: bool,
) -> Result<(), BatchError> {
    if crate::record::records_are_valid(body, header.records_count, keys_required) {
        return Ok(());
    }
    // Something is wrong: walk the records again, building each, to say what.
    let invalid = |what: String| BatchError::InvalidRecord {
        reason: format!("batch at byte {position}: {what}"),
    };
    let mut count: i64 = 0;
    for record in iter_records(batch)? {
        let record = record.map_err(|e| invalid(e.to_string()))?;
        if i64::from(record.offset_delta) != count {
            return Err(invalid(format!(
                "record {count} has offset delta {}",
                record.offset_delta
            )));
        }
        if keys_required && record.key.is_none() {
            return Err(BatchError::InvalidRecord {
                reason: KEY_REQUIRED.into(),
            });
        }
        count += 1;
    }
    if count != i64::from(header.records_count) {
        return Err(invalid(format!(
            "records_count is {} but the batch holds {count} records",
            header.records_count
        )));
    }
    // Unreachable while the two walks agree (a property test checks that they do); refuse
    // rather than store a batch only one of them accepted.
    Err(invalid("records failed validation".into()))
}

/// Checks the records of a compressed batch as Kafka does on produce: the records section
/// decompresses, and the records in it pass the same checks as an uncompressed batch's. A
/// batch that does not is refused rather than stored for consumers to fail on. Decompression
/// is streamed and stops after [`crate::codec::MAX_DECOMPRESSED`] bytes. `body` is the batch's
/// records section.
fn check_compressed_records(
    body: &[u8],
    header: &BatchHeader,
    position: usize,
    keys_required: bool,
) -> Result<(), BatchError> {
    let limit = crate::codec::MAX_DECOMPRESSED as u64;
    let valid = |keys_required| {
        crate::codec::reader(header.compression(), body).map(|reader| {
            crate::record::streamed_records_are_valid(
                reader,
                header.records_count,
                limit,
                keys_required,
            )
        })
    };
    if valid(keys_required)? {
        return Ok(());
    }
    // Only on refusal: a batch that is valid but for its keys gets Kafka's message.
    if keys_required && valid(false)? {
        return Err(BatchError::InvalidRecord {
            reason: KEY_REQUIRED.into(),
        });
    }
    Err(BatchError::InvalidRecord {
        reason: format!(
            "batch at byte {position}: its {} codec records do not decompress into {} valid records (or inflate past {limit} bytes)",
            crate::codec::name(header.compression()),
            header.records_count
        ),
    })
}

/// Rewrites `base_offset` and `partition_leader_epoch` of the batch at the start of `batch`.
/// Both fields lie outside the CRC, so the batch stays valid.
pub(crate) fn set_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_POS..LEADER_EPOCH_POS + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Turns every batch in `buf` into a `LogAppendTime` batch stamped `now_ms`: sets the
/// timestamp-type attribute bit and `max_timestamp`, then recomputes the CRC.
///
/// For topics with `message.timestamp.type=LogAppendTime`; call it after
/// [`validate_batches`] and re-parse the headers (or use the returned ones) before appending.
pub fn set_log_append_time(buf: &mut [u8], now_ms: i64) -> Result<Vec<BatchHeader>, BatchError> {
    let mut headers = Vec::new();
    let mut position = 0;
    while position < buf.len() {
        let header = BatchHeader::parse_at(&buf[position..], position)?;
        let total = header.total_len();
        let available = buf.len() - position;
        if total > available {
            return Err(BatchError::Truncated {
                position,
                needed: total,
                available,
            });
        }
        let batch = &mut buf[position..position + total];
        let attributes = header.attributes | 0x08;
        batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now_ms.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        headers.push(BatchHeader {
            attributes,
            max_timestamp: now_ms,
            crc,
            ..header
        });
        position += total;
    }
    Ok(headers)
}

/// Writes a correct CRC into the batch at the start of `batch` (which must be whole).
pub(crate) fn write_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestRecord, build_batch, build_gzip_batch, build_opaque_batch};

    fn sample() -> Vec<u8> {
        build_batch(
            0,
            &[
                (Some(b"k1"), Some(b"v1"), 100),
                (None, Some(b"v2"), 105),
                (Some(b"k3"), None, 103),
            ],
        )
    }

    #[test]
    fn good_batch_parses_and_validates() {
        let batch = sample();
        let headers = validate_batches(&batch).unwrap();
        assert_eq!(headers.len(), 1);
        let h = &headers[0];
        assert_eq!(h.total_len(), batch.len());
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset(), 2);
        assert_eq!(h.base_timestamp, 100);
        assert_eq!(h.max_timestamp, 105);
        assert_eq!(h.compression(), 0);
        assert!(!h.is_transactional() && !h.is_control() && !h.log_append_time());
        assert_eq!(BatchHeader::parse(&batch).unwrap(), *h);
    }

    #[test]
    fn several_batches_back_to_back() {
        let mut buf = sample();
        buf.extend(build_batch(0, &[(None, Some(b"x"), 1)]));
        let headers = validate_batches(&buf).unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].records_count, 1);
    }

    #[test]
    fn empty_buffer_is_rejected() {
        assert_eq!(validate_batches(&[]), Err(BatchError::Empty));
    }

    #[test]
    fn bad_crc_is_rejected() {
        let mut batch = sample();
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&batch),
            Err(BatchError::CorruptCrc { position: 0, .. })
        ));
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut batch = sample();
        batch[16] = 1;
        assert_eq!(
            validate_batches(&batch),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        );
        assert_eq!(
            BatchHeader::parse(&batch[..17]),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        );
    }

    #[test]
    fn truncated_is_rejected() {
        let batch = sample();
        assert!(matches!(
            BatchHeader::parse(&batch[..10]),
            Err(BatchError::Truncated { needed: 17, .. })
        ));
        assert!(matches!(
            BatchHeader::parse(&batch[..40]),
            Err(BatchError::Truncated { needed: 61, .. })
        ));
        let cut = &batch[..batch.len() - 3];
        assert!(matches!(
            validate_batches(cut),
            Err(BatchError::Truncated { position: 0, .. })
        ));
        let mut two = sample();
        two.extend(&batch[..30]);
        assert!(matches!(
            validate_batches(&two),
            Err(BatchError::Truncated { .. })
        ));
        let mut extra = sample();
        extra.push(0);
        assert!(matches!(
            validate_batches(&extra),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn invalid_length_is_rejected() {
        let mut batch = sample();
        batch[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            validate_batches(&batch),
            Err(BatchError::InvalidLength {
                batch_length: 10,
                ..
            })
        ));
    }

    #[test]
    fn wrong_count_or_offset_delta_is_rejected() {
        // records_count says 4 but last_offset_delta 2.
        let mut batch = sample();
        batch[57..61].copy_from_slice(&4i32.to_be_bytes());
        write_crc(&mut batch);
        assert!(matches!(
            validate_batches(&batch),
            Err(BatchError::InvalidRecordCount {
                records_count: 4,
                ..
            })
        ));
        // Consistent header fields, but they disagree with the records.
        let mut batch = sample();
        batch[57..61].copy_from_slice(&4i32.to_be_bytes());
        batch[23..27].copy_from_slice(&3i32.to_be_bytes());
        write_crc(&mut batch);
        assert!(matches!(
            validate_batches(&batch),
            Err(BatchError::InvalidRecord { .. })
        ));
        // Zero records.
        let empty = build_batch(0, &[]);
        assert!(matches!(
            validate_batches(&empty),
            Err(BatchError::InvalidRecordCount {
                records_count: 0,
                ..
            })
        ));
    }

    #[test]
    fn wrong_record_offset_delta_is_rejected() {
        let mut batch = build_batch(0, &[(None, Some(b"a"), 1), (None, Some(b"b"), 1)]);
        // First record: length varint (1 byte), attributes (1), timestamp delta (1), offset delta.
        batch[BATCH_HEADER_LEN + 3] = 2; // zigzag(1)
        write_crc(&mut batch);
        assert!(matches!(
            validate_batches(&batch),
            Err(BatchError::InvalidRecord { .. })
        ));
    }

    #[test]
    fn compressed_batches_are_decompressed_and_their_records_checked() {
        let records: Vec<TestRecord<'_>> = (0..5)
            .map(|i| (Some(&b"key"[..]), Some(&b"some value"[..]), 10 + i))
            .collect();
        let batch = build_gzip_batch(0, &records);
        let headers = validate_batches(&batch).unwrap();
        assert_eq!(headers[0].compression(), 1);
        // Garbage that is not gzip, a codec that does not exist, and a gzip body whose
        // records disagree with records_count (CRC correct in each case).
        let invalid =
            |b: &[u8]| matches!(validate_batches(b), Err(BatchError::InvalidRecord { .. }));
        assert!(invalid(&build_opaque_batch(
            0,
            1,
            5,
            10,
            20,
            b"opaque gzip bytes"
        )));
        assert!(invalid(&build_opaque_batch(0, 7, 5, 10, 20, b"x")));
        let body = &batch[BATCH_HEADER_LEN..];
        assert!(invalid(&build_opaque_batch(0, 1, 4, 10, 20, body)));
        assert!(!invalid(&build_opaque_batch(0, 1, 5, 10, 20, body)));
    }

    #[test]
    fn keyed_validation_refuses_a_null_key_plain_or_compressed() {
        let keyed: Vec<TestRecord<'_>> = vec![(Some(b"k"), Some(b"v"), 1), (Some(b"k2"), None, 2)];
        let keyless: Vec<TestRecord<'_>> = vec![(Some(b"k"), Some(b"v"), 1), (None, Some(b"v"), 2)];
        for build in [build_batch, build_gzip_batch] {
            assert!(validate_keyed_batches(&build(0, &keyed)).is_ok());
            let batch = build(0, &keyless);
            assert!(validate_batches(&batch).is_ok());
            assert!(matches!(
                validate_keyed_batches(&batch),
                Err(BatchError::InvalidRecord { reason }) if reason == KEY_REQUIRED
            ));
        }
    }

    #[test]
    fn log_append_time_stamping_keeps_batch_valid() {
        let mut buf = sample();
        buf.extend(sample());
        let headers = set_log_append_time(&mut buf, 999).unwrap();
        assert_eq!(validate_batches(&buf).unwrap(), headers);
        assert!(
            headers
                .iter()
                .all(|h| h.log_append_time() && h.max_timestamp == 999)
        );
    }

    #[test]
    fn offset_and_epoch_rewrite_keeps_crc() {
        let mut batch = sample();
        set_offset_and_epoch(&mut batch, 42, 7);
        let h = validate_batches(&batch).unwrap().remove(0);
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (42, 7, 44)
        );
    }
}
