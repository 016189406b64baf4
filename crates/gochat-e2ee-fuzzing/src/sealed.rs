//! The snapshot format of `docs/protocol.md`, re-implemented from the specification so
//! the `snapshot` target can seal fuzzer-chosen *plaintext* states under the fixed key.
//!
//! Without this the fuzzer could not get past the AES-GCM tag and would never reach the
//! state decoders (account, session record, ratchet state). Doing it here means the
//! core needs no `cfg(fuzzing)` bypass.
//!
//! ```text
//! Snapshot = 0x10 || 0x02 || kind (1) || salt (32) || AES-256-GCM(state) || tag (16)
//! key || nonce = HKDF-SHA256(salt, ikm = key, info = "GoChat-E2EE v1 snapshot" || kind, L = 44)
//! AAD = the 35 header bytes || context (for a session record: the owner's identity and
//!       the peer name, see `docs/protocol.md` 8; empty for a device)
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::SNAPSHOT_KEY;

/// Kind byte of a device snapshot.
pub const KIND_DEVICE: u8 = 0x01;
/// Kind byte of a session record snapshot.
pub const KIND_SESSION_RECORD: u8 = 0x02;
const SALT: [u8; 32] = [0x11; 32];

fn cipher(kind: u8, salt: &[u8]) -> (Aes256Gcm, [u8; 12]) {
    let mut info = gochat_e2ee::labels::SNAPSHOT.to_vec();
    info.push(kind);
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::new(Some(salt), &SNAPSHOT_KEY).expand(&info, &mut okm).expect("44 bytes is a valid HKDF length");
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    nonce.copy_from_slice(&okm[32..]);
    (Aes256Gcm::new(&key.into()), nonce)
}

/// The AAD context of a session-record snapshot of `owner`'s record with `peer`.
pub fn session_context(owner: &gochat_e2ee::IdentityKey, peer: &str) -> Vec<u8> {
    let len = u32::try_from(peer.len()).expect("short peer name").to_be_bytes();
    [&owner.to_bytes()[..], &len, peer.as_bytes()].concat()
}

/// Seals `state` as a snapshot of `kind` under [`SNAPSHOT_KEY`] (with a fixed salt),
/// authenticating `context` too.
pub fn seal(kind: u8, state: &[u8], context: &[u8]) -> Vec<u8> {
    let mut out = vec![0x10, gochat_e2ee::wire::SNAPSHOT_VERSION, kind];
    out.extend_from_slice(&SALT);
    let (c, nonce) = cipher(kind, &SALT);
    let aad = [&out[..], context].concat();
    let ct = c.encrypt(&nonce.into(), Payload { msg: state, aad: &aad }).expect("AES-GCM encryption of a small state");
    out.extend_from_slice(&ct);
    out
}

/// Opens a snapshot of `kind` sealed under [`SNAPSHOT_KEY`] with `context` (by the core
/// or by [`seal`]).
pub fn open(kind: u8, bytes: &[u8], context: &[u8]) -> Option<Vec<u8>> {
    let header = bytes.get(..35)?;
    if header[..3] != [0x10, gochat_e2ee::wire::SNAPSHOT_VERSION, kind] {
        return None;
    }
    let (c, nonce) = cipher(kind, &header[3..]);
    let aad = [header, context].concat();
    c.decrypt(&nonce.into(), Payload { msg: bytes.get(35..)?, aad: &aad }).ok()
}
