#![no_main]
//! `certificate_chain`: see `gochat_e2ee_fuzzing::certificate_chain` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::certificate_chain(data);
});
