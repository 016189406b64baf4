#![no_main]
//! `provisioning_message`: see `gochat_e2ee_fuzzing::provisioning_message` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::provisioning_message(data);
});
