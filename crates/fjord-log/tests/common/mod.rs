//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use fjord_log::testing::build_batch;
use fjord_log::{AppendInfo, Log, LogConfig, validate_batches};

/// A batch of `n` records with values of `value_len` bytes, timestamps `ts, ts+1, ...`.
pub fn batch(n: usize, ts: i64, value_len: usize) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let records: Vec<_> = (0..n)
        .map(|i| (Some(&b"key"[..]), Some(&value[..]), ts + i as i64))
        .collect();
    build_batch(0, &records)
}

/// Validates and appends `bytes`, returning the append info and the bytes as stored.
pub fn append_bytes(log: &mut Log, bytes: Vec<u8>, now_ms: i64) -> (AppendInfo, Vec<u8>) {
    let headers = validate_batches(&bytes).unwrap();
    let info = log.append(&bytes, &headers, 3, now_ms).unwrap();
    log.set_high_watermark(log.log_end_offset());
    let stored = fjord_log::testing::as_stored(&bytes, info.first_offset, 3);
    (info, stored)
}

/// Appends a batch of `n` records stamped `ts..`.
pub fn append(log: &mut Log, n: usize, ts: i64) -> AppendInfo {
    append_bytes(log, batch(n, ts, 10), ts).0
}

/// Reads everything from the log start.
pub fn read_all(log: &Log) -> Vec<u8> {
    log.read(log.log_start_offset(), i64::MAX, usize::MAX)
        .unwrap()
        .records
        .to_vec()
}

/// (base offset, last offset) of every batch in `buf`.
pub fn batch_ranges(buf: &[u8]) -> Vec<(i64, i64)> {
    if buf.is_empty() {
        return Vec::new();
    }
    validate_batches(buf)
        .unwrap()
        .iter()
        .map(|h| (h.base_offset, h.last_offset()))
        .collect()
}

/// Names of the files in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Paths of the segments' `.log` files in `dir` (not a spare's), sorted.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".log") && n != "spare.log")
        .map(|n| dir.join(n))
        .collect()
}

/// A config with small segments and index intervals for tests.
pub fn small_config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 64,
        retention_ms: None,
        roll_ms: None,
        ..LogConfig::default()
    }
}

/// Waits (30 s at most) until `ready`, for work done on the log's background threads.
#[allow(dead_code)]
pub fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
