#![no_main]
//! `commit_welcome`: see `gochat_e2ee_fuzzing::commit_welcome` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::commit_welcome(data);
});
