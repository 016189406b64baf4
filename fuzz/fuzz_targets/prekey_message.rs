#![no_main]
//! `prekey_message`: see `gochat_e2ee_fuzzing::prekey_message` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::prekey_message(data);
});
