#![no_main]
//! `conversation`: see `gochat_e2ee_fuzzing::conversation` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::conversation(data);
});
