//! Target `record_batch`: produce payloads through batch validation, record parsing,
//! decompression, LogAppendTime stamping, and — when valid — an append and a read back.
//!
//! Input layout: a mode byte, then the payload. Mode bit 1 makes the payload one batch (its
//! `batchLength` and magic are set to fit); bit 0 then writes correct CRC-32Cs into every
//! batch the payload's length fields delimit. Without those fixes the fuzzer would spend most
//! of its time failing the CRC check, which it cannot easily get right by mutation.
//!
//! Checked: nothing panics on any input; a payload that [`validate_batches`] accepts is
//! exactly tiled by the returned headers, each matching its bytes (CRC, counts, codec, and for
//! uncompressed batches records with offset deltas `0..n`); stamping it with LogAppendTime
//! keeps it valid; appended twice to a fresh log it reads back byte for byte (with the
//! assigned offsets and epoch), and timestamp lookups agree with brute-force models.

use fjord_log::{
    BATCH_HEADER_LEN, BatchHeader, Log, LogConfig, batch_records, iter_records,
    set_log_append_time, validate_batches,
};

use crate::input::Input;
use crate::logcheck;

/// "Now" for LogAppendTime and the log.
const NOW_MS: i64 = 1_700_000_000_000;
/// Leader epoch given to appends.
const EPOCH: i32 = 9;
/// Byte at which the CRC-covered part of a batch starts (`attributes`).
const CRC_FROM: usize = 21;

/// Runs one input; panics when a function panics or breaks an invariant.
pub fn run(data: &[u8]) {
    let payload = payload(data);
    let _ = iter_records(&payload).map(|records| records.count());
    if let Ok(records) = batch_records(&payload) {
        let _ = records.iter().count();
    }
    let mut stamped = payload.clone();
    let stamp = set_log_append_time(&mut stamped, NOW_MS);
    let Ok(headers) = validate_batches(&payload) else {
        return;
    };
    check_tiling(&payload, &headers);
    let stamped_headers = stamp.expect("stamping a valid payload");
    assert_eq!(
        validate_batches(&stamped).as_ref(),
        Ok(&stamped_headers),
        "stamped payload"
    );
    for (h, s) in headers.iter().zip(&stamped_headers) {
        assert!(s.log_append_time() && s.max_timestamp == NOW_MS);
        let unstamped = BatchHeader {
            attributes: h.attributes,
            max_timestamp: h.max_timestamp,
            crc: h.crc,
            ..s.clone()
        };
        assert_eq!(&unstamped, h, "stamping changed other fields");
    }
    append_and_read(&payload, &headers);
}

/// Applies the mode byte's fixes to the rest of the input.
pub fn payload(data: &[u8]) -> Vec<u8> {
    let mut input = Input::new(data);
    let mode = input.u8();
    let mut buf = input.rest().to_vec();
    if mode & 2 != 0 && buf.len() >= BATCH_HEADER_LEN {
        let len = (buf.len() - 12) as i32;
        buf[8..12].copy_from_slice(&len.to_be_bytes());
        buf[16] = 2;
    }
    if mode & 1 != 0 {
        fix_crcs(&mut buf);
    }
    buf
}

/// Writes the correct CRC into every batch that its length field delimits inside `buf`.
pub fn fix_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while let Some(rest) = buf.get_mut(pos..) {
        if rest.len() < CRC_FROM {
            break;
        }
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let total = usize::try_from(len).unwrap_or(0).saturating_add(12);
        if total < CRC_FROM || total > rest.len() {
            break;
        }
        let crc = crc32c::crc32c(&rest[CRC_FROM..total]);
        rest[17..21].copy_from_slice(&crc.to_be_bytes());
        pos += total;
    }
}

/// The headers of a valid payload tile it exactly and describe their batches.
fn check_tiling(payload: &[u8], headers: &[BatchHeader]) {
    assert!(!headers.is_empty());
    let mut pos = 0;
    for h in headers {
        let batch = &payload[pos..pos + h.total_len()];
        assert_eq!(&BatchHeader::parse(batch).expect("parses"), h);
        assert_eq!(crc32c::crc32c(&batch[CRC_FROM..]), h.crc);
        assert!(h.records_count >= 1 && h.last_offset_delta == h.records_count - 1);
        assert!(h.compression() <= 4);
        if h.compression() != 0 {
            // A valid compressed batch decompresses into records_count records.
            let records = fjord_log::batch_records(batch).expect("a valid batch decompresses");
            let deltas: Vec<i32> = records
                .iter()
                .map(|r| r.expect("records of a valid batch parse").offset_delta)
                .collect();
            assert_eq!(deltas, (0..h.records_count).collect::<Vec<_>>());
        } else {
            let deltas: Vec<i32> = iter_records(batch)
                .expect("an uncompressed valid batch iterates")
                .map(|r| r.expect("records of a valid batch parse").offset_delta)
                .collect();
            assert_eq!(deltas, (0..h.records_count).collect::<Vec<_>>());
        }
        pos += h.total_len();
    }
    assert_eq!(pos, payload.len());
}

/// Appends the payload twice to a fresh log with small segments and reads everything back.
fn append_and_read(payload: &[u8], headers: &[BatchHeader]) {
    let dir = logcheck::scratch_dir("record_batch");
    let config = LogConfig {
        segment_bytes: 1024,
        roll_ms: None,
        retention_ms: None,
        retention_bytes: None,
        flush_interval_messages: None,
        index_interval_bytes: 128,
        file_delete_delay_ms: 0,
    };
    let mut log = Log::open(&dir, config.clone(), NOW_MS).expect("open an empty directory");
    let mut expected = Vec::new();
    for _ in 0..2 {
        let end = log.log_end_offset();
        let info = log
            .append(payload, headers, EPOCH, NOW_MS)
            .expect("append of a valid payload");
        assert_eq!(info.first_offset, end);
        expected.extend(fjord_log::testing::as_stored(payload, end, EPOCH));
    }
    log.set_high_watermark(log.log_end_offset());
    let walk = logcheck::walk(&log, 4096).expect("read back");
    let got: Vec<u8> = walk.batches.iter().flat_map(|b| b.bytes.clone()).collect();
    assert!(got == expected, "the log reads back other bytes");
    logcheck::check_lookups(&log, &walk.batches, true).expect("lookups");
    log.close().expect("close");
    let log = Log::open(&dir, config, NOW_MS).expect("reopen");
    let again = logcheck::walk(&log, 4096).expect("read back after reopen");
    assert!(again == walk, "reopened log differs");
}
