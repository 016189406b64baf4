#![no_main]
//! `attachment_pointer`: see `gochat_e2ee_fuzzing::attachment_pointer` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::attachment_pointer(data);
});
