//! Fuzz target `request`: see `fjord_fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fjord_fuzz::request::run(data));
