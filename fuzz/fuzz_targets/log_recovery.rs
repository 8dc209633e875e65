//! Fuzz target `log_recovery`: see `fjord_fuzz::log_recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fjord_fuzz::log_recovery::run(data));
