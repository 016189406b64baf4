#![no_main]
//! `store_export`: see `gochat_e2ee_fuzzing::store_export` and docs/fuzzing.md.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gochat_e2ee_fuzzing::store_export(data);
});
