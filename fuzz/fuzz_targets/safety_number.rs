#![no_main]
//! `safety_number`: see `gochat_e2ee_fuzzing::safety_number` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::safety_number(data);
});
