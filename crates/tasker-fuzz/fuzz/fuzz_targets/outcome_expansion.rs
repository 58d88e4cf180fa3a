//! `cargo +nightly fuzz run outcome_expansion`: see tasker_fuzz::outcome_expansion.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tasker_fuzz::outcome_expansion(data));
