//! Thin wrappers over the primitives, written once so every module uses them the same way.
//!
//! - HKDF-SHA256 and HMAC-SHA256 (RFC 5869 / RFC 2104),
//! - AES-256-GCM with 12-byte nonces and the full 16-byte tag,
//! - X25519 with the non-contributory (all-zero) output refused,
//! - a redacting, zeroizing container for 32-byte secrets.
//!
//! Nothing here fails open: HMAC takes its key as one zero-padded block (RFC 2104 pads
//! shorter keys the same way), so it cannot fail; HKDF and the AEADs report a refused
//! length as a [`CryptoError`] instead of returning a zero key or an empty ciphertext.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use aes_gcm_siv::Aes256GcmSiv;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of an AES-256-GCM tag.
pub const AEAD_TAG_BYTES: usize = 16;
/// Length of an AES-256-GCM nonce.
pub const AEAD_NONCE_BYTES: usize = 12;

/// A primitive refused its input. Every caller bounds its inputs far below these limits,
/// so this is never caused by peer input; it is reported (code `Internal`) rather than
/// papered over with a zero key or an empty ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// HKDF-Expand was asked for more than 255 * 32 bytes.
    #[error("HKDF output of {0} bytes is too long")]
    KdfOutputTooLong(usize),
    /// The AEAD refused the input length (over its per-message limit).
    #[error("AEAD input of {0} bytes is too large")]
    AeadInputTooLarge(usize),
}

/// 32 secret bytes that are wiped on drop and never printed.
///
/// Deliberately not `PartialEq`: a derived comparison would stop at the first differing
/// byte and leak timing; tests compare `as_bytes()` instead.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Secret32(pub(crate) [u8; 32]);

impl Secret32 {
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl core::fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret32(<redacted>)")
    }
}

/// Marker error: an X25519 output was all zeros (the peer's key was low-order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonContributory;

/// X25519 of our secret and their public key, refusing an all-zero result.
///
/// An all-zero output means the public key was of low order, so the "shared" secret is
/// known to everyone; using it would silently drop that DH term from the key schedule.
pub(crate) fn dh(ours: &StaticSecret, theirs: &[u8; 32]) -> Result<Secret32, NonContributory> {
    let shared = ours.diffie_hellman(&PublicKey::from(*theirs));
    if !shared.was_contributory() {
        return Err(NonContributory);
    }
    Ok(Secret32(shared.to_bytes()))
}

/// A fresh X25519 secret from `rng` (the 32 random bytes are wiped after use).
pub(crate) fn random_x25519<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> StaticSecret {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    let s = StaticSecret::from(b);
    b.zeroize();
    s
}

/// The X25519 public key of a secret.
pub(crate) fn x25519_public(secret: &StaticSecret) -> [u8; 32] {
    PublicKey::from(secret).to_bytes()
}

/// Low-order points of Curve25519 and its twist, as u-coordinates with the top bit
/// cleared. Non-canonical encodings (u >= p) are reduced first, so all 12 encodings of
/// these 5 points are caught. Verified in tests against an actual scalar multiplication.
const LOW_ORDER_U: [[u8; 32]; 5] = [
    // 0 (order 4)
    [0; 32],
    // 1 (order 1)
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    // 325606250916557431795983626356110631294008115727848805560023387167927233504 (order 8)
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
        0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    ],
    // 39382357235489614581723060781553021112529911719440698176882885853963445705823 (order 8)
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44,
        0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    ],
    // p - 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

/// True if the X25519 public key is one of the low-order points (of the curve or its
/// twist), in any of its encodings. Such a key makes every DH with it all-zero.
pub(crate) fn is_low_order_x25519(key: &[u8; 32]) -> bool {
    let mut u = *key;
    u[31] &= 0x7f;
    // Reduce u mod p for the 19 non-canonical values p..2^255-1 (p = 2^255 - 19).
    let high_all_ones = u[1..31].iter().all(|b| *b == 0xff) && u[31] == 0x7f;
    if high_all_ones && u[0] >= 0xed {
        let low = u[0] - 0xed;
        u = [0; 32];
        u[0] = low;
    }
    LOW_ORDER_U.contains(&u)
}

/// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` into `out`.
/// Refuses (and leaves `out` zeroed, never used) an output over 255 * 32 bytes.
pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    hk.expand(info, out).map_err(|_| {
        out.zeroize();
        CryptoError::KdfOutputTooLong(out.len())
    })
}

/// HMAC-SHA256 keyed with a 32-byte key, built infallibly: the key is given as one
/// 64-byte block, zero-padded, exactly as RFC 2104 pads a key shorter than the block.
fn hmac_keyed(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac
}

/// HMAC-SHA256 of `data` under `key`.
#[cfg(test)]
pub(crate) fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = hmac_keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of two messages under one key, sharing the key schedule.
pub(crate) fn hmac_sha256_pair(key: &[u8; 32], a: &[u8], b: &[u8]) -> [[u8; 32]; 2] {
    let keyed = hmac_keyed(key);
    let mut first = keyed.clone();
    first.update(a);
    let mut second = keyed;
    second.update(b);
    [first.finalize().into_bytes().into(), second.finalize().into_bytes().into()]
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// An AES-256-GCM key with its nonce, derived together and wiped together.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct AeadKey {
    pub(crate) key: [u8; 32],
    pub(crate) nonce: [u8; AEAD_NONCE_BYTES],
}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

impl AeadKey {
    /// Derives a key and nonce from `ikm` with HKDF-SHA256 (salt: 32 zero bytes).
    pub(crate) fn derive(ikm: &[u8], info: &[u8]) -> Result<Self, CryptoError> {
        Self::derive_salted(&[0u8; 32], ikm, info)
    }

    /// Derives a key and nonce: `key || nonce = HKDF-SHA256(salt, ikm, info, 44)`.
    pub(crate) fn derive_salted(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<Self, CryptoError> {
        let mut okm = [0u8; 32 + AEAD_NONCE_BYTES];
        hkdf(salt, ikm, info, &mut okm)?;
        let mut out = AeadKey { key: [0; 32], nonce: [0; AEAD_NONCE_BYTES] };
        out.key.copy_from_slice(&okm[..32]);
        out.nonce.copy_from_slice(&okm[32..]);
        okm.zeroize();
        Ok(out)
    }

    /// Encrypts `plaintext`, returning ciphertext with the 16-byte tag appended.
    /// Refused only for inputs over the AEAD's limit (about 64 GiB).
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256Gcm::new(&self.key.into());
        cipher
            .encrypt(&self.nonce.into(), Payload { msg: plaintext, aad })
            .map_err(|_| CryptoError::AeadInputTooLarge(plaintext.len()))
    }

    /// Encrypts with AES-256-GCM-SIV (RFC 8452), nonce-misuse resistant: sealing two
    /// plaintexts under the same key and nonce reveals only whether they are equal.
    /// Refused only for inputs over the AEAD's size limit.
    pub(crate) fn seal_siv(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = Aes256GcmSiv::new(&self.key.into());
        cipher
            .encrypt(&self.nonce.into(), Payload { msg: plaintext, aad })
            .map_err(|_| CryptoError::AeadInputTooLarge(plaintext.len()))
    }

    /// Decrypts and authenticates AES-256-GCM-SIV; `None` if the tag does not verify.
    pub(crate) fn open_siv(&self, aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let cipher = Aes256GcmSiv::new(&self.key.into());
        cipher.decrypt(&self.nonce.into(), Payload { msg: ciphertext, aad }).ok()
    }

    /// Decrypts and authenticates; `None` if the tag does not verify (compared in
    /// constant time by the AEAD).
    pub(crate) fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let cipher = Aes256Gcm::new(&self.key.into());
        cipher.decrypt(&self.nonce.into(), Payload { msg: ciphertext, aad }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_order_table_matches_scalar_multiplication() {
        let p_minus = |k: u8| {
            let mut v = [0xffu8; 32];
            v[0] = k;
            v[31] = 0x7f;
            v
        };
        let scalar = StaticSecret::from([0x42u8; 32]);
        let mut candidates: Vec<[u8; 32]> = LOW_ORDER_U.to_vec();
        // Non-canonical encodings p, p+1 and the same keys with the top bit set.
        candidates.push(p_minus(0xed));
        candidates.push(p_minus(0xee));
        for c in candidates.clone() {
            let mut hi = c;
            hi[31] |= 0x80;
            candidates.push(hi);
        }
        for c in &candidates {
            assert!(is_low_order_x25519(c), "{c:02x?} not flagged");
            assert!(dh(&scalar, c).is_err(), "{c:02x?} is not actually low order");
        }
        let good = x25519_public(&StaticSecret::from([7u8; 32]));
        assert!(!is_low_order_x25519(&good));
        assert!(dh(&scalar, &good).is_ok());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret32([9; 32]);
        assert_eq!(format!("{s:?}"), "Secret32(<redacted>)");
        let k = AeadKey::derive(b"x", b"y").unwrap();
        assert!(!format!("{k:?}").contains('9'));
    }

    #[test]
    fn aead_refuses_any_modification() {
        let k = AeadKey::derive(b"ikm", b"info").unwrap();
        let ct = k.seal(b"ad", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + AEAD_TAG_BYTES);
        assert_eq!(k.open(b"ad", &ct).unwrap(), b"hello");
        assert!(k.open(b"ae", &ct).is_none());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(k.open(b"ad", &bad).is_none());
    }

    #[test]
    fn hmac_with_padded_block_key_is_rfc_2104_hmac() {
        // RFC 4231 test case 2 uses a short key; here: the padded-block construction
        // equals HMAC keyed with the 32-byte key itself, for several keys and messages.
        for seed in 0u8..8 {
            let key = [seed.wrapping_mul(37); 32];
            let data = vec![seed; usize::from(seed) * 9];
            let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
            reference.update(&data);
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(hmac_sha256(&key, &data), expected);
            assert_eq!(hmac_sha256_pair(&key, &data, b"x")[0], expected);
        }
    }

    #[test]
    fn refused_lengths_are_errors_not_zero_keys() {
        let mut out = vec![0xaau8; 255 * 32 + 1];
        assert_eq!(hkdf(b"s", b"k", b"i", &mut out), Err(CryptoError::KdfOutputTooLong(255 * 32 + 1)));
        assert!(out.iter().all(|b| *b == 0), "a refused output is wiped, never half-filled");
        let mut max = vec![0u8; 255 * 32];
        assert_eq!(hkdf(b"s", b"k", b"i", &mut max), Ok(()));
    }
}
