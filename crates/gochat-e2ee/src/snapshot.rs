//! Versioned, encrypted snapshots of stateful objects.
//!
//! ```text
//! Snapshot = 0x10 || 0x02 || kind (1) || salt (32) || AES-256-GCM(state) || tag (16)
//! key || nonce = HKDF-SHA256(salt = salt, ikm = caller's 32-byte key,
//!                            info = "GoChat-E2EE v1 snapshot" || kind, L = 44)
//! AAD = the 35 header bytes (type, version, kind, salt) || context
//! context = empty for a Device; for a SessionRecord, Encode(owner identity) (66)
//!           || peer name length (u32) || peer name
//! ```
//! The context binds a session-record snapshot to the device that exported it and to
//! the peer it is with: importing it under another peer name, or into another device,
//! fails the tag (`SnapshotUndecryptable`) and changes nothing.
//! The salt is fresh per export, so one caller key can protect any number of snapshots
//! without nonce reuse. A wrong key and a modified snapshot are indistinguishable
//! (both fail the tag); a short input is reported as truncated.

use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{AeadKey, CryptoError, AEAD_TAG_BYTES};
use crate::labels;
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Largest snapshot accepted by `import`.
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024 * 1024;
const HEADER_BYTES: usize = 3 + 32;
/// What a snapshot adds to the state it encrypts: header, salt and tag.
pub const OVERHEAD_BYTES: usize = HEADER_BYTES + AEAD_TAG_BYTES;

/// What a snapshot holds; the kind is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SnapshotKind {
    /// A whole [`Device`](crate::Device): account, prekeys and every session record.
    Device = 0x01,
    /// One [`SessionRecord`](crate::session::SessionRecord).
    SessionRecord = 0x02,
}

/// The caller's 32-byte snapshot key. Wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SnapshotKey([u8; 32]);

impl SnapshotKey {
    /// Wraps 32 key bytes (for example from the platform keystore).
    pub fn new(bytes: [u8; 32]) -> Self {
        SnapshotKey(bytes)
    }

    /// Wraps a slice, refusing any length but 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SnapshotError::InvalidKeyLength(bytes.len()))?;
        Ok(SnapshotKey(arr))
    }
}

impl core::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SnapshotKey(<redacted>)")
    }
}

/// Why a snapshot could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The snapshot is shorter than its header and tag.
    #[error("snapshot is truncated")]
    Truncated,
    /// The header is not a snapshot header of a supported version.
    #[error("not a snapshot: {0}")]
    Malformed(DecodeError),
    /// The snapshot holds another kind of object.
    #[error("snapshot holds {found:?}, expected {expected:?}")]
    WrongKind {
        /// The kind asked for.
        expected: SnapshotKind,
        /// The kind byte found.
        found: u8,
    },
    /// The tag did not verify: wrong key, or the snapshot was modified.
    #[error("wrong key or tampered snapshot")]
    Undecryptable,
    /// The decrypted state is not a valid encoding (only a bug or a key compromise
    /// produces this).
    #[error("invalid state in snapshot: {0}")]
    InvalidState(DecodeError),
    /// The key is not 32 bytes.
    #[error("snapshot key must be 32 bytes, got {0}")]
    InvalidKeyLength(usize),
    /// A primitive refused an internal length (a bug, never caused by the snapshot).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn derive(key: &SnapshotKey, salt: &[u8], kind: SnapshotKind) -> Result<AeadKey, CryptoError> {
    let mut info = labels::SNAPSHOT.to_vec();
    info.push(kind as u8);
    AeadKey::derive_salted(salt, &key.0, &info)
}

/// The authenticated context of a session-record snapshot: owner identity and peer name.
pub(crate) fn session_context(owner: &crate::keys::IdentityKey, peer: &str) -> Vec<u8> {
    let mut w = Writer::raw(66 + 4 + peer.len());
    owner.write(&mut w);
    w.var_bytes(peer.as_bytes());
    w.into_bytes()
}

/// Encrypts `state` (wiped on return) as a snapshot of `kind`, authenticating `context`
/// too. The AEAD encrypts a copy of `state` in place, in a buffer allocated at its final
/// size, so no plaintext copy outlives this call.
pub(crate) fn seal<R: CryptoRng + ?Sized>(
    key: &SnapshotKey,
    kind: SnapshotKind,
    state: Zeroizing<Vec<u8>>,
    context: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, CryptoError> {
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let mut w = Writer::with_header(type_byte::SNAPSHOT, HEADER_BYTES + state.len() + AEAD_TAG_BYTES);
    w.u8(kind as u8).bytes(&salt);
    let mut out = w.into_bytes();
    let aad = [&out[..], context].concat();
    let ct = derive(key, &salt, kind).and_then(|k| k.seal(&aad, &state));
    drop(state);
    out.extend_from_slice(&ct?);
    Ok(out)
}

/// As [`seal`], writing an older snapshot `version` (unit tests of older-state import only).
#[cfg(test)]
pub(crate) fn seal_version<R: CryptoRng + ?Sized>(
    key: &SnapshotKey,
    kind: SnapshotKind,
    state: Zeroizing<Vec<u8>>,
    version: u8,
    rng: &mut R,
) -> Result<Vec<u8>, CryptoError> {
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let mut w = Writer::raw(HEADER_BYTES + state.len() + AEAD_TAG_BYTES);
    w.u8(type_byte::SNAPSHOT).u8(version).u8(kind as u8).bytes(&salt);
    let mut out = w.into_bytes();
    let ct = derive(key, &salt, kind).and_then(|k| k.seal(&out, &state));
    out.extend_from_slice(&ct?);
    Ok(out)
}

/// Decrypts a snapshot of `kind` sealed with `context`, returning the state encoding.
pub(crate) fn open(
    key: &SnapshotKey,
    kind: SnapshotKind,
    bytes: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SnapshotError> {
    if bytes.len() < HEADER_BYTES + AEAD_TAG_BYTES {
        if bytes.len() >= 2 {
            Reader::open(bytes, type_byte::SNAPSHOT, MAX_SNAPSHOT_BYTES).map_err(SnapshotError::Malformed)?;
        }
        return Err(SnapshotError::Truncated);
    }
    let mut r = Reader::open(bytes, type_byte::SNAPSHOT, MAX_SNAPSHOT_BYTES).map_err(SnapshotError::Malformed)?;
    let found = r.u8().map_err(SnapshotError::Malformed)?;
    if found != kind as u8 {
        return Err(SnapshotError::WrongKind { expected: kind, found });
    }
    let salt = r.bytes(32).map_err(|_| SnapshotError::Truncated)?;
    let header = bytes.get(..HEADER_BYTES).ok_or(SnapshotError::Truncated)?;
    let ct = r.rest();
    let aad = [header, context].concat();
    let pt = derive(key, salt, kind)?.open(&aad, ct).ok_or(SnapshotError::Undecryptable)?;
    Ok(Zeroizing::new(pt))
}
