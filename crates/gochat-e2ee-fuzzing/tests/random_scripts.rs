//! Random conversation scripts, with restarts frequent, through the same checks as the
//! fuzz target: a cheap stand-in for a fuzzing run in the ordinary test suite.

use rand_core::{Rng, SeedableRng};

#[test]
fn random_scripts_with_restarts_hold_every_invariant() {
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(0x5C21);
    let mut accepted = 0;
    for _ in 0..60 {
        let len = 40 + (r.next_u32() % 400) as usize;
        let mut script = vec![0u8; len];
        r.fill_bytes(&mut script);
        // Make opcodes 8 (restart) and 2 (deliver) common.
        for (i, b) in script.iter_mut().enumerate() {
            if i % 7 == 0 {
                *b = 8;
            } else if i % 3 == 0 {
                *b = 2;
            }
        }
        if gochat_e2ee_fuzzing::conversation(&script) {
            accepted += 1;
        }
    }
    assert!(accepted > 20, "too few scripts delivered anything: {accepted}");
}

/// Random decrypt scripts (mutated, moved, raw and trailing chunks, early finishes) and
/// random encrypt chunkings through the `attachment_stream` checks.
#[test]
fn random_attachment_streams_hold_every_invariant() {
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(0xA77A);
    let mut finished = 0;
    for i in 0..300u32 {
        let len = 1 + (r.next_u32() % 120) as usize;
        let mut input = vec![0u8; len];
        r.fill_bytes(&mut input);
        // Keep most chunk lengths small enough that a script spans several segments.
        for (j, b) in input.iter_mut().enumerate().skip(1) {
            if j % 3 == 2 {
                *b &= 0x07;
            }
        }
        input[0] = (i % 16) as u8;
        if gochat_e2ee_fuzzing::attachment_stream(&input) {
            finished += 1;
        }
    }
    assert!(finished > 50, "too few scripts finished a stream: {finished}");
}
