#![no_main]
//! `distribution`: see `gochat_e2ee_fuzzing::distribution` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::distribution(data);
});
