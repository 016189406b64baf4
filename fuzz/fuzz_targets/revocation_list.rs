#![no_main]
//! `revocation_list`: see `gochat_e2ee_fuzzing::revocation_list` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::revocation_list(data);
});
