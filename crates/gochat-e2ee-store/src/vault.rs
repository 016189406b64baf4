//! The key vault: one random data key per store, wrapped in keyslots, and the record
//! cipher derived from it.
//!
//! ```text
//! Keyslot (type 0x61, version 0x01), 79 bytes (platform key) or 107 bytes (passcode):
//!   0x61 || 0x01 || method (1)
//!   || [method 0x02 only: memory_kib u32 BE || iterations u32 BE || lanes u32 BE || salt (16)]
//!   || store_id (16) || nonce (12) || AES-256-GCM(KEK, nonce, data_key (32), AAD) (48)
//!   AAD = every byte before the ciphertext
//!   ikm = the 32-byte platform key (method 0x01)
//!       | Argon2id v0x13 (m = memory_kib, t = iterations, p = lanes, salt = salt,
//!                        password = passcode bytes, 32-byte output) (method 0x02)
//!   KEK = HKDF-SHA256(salt = store_id, ikm, info = "GoChat-E2EE v1 store keyslot" || method, 32)
//!
//! RecordCipher, from the data key:
//!   encryption key = HKDF-SHA256(salt = store_id, ikm = data_key, info = "GoChat-E2EE v1 store encryption key", 32)
//!   naming key     = HKDF-SHA256(salt = store_id, ikm = data_key, info = "GoChat-E2EE v1 store naming key", 32)
//!   key_hash       = HMAC-SHA256(naming key, record key bytes)
//!
//! Record value (type 0x60, version 0x01), plaintext + 34 bytes:
//!   0x60 || 0x01 || salt (16) || AES-256-GCM(body) || tag (16)
//!   key || nonce = HKDF-SHA256(salt = salt, ikm = encryption key, info = "GoChat-E2EE v1 store record", 44)
//!   AAD = 0x60 || 0x01 || salt || store_id || key_hash
//! ```
//!
//! Security properties:
//! - The data key never leaves memory unwrapped; it is wiped on drop and never printed.
//!   Changing the passcode (or moving to a platform key) re-wraps the same data key, so
//!   records are never re-encrypted.
//! - A wrong platform key, a wrong passcode and a modified keyslot are indistinguishable
//!   ([`VaultError::WrongKey`]): the tag covers every header byte, the Argon2id
//!   parameters and salt included.
//! - Argon2id parameters read from a file are bounded before any hashing, so a hostile
//!   file cannot make unlock take unbounded memory or time.
//! - A record's AAD binds it to its store and to its (hashed) key: a value moved to
//!   another key or copied into another store fails the tag. The per-record random salt
//!   gives every value its own key and nonce, so there is no limit on how many records one
//!   data key may seal.
//! - Record keys (peer names, group ids) are stored only as keyed hashes.

use aes_gcm::aead::{AeadInOut, KeyInit, Tag};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::labels;

/// Length of a [`StoreId`].
pub const STORE_ID_BYTES: usize = 16;
/// Length of a [`DataKey`] and of a [`PlatformKey`].
pub const KEY_BYTES: usize = 32;
/// Type byte of a keyslot.
pub const KEYSLOT_TYPE: u8 = 0x61;
/// The keyslot version written and read.
pub const KEYSLOT_VERSION: u8 = 0x01;
/// Length of the Argon2id salt in a passcode keyslot.
pub const ARGON2_SALT_BYTES: usize = 16;
/// Length of a keyslot's AES-256-GCM nonce.
pub const KEYSLOT_NONCE_BYTES: usize = 12;
/// Length of the wrapped data key: 32 bytes of ciphertext and the 16-byte tag.
pub const WRAPPED_KEY_BYTES: usize = KEY_BYTES + TAG_BYTES;
/// Exact length of a platform-key keyslot (method 0x01).
pub const KEYSLOT_PLATFORM_BYTES: usize = 3 + STORE_ID_BYTES + KEYSLOT_NONCE_BYTES + WRAPPED_KEY_BYTES;
/// Exact length of a passcode keyslot (method 0x02).
pub const KEYSLOT_PASSCODE_BYTES: usize = KEYSLOT_PLATFORM_BYTES + 12 + ARGON2_SALT_BYTES;
/// Type byte of a sealed record value.
pub const RECORD_TYPE: u8 = 0x60;
/// The record version written and read.
pub const RECORD_VERSION: u8 = 0x01;
/// Length of a record's random salt.
pub const RECORD_SALT_BYTES: usize = 16;
/// What sealing adds to a record's plaintext: type, version, salt and tag.
pub const RECORD_OVERHEAD_BYTES: usize = 2 + RECORD_SALT_BYTES + TAG_BYTES;
/// Largest sealed record value (overhead included) that [`RecordCipher::open`] reads
/// and [`RecordCipher::seal`] writes; checked before any cryptography.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// Longest passcode accepted, in bytes.
pub const MAX_PASSCODE_BYTES: usize = 1024;
/// Smallest Argon2id memory accepted (8 MiB), in KiB.
pub const MIN_ARGON2_MEMORY_KIB: u32 = 8 * 1024;
/// Largest Argon2id memory accepted (1 GiB), in KiB.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 1024 * 1024;
/// Largest Argon2id iteration count accepted (the smallest is 1).
pub const MAX_ARGON2_ITERATIONS: u32 = 16;
/// Largest Argon2id lane count accepted (the smallest is 1).
pub const MAX_ARGON2_LANES: u32 = 8;

const TAG_BYTES: usize = 16;
const RECORD_HEADER_BYTES: usize = 2 + RECORD_SALT_BYTES;

/// Why a keyslot or a record value is not well-formed (reported inside
/// [`VaultError::Malformed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The first byte is not the expected type byte.
    #[error("type byte {found:#04x}, expected {expected:#04x}")]
    WrongType {
        /// The type byte of the layout being read.
        expected: u8,
        /// The byte found.
        found: u8,
    },
    /// The version byte is not a supported version.
    #[error("unsupported version {0:#04x}")]
    UnsupportedVersion(u8),
    /// The keyslot method byte is neither 0x01 nor 0x02.
    #[error("unknown keyslot method {0:#04x}")]
    UnknownMethod(u8),
    /// The keyslot is longer than its method's exact length.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// Why the vault refused: every failure is typed, none panics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VaultError {
    /// The platform key or passcode does not open this keyslot, or the keyslot was
    /// modified: the two are indistinguishable.
    #[error("wrong key or passcode, or a modified keyslot")]
    WrongKey,
    /// The keyslot is of the other method (for example a passcode was given for a
    /// platform-key slot). The method is public, so telling it reveals nothing.
    #[error("the keyslot is unlocked by {slot:?}, not by the unlock given")]
    MethodMismatch {
        /// The method of the keyslot.
        slot: KeyslotMethod,
    },
    /// The input is shorter than its layout.
    #[error("truncated")]
    Truncated,
    /// The header is not a supported keyslot or record header, or a keyslot has
    /// trailing bytes.
    #[error("malformed: {0}")]
    Malformed(FormatError),
    /// The record's tag did not verify: wrong data key, another store, another key hash,
    /// or a modified value (indistinguishable).
    #[error("undecryptable record")]
    Undecryptable,
    /// A record value (or a plaintext to seal) over [`MAX_RECORD_BYTES`].
    #[error("record of {0} bytes is over the limit")]
    RecordTooLarge(usize),
    /// Argon2id memory outside [`MIN_ARGON2_MEMORY_KIB`]..=[`MAX_ARGON2_MEMORY_KIB`].
    #[error("Argon2id memory of {0} KiB is out of bounds")]
    Argon2Memory(u32),
    /// Argon2id iterations outside 1..=[`MAX_ARGON2_ITERATIONS`].
    #[error("Argon2id iteration count {0} is out of bounds")]
    Argon2Iterations(u32),
    /// Argon2id lanes outside 1..=[`MAX_ARGON2_LANES`].
    #[error("Argon2id lane count {0} is out of bounds")]
    Argon2Lanes(u32),
    /// The Argon2id memory could not be allocated.
    #[error("out of memory for Argon2id ({0} KiB)")]
    OutOfMemory(u32),
    /// A passcode of 0 bytes or over [`MAX_PASSCODE_BYTES`].
    #[error("passcode of {0} bytes is refused")]
    PasscodeLength(usize),
    /// A platform key that is not 32 bytes.
    #[error("key must be 32 bytes, got {0}")]
    InvalidKeyLength(usize),
    /// A store id that is not 16 bytes.
    #[error("store id must be 16 bytes, got {0}")]
    InvalidStoreIdLength(usize),
    /// A primitive refused an internal length (a bug, never caused by input).
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// The public, random 16-byte identifier of one store. Every keyslot and record is bound
/// to it, so nothing can be moved from one store into another.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId([u8; STORE_ID_BYTES]);

impl StoreId {
    /// A fresh random id (at store creation).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; STORE_ID_BYTES];
        rng.fill_bytes(&mut b);
        StoreId(b)
    }

    /// Wraps 16 bytes (read back from the store).
    pub const fn from_bytes(bytes: [u8; STORE_ID_BYTES]) -> Self {
        StoreId(bytes)
    }

    /// Wraps a slice, refusing any length but 16.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, VaultError> {
        let b: [u8; STORE_ID_BYTES] = bytes.try_into().map_err(|_| VaultError::InvalidStoreIdLength(bytes.len()))?;
        Ok(StoreId(b))
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; STORE_ID_BYTES] {
        &self.0
    }
}

impl core::fmt::Debug for StoreId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StoreId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The store's 32-byte data key: every record key derives from it. Wiped on drop, never
/// printed, compared only in constant time ([`ConstantTimeEq`]).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_BYTES]);

impl DataKey {
    /// A fresh random data key (at store creation).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = DataKey([0; KEY_BYTES]);
        rng.fill_bytes(&mut k.0);
        k
    }

    /// A data key from fixed bytes (test vectors only).
    #[cfg(feature = "vectors")]
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        DataKey(bytes)
    }

    /// The key bytes (to key a device snapshot with a fresh export key).
    pub(crate) fn expose(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl ConstantTimeEq for DataKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl core::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A 32-byte key held by the platform (Android Keystore, iOS Keychain, a non-extractable
/// WebCrypto key's output). Wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PlatformKey([u8; KEY_BYTES]);

impl PlatformKey {
    /// Wraps 32 key bytes.
    pub fn new(bytes: [u8; KEY_BYTES]) -> Self {
        PlatformKey(bytes)
    }

    /// Wraps a slice, refusing any length but 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, VaultError> {
        let b: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| VaultError::InvalidKeyLength(bytes.len()))?;
        Ok(PlatformKey(b))
    }
}

impl core::fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PlatformKey(<redacted>)")
    }
}

/// A user's passcode: 1 to [`MAX_PASSCODE_BYTES`] bytes, used exactly as given (an app
/// that takes text should normalize it, e.g. to Unicode NFC, before building this).
/// Wiped on drop, never printed.
#[derive(Clone)]
pub struct Passcode(Zeroizing<Vec<u8>>);

impl Passcode {
    /// Copies the passcode bytes, refusing an empty one and one over
    /// [`MAX_PASSCODE_BYTES`].
    pub fn new(bytes: &[u8]) -> Result<Self, VaultError> {
        if bytes.is_empty() || bytes.len() > MAX_PASSCODE_BYTES {
            return Err(VaultError::PasscodeLength(bytes.len()));
        }
        Ok(Passcode(Zeroizing::new(bytes.to_vec())))
    }

    /// The UTF-8 bytes of `text` (see [`Passcode::new`]).
    pub fn from_text(text: &str) -> Result<Self, VaultError> {
        Self::new(text.as_bytes())
    }
}

impl core::fmt::Debug for Passcode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Passcode(<redacted>)")
    }
}

/// What unlocks a keyslot.
#[derive(Clone, Debug)]
pub enum Unlock {
    /// A platform key (keyslot method 0x01).
    Key(PlatformKey),
    /// A passcode, stretched with Argon2id (keyslot method 0x02).
    Passcode(Passcode),
}

impl Unlock {
    /// The keyslot method this unlock wraps with.
    pub fn method(&self) -> KeyslotMethod {
        match self {
            Unlock::Key(_) => KeyslotMethod::PlatformKey,
            Unlock::Passcode(_) => KeyslotMethod::Passcode,
        }
    }
}

/// How a keyslot's key-encryption key is obtained (the method byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeyslotMethod {
    /// A 32-byte platform key.
    PlatformKey = 0x01,
    /// A passcode stretched with Argon2id.
    Passcode = 0x02,
}

/// Argon2id cost parameters (version 0x13, 32-byte output, no secret, no associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    /// Memory, in KiB ([`MIN_ARGON2_MEMORY_KIB`]..=[`MAX_ARGON2_MEMORY_KIB`]).
    pub memory_kib: u32,
    /// Passes over the memory (1..=[`MAX_ARGON2_ITERATIONS`]).
    pub iterations: u32,
    /// Lanes, the parallelism (1..=[`MAX_ARGON2_LANES`]); lanes are computed one after
    /// another in this crate, so more lanes cost time, not threads.
    pub lanes: u32,
}

impl Argon2Params {
    /// For a mid-range phone (about 0.5 s there): 64 MiB, 3 iterations, 1 lane.
    /// Measured on the development machine in `docs/benchmarks.md` ("Store unlock").
    pub const DEFAULT: Argon2Params = Argon2Params { memory_kib: 64 * 1024, iterations: 3, lanes: 1 };

    /// Refuses parameters outside the bounds (memory 8 MiB..=1 GiB, iterations 1..=16,
    /// lanes 1..=8), with the variant naming the parameter. Checked on every wrap and
    /// on every decode, before any hashing.
    pub fn validate(&self) -> Result<(), VaultError> {
        if !(MIN_ARGON2_MEMORY_KIB..=MAX_ARGON2_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(VaultError::Argon2Memory(self.memory_kib));
        }
        if !(1..=MAX_ARGON2_ITERATIONS).contains(&self.iterations) {
            return Err(VaultError::Argon2Iterations(self.iterations));
        }
        if !(1..=MAX_ARGON2_LANES).contains(&self.lanes) {
            return Err(VaultError::Argon2Lanes(self.lanes));
        }
        Ok(())
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Argon2id v0x13 of `passcode` into 32 bytes. The memory blocks are allocated fallibly
/// and wiped before they are freed (they are a function of the passcode).
fn argon2id(
    passcode: &Passcode,
    salt: &[u8; ARGON2_SALT_BYTES],
    params: Argon2Params,
) -> Result<Zeroizing<[u8; KEY_BYTES]>, VaultError> {
    params.validate()?;
    let p = argon2::Params::new(params.memory_kib, params.iterations, params.lanes, Some(KEY_BYTES))
        .map_err(|_| VaultError::Internal("Argon2id parameters"))?;
    let blocks = p.block_count();
    let mut memory: Vec<argon2::Block> = Vec::new();
    memory.try_reserve_exact(blocks).map_err(|_| VaultError::OutOfMemory(params.memory_kib))?;
    memory.resize(blocks, argon2::Block::new());
    let mut out = Zeroizing::new([0u8; KEY_BYTES]);
    let result = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
        .hash_password_into_with_memory(&passcode.0, salt, &mut out[..], &mut memory[..]);
    memory.zeroize();
    result.map_err(|_| VaultError::Internal("Argon2id"))?;
    Ok(out)
}

/// HKDF-SHA256 into a fixed-size, zeroizing output.
fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; N]>, VaultError> {
    let mut out = Zeroizing::new([0u8; N]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out[..])
        .map_err(|_| VaultError::Internal("HKDF output length"))?;
    Ok(out)
}

fn keyslot_kek(store_id: &StoreId, ikm: &[u8], method: KeyslotMethod) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let mut info = labels::STORE_KEYSLOT.to_vec();
    info.push(method as u8);
    hkdf::<32>(store_id.as_bytes(), ikm, &info)
}

/// AES-256-GCM in place over `buf`, returning the tag.
fn gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_BYTES], VaultError> {
    let tag = Aes256Gcm::new(&(*key).into())
        .encrypt_inout_detached(&(*nonce).into(), aad, buf.into())
        .map_err(|_| VaultError::RecordTooLarge(buf.len()))?;
    Ok(tag.into())
}

/// AES-256-GCM decryption in place; `false` if the tag does not verify (checked in
/// constant time by the AEAD, before any plaintext is released).
fn gcm_open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
    let Ok(tag) = Tag::<Aes256Gcm>::try_from(tag) else { return false };
    Aes256Gcm::new(&(*key).into()).decrypt_inout_detached(&(*nonce).into(), aad, buf.into(), &tag).is_ok()
}

/// The data key wrapped under a platform key or a passcode, stored beside the records.
///
/// Built only by [`Keyslot::wrap`] or a strict [`Keyslot::decode`], so its fields are
/// always valid and its encoding is canonical (decode then encode gives the same bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Keyslot {
    bytes: Vec<u8>,
    method: KeyslotMethod,
    params: Option<Argon2Params>,
    store_id: StoreId,
}

impl core::fmt::Debug for Keyslot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keyslot")
            .field("method", &self.method)
            .field("params", &self.params)
            .field("store_id", &self.store_id)
            .finish_non_exhaustive()
    }
}

impl Keyslot {
    /// Wraps `data_key` under `unlock` for the store `store_id`, with a fresh nonce (and,
    /// for a passcode, a fresh Argon2id salt and the given `params`, validated first;
    /// `params` is ignored for a platform key).
    pub fn wrap<R: CryptoRng + ?Sized>(
        data_key: &DataKey,
        unlock: &Unlock,
        params: Argon2Params,
        store_id: StoreId,
        rng: &mut R,
    ) -> Result<Keyslot, VaultError> {
        if matches!(unlock, Unlock::Passcode(_)) {
            params.validate()?;
        }
        let mut salt = [0u8; ARGON2_SALT_BYTES];
        if matches!(unlock, Unlock::Passcode(_)) {
            rng.fill_bytes(&mut salt);
        }
        let mut nonce = [0u8; KEYSLOT_NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        Self::wrap_inner(data_key, unlock, params, store_id, salt, nonce)
    }

    /// As [`Keyslot::wrap`] with a fixed Argon2id salt (ignored for a platform key) and
    /// nonce (test vectors only).
    #[cfg(feature = "vectors")]
    pub fn wrap_with(
        data_key: &DataKey,
        unlock: &Unlock,
        params: Argon2Params,
        store_id: StoreId,
        salt: [u8; ARGON2_SALT_BYTES],
        nonce: [u8; KEYSLOT_NONCE_BYTES],
    ) -> Result<Keyslot, VaultError> {
        Self::wrap_inner(data_key, unlock, params, store_id, salt, nonce)
    }

    fn wrap_inner(
        data_key: &DataKey,
        unlock: &Unlock,
        params: Argon2Params,
        store_id: StoreId,
        salt: [u8; ARGON2_SALT_BYTES],
        nonce: [u8; KEYSLOT_NONCE_BYTES],
    ) -> Result<Keyslot, VaultError> {
        let method = unlock.method();
        let len = match method {
            KeyslotMethod::PlatformKey => KEYSLOT_PLATFORM_BYTES,
            KeyslotMethod::Passcode => KEYSLOT_PASSCODE_BYTES,
        };
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&[KEYSLOT_TYPE, KEYSLOT_VERSION, method as u8]);
        let kek = match unlock {
            Unlock::Key(k) => keyslot_kek(&store_id, &k.0, method)?,
            Unlock::Passcode(p) => {
                bytes.extend_from_slice(&params.memory_kib.to_be_bytes());
                bytes.extend_from_slice(&params.iterations.to_be_bytes());
                bytes.extend_from_slice(&params.lanes.to_be_bytes());
                bytes.extend_from_slice(&salt);
                let stretched = argon2id(p, &salt, params)?;
                keyslot_kek(&store_id, &stretched[..], method)?
            }
        };
        bytes.extend_from_slice(store_id.as_bytes());
        bytes.extend_from_slice(&nonce);
        let aad_len = bytes.len();
        bytes.extend_from_slice(&data_key.0);
        let (aad, body) = bytes.split_at_mut(aad_len);
        let tag = gcm_seal(&kek, &nonce, aad, body)?;
        bytes.extend_from_slice(&tag);
        let params = (method == KeyslotMethod::Passcode).then_some(params);
        Ok(Keyslot { bytes, method, params, store_id })
    }

    /// Unwraps the data key with `unlock`. A wrong key or passcode and a modified slot
    /// are both [`VaultError::WrongKey`]; an unlock of the other method is
    /// [`VaultError::MethodMismatch`]. The keyslot is never changed.
    pub fn unwrap(&self, unlock: &Unlock) -> Result<DataKey, VaultError> {
        if unlock.method() != self.method {
            return Err(VaultError::MethodMismatch { slot: self.method });
        }
        let n = self.bytes.len();
        let aad_len = n - WRAPPED_KEY_BYTES;
        let (aad, wrapped) = self.bytes.split_at(aad_len);
        let nonce: [u8; KEYSLOT_NONCE_BYTES] = aad
            .get(aad_len - KEYSLOT_NONCE_BYTES..)
            .and_then(|s| s.try_into().ok())
            .ok_or(VaultError::Internal("keyslot layout"))?;
        let kek = match (unlock, self.params) {
            (Unlock::Key(k), _) => keyslot_kek(&self.store_id, &k.0, self.method)?,
            (Unlock::Passcode(p), Some(params)) => {
                let salt: [u8; ARGON2_SALT_BYTES] = aad
                    .get(15..15 + ARGON2_SALT_BYTES)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(VaultError::Internal("keyslot layout"))?;
                let stretched = argon2id(p, &salt, params)?;
                keyslot_kek(&self.store_id, &stretched[..], self.method)?
            }
            (Unlock::Passcode(_), None) => return Err(VaultError::Internal("passcode keyslot without parameters")),
        };
        let mut key = DataKey([0; KEY_BYTES]);
        let (ct, tag) = wrapped.split_at(KEY_BYTES);
        key.0.copy_from_slice(ct);
        if !gcm_open(&kek, &nonce, aad, &mut key.0, tag) {
            return Err(VaultError::WrongKey);
        }
        Ok(key)
    }

    /// The canonical bytes (what [`Keyslot::decode`] reads).
    pub fn encode(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Reads a keyslot strictly, in this order: type, version, method (each
    /// [`VaultError::Malformed`]), exact length ([`VaultError::Truncated`] if short,
    /// `Malformed(TrailingBytes)` if long), then the Argon2id bounds (the
    /// `Argon2*` variants). Nothing is hashed or decrypted here.
    pub fn decode(bytes: &[u8]) -> Result<Keyslot, VaultError> {
        let ty = *bytes.first().ok_or(VaultError::Truncated)?;
        if ty != KEYSLOT_TYPE {
            return Err(VaultError::Malformed(FormatError::WrongType { expected: KEYSLOT_TYPE, found: ty }));
        }
        let version = *bytes.get(1).ok_or(VaultError::Truncated)?;
        if version != KEYSLOT_VERSION {
            return Err(VaultError::Malformed(FormatError::UnsupportedVersion(version)));
        }
        let method = match *bytes.get(2).ok_or(VaultError::Truncated)? {
            0x01 => KeyslotMethod::PlatformKey,
            0x02 => KeyslotMethod::Passcode,
            other => return Err(VaultError::Malformed(FormatError::UnknownMethod(other))),
        };
        let len = match method {
            KeyslotMethod::PlatformKey => KEYSLOT_PLATFORM_BYTES,
            KeyslotMethod::Passcode => KEYSLOT_PASSCODE_BYTES,
        };
        if bytes.len() < len {
            return Err(VaultError::Truncated);
        }
        if bytes.len() > len {
            return Err(VaultError::Malformed(FormatError::TrailingBytes(bytes.len() - len)));
        }
        let u32_at = |at: usize| -> Result<u32, VaultError> {
            bytes
                .get(at..at + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_be_bytes)
                .ok_or(VaultError::Truncated)
        };
        let (params, id_at) = match method {
            KeyslotMethod::PlatformKey => (None, 3),
            KeyslotMethod::Passcode => {
                let params = Argon2Params { memory_kib: u32_at(3)?, iterations: u32_at(7)?, lanes: u32_at(11)? };
                params.validate()?;
                (Some(params), 15 + ARGON2_SALT_BYTES)
            }
        };
        let store_id = StoreId::from_slice(bytes.get(id_at..id_at + STORE_ID_BYTES).ok_or(VaultError::Truncated)?)?;
        Ok(Keyslot { bytes: bytes.to_vec(), method, params, store_id })
    }

    /// How this slot is unlocked.
    pub fn method(&self) -> KeyslotMethod {
        self.method
    }

    /// The Argon2id parameters of a passcode slot (`None` for a platform-key slot).
    pub fn params(&self) -> Option<Argon2Params> {
        self.params
    }

    /// The store this slot belongs to (authenticated: a slot whose id was changed does
    /// not unwrap). The caller compares it with the store's recorded id.
    pub fn store_id(&self) -> StoreId {
        self.store_id
    }
}

/// Seals and opens record values, and hashes record keys, under keys derived from the
/// data key. Holds only derived keys (wiped on drop, never printed).
pub struct RecordCipher {
    encryption_key: Zeroizing<[u8; 32]>,
    naming_key: Zeroizing<[u8; 32]>,
    store_id: StoreId,
}

impl core::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordCipher").field("store_id", &self.store_id).finish_non_exhaustive()
    }
}

impl RecordCipher {
    /// Derives the record-encryption key and the naming key of store `store_id`.
    pub fn new(data_key: &DataKey, store_id: StoreId) -> Result<RecordCipher, VaultError> {
        let salt = store_id.as_bytes();
        Ok(RecordCipher {
            encryption_key: hkdf::<32>(salt, &data_key.0, labels::STORE_ENCRYPTION_KEY)?,
            naming_key: hkdf::<32>(salt, &data_key.0, labels::STORE_NAMING_KEY)?,
            store_id,
        })
    }

    /// The store these keys belong to.
    pub fn store_id(&self) -> StoreId {
        self.store_id
    }

    /// `HMAC-SHA256(naming key, record_key)`: the only form in which a record key (a peer
    /// name, a group id) is stored. Deterministic per store, unlinkable across stores.
    pub fn key_hash(&self, record_key: &[u8]) -> [u8; 32] {
        // The key as one zero-padded 64-byte block, as RFC 2104 pads a shorter key: the
        // HMAC construction cannot fail.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(&self.naming_key[..]);
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&(*block).into());
        mac.update(record_key);
        mac.finalize().into_bytes().into()
    }

    fn record_keys(&self, salt: &[u8]) -> Result<Zeroizing<[u8; 44]>, VaultError> {
        hkdf::<44>(salt, &self.encryption_key[..], labels::STORE_RECORD)
    }

    fn split(okm: &[u8; 44]) -> ([u8; 32], [u8; 12]) {
        let mut key = [0u8; 32];
        let mut nonce = [0u8; 12];
        key.copy_from_slice(&okm[..32]);
        nonce.copy_from_slice(&okm[32..]);
        (key, nonce)
    }

    fn aad(&self, header: &[u8], key_hash: &[u8; 32]) -> Vec<u8> {
        [header, self.store_id.as_bytes(), key_hash].concat()
    }

    /// Seals `plaintext` as the value of the record named `key_hash`, with a fresh
    /// random salt. The plaintext is copied once, into the output buffer (allocated at
    /// its final size), and encrypted there in place: no plaintext copy outlives the
    /// call. Refuses a result over [`MAX_RECORD_BYTES`] (`RecordTooLarge`).
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        key_hash: &[u8; 32],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, VaultError> {
        let mut salt = [0u8; RECORD_SALT_BYTES];
        rng.fill_bytes(&mut salt);
        self.seal_inner(key_hash, plaintext, salt)
    }

    /// As [`RecordCipher::seal`] with a fixed salt (test vectors only).
    #[cfg(feature = "vectors")]
    pub fn seal_with(
        &self,
        key_hash: &[u8; 32],
        plaintext: &[u8],
        salt: [u8; RECORD_SALT_BYTES],
    ) -> Result<Vec<u8>, VaultError> {
        self.seal_inner(key_hash, plaintext, salt)
    }

    fn seal_inner(
        &self,
        key_hash: &[u8; 32],
        plaintext: &[u8],
        salt: [u8; RECORD_SALT_BYTES],
    ) -> Result<Vec<u8>, VaultError> {
        let total = plaintext.len().saturating_add(RECORD_OVERHEAD_BYTES);
        if total > MAX_RECORD_BYTES {
            return Err(VaultError::RecordTooLarge(total));
        }
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&[RECORD_TYPE, RECORD_VERSION]);
        out.extend_from_slice(&salt);
        let aad = self.aad(&out, key_hash);
        let okm = self.record_keys(&salt)?;
        let (mut key, mut nonce) = Self::split(&okm);
        out.extend_from_slice(plaintext);
        let sealed = gcm_seal(&key, &nonce, &aad, &mut out[RECORD_HEADER_BYTES..]);
        key.zeroize();
        nonce.zeroize();
        match sealed {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(out)
            }
            Err(e) => {
                out.zeroize();
                Err(e)
            }
        }
    }

    /// Opens the value of the record named `key_hash`. Checked in this order: size
    /// ([`VaultError::RecordTooLarge`]), type and version (`Malformed`), length
    /// (`Truncated`), then the tag (`Undecryptable`: wrong store, wrong key hash, wrong
    /// data key or a modified value). The plaintext is returned in a zeroizing buffer,
    /// decrypted there in place; on failure that buffer is wiped.
    pub fn open(&self, key_hash: &[u8; 32], value: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if value.len() > MAX_RECORD_BYTES {
            return Err(VaultError::RecordTooLarge(value.len()));
        }
        if let Some(&ty) = value.first() {
            if ty != RECORD_TYPE {
                return Err(VaultError::Malformed(FormatError::WrongType { expected: RECORD_TYPE, found: ty }));
            }
        }
        if let Some(&version) = value.get(1) {
            if version != RECORD_VERSION {
                return Err(VaultError::Malformed(FormatError::UnsupportedVersion(version)));
            }
        }
        if value.len() < RECORD_OVERHEAD_BYTES {
            return Err(VaultError::Truncated);
        }
        let (header, rest) = value.split_at(RECORD_HEADER_BYTES);
        let (ct, tag) = rest.split_at(rest.len() - TAG_BYTES);
        let aad = self.aad(header, key_hash);
        let okm = self.record_keys(&header[2..])?;
        let (mut key, mut nonce) = Self::split(&okm);
        let mut buf = Zeroizing::new(ct.to_vec());
        let ok = gcm_open(&key, &nonce, &aad, &mut buf, tag);
        key.zeroize();
        nonce.zeroize();
        if !ok {
            return Err(VaultError::Undecryptable);
        }
        Ok(buf)
    }
}
