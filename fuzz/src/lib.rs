//! Fuzz harnesses for Fjord's untrusted inputs, run by `cargo fuzz` (see `scripts/fuzz.sh`).
//!
//! Each target is a thin `fuzz_targets/<name>.rs` calling `<module>::run(data)` here, so the
//! same code also runs on stable without cargo-fuzz: the unit tests replay every seed and
//! every saved crash through it.
//!
//! | target | module | what it feeds |
//! | --- | --- | --- |
//! | `frame_stream` | [`frame`] | a connection's byte stream, in reads of fuzzer-chosen sizes, to the broker's frame reader (`read_frame`) |
//! | `request` | [`request`] | one request frame to `parse_request` (bounds walker, then decoder): raw, or api key/version picked from [`fjord_broker::api::SUPPORTED`] so every decoder is reached |
//! | `record_batch` | [`record_batch`] | produce payloads to batch validation, record parsing, decompression, stamping, append and read |
//! | `log_recovery` | [`log_recovery`] | a built log whose segment, index and checkpoint files are corrupted, then reopened |
//!
//! A target panics (and libFuzzer reports a crash) when the code under test panics or an
//! invariant fails; each module's documentation lists its input layout and invariants.
//!
//! # Layout
//!
//! * `seeds/<target>/` — small starting inputs, written by [`seeds::generate`] (rewrite them
//!   with `FJORD_FUZZ_BLESS=1 cargo test --manifest-path fuzz/Cargo.toml --lib`).
//! * `regressions/<target>/` — minimized crash inputs; replayed by the unit tests and by
//!   every fuzz run, so a crash that comes back fails at once.
//! * `corpus/`, `artifacts/` — cargo-fuzz working state, not committed.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod corrupt;
pub mod frame;
pub mod input;
pub mod log_recovery;
pub mod logcheck;
pub mod record_batch;
pub mod request;
pub mod seeds;

/// Whether `FJORD_FUZZ_TRACE` is set: harnesses then print what they do (to diagnose a
/// crash input with `cargo fuzz run <target> <file>`).
pub fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FJORD_FUZZ_TRACE").is_some())
}

/// The fuzz targets, by name.
pub const TARGETS: &[&str] = &["frame_stream", "request", "record_batch", "log_recovery"];

/// Runs the harness of `target` on one input.
///
/// # Panics
///
/// When the input finds a bug (that is the point), or `target` is not in [`TARGETS`].
pub fn run(target: &str, data: &[u8]) {
    match target {
        "frame_stream" => frame::run(data),
        "request" => request::run(data),
        "record_batch" => record_batch::run(data),
        "log_recovery" => log_recovery::run(data),
        other => panic!("unknown fuzz target {other}"),
    }
}
