//! The seed corpora: a handful of small, valid-looking inputs per target, generated here so
//! that `seeds/` holds no unexplained binary files.
//!
//! The unit tests check that `seeds/` matches [`generate`] and replay every seed and saved
//! crash through its target. `FJORD_FUZZ_BLESS=1` makes them rewrite `seeds/` instead.

use bytes::BytesMut;
use fjord_broker::api::SUPPORTED;
use fjord_log::testing::build_gzip_batch;
use fjord_log::{build_batch, set_log_append_time};
use kafka_protocol::messages::ApiKey;

use crate::corrupt::{Class, Op, target_byte};
use crate::request::header_bytes;

/// One seed: target, file name, contents.
pub type Seed = (&'static str, &'static str, Vec<u8>);

/// Every seed of every target.
pub fn generate() -> Vec<Seed> {
    let mut out = Vec::new();
    out.extend(request_seeds());
    out.extend(frame_seeds());
    out.extend(record_batch_seeds());
    out.extend(log_recovery_seeds());
    out
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A compact (flexible-version) string or bytes: length + 1 as an unsigned varint.
fn compact(out: &mut Vec<u8>, bytes: &[u8]) {
    uvarint(out, bytes.len() as u64 + 1);
    out.extend(bytes);
}

fn api_versions_v3_body() -> Vec<u8> {
    let mut b = Vec::new();
    compact(&mut b, b"fjord-fuzz");
    compact(&mut b, b"1.0");
    b.push(0); // tagged fields
    b
}

fn metadata_v12_body() -> Vec<u8> {
    // topics: null (all), allow_auto_topic_creation, include_topic_authorized_operations, tags.
    vec![0, 1, 0, 0]
}

fn produce_v9_body() -> Vec<u8> {
    let batch = build_batch(0, &[(Some(b"k"), Some(b"v"), 1_700_000_000_000)]);
    let mut b = vec![0]; // transactional_id: null
    b.extend((-1i16).to_be_bytes()); // acks
    b.extend(30_000i32.to_be_bytes()); // timeout_ms
    uvarint(&mut b, 2); // one topic
    compact(&mut b, b"fuzz-topic");
    uvarint(&mut b, 2); // one partition
    b.extend(0i32.to_be_bytes());
    compact(&mut b, &batch);
    b.extend([0, 0, 0]); // tagged fields: partition, topic, request
    b
}

/// A Fetch body of two partitions of one topic, as librdkafka sends it (no session): v11 with
/// INT32/INT16 lengths, or v12 with compact ones and tagged-field sections.
fn fetch_body(version: i16) -> Vec<u8> {
    let flexible = version >= 12;
    let mut b = Vec::new();
    b.extend((-1i32).to_be_bytes()); // replica_id
    b.extend(500i32.to_be_bytes()); // max_wait_ms
    b.extend(1i32.to_be_bytes()); // min_bytes
    b.extend(52_428_800i32.to_be_bytes()); // max_bytes
    b.push(0); // isolation_level
    b.extend(0i32.to_be_bytes()); // session_id
    b.extend((-1i32).to_be_bytes()); // session_epoch
    let count = |b: &mut Vec<u8>, n: usize| {
        if flexible {
            uvarint(b, n as u64 + 1);
        } else {
            b.extend((n as i32).to_be_bytes());
        }
    };
    count(&mut b, 1); // topics
    if flexible {
        compact(&mut b, b"fuzz-topic");
    } else {
        b.extend(10i16.to_be_bytes());
        b.extend(b"fuzz-topic");
    }
    count(&mut b, 2); // partitions
    for partition in 0..2i32 {
        b.extend(partition.to_be_bytes());
        b.extend((-1i32).to_be_bytes()); // current_leader_epoch
        b.extend(1_000i64.to_be_bytes()); // fetch_offset
        if flexible {
            b.extend((-1i32).to_be_bytes()); // last_fetched_epoch
        }
        b.extend((-1i64).to_be_bytes()); // log_start_offset
        b.extend((1i32 << 20).to_be_bytes()); // partition_max_bytes
        if flexible {
            b.push(0);
        }
    }
    if flexible {
        b.push(0); // topic's tagged fields
    }
    count(&mut b, 0); // forgotten_topics_data
    if flexible {
        compact(&mut b, b""); // rack_id
        b.push(0);
    } else {
        b.extend(0i16.to_be_bytes());
    }
    b
}

/// A whole frame body: header written by the harness's own encoder, then `body`.
fn frame_of(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    header_bytes(key, version, &mut out);
    let mut frame = out.to_vec();
    frame.extend(body);
    frame
}

/// `[index, version selector]` for the `request` target's selected mode.
fn select(key: ApiKey, version: i16) -> [u8; 2] {
    let index = SUPPORTED
        .iter()
        .position(|(k, _, _)| *k == key)
        .unwrap_or(0);
    let min = SUPPORTED[index].1;
    [index as u8, (version - min + 1) as u8]
}

fn request_seeds() -> Vec<Seed> {
    let mut raw = vec![0];
    raw.extend(frame_of(ApiKey::ApiVersions, 3, &api_versions_v3_body()));
    let mut selected_metadata = vec![3];
    selected_metadata.extend(select(ApiKey::Metadata, 12));
    selected_metadata.extend(metadata_v12_body());
    let mut selected_produce = vec![3];
    selected_produce.extend(select(ApiKey::Produce, 9));
    selected_produce.extend(produce_v9_body());
    // Selected key and version, header bytes from the input (correlation id onwards).
    let mut own_header = vec![1];
    own_header.extend(select(ApiKey::Metadata, 12));
    own_header.extend(&frame_of(ApiKey::Metadata, 12, &metadata_v12_body())[4..]);
    let mut old_api_versions = vec![0];
    old_api_versions.extend(frame_of(ApiKey::ApiVersions, 0, &[]));
    let selected_fetch = |version: i16| {
        let mut seed = vec![3];
        seed.extend(select(ApiKey::Fetch, version));
        seed.extend(fetch_body(version));
        seed
    };
    vec![
        ("request", "fetch_v11_selected", selected_fetch(11)),
        ("request", "fetch_v12_selected", selected_fetch(12)),
        ("request", "api_versions_v3_raw", raw),
        ("request", "api_versions_v0_raw", old_api_versions),
        ("request", "metadata_v12_selected", selected_metadata),
        ("request", "metadata_v12_own_header", own_header),
        ("request", "produce_v9_selected", selected_produce),
    ]
}

fn size_prefixed(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend((f.len() as i32).to_be_bytes());
        out.extend(f);
    }
    out
}

fn frame_seeds() -> Vec<Seed> {
    let api_versions = frame_of(ApiKey::ApiVersions, 3, &api_versions_v3_body());
    let metadata = frame_of(ApiKey::Metadata, 12, &metadata_v12_body());
    let produce = frame_of(ApiKey::Produce, 9, &produce_v9_body());
    let mut two = vec![200, 3];
    two.extend(size_prefixed(&[api_versions.clone(), metadata]));
    let mut stalled = vec![200, 0x40 | 7];
    stalled.extend(size_prefixed(&[produce]));
    let mut over_limit = vec![4, 0x80];
    over_limit.extend(size_prefixed(&[api_versions.clone(), api_versions.clone()]));
    let mut quiet = vec![200, 0x20 | 3];
    quiet.extend(size_prefixed(std::slice::from_ref(&api_versions)));
    // 50 MiB announced, a few dozen bytes sent one at a time: memory must follow the bytes.
    let mut slow_large = vec![200, 0];
    slow_large.extend((50i32 << 20).to_be_bytes());
    slow_large.extend(&api_versions);
    let mut torn = vec![200, 0];
    torn.extend(size_prefixed(&[api_versions]));
    torn.truncate(torn.len() - 5);
    vec![
        ("frame_stream", "two_requests", two),
        ("frame_stream", "quiet_then_idle", quiet),
        ("frame_stream", "slow_large_frame", slow_large),
        ("frame_stream", "produce_stalled_reads", stalled),
        ("frame_stream", "over_limit", over_limit),
        ("frame_stream", "torn_frame", torn),
    ]
}

fn record_batch_seeds() -> Vec<Seed> {
    let records: [fjord_log::testing::TestRecord<'_>; 3] = [
        (Some(b"k1"), Some(b"v1"), 1_000),
        (None, Some(b"v2"), 1_005),
        (Some(b"k3"), None, 1_003),
    ];
    let plain = build_batch(0, &records);
    let mut stamped = plain.clone();
    let _ = set_log_append_time(&mut stamped, 2_000);
    let mut two = plain.clone();
    two.extend(build_gzip_batch(0, &records[..1]));
    let mut bad_crc = plain.clone();
    bad_crc[17..21].fill(0);
    let with_mode = |mode: u8, b: &[u8]| {
        let mut v = vec![mode];
        v.extend(b);
        v
    };
    vec![
        ("record_batch", "plain", with_mode(0, &plain)),
        (
            "record_batch",
            "gzip",
            with_mode(0, &build_gzip_batch(0, &records)),
        ),
        ("record_batch", "log_append_time", with_mode(0, &stamped)),
        ("record_batch", "two_batches", with_mode(0, &two)),
        (
            "record_batch",
            "crc_fixed_by_harness",
            with_mode(3, &bad_crc),
        ),
    ]
}

/// A `log_recovery` plan (see [`crate::log_recovery::Plan`]): segments of 224 bytes, an
/// index entry every 100 bytes, reads of 161 bytes, `count` batches cycling through kinds,
/// record counts and value sizes with mostly rising timestamps, DeleteRecords half-way and
/// truncation at 200/256 when `flags` ask for them.
fn plan(flags: u8, count: usize) -> Vec<u8> {
    let mut out = vec![flags, 20, 100, 10, (count - 1) as u8];
    for i in 0..count {
        out.extend([
            (i as u8).wrapping_mul(37),
            if i % 5 == 4 { 0xfe } else { 7 },
        ]);
    }
    out.extend([128, 200]);
    out
}

fn corruption(class: Class, segment: u8, op: &Op) -> Vec<u8> {
    let mut out = vec![target_byte(class, segment)];
    op.encode(&mut out);
    out
}

fn log_recovery_seeds() -> Vec<Seed> {
    let crash = plan(0, 12);
    // Without a recovery point every segment is re-read, so every corruption is checked.
    let lost_point = plan(32, 12);
    let clean = plan(1 | 8, 12);
    let deleted = plan(4 | 16 | 32, 12);
    // Roll flush jobs after each append: the recovery point follows the rolls.
    let roll_flushed = plan(64 | 16, 12);
    let with = |base: &[u8], corruptions: &[Vec<u8>]| {
        let mut v = base.to_vec();
        for c in corruptions {
            v.extend(c);
        }
        v
    };
    let last = 0; // the active segment
    vec![
        ("log_recovery", "crash_no_corruption", crash.clone()),
        (
            "log_recovery",
            "crash_bit_flip",
            with(
                &lost_point,
                &[corruption(Class::Log, 3, &Op::FlipBit { pos: 90, bit: 3 })],
            ),
        ),
        (
            "log_recovery",
            "crash_torn_tail",
            with(
                &crash,
                &[
                    corruption(Class::Log, last, &Op::Truncate { to: 150 }),
                    corruption(
                        Class::Log,
                        last,
                        &Op::Append {
                            data: vec![0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0],
                        },
                    ),
                ],
            ),
        ),
        (
            "log_recovery",
            "roll_flushed_torn_tail",
            with(
                &roll_flushed,
                &[corruption(Class::Log, last, &Op::Truncate { to: 100 })],
            ),
        ),
        (
            "log_recovery",
            "crash_lost_middle_segment",
            with(&lost_point, &[corruption(Class::Log, 2, &Op::Delete)]),
        ),
        (
            "log_recovery",
            "clean_bad_index",
            with(
                &clean,
                &[corruption(
                    Class::Index,
                    1,
                    &Op::Overwrite {
                        pos: 0,
                        data: vec![0, 0, 0, 2, 0, 0, 0, 7],
                    },
                )],
            ),
        ),
        (
            "log_recovery",
            "delete_records_copy",
            with(
                &deleted,
                &[
                    corruption(Class::TimeIndex, 0, &Op::Truncate { to: 5 }),
                    corruption(
                        Class::Log,
                        1,
                        &Op::Copy {
                            src: 0,
                            dst: 200,
                            n: 80,
                        },
                    ),
                ],
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn fuzz_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn seed_files_match_the_generator() {
        let bless = std::env::var_os("FJORD_FUZZ_BLESS").is_some();
        for (target, name, bytes) in generate() {
            let dir = fuzz_dir().join("seeds").join(target);
            let path = dir.join(name);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            } else {
                let on_disk = std::fs::read(&path).unwrap_or_default();
                assert!(
                    on_disk == bytes,
                    "{} is stale: rerun with FJORD_FUZZ_BLESS=1",
                    path.display()
                );
            }
        }
        let seeds = generate();
        for target in crate::TARGETS {
            let expected = seeds.iter().filter(|s| s.0 == *target).count();
            let dir = fuzz_dir().join("seeds").join(target);
            assert_eq!(
                files(&dir).len(),
                expected,
                "stray files in {}",
                dir.display()
            );
        }
    }

    #[test]
    fn request_and_batch_seeds_are_valid_inputs() {
        for (target, name, bytes) in generate() {
            match target {
                "request" => {
                    let frame = crate::request::frame(&bytes);
                    let parsed = fjord_broker::server::connection::parse_request(frame.into());
                    assert!(parsed.is_ok(), "{name}: {parsed:?}");
                }
                "record_batch" => {
                    let payload = crate::record_batch::payload(&bytes);
                    let valid = fjord_log::validate_batches(&payload);
                    assert!(valid.is_ok(), "{name}: {valid:?}");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn seeds_and_saved_crashes_pass() {
        for target in crate::TARGETS {
            for kind in ["seeds", "regressions"] {
                for path in files(&fuzz_dir().join(kind).join(target)) {
                    let data = std::fs::read(&path).unwrap();
                    let result = std::panic::catch_unwind(|| crate::run(target, &data));
                    assert!(result.is_ok(), "{} fails", path.display());
                }
            }
        }
    }
}
