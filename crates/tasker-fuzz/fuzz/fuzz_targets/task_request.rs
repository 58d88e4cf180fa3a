//! `cargo +nightly fuzz run task_request`: see tasker_fuzz::task_request.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tasker_fuzz::task_request(data));
