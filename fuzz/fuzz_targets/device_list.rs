#![no_main]
//! `device_list`: see `gochat_e2ee_fuzzing::device_list` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::device_list(data);
});
