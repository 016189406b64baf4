#![no_main]
//! `snapshot`: see `gochat_e2ee_fuzzing::snapshot` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::snapshot(data);
});
