#![no_main]
//! `bundle`: see `gochat_e2ee_fuzzing::bundle` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::bundle(data);
});
