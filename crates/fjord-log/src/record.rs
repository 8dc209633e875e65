//! Records inside an uncompressed magic-v2 batch, and the zigzag varints they are made of.
//!
//! Record layout: `length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//! keyLength varint | key | valueLength varint | value | headersCount varint | headers`, each
//! header being `keyLength varint | key | valueLength varint | value`. A length of -1 means null.

use crate::batch::{BATCH_HEADER_LEN, BatchHeader};
use crate::error::BatchError;

/// One record of an uncompressed batch, borrowing from the batch bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record attributes (unused by Kafka today).
    pub attributes: i8,
    /// Timestamp relative to the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's `base_offset`.
    pub offset_delta: i32,
    /// Key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers as (key, value) pairs.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Iterator over the records of an uncompressed batch; see [`iter_records`].
///
/// Yields an error (and then stops) at the first malformed record. It walks the bytes, not
/// `records_count`: compare the number of records yourself if that matters.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    cursor: Cursor<'a>,
    failed: bool,
}

/// Iterates the records of the uncompressed batch at the start of `batch`.
///
/// `batch` must hold the whole batch (extra bytes after it are ignored). Fails for a truncated
/// batch or a compressed one (whose records are not parsed by the log).
pub fn iter_records(batch: &[u8]) -> Result<RecordIter<'_>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_len();
    if total > batch.len() {
        return Err(BatchError::Truncated {
            position: 0,
            needed: total,
            available: batch.len(),
        });
    }
    if header.compression() != 0 {
        return Err(BatchError::InvalidRecord {
            reason: format!(
                "records of a compressed batch (codec {}) cannot be iterated",
                header.compression()
            ),
        });
    }
    Ok(RecordIter {
        cursor: Cursor::new(&batch[BATCH_HEADER_LEN..total]),
        failed: false,
    })
}

/// The records section of a batch: borrowed when uncompressed, decompressed otherwise.
#[derive(Debug, Clone)]
pub struct BatchRecords<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
}

impl BatchRecords<'_> {
    /// Iterates the records.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter {
            cursor: Cursor::new(&self.bytes),
            failed: false,
        }
    }
}

/// Returns the records of the batch at the start of `batch`, decompressing them when the
/// batch is compressed (see [`crate::codec`]); for uncompressed batches this is
/// [`iter_records`] without a copy.
pub fn batch_records(batch: &[u8]) -> Result<BatchRecords<'_>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_len();
    let Some(body) = batch.get(BATCH_HEADER_LEN..total) else {
        return Err(BatchError::Truncated {
            position: 0,
            needed: total,
            available: batch.len(),
        });
    };
    let bytes = match header.compression() {
        0 => std::borrow::Cow::Borrowed(body),
        codec => std::borrow::Cow::Owned(crate::codec::decompress(codec, body)?),
    };
    Ok(BatchRecords { bytes })
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let result = read_record(&mut self.cursor).map_err(|reason| BatchError::InvalidRecord {
            reason: format!("malformed record: {reason}"),
        });
        self.failed = result.is_err();
        Some(result)
    }
}

fn read_record<'a>(outer: &mut Cursor<'a>) -> Result<Record<'a>, &'static str> {
    let length = outer.varint()?;
    let length = usize::try_from(length).map_err(|_| "negative record length")?;
    let mut c = Cursor::new(outer.bytes(length)?);
    let attributes = i8::from_be_bytes([c.byte()?]);
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable_bytes()?;
    let value = c.nullable_bytes()?;
    let headers_count = c.varint()?;
    let headers_count = usize::try_from(headers_count).map_err(|_| "negative header count")?;
    let mut headers = Vec::new();
    for _ in 0..headers_count {
        let key = c.nullable_bytes()?.ok_or("null header key")?;
        let value = c.nullable_bytes()?;
        headers.push((key, value));
    }
    if !c.is_empty() {
        return Err("record length does not match its contents");
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// A forward-only reader over a byte slice.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&first, rest) = self.buf.split_first().ok_or("record truncated")?;
        self.buf = rest;
        Ok(first)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.buf.len() {
            return Err("record truncated");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long")
    }

    fn varint(&mut self) -> Result<i32, &'static str> {
        let raw = u32::try_from(self.unsigned(5)?).map_err(|_| "varint overflows 32 bits")?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, &'static str> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        match self.varint()? {
            -1 => Ok(None),
            n => {
                let n = usize::try_from(n).map_err(|_| "negative length")?;
                self.bytes(n).map(Some)
            }
        }
    }
}

/// Appends `value` as a zigzag varint (32-bit).
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Appends `value` as a zigzag varlong (64-bit).
pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::build_batch;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, -1, 63, -64, 64, 300, -300, i32::MAX, i32::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.varint(), Ok(v));
            assert!(c.is_empty());
        }
        for v in [0, 1, -1, 1 << 40, -(1 << 40), i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.varlong(), Ok(v));
            assert!(c.is_empty());
        }
        assert_eq!(Cursor::new(&[0x80; 6]).varint(), Err("varint too long"));
    }

    #[test]
    fn records_iterate_with_keys_values_and_deltas() {
        let batch = build_batch(7, &[(Some(b"k"), Some(b"v"), 10), (None, None, 12)]);
        let records: Vec<_> = iter_records(&batch)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, Some(&b"k"[..]));
        assert_eq!(records[0].value, Some(&b"v"[..]));
        assert_eq!(
            (records[0].offset_delta, records[0].timestamp_delta),
            (0, 0)
        );
        assert_eq!((records[1].key, records[1].value), (None, None));
        assert_eq!(
            (records[1].offset_delta, records[1].timestamp_delta),
            (1, 2)
        );
    }

    #[test]
    fn malformed_record_stops_iteration() {
        let mut batch = build_batch(0, &[(None, Some(b"value"), 1)]);
        batch.truncate(batch.len() - 2);
        let len = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&len.to_be_bytes());
        let mut it = iter_records(&batch).unwrap();
        assert!(matches!(
            it.next(),
            Some(Err(BatchError::InvalidRecord { .. }))
        ));
        assert!(it.next().is_none());
    }
}
