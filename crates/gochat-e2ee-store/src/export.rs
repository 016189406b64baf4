//! The export container: a whole device, moved to a new installation under a transfer
//! passcode (`docs/protocol.md` §16.5).
//!
//! `0x62 || 0x01 || u32 BE keyslot length || keyslot || snapshot`. The keyslot (type
//! 0x61, passcode method, Argon2id) wraps a fresh random export key; the snapshot is the
//! core's device snapshot (`Device::export`) encrypted under that key. Nothing else is
//! authenticated here: the keyslot's tag covers its own header, and the snapshot's tag
//! covers the device, so a modified container fails one of the two (`WrongKey`, or the
//! snapshot's `SnapshotUndecryptable`).

use crate::backend::StoreError;
use crate::vault::{FormatError, Keyslot, VaultError};

/// Type byte of an export container (a moved device).
pub const EXPORT_TYPE: u8 = 0x62;
/// Version of the export container.
pub const EXPORT_VERSION: u8 = 0x01;

/// Frames an export container from an encoded keyslot and a snapshot.
pub fn encode_container(keyslot: &[u8], snapshot: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + keyslot.len() + snapshot.len());
    out.extend_from_slice(&[EXPORT_TYPE, EXPORT_VERSION]);
    out.extend_from_slice(&(keyslot.len() as u32).to_be_bytes());
    out.extend_from_slice(keyslot);
    out.extend_from_slice(snapshot);
    out
}

/// Splits an export container into its decoded keyslot and the snapshot bytes (not yet
/// opened). Refused: another type byte or a container shorter than its keyslot length
/// (`Truncated`), another version (`UnsupportedVersion`), a keyslot that does not decode
/// (including Argon2id parameters outside the bounds, checked before any hashing).
pub fn decode_container(container: &[u8]) -> Result<(Keyslot, &[u8]), StoreError> {
    let malformed = || StoreError::Vault(VaultError::Truncated);
    let rest = match container {
        [EXPORT_TYPE, EXPORT_VERSION, rest @ ..] => rest,
        [EXPORT_TYPE, v, ..] => {
            return Err(StoreError::Vault(VaultError::Malformed(FormatError::UnsupportedVersion(*v))))
        }
        _ => return Err(malformed()),
    };
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(malformed());
    }
    let (slot, snapshot) = rest.split_at(len);
    Ok((Keyslot::decode(slot)?, snapshot))
}
