#![no_main]
//! `state_record`: see `gochat_e2ee_fuzzing::state_record` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::state_record(data);
});
