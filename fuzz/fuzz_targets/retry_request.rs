#![no_main]
//! `retry_request`: see `gochat_e2ee_fuzzing::retry_request` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::retry_request(data);
});
