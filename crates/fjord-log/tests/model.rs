//! Model-based property test: random operation sequences against a `Vec` of batches.
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use fjord_log::testing::{as_stored, build_batch};
use fjord_log::{Log, LogConfig, LogError, validate_batches};
use proptest::prelude::*;

/// A record: (value length, timestamp).
type Rec = (usize, i64);

#[derive(Debug, Clone)]
enum Op {
    /// Append these batches in one call.
    Append(Vec<Vec<Rec>>),
    /// Read at a position chosen in `[start - 1, end + 1]`, with `max_bytes` and a `max_offset` slack.
    Read {
        at: u16,
        max_bytes: u16,
        below_end: u8,
    },
    /// Truncate at a position chosen in `[start, end]`.
    Truncate(u16),
    /// DeleteRecords at a position chosen in `[start, end]`.
    DeleteRecords(u16),
    /// Look up a timestamp.
    Timestamp(i64),
    Flush,
    /// Close (clean) or drop (crash), then reopen; garbage is appended to the last segment on a crash.
    Reopen {
        clean: bool,
        garbage: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let rec = (0usize..60, 0i64..1000);
    let batch = prop::collection::vec(rec, 1..5);
    prop_oneof![
        4 => prop::collection::vec(batch, 1..4).prop_map(Op::Append),
        4 => (any::<u16>(), any::<u16>(), 0u8..4).prop_map(|(at, max_bytes, below_end)| Op::Read { at, max_bytes: max_bytes % 600, below_end }),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => any::<u16>().prop_map(Op::DeleteRecords),
        2 => (0i64..1100).prop_map(Op::Timestamp),
        1 => Just(Op::Flush),
        1 => (any::<bool>(), prop::collection::vec(any::<u8>(), 0..80)).prop_map(|(clean, garbage)| Op::Reopen { clean, garbage }),
    ]
}

/// The model: every batch as stored (never dropped by segment deletion, which only removes
/// batches below the log start), with its records' timestamps.
#[derive(Default)]
struct Model {
    batches: Vec<(i64, i64, Vec<u8>, Vec<i64>)>,
    start: i64,
    end: i64,
}

impl Model {
    fn pick(&self, sel: u16, lo: i64, hi: i64) -> i64 {
        lo + i64::from(sel) % (hi - lo + 1)
    }

    fn read(&self, offset: i64, max_offset: i64, max_bytes: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, last, bytes, _) in self.batches.iter().filter(|b| b.1 >= offset) {
            if *last >= max_offset || (!out.is_empty() && out.len() + bytes.len() > max_bytes) {
                break;
            }
            out.extend(bytes);
        }
        out
    }

    fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        self.records().find(|&(o, t)| o >= self.start && t >= ts)
    }

    fn max_timestamp(&self) -> Option<(i64, i64)> {
        let max = self.records().map(|r| r.1).max()?;
        self.records().find(|r| r.1 == max)
    }

    fn records(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.batches.iter().flat_map(|(base, _, _, ts)| {
            ts.iter()
                .enumerate()
                .map(move |(i, t)| (base + i as i64, *t))
        })
    }
}

fn append_garbage(dir: &Path, garbage: &[u8]) {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let mut file = OpenOptions::new()
        .append(true)
        .open(logs.last().unwrap())
        .unwrap();
    file.write_all(garbage).unwrap();
}

fn run(config: LogConfig, ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let mut log = Some(Log::open(&dir, config.clone(), 0).unwrap());
    let mut model = Model::default();
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append(batches) => {
                let mut buf = Vec::new();
                let mut stamps = Vec::new();
                for recs in &batches {
                    let values: Vec<Vec<u8>> = recs.iter().map(|(n, _)| vec![b'x'; *n]).collect();
                    let records: Vec<_> = recs
                        .iter()
                        .zip(&values)
                        .map(|((_, ts), v)| (None, Some(&v[..]), *ts))
                        .collect();
                    buf.extend(build_batch(0, &records));
                    stamps.push(recs.iter().map(|r| r.1).collect::<Vec<_>>());
                }
                let headers = validate_batches(&buf).unwrap();
                let info = l.append(&buf, &headers, 1, 0).unwrap();
                l.set_high_watermark(l.log_end_offset());
                assert_eq!(info.first_offset, model.end);
                let mut pos = 0;
                for (h, ts) in headers.iter().zip(stamps) {
                    let base = model.end;
                    let last = base + i64::from(h.last_offset_delta);
                    let stored = as_stored(&buf[pos..pos + h.total_len()], base, 1);
                    model.batches.push((base, last, stored, ts));
                    pos += h.total_len();
                    model.end = last + 1;
                }
                assert_eq!(info.last_offset, model.end - 1);
            }
            Op::Read {
                at,
                max_bytes,
                below_end,
            } => {
                let offset = model.pick(at, model.start - 1, model.end + 1);
                let max_offset = model.end - i64::from(below_end);
                let got = l.read(offset, max_offset, usize::from(max_bytes));
                if offset < model.start || offset > model.end {
                    assert!(
                        matches!(got, Err(LogError::OffsetOutOfRange { .. })),
                        "read {offset}: {got:?}"
                    );
                } else {
                    let got = got.unwrap();
                    assert_eq!(
                        got.records[..],
                        model.read(offset, max_offset, usize::from(max_bytes))[..],
                        "read at {offset}"
                    );
                    assert_eq!(
                        (got.log_start_offset, got.log_end_offset),
                        (model.start, model.end)
                    );
                }
            }
            Op::Truncate(sel) => {
                let offset = model.pick(sel, model.start, model.end);
                let new_end = l.truncate_to(offset).unwrap();
                let expected = model
                    .batches
                    .iter()
                    .find(|b| b.1 >= offset)
                    .map_or(model.end, |b| b.0);
                assert_eq!(new_end, expected);
                model.batches.retain(|b| b.0 < new_end);
                model.end = new_end;
                model.start = model.start.min(new_end);
            }
            Op::DeleteRecords(sel) => {
                let offset = model.pick(sel, model.start, model.end);
                assert_eq!(l.delete_records_before(offset).unwrap(), offset);
                model.start = offset;
            }
            Op::Timestamp(ts) => {
                assert_eq!(
                    l.offset_for_timestamp(ts).unwrap(),
                    model.offset_for_timestamp(ts),
                    "ts {ts}"
                );
            }
            Op::Flush => l.flush().unwrap(),
            Op::Reopen { clean, garbage } => {
                let old = log.take().unwrap();
                if clean {
                    old.close().unwrap();
                } else {
                    drop(old);
                    append_garbage(&dir, &garbage);
                }
                log = Some(Log::open(&dir, config.clone(), 0).unwrap());
            }
        }
        let l = log.as_ref().unwrap();
        assert_eq!(
            (l.log_start_offset(), l.log_end_offset(), l.high_watermark()),
            (model.start, model.end, model.end)
        );
        if model.start == 0 {
            assert_eq!(l.max_timestamp().unwrap(), model.max_timestamp());
        }
    }
    let l = log.take().unwrap();
    let all = l.read(model.start, i64::MAX, usize::MAX).unwrap().records;
    assert_eq!(all[..], model.read(model.start, i64::MAX, usize::MAX)[..]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        segment_bytes in 80u64..1500,
        index_interval_bytes in 0u32..400,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let config = LogConfig {
            segment_bytes,
            index_interval_bytes,
            roll_ms: None,
            retention_ms: None,
            ..LogConfig::default()
        };
        run(config, ops);
    }
}
