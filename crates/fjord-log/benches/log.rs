//! Micro-benchmarks of one partition log: append, sequential read (into memory, and as the
//! file ranges a fetch sends), offset lookup (sparse index + batch walk) and produce-payload
//! validation (CRC). Run with
//! `cargo bench -p fjord-log --bench log`; docs/performance.md lists recent figures.
//!
//! Appends write into the page cache of a temporary directory (no fsync, as the broker's
//! default flush policy), and each sample starts from a fresh log so that the written data
//! stays small.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fjord_log::testing::build_batch;
use fjord_log::{BatchHeader, Log, LogConfig, validate_batches};

/// A produce payload: one uncompressed batch of `count` records of `size` bytes.
fn payload(count: usize, size: usize) -> (Vec<u8>, Vec<BatchHeader>) {
    let value = vec![b'x'; size];
    let records: Vec<_> = (0..count)
        .map(|i| (None, Some(&value[..]), 1_700_000_000_000 + i as i64))
        .collect();
    let batch = build_batch(0, &records);
    let headers = validate_batches(&batch).unwrap();
    (batch, headers)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 << 20,
        ..LogConfig::default()
    }
}

/// A log holding `batches` copies of a batch of `count` x `size` records.
fn filled_log(dir: &std::path::Path, batches: usize, count: usize, size: usize) -> Log {
    let mut log = Log::open(dir, config(), 0).unwrap();
    let (batch, headers) = payload(count, size);
    for _ in 0..batches {
        log.append(&batch, &headers, 0, 0).unwrap();
    }
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
    log
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    for (count, size) in [(16, 1024), (100, 100)] {
        let (batch, headers) = payload(count, size);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(format!("{count}x{size}B"), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let mut log = Log::open(dir.path(), config(), 0).unwrap();
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(log.append(&batch, &headers, 0, 0).unwrap());
                }
                started.elapsed()
            })
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB in 16 KiB batches.
    let log = filled_log(dir.path(), 4096, 16, 1024);
    let hw = log.high_watermark();
    let mut g = c.benchmark_group("read");
    for max_bytes in [64 << 10, 1 << 20] {
        g.throughput(Throughput::Bytes(max_bytes as u64));
        let mut offset = 0;
        g.bench_function(format!("sequential_{}KiB", max_bytes >> 10), |b| {
            b.iter(|| {
                let r = log.read(offset, hw, max_bytes).unwrap();
                offset += (r.records.len() / 1050 * 16) as i64; // ~records read
                if offset >= hw - 1024 {
                    offset = 0;
                }
                black_box(r)
            })
        });
    }
    // What a fetch does: where the whole batches of a 1 MiB read lie, without reading them.
    g.throughput(Throughput::Bytes(1 << 20));
    let mut offset = 0;
    g.bench_function("slices_1MiB", |b| {
        b.iter(|| {
            let slices = log.read_slices(offset, hw, 1 << 20).unwrap();
            let len: usize = slices.iter().map(|s| s.len()).sum();
            offset += (len / 1050 * 16) as i64;
            if offset >= hw - 1024 {
                offset = 0;
            }
            black_box(slices)
        })
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    // 200,000 one-record batches of 100 B: about 5,000 index entries per segment.
    let log = filled_log(dir.path(), 200_000, 1, 100);
    let hw = log.high_watermark();
    let mut g = c.benchmark_group("lookup");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    g.bench_function("random_offset_one_batch", |b| {
        b.iter_batched(
            || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % hw as u64) as i64
            },
            |offset| black_box(log.read(offset, hw, 1).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn validate(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate_batches");
    for (count, size) in [(1000, 1024), (10_000, 100)] {
        let (batch, _) = payload(count, size);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(format!("{count}x{size}B"), |b| {
            b.iter(|| black_box(validate_batches(black_box(&batch)).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, append, read, lookup, validate);
criterion_main!(benches);
