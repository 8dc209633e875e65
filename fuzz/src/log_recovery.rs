//! Target `log_recovery`: build a log, corrupt its files, reopen it, check what it serves.
//!
//! Input layout: a [`Plan`] (how to build the log and what to do after reopening), then
//! corruptions until the input ends (see [`crate::corrupt`]).
//!
//! 1. A log is built in a scratch directory on tmpfs from the plan: plain, gzip and
//!    LogAppendTime batches with chosen timestamps, small segments and index intervals,
//!    optionally a DeleteRecords, a flush half-way and a clean close (else the process
//!    "crashes": the log is dropped).
//! 2. The corruptions are applied to segment, index and checkpoint files.
//! 3. The log is reopened. Whatever happened, nothing may panic.
//!
//! When recovery re-reads every segment that was corrupted — none was before the segment
//! holding the recovery point (a roll leaves its fsync and the recovery point to a roll flush job,
//! which the harness does not run, so the point is where the plan's flush or close left it)
//! and there is no clean-shutdown marker — the reopened log must also be sound: it opens, every offset from the log start to the log end offset reads back
//! as valid batches in order, each batch is one that was appended (at its own offsets, and
//! with no holes, unless a corruption could have moved offsets undetectably, see
//! [`Touched`]), the log did not grow, timestamp lookups agree with brute-force models, an
//! append after recovery reads back, a truncation keeps exactly the batches below its offset,
//! and a second reopen sees the same log.
//!
//! A corrupted segment that recovery trusts (below the recovery point, or after a clean
//! shutdown) is not re-read, as in Kafka, so then only the absence of panics is checked.

use fjord_log::testing::build_gzip_batch;
use fjord_log::{BatchHeader, Log, LogConfig, build_batch, set_log_append_time};

use crate::corrupt::{self, Touched};
use crate::input::Input;
use crate::logcheck::{self, ReadBatch, Walk, same_batch};

/// "Now" for every operation that takes a clock.
pub const NOW_MS: i64 = 1_700_000_000_000;
/// Leader epoch given to appends.
const EPOCH: i32 = 3;
/// Most batches a plan appends.
pub const MAX_BATCHES: usize = 24;

/// How to build the log and what to do after reopening it.
///
/// Encoding: `flags u8 | segment u8 | interval u8 | read u8 | count u8 | count × (shape u8,
/// step u8) | delete u8 | truncate u8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Flag bit 0: close the log cleanly (else drop it, as a crash would).
    pub close: bool,
    /// Flag bit 1: flush after half of the batches (moves the recovery point).
    pub flush_midway: bool,
    /// Flag bit 2: DeleteRecords before closing, at `delete` / 256 of the log.
    pub delete_records: bool,
    /// Flag bit 3: close cleanly (else drop) before the second reopen.
    pub reclose: bool,
    /// Flag bit 4: truncate the reopened log at `truncate` / 256 of it.
    pub truncate: bool,
    /// Flag bit 5: delete the recovery point checkpoint before corrupting (as if it was
    /// lost), so that recovery re-reads every segment.
    pub forget_recovery_point: bool,
    /// Flag bit 6: after each append, run the roll flush job a roll left (as the broker's
    /// housekeeping does), so that the recovery point follows the rolls.
    pub roll_flush: bool,
    /// `segment.bytes`: `64 + 8 × segment`.
    pub segment_bytes: u64,
    /// `index.interval.bytes`: `interval`.
    pub index_interval: u32,
    /// `max_bytes` of each read: `1 + 16 × read`.
    pub read_max_bytes: usize,
    /// The batches, `1 + count % MAX_BATCHES` of them.
    pub batches: Vec<BatchShape>,
    /// Where to DeleteRecords.
    pub delete_at: u8,
    /// Where to truncate.
    pub truncate_at: u8,
}

/// One batch of a [`Plan`]: `shape` bits 0-1 kind, 2-3 records - 1, 4-5 value size class,
/// 6-7 timestamp step inside the batch (-1..=2); `step` is the signed step × 3 from the
/// previous batch's first timestamp, and -128 means "no timestamp" (-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// The shape byte.
    pub shape: u8,
    /// The step byte.
    pub step: u8,
}

impl Plan {
    /// Reads a plan from the front of `input`.
    pub fn read(input: &mut Input<'_>) -> Plan {
        let flags = input.u8();
        let segment = input.u8();
        let interval = input.u8();
        let read = input.u8();
        let count = 1 + usize::from(input.u8()) % MAX_BATCHES;
        let batches = (0..count)
            .map(|_| BatchShape {
                shape: input.u8(),
                step: input.u8(),
            })
            .collect();
        Plan {
            close: flags & 1 != 0,
            flush_midway: flags & 2 != 0,
            delete_records: flags & 4 != 0,
            reclose: flags & 8 != 0,
            truncate: flags & 16 != 0,
            forget_recovery_point: flags & 32 != 0,
            roll_flush: flags & 64 != 0,
            segment_bytes: 64 + 8 * u64::from(segment),
            index_interval: u32::from(interval),
            read_max_bytes: 1 + 16 * usize::from(read),
            batches,
            delete_at: input.u8(),
            truncate_at: input.u8(),
        }
    }

    fn config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            roll_ms: None,
            retention_ms: None,
            retention_bytes: None,
            flush_interval_messages: None,
            index_interval_bytes: self.index_interval,
            file_delete_delay_ms: 0,
        }
    }
}

/// The log as built, before corruption.
#[derive(Debug)]
struct Built {
    /// Every appended batch, with its assigned offsets, in order.
    batches: Vec<Vec<u8>>,
    log_start: i64,
    log_end: i64,
    layout: Vec<corrupt::SegmentLayout>,
}

/// Runs one input; panics when the log panics or breaks an invariant.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let plan = Plan::read(&mut input);
    let dir = logcheck::scratch_dir("log_recovery");
    let built = build(&dir, &plan);
    let touched = corrupt::apply_all(&mut input, &dir, &built.layout);
    let trusted = corrupt::trusted_segments(&dir);
    let strict = touched.segments.is_disjoint(&trusted);
    if crate::tracing() {
        eprintln!(
            "{plan:?}\n{touched:?}\nbuilt: {} batches, log {}..{}, layout {:?}\n\
             trusted: {trusted:?}, strict: {strict}",
            built.batches.len(),
            built.log_start,
            built.log_end,
            built.layout
        );
    }
    let opened = Log::open(&dir, plan.config(), NOW_MS);
    let log = match opened {
        Ok(log) => log,
        // As in Kafka, a corrupted segment that is trusted (not re-read) may fail to open.
        Err(_) if !strict => return,
        Err(e) => panic!("open after recoverable corruption failed: {e}"),
    };
    let (start, hw, end) = (
        log.log_start_offset(),
        log.high_watermark(),
        log.log_end_offset(),
    );
    assert!(
        start <= hw && hw == end,
        "bounds after open: start {start}, hw {hw}, end {end}"
    );
    if strict {
        check_strict(log, &dir, &plan, &built, &touched);
    } else {
        exercise(log, &dir, &plan);
    }
}

/// Builds the log described by `plan` in `dir` and closes or drops it.
fn build(dir: &std::path::Path, plan: &Plan) -> Built {
    let mut log = Log::open(dir, plan.config(), NOW_MS).expect("open an empty directory");
    let mut batches = Vec::with_capacity(plan.batches.len());
    let mut ts = NOW_MS - 1_000_000;
    for (i, shape) in plan.batches.iter().enumerate() {
        let bytes = make_batch(i, *shape, &mut ts);
        let headers = fjord_log::validate_batches(&bytes).expect("a built batch is valid");
        let info = log
            .append(&bytes, &headers, EPOCH, NOW_MS)
            .expect("append of a valid batch");
        batches.push(fjord_log::testing::as_stored(
            &bytes,
            info.first_offset,
            EPOCH,
        ));
        if plan.flush_midway && i == plan.batches.len() / 2 {
            log.flush().expect("flush");
        }
        if plan.roll_flush
            && let Some(job) = log.begin_roll_flush()
        {
            let synced = job.sync();
            log.finish_flush(job, synced).expect("roll flush");
            assert!(
                !log.roll_flush_due(),
                "a roll flush moves the recovery point to the active segment"
            );
        }
    }
    let end = log.log_end_offset();
    log.set_high_watermark(end);
    if plan.delete_records {
        let at = fraction(log.log_start_offset(), end, plan.delete_at);
        log.delete_records_before(at)
            .expect("DeleteRecords below the high watermark");
    }
    let log_start = log.log_start_offset();
    if plan.close {
        log.close().expect("close");
    } else {
        drop(log);
    }
    if plan.forget_recovery_point {
        std::fs::remove_file(dir.join("recovery-point")).expect("remove recovery point");
    }
    Built {
        batches,
        log_start,
        log_end: end,
        layout: corrupt::layout(dir),
    }
}

/// `from + (to - from) × k / 256`, an offset in `[from, to]`.
fn fraction(from: i64, to: i64, k: u8) -> i64 {
    from + ((to - from) * i64::from(k) + 255) / 256
}

/// Builds batch number `i` with `shape`; `ts` is the running first timestamp.
fn make_batch(i: usize, shape: BatchShape, ts: &mut i64) -> Vec<u8> {
    let count = 1 + usize::from(shape.shape >> 2 & 3);
    let value_len = [0, 3, 17, 60][usize::from(shape.shape >> 4 & 3)];
    let in_batch_step = i64::from(shape.shape >> 6) - 1;
    let step = shape.step as i8;
    *ts += i64::from(step) * 3;
    let keys: Vec<String> = (0..count).map(|j| format!("k{i}.{j}")).collect();
    let value = vec![b'a' + (i % 26) as u8; value_len];
    let records: Vec<_> = (0..count)
        .map(|j| {
            let t = if step == i8::MIN {
                -1
            } else {
                *ts + in_batch_step * j as i64
            };
            let key = (j % 2 == 0).then_some(keys[j].as_bytes());
            (key, Some(&value[..]), t)
        })
        .collect();
    match shape.shape & 3 {
        2 => build_gzip_batch(0, &records),
        3 => {
            let mut b = build_batch(0, &records);
            set_log_append_time(&mut b, NOW_MS + i as i64).expect("stamp a valid batch");
            b
        }
        _ => build_batch(0, &records),
    }
}

/// How a batch read back relates to the batches appended.
#[derive(Debug, PartialEq, Eq)]
enum Provenance {
    /// An appended batch at its own offsets.
    Original,
    /// An appended batch, but at other offsets.
    Moved,
    /// No appended batch has these contents.
    Foreign,
}

fn provenance(b: &ReadBatch, built: &Built) -> Provenance {
    let at_offset = built
        .batches
        .iter()
        .find(|o| BatchHeader::parse(o).is_ok_and(|h| h.base_offset == b.base()));
    if at_offset.is_some_and(|o| same_batch(o, &b.bytes, true)) {
        return Provenance::Original;
    }
    if built.batches.iter().any(|o| same_batch(o, &b.bytes, false)) {
        return Provenance::Moved;
    }
    Provenance::Foreign
}

fn check_strict(
    mut log: Log,
    dir: &std::path::Path,
    plan: &Plan,
    built: &Built,
    touched: &Touched,
) {
    let fail = |what: String| -> ! { panic!("{what}\ncorruptions: {touched:?}") };
    let walk = logcheck::walk(&log, plan.read_max_bytes).unwrap_or_else(|e| fail(e));
    let mut foreign = false;
    let mut moved = false;
    for b in &walk.batches {
        let crc = crc32c::crc32c(&b.bytes[21..]);
        if crc != b.header.crc {
            fail(format!("batch {} read back with a bad CRC", b.base()));
        }
        match provenance(b, built) {
            Provenance::Original => {}
            Provenance::Moved if touched.offsets => moved = true,
            Provenance::Foreign if touched.raw_log_bytes => foreign = true,
            p => fail(format!("batch {} read back is {p:?}", b.base())),
        }
        if !foreign && let Err(e) = fjord_log::validate_batches(&b.bytes) {
            fail(format!("batch {} read back is invalid: {e}", b.base()));
        }
    }
    if !foreign && !moved {
        if !touched.gaps {
            check_contiguous(&walk).unwrap_or_else(|e| fail(e));
        }
        if !touched.log_start && walk.log_end > built.log_end {
            fail(format!(
                "log end offset grew from {} to {}",
                built.log_end, walk.log_end
            ));
        }
    }
    if !touched.log_start {
        let ok = if touched.deleted_log {
            walk.log_start >= built.log_start
        } else {
            walk.log_start == built.log_start
        };
        if !ok {
            fail(format!(
                "log start offset {} became {}",
                built.log_start, walk.log_start
            ));
        }
    }
    if foreign {
        // A foreign batch may hold records the lookups cannot parse: only no panic is asked.
        for ts in logcheck::probe_timestamps(&walk.batches) {
            let _ = log.offset_for_timestamp(ts);
        }
        let _ = log.max_timestamp();
    } else {
        let all_on_disk = !plan.delete_records && !touched.log_start;
        logcheck::check_lookups(&log, &walk.batches, all_on_disk).unwrap_or_else(|e| fail(e));
    }

    let mut kept = walk.batches.clone();
    if plan.truncate {
        let at = fraction(walk.log_start, walk.log_end, plan.truncate_at);
        let end = log
            .truncate_to(at)
            .unwrap_or_else(|e| fail(format!("truncate: {e}")));
        kept.retain(|b| b.last() < at);
        if end > at.max(log.log_start_offset()) || kept.last().is_some_and(|b| b.last() >= end) {
            fail(format!("truncate_to({at}) left the log end at {end}"));
        }
    }
    let end = log.log_end_offset();
    let extra = build_batch(0, &[(Some(b"after"), Some(b"recovery"), NOW_MS)]);
    let headers = fjord_log::validate_batches(&extra).expect("valid batch");
    // A (damaged but readable) log start checkpoint can put the log at the end of its offset
    // space: then the append must be refused as invalid and change nothing.
    let full = end >= fjord_log::MAX_OFFSET - 1;
    match log.append(&extra, &headers, EPOCH, NOW_MS) {
        Ok(info) if !full => {
            if info.first_offset != end {
                fail(format!("append went to {} not {end}", info.first_offset));
            }
        }
        Ok(info) => fail(format!(
            "append past the offset space at {}",
            info.first_offset
        )),
        Err(fjord_log::LogError::InvalidAppend { .. }) if full => {}
        Err(e) => fail(format!("append after recovery at {end}: {e}")),
    }
    if !full {
        log.set_high_watermark(end.saturating_add(1));
        let read = log
            .read(end, i64::MAX, 1)
            .unwrap_or_else(|e| fail(format!("read of the append: {e}")));
        if read.records[..] != fjord_log::testing::as_stored(&extra, end, EPOCH)[..] {
            fail("the append reads back differently".into());
        }
    }
    let before = logcheck::walk(&log, plan.read_max_bytes).unwrap_or_else(|e| fail(e));
    if before.batches.len() != kept.len() + usize::from(!full)
        || before.batches[..kept.len()] != kept[..]
    {
        fail("truncate or append changed the batches before them".into());
    }
    if plan.reclose {
        log.close().unwrap_or_else(|e| fail(format!("close: {e}")));
    } else {
        drop(log);
    }
    let log = Log::open(dir, plan.config(), NOW_MS)
        .unwrap_or_else(|e| fail(format!("second reopen: {e}")));
    let after = logcheck::walk(&log, plan.read_max_bytes).unwrap_or_else(|e| fail(e));
    if after != before {
        fail(format!(
            "second reopen sees another log:\nbefore {before:?}\nafter {after:?}"
        ));
    }
}

/// Every offset from the first batch on is in exactly one batch, up to the log end offset.
fn check_contiguous(walk: &Walk) -> Result<(), String> {
    if let Some(at) = walk.empty_read_at {
        return Err(format!(
            "read at {at} is empty below the log end offset {}",
            walk.log_end
        ));
    }
    if let Some(first) = walk.batches.first()
        && first.base() > walk.log_start
    {
        return Err(format!(
            "log starts at {} but its first batch at {}",
            walk.log_start,
            first.base()
        ));
    }
    for pair in walk.batches.windows(2) {
        if pair[1].base() != pair[0].last() + 1 {
            return Err(format!(
                "hole between {} and {}",
                pair[0].last(),
                pair[1].base()
            ));
        }
    }
    let end = walk.batches.last().map_or(walk.log_start, |b| b.last() + 1);
    if end != walk.log_end {
        return Err(format!("batches end at {end}, the log at {}", walk.log_end));
    }
    Ok(())
}

/// For logs recovery is not expected to fully repair: every operation runs, none may panic.
fn exercise(mut log: Log, dir: &std::path::Path, plan: &Plan) {
    let batches = logcheck::walk(&log, plan.read_max_bytes)
        .map(|w| w.batches)
        .unwrap_or_default();
    for ts in logcheck::probe_timestamps(&batches) {
        let _ = log.offset_for_timestamp(ts);
    }
    let _ = log.max_timestamp();
    if plan.truncate {
        let at = fraction(
            log.log_start_offset(),
            log.log_end_offset(),
            plan.truncate_at,
        );
        let _ = log.truncate_to(at);
    }
    let extra = build_batch(0, &[(None, Some(b"x"), NOW_MS)]);
    if let Ok(headers) = fjord_log::validate_batches(&extra) {
        let _ = log.append(&extra, &headers, EPOCH, NOW_MS);
    }
    let _ = log.read(log.log_start_offset(), i64::MAX, plan.read_max_bytes);
    if plan.reclose {
        let _ = log.close();
    } else {
        drop(log);
    }
    if let Ok(log) = Log::open(dir, plan.config(), NOW_MS) {
        let _ = logcheck::walk(&log, plan.read_max_bytes);
    }
}
