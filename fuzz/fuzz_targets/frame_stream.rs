//! Fuzz target `frame_stream`: see `fjord_fuzz::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fjord_fuzz::frame::run(data));
