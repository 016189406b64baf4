//! Fuzz target bodies for GoChat E2EE.
//!
//! Each public function takes the raw fuzz input and panics when it finds a bug (that is
//! how libFuzzer learns of it). The cargo-fuzz targets in `fuzz/fuzz_targets/` are
//! one-line wrappers around these functions, and `tests/replay.rs` runs every file of
//! `fuzz/corpus/<target>/` through them in the ordinary `cargo test --workspace`.
//!
//! Every function returns `true` when the input was *accepted* (decoded, decrypted,
//! imported...), so the replay test can check that the `valid-*` seeds still reach the
//! deep code paths after a protocol change.
//!
//! Everything is deterministic: fixtures are built once from seeded ChaCha20 generators
//! and every call that needs randomness gets a fresh generator with a fixed seed.
//! See `docs/fuzzing.md`.

// A fuzz harness reports findings by panicking: that is the point of these functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod attachments;
pub mod certificates;
pub mod channels;
pub mod conversation;
pub mod devices;
pub mod fixtures;
pub mod group_world;
pub mod groups;
pub mod provisioning;
pub mod records;
pub mod sealed;
pub mod store;
pub mod store_formats;
pub mod trust;

use std::collections::{BTreeMap, BTreeSet};

use gochat_e2ee::records::RecordKey;
use gochat_e2ee::{Device, Error, PreKeyBundle, SnapshotKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use attachments::{attachment_header, attachment_pointer, attachment_stream};
pub use certificates::{certificate_chain, revocation_list};
pub use channels::announcement;
pub use conversation::conversation;
pub use devices::{device_endorsement, device_list};
pub use group_world::group;
pub use groups::{commit_welcome, distribution, group_message};
pub use provisioning::{provisioning_message, provisioning_offer};
pub use records::state_record;
pub use store::{store_keyslot, store_record};
pub use store_formats::{store_export, store_inbox};
pub use trust::safety_number;

/// The fixed snapshot key used by the `snapshot` target and its seeds.
pub const SNAPSHOT_KEY: [u8; 32] = [0x5A; 32];

/// The names of all targets, as used for `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`.
pub const TARGETS: [&str; 26] = [
    "bundle",
    "prekey_message",
    "ratchet_message",
    "snapshot",
    "retry_request",
    "conversation",
    "group_message",
    "distribution",
    "announcement",
    "commit_welcome",
    "group",
    "attachment_header",
    "attachment_pointer",
    "attachment_stream",
    "safety_number",
    "device_list",
    "device_endorsement",
    "provisioning_offer",
    "provisioning_message",
    "certificate_chain",
    "revocation_list",
    "state_record",
    "store_record",
    "store_keyslot",
    "store_export",
    "store_inbox",
];

/// Runs the target called `name` on `data` (for the replay test and tools).
pub fn run(name: &str, data: &[u8]) -> Option<bool> {
    Some(match name {
        "bundle" => bundle(data),
        "prekey_message" => prekey_message(data),
        "ratchet_message" => ratchet_message(data),
        "snapshot" => snapshot(data),
        "retry_request" => retry_request(data),
        "conversation" => conversation(data),
        "group_message" => group_message(data),
        "distribution" => distribution(data),
        "announcement" => announcement(data),
        "commit_welcome" => commit_welcome(data),
        "group" => group(data),
        "attachment_header" => attachment_header(data),
        "attachment_pointer" => attachment_pointer(data),
        "attachment_stream" => attachment_stream(data),
        "safety_number" => safety_number(data),
        "device_list" => device_list(data),
        "device_endorsement" => device_endorsement(data),
        "provisioning_offer" => provisioning_offer(data),
        "provisioning_message" => provisioning_message(data),
        "certificate_chain" => certificate_chain(data),
        "revocation_list" => revocation_list(data),
        "state_record" => state_record(data),
        "store_record" => store_record(data),
        "store_keyslot" => store_keyslot(data),
        "store_export" => store_export(data),
        "store_inbox" => store_inbox(data),
        _ => return None,
    })
}

/// A deterministic generator.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Decrypts and, if that fails, asserts that the device's state did not change.
pub fn decrypt_atomic(
    device: &mut Device,
    peer: &str,
    message: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<Vec<u8>, Error> {
    let before = device.state_digest();
    let out = changes_checked(device, "decrypt", |d| d.decrypt(peer, message, rng).map(|d| d.plaintext));
    if let Err(e) = &out {
        assert_eq!(before, device.state_digest(), "decrypt failed ({e:?}) but changed the device state");
    }
    out
}

/// Every record of `device`, encoded.
pub fn all_records(device: &Device) -> BTreeMap<RecordKey, Vec<u8>> {
    device.records().into_iter().map(|(k, v)| (k, v.to_vec())).collect()
}

/// Runs `f` on `device` and checks the store's change set: every record that differs
/// afterwards (added, changed or removed) is listed by [`Device::take_changes`], and
/// the records rebuild a device with exactly the live state.
pub fn changes_checked<T>(device: &mut Device, what: &str, f: impl FnOnce(&mut Device) -> T) -> T {
    let _ = device.take_changes();
    let before = all_records(device);
    let out = f(device);
    let changed: BTreeSet<RecordKey> = device.take_changes().into_iter().collect();
    let after = all_records(device);
    for key in before.keys().chain(after.keys()) {
        if !changed.contains(key) {
            assert_eq!(before.get(key), after.get(key), "{what} changed record {key:?} without listing it");
        }
    }
    let rebuilt = Device::from_records(after.into_iter().map(|(k, v)| (k, zeroize::Zeroizing::new(v))))
        .expect("the records rebuild a device");
    assert_eq!(rebuilt.state_digest(), device.state_digest(), "{what}: the records do not hold the whole state");
    out
}

/// `bundle`: [`PreKeyBundle::from_bytes`]. An accepted bundle must re-encode to exactly
/// the input (the encoding is canonical, so no byte can change without refusal).
pub fn bundle(data: &[u8]) -> bool {
    let Ok(b) = PreKeyBundle::from_bytes(data) else { return false };
    assert_eq!(b.to_bytes(), data, "accepted bundle does not re-encode to its input");
    true
}

/// Shared body of the two message targets: decrypt `data` from "alice" on a clone of
/// `fixture`; a refusal must leave the state unchanged, an acceptance must not repeat.
fn decrypt_once(fixture: &Device, data: &[u8]) -> bool {
    let mut bob = fixture.fork_for_testing();
    let mut rng = rng(0xB0B);
    if decrypt_atomic(&mut bob, "alice", data, &mut rng).is_err() {
        return false;
    }
    let again = decrypt_atomic(&mut bob, "alice", data, &mut rng);
    assert!(again.is_err(), "a message decrypted twice");
    // The session the message established or advanced can still be used.
    let _ = bob.encrypt("alice", b"reply");
    true
}

/// `prekey_message`: [`Device::decrypt`] on a device with one-time and ML-KEM prekeys
/// and no session.
pub fn prekey_message(data: &[u8]) -> bool {
    decrypt_once(&fixtures::get().prekey_bob, data)
}

/// `ratchet_message`: [`Device::decrypt`] on a device with an established session
/// (several receiving chains, skipped keys).
pub fn ratchet_message(data: &[u8]) -> bool {
    decrypt_once(&fixtures::get().ratchet_bob, data)
}

/// `snapshot`: the first byte picks the mode, the rest is the input.
///
/// - mode 0: `rest` is a device snapshot for [`Device::import`] under [`SNAPSHOT_KEY`];
/// - mode 1: `rest` is a *plaintext device state*; the harness seals it under the key
///   itself (see [`sealed`]) so the fuzzer reaches the state decoder behind the AEAD;
/// - mode 2 / 3: the same for a session record and [`Device::import_session`].
///
/// An accepted snapshot must survive export + import (twice, equal state digests: each
/// import bumps the sender epochs the same way), and
/// the imported device must be usable without panicking.
pub fn snapshot(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else { return false };
    match mode % 4 {
        0 => import_device(rest),
        1 => import_device(&sealed::seal(sealed::KIND_DEVICE, rest, &[])),
        2 => import_session(rest),
        _ => {
            let owner = fixtures::get().ratchet_bob.identity();
            import_session(&sealed::seal(sealed::KIND_SESSION_RECORD, rest, &sealed::session_context(owner, "alice")))
        }
    }
}

fn import_device(bytes: &[u8]) -> bool {
    let key = SnapshotKey::new(SNAPSHOT_KEY);
    let Ok(mut device) = Device::import(&key, bytes) else { return false };
    // Every import starts a new sender epoch, so compare two imports of exports of the
    // same state: the encoding must round-trip exactly.
    let exported = device.export(&key, &mut rng(1)).expect("export");
    assert_eq!(exported.len(), device.state_len() + gochat_e2ee::snapshot::OVERHEAD_BYTES, "state_len is exact");
    let again = Device::import(&key, &exported).expect("re-import of an export failed");
    let twice = Device::import(&key, &device.export(&key, &mut rng(2)).expect("export"))
        .expect("re-import of an export failed");
    assert_eq!(twice.state_digest(), again.state_digest(), "export/import changed the state");
    // Use what was imported: nothing may panic, whatever the (authenticated) state says.
    let peers: Vec<String> = device.peers().map(str::to_owned).collect();
    for peer in peers.iter().take(4) {
        let _ = device.encrypt(peer, b"x");
    }
    let _ = device.next_bundle();
    true
}

fn import_session(bytes: &[u8]) -> bool {
    let key = SnapshotKey::new(SNAPSHOT_KEY);
    let mut device = fixtures::get().ratchet_bob.fork_for_testing();
    let before = device.state_digest();
    if let Err(e) = device.import_session("alice", &key, bytes) {
        assert_eq!(before, device.state_digest(), "import_session failed ({e:?}) but changed the state");
        return false;
    }
    // Each import bumps the sender epochs, so compare two re-imports of one export.
    let exported = device.export_session("alice", &key, &mut rng(2)).expect("export of an imported session failed");
    let mut other = device.fork_for_testing();
    device.import_session("alice", &key, &exported).expect("re-import of a session export failed");
    other.import_session("alice", &key, &exported).expect("re-import of a session export failed");
    assert_eq!(other.state_digest(), device.state_digest(), "session export/import changed the state");
    let _ = device.encrypt("alice", b"x");
    true
}

/// `retry_request`: [`Device::handle_retry_request`] on a device that sent messages to
/// "bob". A refusal leaves the state unchanged; an accepted request names a message that
/// was sent, is honoured once only, and leaves a usable new session.
pub fn retry_request(data: &[u8]) -> bool {
    let f = fixtures::get();
    let mut alice = f.retry_alice.fork_for_testing();
    let mut rng = rng(0xA11CE);
    let before = alice.state_digest();
    let digest = match alice.handle_retry_request("bob", data, fixtures::NOW, &mut rng) {
        Ok(d) => d,
        Err(e) => {
            assert_eq!(before, alice.state_digest(), "retry request refused ({e:?}) but changed the state");
            return false;
        }
    };
    assert!(f.retry_sent.iter().any(|m| Device::message_digest(m) == digest), "retry request names an unsent message");
    let mid = alice.state_digest();
    assert!(alice.handle_retry_request("bob", data, fixtures::NOW, &mut rng).is_err(), "retry request honoured twice");
    assert_eq!(mid, alice.state_digest(), "refused repeat of a retry request changed the state");
    alice.encrypt("bob", b"re-sent").expect("no usable session after a retry request");
    true
}
