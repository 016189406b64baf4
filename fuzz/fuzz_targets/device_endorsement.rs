#![no_main]
//! `device_endorsement`: see `gochat_e2ee_fuzzing::device_endorsement` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::device_endorsement(data);
});
