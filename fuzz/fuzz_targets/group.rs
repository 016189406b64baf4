#![no_main]
//! `group`: see `gochat_e2ee_fuzzing::group` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::group(data);
});
