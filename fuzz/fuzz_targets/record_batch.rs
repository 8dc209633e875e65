//! Fuzz target `record_batch`: see `fjord_fuzz::record_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fjord_fuzz::record_batch::run(data));
