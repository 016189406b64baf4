#![no_main]
//! `attachment_stream`: see `gochat_e2ee_fuzzing::attachment_stream` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::attachment_stream(data);
});
