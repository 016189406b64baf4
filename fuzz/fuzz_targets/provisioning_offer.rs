#![no_main]
//! `provisioning_offer`: see `gochat_e2ee_fuzzing::provisioning_offer` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::provisioning_offer(data);
});
