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

/// Checks the records section of an uncompressed batch (`body`, the bytes after the batch
/// header) in one pass that builds no [`Record`]: every record parses with its length matching
/// its contents, header keys are not null, offset deltas run `0..n-1` and there are exactly
/// `expected` records, and, with `keys_required` (a compacted topic), every record has a key.
/// Returns `false` at the first problem; [`iter_records`] then names it.
///
/// This is the produce hot path for small records, so one- and two-byte varints (lengths and
/// offset deltas below 8192) are decoded without entering the general loop.
pub(crate) fn records_are_valid(body: &[u8], expected: i32, keys_required: bool) -> bool {
    let mut pos = 0;
    let mut count: i32 = 0;
    while pos < body.len() {
        let Some(len) = scan_varint(body, &mut pos).and_then(|n| usize::try_from(n).ok()) else {
            return false;
        };
        let Some(end) = pos.checked_add(len).filter(|&end| end <= body.len()) else {
            return false;
        };
        let record = &body[..end];
        // attributes
        pos += 1;
        if pos > end
            || scan_unsigned(record, &mut pos, 10).is_none()
            || scan_varint(record, &mut pos) != Some(count)
            || !skip_nullable(record, &mut pos, !keys_required)
            || !skip_nullable(record, &mut pos, true)
        {
            return false;
        }
        let Some(headers) = scan_varint(record, &mut pos).and_then(|n| u32::try_from(n).ok())
        else {
            return false;
        };
        for _ in 0..headers {
            if !skip_nullable(record, &mut pos, false) || !skip_nullable(record, &mut pos, true) {
                return false;
            }
        }
        if pos != end {
            return false;
        }
        count = match count.checked_add(1) {
            Some(c) => c,
            None => return false,
        };
    }
    count == expected
}

/// [`records_are_valid`] for records that arrive as a stream (a compressed batch being
/// decompressed): the same checks, with memory bounded by one 64 KiB buffer however far the
/// batch inflates, and `false` once more than `limit` bytes have been read (so a decompression
/// bomb costs bounded time) or the stream fails.
pub(crate) fn streamed_records_are_valid(
    reader: impl std::io::Read,
    expected: i32,
    limit: u64,
    keys_required: bool,
) -> bool {
    let mut s = Stream {
        inner: reader,
        buf: vec![0; 64 * 1024],
        pos: 0,
        len: 0,
        consumed: 0,
        limit,
    };
    let mut count: i32 = 0;
    loop {
        match s.has_more() {
            Some(true) => {}
            Some(false) => return count == expected,
            None => return false,
        }
        if s.record(count, keys_required).is_none() {
            return false;
        }
        count = match count.checked_add(1) {
            Some(c) => c,
            None => return false,
        };
    }
}

/// A byte stream read through a fixed buffer, counting what it consumed.
struct Stream<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    consumed: u64,
    limit: u64,
}

impl<R: std::io::Read> Stream<R> {
    /// `Some(true)` when another byte can be read, `Some(false)` at the end of the stream,
    /// `None` when the stream fails or passes the limit.
    fn has_more(&mut self) -> Option<bool> {
        if self.pos < self.len {
            return Some(true);
        }
        if self.consumed >= self.limit {
            // Reading on could only exceed the limit: refuse unless the stream is at its end.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Ok(0) => Some(false),
                _ => None,
            };
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => return Some(false),
                Ok(n) => {
                    (self.pos, self.len) = (0, n);
                    return Some(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    fn byte(&mut self) -> Option<u8> {
        if !self.has_more()? {
            return None;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        self.consumed += 1;
        (self.consumed <= self.limit).then_some(b)
    }

    fn skip(&mut self, mut n: u64) -> Option<()> {
        while n > 0 {
            if !self.has_more()? {
                return None;
            }
            let take = n.min((self.len - self.pos) as u64);
            self.pos += take as usize;
            self.consumed += take;
            n -= take;
        }
        (self.consumed <= self.limit).then_some(())
    }

    fn unsigned(&mut self, max_bytes: u32) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        let raw = u32::try_from(self.unsigned(5)?).ok()?;
        Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Skips a length-prefixed byte string that must end by `end` (-1 is null, allowed only
    /// when `nullable`).
    fn skip_nullable(&mut self, end: u64, nullable: bool) -> Option<()> {
        match self.varint()? {
            -1 => nullable.then_some(()),
            n => {
                let n = u64::try_from(n).ok()?;
                if self.consumed + n > end {
                    return None;
                }
                self.skip(n)
            }
        }
    }

    /// Checks one record, which must have offset delta `index` (and a key, if `keys_required`).
    fn record(&mut self, index: i32, keys_required: bool) -> Option<()> {
        let len = u64::try_from(self.varint()?).ok()?;
        let end = self.consumed + len;
        self.byte()?; // attributes
        self.unsigned(10)?; // timestamp delta
        if self.varint()? != index {
            return None;
        }
        self.skip_nullable(end, !keys_required)?; // key
        self.skip_nullable(end, true)?; // value
        let headers = u32::try_from(self.varint()?).ok()?;
        for _ in 0..headers {
            self.skip_nullable(end, false)?;
            self.skip_nullable(end, true)?;
        }
        (self.consumed == end).then_some(())
    }
}

/// Reads an unsigned varint of at most `max_bytes` bytes at `*pos` of `buf`.
#[inline(always)]
fn scan_unsigned(buf: &[u8], pos: &mut usize, max_bytes: u32) -> Option<u64> {
    let first = *buf.get(*pos)?;
    *pos += 1;
    if first < 0x80 {
        return Some(u64::from(first));
    }
    // Two bytes: values up to 16383 (offset deltas and lengths of small records).
    let second = *buf.get(*pos)?;
    *pos += 1;
    let mut value = u64::from(first & 0x7f) | (u64::from(second & 0x7f) << 7);
    if second < 0x80 {
        return Some(value);
    }
    for i in 2..max_bytes {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Reads a zigzag varint (32-bit) at `*pos` of `buf`.
#[inline(always)]
fn scan_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let raw = u32::try_from(scan_unsigned(buf, pos, 5)?).ok()?;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Skips a varint-length-prefixed byte string at `*pos` (length -1 is null, allowed only when
/// `nullable`).
#[inline(always)]
fn skip_nullable(buf: &[u8], pos: &mut usize, nullable: bool) -> bool {
    match scan_varint(buf, pos) {
        Some(-1) => nullable,
        Some(n) => match usize::try_from(n).ok().and_then(|n| pos.checked_add(n)) {
            Some(end) if end <= buf.len() => {
                *pos = end;
                true
            }
            _ => false,
        },
        None => false,
    }
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

/// Appends `value` as an unsigned varint (Kafka's UNSIGNED_VARINT, and the base of the zigzag
/// forms above). Inlined across crates: the fetch encoder writes one per partition.
#[inline]
pub fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestRecord, build_batch};

    /// The reference answer for [`records_are_valid`]: the record-building walk.
    fn slow_valid(body: &[u8], expected: i32, keys_required: bool) -> bool {
        let iter = RecordIter {
            cursor: Cursor::new(body),
            failed: false,
        };
        let mut count = 0;
        for record in iter {
            match record {
                Ok(r) if r.offset_delta == count && (r.key.is_some() || !keys_required) => {
                    count += 1
                }
                _ => return false,
            }
        }
        count == expected
    }

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_check_stops_at_the_limit_and_on_errors() {
        let batch = build_batch(0, &[(None, Some(b"value"), 0), (None, Some(b"v2"), 1)]);
        let body = &batch[BATCH_HEADER_LEN..];
        assert!(streamed_records_are_valid(
            body,
            2,
            body.len() as u64,
            false
        ));
        assert!(!streamed_records_are_valid(
            body,
            2,
            body.len() as u64 - 1,
            false
        ));
        assert!(!streamed_records_are_valid(body, 1, u64::MAX, false));
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("broken stream"))
            }
        }
        assert!(!streamed_records_are_valid(
            std::io::Read::chain(body, Failing),
            2,
            u64::MAX,
            false
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The one-pass check and the record-building walk agree on damaged batches: random
        /// byte flips, truncations and wrong counts, including multi-byte varints.
        #[test]
        fn fast_record_check_agrees_with_the_walk(
            sizes in proptest::collection::vec(
                (proptest::prop_oneof![4 => 0usize..24, 1 => 60usize..300], proptest::option::of(0usize..3)),
                1..6,
            ),
            flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 0..3),
            cut in proptest::prop_oneof![6 => proptest::strategy::Just(0usize), 1 => 1usize..4],
            count_delta in proptest::prop_oneof![6 => proptest::strategy::Just(0i32), 1 => -1i32..2],
        ) {
            let keys: Vec<Vec<u8>> = sizes.iter().map(|(n, _)| vec![b'k'; n / 3]).collect();
            let values: Vec<Vec<u8>> = sizes.iter().map(|(n, _)| vec![b'v'; *n]).collect();
            let records: Vec<TestRecord<'_>> = sizes
                .iter()
                .enumerate()
                .map(|(i, (_, key))| {
                    let key = key.map(|_| keys[i].as_slice());
                    (key, Some(values[i].as_slice()), i as i64 * 200)
                })
                .collect();
            let batch = build_batch(0, &records);
            let mut body = batch[BATCH_HEADER_LEN..].to_vec();
            for (at, byte) in &flips {
                if !body.is_empty() {
                    let i = at % body.len();
                    body[i] = *byte;
                }
            }
            body.truncate(body.len().saturating_sub(cut));
            let expected = records.len() as i32 + count_delta;
            for keys_required in [false, true] {
                let fast = records_are_valid(&body, expected, keys_required);
                proptest::prop_assert_eq!(fast, slow_valid(&body, expected, keys_required));
                // The streaming check agrees too, read in awkward pieces.
                let streamed = streamed_records_are_valid(
                    Trickle { data: &body, step: 1 + flips.len() * 3 },
                    expected,
                    u64::MAX,
                    keys_required,
                );
                proptest::prop_assert_eq!(streamed, fast);
            }
        }
    }

    /// A record's bytes (after its length): attributes 0, the given deltas, key, `value_len`
    /// bytes of value and `headers` headers with one-byte keys and values.
    fn record_bytes(
        ts: i64,
        delta: i32,
        key: Option<&[u8]>,
        value_len: usize,
        headers: usize,
    ) -> Vec<u8> {
        let mut r = vec![0u8];
        put_varlong(&mut r, ts);
        put_varint(&mut r, delta);
        match key {
            Some(k) => {
                put_varint(&mut r, k.len() as i32);
                r.extend_from_slice(k);
            }
            None => put_varint(&mut r, -1),
        }
        put_varint(&mut r, value_len as i32);
        r.extend(std::iter::repeat_n(b'v', value_len));
        put_varint(&mut r, headers as i32);
        for _ in 0..headers {
            put_varint(&mut r, 1);
            r.push(b'h');
            put_varint(&mut r, 1);
            r.push(b'x');
        }
        r
    }

    /// Record shapes on both sides of the one/two-byte varint limits, intact and damaged by
    /// one byte too many or too few inside the record, a wrong offset delta or a missing key:
    /// the one-pass check decides each as the record-building walk does.
    #[test]
    fn fast_record_check_decides_every_shape_as_the_walk_does() {
        let long_key = [b'k'; 20];
        let keys = [None, Some(&b""[..]), Some(&b"key"[..]), Some(&long_key[..])];
        for ts in [0, 63, 64, 8191, 8192, 1 << 40] {
            for key in keys {
                for value_len in [0, 1, 10, 63, 64, 100, 8192] {
                    for headers in [0, 1, 2] {
                        let record = record_bytes(ts, 0, key, value_len, headers);
                        let mut longer = record.clone();
                        longer.push(0);
                        let cases = [
                            (record.clone(), true, key.is_some()),
                            (longer, false, false),
                            (record[..record.len() - 1].to_vec(), false, false),
                            (record_bytes(ts, 1, key, value_len, headers), false, false),
                        ];
                        for (record, valid, valid_keyed) in cases {
                            let mut body = Vec::new();
                            put_varint(&mut body, record.len() as i32);
                            body.extend_from_slice(&record);
                            for keys_required in [false, true] {
                                let want = if keys_required { valid_keyed } else { valid };
                                assert_eq!(
                                    records_are_valid(&body, 1, keys_required),
                                    want,
                                    "ts {ts} key {key:?} value {value_len} headers {headers} \
                                     len {} keys_required {keys_required}",
                                    record.len()
                                );
                                assert_eq!(slow_valid(&body, 1, keys_required), want);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fast_record_check_accepts_headers_and_rejects_null_header_keys() {
        let mut body = Vec::new();
        let mut record = vec![0u8];
        put_varlong(&mut record, 5);
        put_varint(&mut record, 0);
        put_varint(&mut record, -1);
        put_varint(&mut record, 1);
        record.push(b'v');
        put_varint(&mut record, 1);
        put_varint(&mut record, 1);
        record.push(b'h');
        put_varint(&mut record, -1);
        put_varint(&mut body, record.len() as i32);
        body.extend_from_slice(&record);
        assert!(records_are_valid(&body, 1, false) && slow_valid(&body, 1, false));
        assert!(streamed_records_are_valid(&body[..], 1, u64::MAX, false));
        assert!(!records_are_valid(&body, 2, false));
        let at = body.len() - 3; // the header key length
        body[at] = 1; // zigzag -1
        assert!(!records_are_valid(&body, 1, false) && !slow_valid(&body, 1, false));
        assert!(!streamed_records_are_valid(&body[..], 1, u64::MAX, false));
    }

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
