//! Retention, DeleteRecords, truncation, flushing and deletion.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fjord_log::{BatchHeader, Log, LogConfig, LogError, validate_batches};

fn open(dir: &std::path::Path, config: LogConfig) -> Log {
    Log::open(dir, config, 0).unwrap()
}

#[test]
fn retention_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0, 10).len() as u64;
    let config = LogConfig {
        retention_ms: Some(1000),
        ..small_config(size * 2)
    };
    let mut log = open(dir.path(), config);
    for ts in [100, 200, 300, 400, 5000, 5100] {
        append(&mut log, 1, ts);
    }
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.apply_retention(1000).unwrap(), 0);
    assert_eq!(log.apply_retention(1401).unwrap(), 2);
    assert_eq!((log.log_start_offset(), log.segment_count()), (4, 1));
    assert_eq!(batch_ranges(&read_all(&log)), vec![(4, 4), (5, 5)]);
    // The active segment expired: it is rolled, then deleted.
    assert_eq!(log.apply_retention(7000).unwrap(), 1);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (6, 6, 1)
    );
    assert!(read_all(&log).is_empty());
    append(&mut log, 1, 8000);
    assert_eq!(batch_ranges(&read_all(&log)), vec![(6, 6)]);
    // Retention disabled keeps everything.
    log.set_config(LogConfig {
        retention_ms: None,
        ..log.config().clone()
    });
    assert_eq!(log.apply_retention(i64::MAX).unwrap(), 0);
}

/// A deleted segment's files are renamed (`.deleted`) under the partition's lock and removed
/// on a background thread after `file.delete.delay.ms`, so freeing their blocks never holds
/// the partition (docs/design.md §8); open hands over any that a stop left behind.
#[test]
fn deleted_segments_are_renamed_then_removed_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0, 10).len() as u64;
    let deleted = |d: &std::path::Path| {
        files(d)
            .into_iter()
            .filter(|n| n.ends_with(".deleted"))
            .collect::<Vec<_>>()
    };
    let config = LogConfig {
        retention_bytes: Some(size),
        file_delete_delay_ms: 0,
        ..small_config(size * 2)
    };
    let mut log = open(dir.path(), config.clone());
    for _ in 0..5 {
        append(&mut log, 1, 0);
    }
    let first = segment_files(dir.path())[0].clone();
    assert_eq!(log.apply_retention(0).unwrap(), 2);
    assert!(!first.exists());
    wait_for("the background removal", || deleted(dir.path()).is_empty());
    assert_eq!(segment_files(dir.path()).len(), 1);

    // With Kafka's default delay the renamed files stay for a minute.
    log.set_config(LogConfig {
        file_delete_delay_ms: 60_000,
        ..config
    });
    for _ in 0..4 {
        append(&mut log, 1, 0);
    }
    let before = segment_files(dir.path());
    assert_eq!(log.apply_retention(0).unwrap(), 2);
    let renamed = deleted(dir.path());
    assert_eq!(renamed.len(), 6, "{renamed:?}");
    for path in &before[..2] {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(renamed.contains(&format!("{name}.deleted")), "{name}");
        assert!(!path.exists());
    }
    // A stop before the delay passed: the next open removes them, and the log is unchanged.
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    drop(log);
    let log = open(dir.path(), small_config(size * 2));
    wait_for("open to remove the deleted files", || {
        deleted(dir.path()).is_empty()
    });
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
    assert_eq!(batch_ranges(&read_all(&log)), vec![(8, 8)]);
}

#[test]
fn retention_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0, 10).len() as u64;
    let config = LogConfig {
        retention_bytes: Some(size * 3),
        ..small_config(size * 2)
    };
    let mut log = open(dir.path(), config);
    for _ in 0..7 {
        append(&mut log, 1, 0);
    }
    assert_eq!(log.segment_count(), 4);
    // 7 batches, limit 3: two segments of 2 can go (7 -> 3), the third would leave 1 < 3.
    assert_eq!(log.apply_retention(0).unwrap(), 2);
    assert_eq!(log.size_bytes(), size * 3);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.apply_retention(0).unwrap(), 0);
}

#[test]
fn retention_keeps_data_above_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(1, 0, 10).len() as u64;
    let config = LogConfig {
        retention_bytes: Some(0),
        ..small_config(size)
    };
    let mut log = open(dir.path(), config);
    for _ in 0..4 {
        append(&mut log, 1, 0);
    }
    log.set_high_watermark(1);
    assert_eq!(log.apply_retention(0).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 1);
}

#[test]
fn delete_records_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(2, 0, 10).len() as u64;
    let mut log = open(dir.path(), small_config(size * 2));
    for _ in 0..5 {
        append(&mut log, 2, 0);
    }
    assert_eq!(log.segment_count(), 3);
    assert!(matches!(
        log.delete_records_before(11),
        Err(LogError::OffsetOutOfRange { offset: 11, .. })
    ));
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert_eq!(log.segment_count(), 2, "segment [0, 4) is wholly below 5");
    assert_eq!(
        log.delete_records_before(3).unwrap(),
        5,
        "moving back is a no-op"
    );
    log.close().unwrap();
    let log = open(dir.path(), small_config(size * 2));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 10));
    assert_eq!(batch_ranges(&read_all(&log)), vec![(4, 5), (6, 7), (8, 9)]);
    drop(log); // crash
    let mut log = open(dir.path(), small_config(size * 2));
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.delete_records_before(10).unwrap(), 10);
    drop(log);
    let log = open(dir.path(), small_config(size * 2));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 10));
}

/// DeleteRecords in two steps, as the broker runs it: the checkpoint is raised without the
/// partition's lock, then the start is applied. Two requests racing leave the larger start on
/// disk whatever order their writes land in, and a crash between the steps keeps the
/// persisted start.
#[test]
fn delete_records_in_two_steps_only_moves_the_persisted_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(2, 0, 10).len() as u64;
    let mut log = open(dir.path(), small_config(size * 2));
    for _ in 0..5 {
        append(&mut log, 2, 0);
    }
    let checkpoint = log.start_checkpoint();
    checkpoint.raise_to(6).unwrap();
    checkpoint.raise_to(4).unwrap();
    let on_disk = || std::fs::read_to_string(dir.path().join("log-start-offset")).unwrap();
    assert_eq!(on_disk(), "6\n");
    assert_eq!(log.advance_log_start(4).unwrap(), 4);
    assert_eq!(log.advance_log_start(6).unwrap(), 6);
    assert!(matches!(
        log.advance_log_start(11),
        Err(LogError::OffsetOutOfRange { offset: 11, .. })
    ));
    checkpoint.raise_to(8).unwrap();
    drop(log); // a crash before the second step
    let log = open(dir.path(), small_config(size * 2));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 10));
}

#[test]
fn truncate_to_boundaries_mid_batch_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(3, 0, 10).len() as u64;
    let config = small_config(size * 2);
    let mut log = open(dir.path(), config.clone());
    for _ in 0..6 {
        append(&mut log, 3, 0);
    }
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.truncate_to(100).unwrap(), 18);
    assert_eq!(log.truncate_to(15).unwrap(), 15);
    assert_eq!(
        log.truncate_to(10).unwrap(),
        9,
        "inside a batch: cut at its base"
    );
    assert_eq!(log.high_watermark(), 9);
    assert_eq!(log.segment_count(), 2);
    assert_eq!(batch_ranges(&read_all(&log)), vec![(0, 2), (3, 5), (6, 8)]);
    assert_eq!(log.truncate_to(6).unwrap(), 6);
    assert_eq!(
        log.segment_count(),
        2,
        "emptied segment stays as the active one"
    );
    assert_eq!(append(&mut log, 2, 0).first_offset, 6);
    assert_eq!(batch_ranges(&read_all(&log)), vec![(0, 2), (3, 5), (6, 7)]);
    log.close().unwrap();
    let mut log = open(dir.path(), config.clone());
    assert_eq!(batch_ranges(&read_all(&log)), vec![(0, 2), (3, 5), (6, 7)]);
    // Below the log start: the log restarts empty there.
    log.delete_records_before(4).unwrap();
    assert_eq!(
        log.truncate_to(4).unwrap(),
        3,
        "the batch holding the start goes, start moves back"
    );
    assert_eq!(log.log_start_offset(), 3);
    assert_eq!(log.truncate_to(1).unwrap(), 1);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (1, 1, 1)
    );
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 1));
}

#[test]
fn flush_by_message_count_and_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_interval_messages: Some(5),
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 3, 0);
    assert_eq!(log.unflushed_messages(), 3);
    assert!(!log.flush_due());
    append(&mut log, 3, 0);
    // Appends never fsync; the caller flushes when the count is reached.
    assert_eq!(log.unflushed_messages(), 6);
    assert!(log.flush_due());
    log.flush().unwrap();
    assert!(!log.flush_due());
    let point = std::fs::read_to_string(dir.path().join("recovery-point")).unwrap();
    assert_eq!(point.trim(), "6");
    append(&mut log, 1, 0);
    log.flush().unwrap();
    assert_eq!(log.unflushed_messages(), 0);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("recovery-point"))
            .unwrap()
            .trim(),
        "7"
    );
}

#[test]
fn append_rejects_inconsistent_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    let bytes = batch(2, 0, 10);
    let headers = validate_batches(&bytes).unwrap();
    assert!(matches!(
        log.append(&bytes, &[], 0, 0),
        Err(LogError::InvalidAppend { .. })
    ));
    let mut longer = bytes.clone();
    longer.extend(batch(1, 0, 1));
    assert!(matches!(
        log.append(&longer, &headers, 0, 0),
        Err(LogError::InvalidAppend { .. })
    ));
    let other: Vec<BatchHeader> = validate_batches(&batch(2, 0, 11)).unwrap();
    assert!(matches!(
        log.append(&bytes, &other, 0, 0),
        Err(LogError::InvalidAppend { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.append(&bytes, &headers, 0, 0).unwrap().last_offset, 1);
}

#[test]
fn high_watermark_is_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), LogConfig::default());
    append(&mut log, 4, 0);
    log.set_high_watermark(100);
    assert_eq!(log.high_watermark(), 4);
    log.delete_records_before(2).unwrap();
    log.set_high_watermark(0);
    assert_eq!(log.high_watermark(), 2);
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let renamed = || {
        files(dir.path())
            .into_iter()
            .filter(|n| n.starts_with("topic-0.") && n.ends_with(".deleted"))
            .collect::<Vec<_>>()
    };
    // Kafka's default delay: renamed at once, removed a minute later.
    let mut log = open(&path, LogConfig::default());
    append(&mut log, 1, 0);
    assert_eq!(log.dir(), path);
    log.delete().unwrap();
    assert!(!path.exists());
    assert_eq!(renamed().len(), 1);
    // A log at the same path starts empty while the old one waits.
    let mut log = open(&path, LogConfig::default());
    assert_eq!(log.log_end_offset(), 0);
    append(&mut log, 1, 0);
    // No delay: removed by the background thread.
    log.set_config(LogConfig {
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    });
    log.delete().unwrap();
    assert!(!path.exists());
    wait_for("the second directory's removal", || renamed().len() == 1);
    // What a stop left renamed is handed over at start.
    let left = dir.path().join(&renamed()[0]);
    assert!(fjord_log::remove_if_deleted(&left));
    assert!(!fjord_log::remove_if_deleted(dir.path()));
    wait_for("the first directory's removal", || renamed().is_empty());
}

#[test]
fn flush_job_covers_appends_before_it_and_leaves_later_ones_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_interval_messages: Some(2),
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 2, 0);
    assert!(log.flush_due());
    let job = log.begin_flush();
    assert_eq!(job.end_offset(), 2);
    // The active segment's log and two indexes (open already synced the directory).
    assert_eq!(job.file_count(), 3);
    assert!(!log.flush_due(), "the job took the pending records");
    // An append while the job is syncing (the lock is free) is not covered by it.
    append(&mut log, 1, 0);
    job.sync().unwrap();
    log.finish_flush(job, Ok(())).unwrap();
    assert_eq!(log.unflushed_messages(), 1);
    let next = log.begin_flush();
    assert_eq!((next.end_offset(), next.file_count()), (3, 3));
    next.sync().unwrap();
    log.finish_flush(next, Ok(())).unwrap();
    let idle = log.begin_flush();
    assert_eq!((idle.end_offset(), idle.file_count()), (3, 0));
    log.finish_flush(idle, Ok(())).unwrap();
}

#[test]
fn failed_flush_job_leaves_everything_to_flush_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_interval_messages: Some(3),
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config);
    append(&mut log, 3, 0);
    let job = log.begin_flush();
    let files = job.file_count();
    let failed = Err(LogError::Io {
        op: "fsync",
        path: dir.path().to_path_buf(),
        source: std::io::Error::other("injected"),
    });
    assert!(log.finish_flush(job, failed).is_err());
    assert!(log.flush_due(), "the records are pending again");
    let retry = log.begin_flush();
    assert_eq!(retry.file_count(), files);
    retry.sync().unwrap();
    log.finish_flush(retry, Ok(())).unwrap();
}
