#![no_main]
//! `group_message`: see `gochat_e2ee_fuzzing::group_message` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::group_message(data);
});
