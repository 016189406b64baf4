#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Secrets never reach `Debug` output, and small public queries answer as documented.

mod common;

use common::*;
use gochat_e2ee::handshake::PreKeyHeader;
use gochat_e2ee::session::SessionRecord;
use gochat_e2ee::SnapshotKey;

/// Asserts `text` contains neither the hex (either case) nor the decimal-array form of
/// `secret`.
fn assert_hides(text: &str, secret: &[u8]) {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.to_lowercase().contains(&hex), "hex of a secret in {text}");
    let decimal = format!("{secret:?}");
    let inner = &decimal[1..decimal.len() - 1];
    assert!(!text.contains(inner), "decimal bytes of a secret in {text}");
    // Debug of a byte array prints `[a, b, ...]`; a run of four bytes would already leak.
    let first4 = format!("{:?}", &secret[..4]);
    assert!(!text.contains(&first4[1..first4.len() - 1]), "secret bytes in {text}");
}

#[test]
fn has_current_is_false_without_a_session_and_true_after_initiate() {
    assert!(!SessionRecord::default().has_current());
    let mut rng = rng(71);
    let mut alice = device("alice", 1, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    assert!(alice.session_record("bob").is_none());
    let b = bundle(&mut bob);
    assert_eq!(alice.initiate("bob", &b, &mut rng).unwrap(), gochat_e2ee::IdentityEvent::New);
    assert!(alice.session_record("bob").unwrap().has_current());
}

#[test]
fn snapshot_key_debug_hides_the_key() {
    let bytes: [u8; 32] = core::array::from_fn(|i| 0xA0 ^ i as u8);
    let text = format!("{:?}", SnapshotKey::new(bytes));
    assert_hides(&text, &bytes);
    assert!(text.contains("redacted"), "{text}");
}

/// Runs when the `trace` feature is on (it is in workspace builds: the CLI enables it).
#[cfg(feature = "trace")]
#[test]
fn key_schedule_trace_debug_hides_every_secret() {
    let mut rng = rng(72);
    let mut alice = device("alice", 1, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    let b = bundle(&mut bob);
    let trace = alice.initiate_traced("bob", &b, &mut rng).unwrap();
    let text = format!("{trace:?}");
    assert_hides(&text, &trace.secret);
    assert_hides(&text, &trace.kem_secret);
    assert_hides(&text, &trace.ikm);
    for dh in &trace.dh {
        assert_hides(&text, dh);
    }
}

#[test]
fn prekey_header_debug_hides_base_key_and_kem_ciphertext() {
    let mut rng = rng(73);
    let alice = device("alice", 1, &mut rng);
    let base_key: [u8; 32] = core::array::from_fn(|i| 0x51 ^ (i as u8).wrapping_mul(7));
    let kem: [u8; gochat_e2ee::keys::KEM_CIPHERTEXT_BYTES] = core::array::from_fn(|i| (i * 13 + 5) as u8);
    let header = PreKeyHeader {
        initiator: *alice.identity(),
        signed_prekey_id: 1,
        one_time_prekey_id: Some(2),
        pq_prekey_id: 3,
        base_key,
        kem_ciphertext: Box::new(kem),
    };
    let text = format!("{header:?}");
    assert_hides(&text, &base_key);
    assert_hides(&text, &kem[..32]);
}
