//! `cargo +nightly fuzz run template_source`: see tasker_fuzz::template_source.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tasker_fuzz::template_source(data));
