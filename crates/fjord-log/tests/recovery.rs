//! Crash recovery: torn tails, corrupt batches, broken indexes, clean restarts.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use common::*;
use fjord_log::{Log, LogConfig};

/// A log of `n` single-record batches with timestamps 1000.., across several segments.
fn populated(dir: &Path, n: i64) -> (LogConfig, Vec<u8>) {
    let config = LogConfig {
        index_interval_bytes: 100,
        ..small_config(600)
    };
    let mut log = Log::open(dir, config.clone(), 0).unwrap();
    for i in 0..n {
        append_bytes(&mut log, batch(1 + (i % 3) as usize, 1000 + i * 10, 20), 0);
    }
    let all = read_all(&log);
    drop(log); // crash: no close
    (config, all)
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    segment_files(dir).pop().unwrap()
}

/// Byte length of the last batch of the last segment.
fn last_batch_len(dir: &Path) -> usize {
    let data = std::fs::read(last_segment(dir)).unwrap();
    let headers = fjord_log::validate_batches(&data).unwrap();
    headers.last().unwrap().total_len()
}

fn check_prefix(log: &Log, all: &[u8], removed: usize) {
    let now = read_all(log);
    assert_eq!(now[..], all[..all.len() - removed]);
    let ranges = batch_ranges(&now);
    assert_eq!(log.log_end_offset(), ranges.last().unwrap().1 + 1);
    assert_eq!(log.high_watermark(), log.log_end_offset());
}

#[test]
fn crash_without_close_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 40);
    let log = Log::open(dir.path(), config, 0).unwrap();
    check_prefix(&log, &all, 0);
}

#[test]
fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 40);
    let seg = last_segment(dir.path());
    let last = last_batch_len(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - (last as u64) / 2)
        .unwrap();
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    check_prefix(&log, &all, last);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len - last as u64);
    // Appends continue right after the last complete batch.
    let leo = log.log_end_offset();
    assert_eq!(append(&mut log, 1, 0).first_offset, leo);
}

#[test]
fn garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 40);
    let seg = last_segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0x5a; 100])
        .unwrap();
    let log = Log::open(dir.path(), config, 0).unwrap();
    check_prefix(&log, &all, 0);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
}

#[test]
fn torn_header_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 10);
    let seg = last_segment(dir.path());
    let one = batch(1, 0, 1);
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&one[..30])
        .unwrap();
    let log = Log::open(dir.path(), config, 0).unwrap();
    check_prefix(&log, &all, 0);
}

#[test]
fn flipped_byte_in_last_batch_truncates_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 40);
    let seg = last_segment(dir.path());
    let last = last_batch_len(dir.path());
    let mut data = std::fs::read(&seg).unwrap();
    let at = data.len() - 3;
    data[at] ^= 0x01;
    std::fs::write(&seg, &data).unwrap();
    let log = Log::open(dir.path(), config, 0).unwrap();
    check_prefix(&log, &all, last);
}

#[test]
fn corruption_in_earlier_segment_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 40);
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 4);
    let victim = &segments[1];
    let mut data = std::fs::read(victim).unwrap();
    let first = fjord_log::BatchHeader::parse(&data).unwrap().total_len();
    data[first + 70] ^= 0xff; // payload of the second batch
    std::fs::write(victim, &data).unwrap();
    // Rolls move the recovery point past fsynced segments; pretend the crash came before
    // those checkpoints so that recovery rescans from the start.
    std::fs::write(dir.path().join("recovery-point"), "0").unwrap();
    let log = Log::open(dir.path(), config, 0).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(segment_files(dir.path()).len(), 2);
    let kept = std::fs::metadata(&segments[0]).unwrap().len() as usize + first;
    assert_eq!(read_all(&log)[..], all[..kept]);
    assert!(
        !files(dir.path())
            .iter()
            .any(|n| n.starts_with(&segments[2].file_stem().unwrap().to_string_lossy()[..]))
    );
}

#[test]
fn clean_close_and_reopen_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 40);
    let log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let before = (
        log.log_start_offset(),
        log.log_end_offset(),
        log.segment_count(),
        log.size_bytes(),
    );
    let lookups: Vec<_> = (990..1500)
        .step_by(7)
        .map(|t| log.offset_for_timestamp(t).unwrap())
        .collect();
    let max = log.max_timestamp().unwrap();
    let index_files: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|n| n.contains("index"))
        .map(|n| std::fs::read(dir.path().join(n)).unwrap())
        .collect();
    log.close().unwrap();
    assert!(dir.path().join("clean-shutdown").exists());
    let log = Log::open(dir.path(), config, 0).unwrap();
    assert!(!dir.path().join("clean-shutdown").exists());
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count(),
            log.size_bytes()
        ),
        before
    );
    assert_eq!(read_all(&log), all);
    assert_eq!(
        (990..1500)
            .step_by(7)
            .map(|t| log.offset_for_timestamp(t).unwrap())
            .collect::<Vec<_>>(),
        lookups
    );
    assert_eq!(log.max_timestamp().unwrap(), max);
    let index_after: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|n| n.contains("index"))
        .map(|n| std::fs::read(dir.path().join(n)).unwrap())
        .collect();
    assert_eq!(index_after, index_files);
}

/// Applies `damage` to every index file after a clean close and checks the log still works.
fn damaged_indexes(damage: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 60);
    let log = Log::open(dir.path(), config.clone(), 0).unwrap();
    let lookups: Vec<_> = (990..1700)
        .step_by(5)
        .map(|t| log.offset_for_timestamp(t).unwrap())
        .collect();
    let max = log.max_timestamp().unwrap();
    log.close().unwrap();
    let names = files(dir.path());
    let originals: Vec<_> = names
        .iter()
        .filter(|n| n.contains("index"))
        .map(|n| (n.clone(), std::fs::read(dir.path().join(n)).unwrap()))
        .collect();
    assert!(
        originals.iter().any(|(_, data)| data.len() > 12),
        "the test needs non-trivial indexes"
    );
    for (name, _) in &originals {
        damage(&dir.path().join(name));
    }
    let log = Log::open(dir.path(), config, 0).unwrap();
    assert_eq!(read_all(&log), all);
    for offset in 0..log.log_end_offset() {
        let got = batch_ranges(&log.read(offset, i64::MAX, 1).unwrap().records);
        assert!(got[0].0 <= offset && offset <= got[0].1);
    }
    assert_eq!(
        (990..1700)
            .step_by(5)
            .map(|t| log.offset_for_timestamp(t).unwrap())
            .collect::<Vec<_>>(),
        lookups
    );
    assert_eq!(log.max_timestamp().unwrap(), max);
    for (name, data) in originals {
        assert_eq!(
            std::fs::read(dir.path().join(&name)).unwrap(),
            data,
            "{name} rebuilt identically"
        );
    }
}

#[test]
fn deleted_index_files_are_rebuilt() {
    damaged_indexes(|p| std::fs::remove_file(p).unwrap());
}

#[test]
fn garbage_index_files_are_rebuilt() {
    damaged_indexes(|p| {
        let len = std::fs::metadata(p).unwrap().len() as usize;
        let garbage: Vec<u8> = (0..len.max(24)).map(|i| (i * 131 % 251) as u8).collect();
        std::fs::write(p, garbage).unwrap();
    });
}

#[test]
fn partial_index_entries_are_rebuilt() {
    damaged_indexes(|p| {
        let len = std::fs::metadata(p).unwrap().len();
        if len > 0 {
            OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len - 1)
                .unwrap();
        }
    });
}

#[test]
fn short_index_is_extended() {
    damaged_indexes(|p| {
        let len = std::fs::metadata(p).unwrap().len();
        let entry = if p.extension().unwrap() == "index" {
            8
        } else {
            12
        };
        if len >= 2 * entry {
            OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len - entry)
                .unwrap();
        }
    });
}

#[test]
fn index_pointing_past_the_end_is_rebuilt() {
    damaged_indexes(|p| {
        if p.extension().unwrap() == "index" {
            let mut data = std::fs::read(p).unwrap();
            if data.len() >= 8 {
                let at = data.len() - 4;
                data[at..].copy_from_slice(&u32::MAX.to_be_bytes());
                std::fs::write(p, data).unwrap();
            }
        }
    });
}

#[test]
fn empty_dir_starts_at_persisted_log_start() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("t-0");
    let log = Log::open(&dir, LogConfig::default(), 0).unwrap();
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (0, 0, 1)
    );
    assert!(dir.as_path().join("00000000000000000000.log").exists());
    log.delete().unwrap();
    std::fs::create_dir(dir.as_path()).unwrap();
    std::fs::write(dir.as_path().join("log-start-offset"), "42\n").unwrap();
    let mut log = Log::open(dir.as_path(), LogConfig::default(), 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (42, 42));
    assert_eq!(append(&mut log, 1, 0).first_offset, 42);
    assert!(dir.as_path().join("00000000000000000042.log").exists());
}

#[test]
fn leftovers_are_cleaned_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (config, all) = populated(dir.path(), 5);
    std::fs::write(dir.path().join("recovery-point.tmp"), "1").unwrap();
    std::fs::write(dir.path().join("00000000000000099999.index"), [0u8; 8]).unwrap();
    let log = Log::open(dir.path(), config, 0).unwrap();
    assert_eq!(read_all(&log), all);
    let names = files(dir.path());
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".tmp") || n.starts_with("00000000000000099999"))
    );
}

#[test]
fn roll_clock_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        roll_ms: Some(100),
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config.clone(), 0).unwrap();
    append_bytes(&mut log, batch(1, 1000, 1), 1000);
    log.close().unwrap();
    let mut log = Log::open(dir.path(), config, 1050).unwrap();
    assert!(!log.maybe_roll(1090).unwrap());
    assert!(log.maybe_roll(1100).unwrap());
}

fn persisted_recovery_point(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join("recovery-point"))
        .ok()
        .map(|s| s.trim().parse().unwrap())
}

/// Appends one-record batches until `dir` holds `segments` segment files.
fn append_until_segments(log: &mut Log, dir: &Path, segments: usize) {
    while segment_files(dir).len() < segments {
        append_bytes(log, batch(1, 1000, 20), 0);
    }
}

/// A roll leaves the finished segment's fsync to a roll flush job, taken and finished under
/// the caller's lock but synced without it; once synced, the recovery point is at the active
/// segment's base, so recovery after a crash rescans only the active segment.
#[test]
fn a_roll_flush_job_makes_finished_segments_durable_and_moves_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(600), 0).unwrap();
    let opened_at = log.recovery_point();
    assert!(!log.roll_flush_due());
    append_until_segments(&mut log, dir.path(), 3);
    let active_base: i64 = last_segment(dir.path())
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        log.recovery_point(),
        opened_at,
        "the roll itself syncs nothing"
    );
    assert_eq!(persisted_recovery_point(dir.path()), Some(opened_at));
    assert!(log.roll_flush_due());

    let job = log.begin_roll_flush().unwrap();
    assert!(job.moves_recovery_point());
    assert_eq!(job.end_offset(), active_base);
    // Two finished segments (log and two indexes each) and the directory.
    assert_eq!(job.file_count(), 7);
    assert!(!log.roll_flush_due(), "one job at a time");
    assert!(log.begin_roll_flush().is_none());
    // Appends go on while the job syncs.
    append_bytes(&mut log, batch(1, 1000, 20), 0);
    job.sync().unwrap();
    log.finish_flush(job, Ok(())).unwrap();
    assert_eq!(log.recovery_point(), active_base);
    assert_eq!(persisted_recovery_point(dir.path()), Some(active_base));
    assert!(!log.roll_flush_due());
}

/// A roll flush job whose sync failed leaves everything to sync again: the next job takes the
/// same segments, and the recovery point has not moved.
#[test]
fn a_failed_roll_flush_is_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(600), 0).unwrap();
    let opened_at = log.recovery_point();
    append_until_segments(&mut log, dir.path(), 2);
    let job = log.begin_roll_flush().unwrap();
    let files = job.file_count();
    let failed = Err(fjord_log::LogError::Io {
        op: "fsync",
        path: dir.path().to_path_buf(),
        source: std::io::Error::other("injected"),
    });
    assert!(log.finish_flush(job, failed).is_err());
    assert_eq!(log.recovery_point(), opened_at);
    assert!(log.roll_flush_due());
    let again = log.begin_roll_flush().unwrap();
    assert!(
        again.file_count() >= files - 1,
        "the segment is synced again"
    );
    again.sync().unwrap();
    log.finish_flush(again, Ok(())).unwrap();
    assert!(log.recovery_point() > opened_at);
}

/// A truncation below the recovery point while a roll flush job syncs fences the job off: it
/// must not persist a recovery point above data that was cut (and may be written again).
#[test]
fn a_truncation_fences_off_a_roll_flush_taken_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(600), 0).unwrap();
    append_until_segments(&mut log, dir.path(), 2);
    log.flush().unwrap();
    append_until_segments(&mut log, dir.path(), 3);
    let flushed_to = log.recovery_point();
    let job = log.begin_roll_flush().unwrap();
    assert!(job.end_offset() > flushed_to);
    let cut = flushed_to - 1;
    assert_eq!(log.truncate_to(cut).unwrap(), cut);
    assert_eq!(log.recovery_point(), cut);
    job.sync().unwrap();
    log.finish_flush(job, Ok(())).unwrap();
    assert_eq!(log.recovery_point(), cut, "the stale job did not raise it");
    assert_eq!(persisted_recovery_point(dir.path()), Some(cut));
}

/// Found by the `log_recovery` fuzz target: a damaged `log-start-offset` holding i64::MAX made
/// the log create a segment it could not find again and overflow the next append.
#[test]
fn absurd_log_start_checkpoint_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    append_bytes(&mut log, batch(1, 1000, 20), 0);
    drop(log);
    std::fs::write(dir.path().join("log-start-offset"), "9223372036854775807\n").unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 1));
    let (info, _) = append_bytes(&mut log, batch(1, 1001, 20), 0);
    assert_eq!(info.first_offset, 1);
}

/// Found by the `log_recovery` fuzz target: a `log-start-offset` just below the end of the
/// offset space is a valid checkpoint, so the log opens there; an append that would pass the end
/// is refused as invalid (no panic, no wrapped offsets) and the log stays as it was.
#[test]
fn log_at_the_end_of_the_offset_space_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    append_bytes(&mut log, batch(1, 1000, 20), 0);
    drop(log);
    let start = fjord_log::MAX_OFFSET - 1;
    std::fs::write(dir.path().join("log-start-offset"), format!("{start}\n")).unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start, start)
    );
    let b = batch(1, 1001, 20);
    let headers = fjord_log::validate_batches(&b).unwrap();
    let err = log.append(&b, &headers, 0, 0).unwrap_err();
    assert!(
        matches!(err, fjord_log::LogError::InvalidAppend { .. }),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), start);
    log.close().unwrap();
    let log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start, start)
    );
}
