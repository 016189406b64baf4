#![no_main]
//! `announcement`: see `gochat_e2ee_fuzzing::announcement` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::announcement(data);
});
