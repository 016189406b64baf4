//! Device identity: an Ed25519 signing key and an X25519 agreement key.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

use super::KeyError;
use crate::crypto::{is_low_order_x25519, sha256, x25519_public};
use crate::labels;
use crate::wire::{type_byte, Reader, Writer};

/// Length of an encoded [`IdentityKey`]: type, version, Ed25519 key, X25519 key.
pub const IDENTITY_KEY_BYTES: usize = 2 + 32 + 32;

/// The public identity of a device: its Ed25519 verification key and X25519 key.
///
/// A value of this type always holds the canonical encoding of a valid, non-weak
/// Ed25519 point and a canonical, non-low-order X25519 key: the constructor refuses
/// anything else, so one key has exactly one encoding (and one fingerprint).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    /// The compressed Ed25519 key; decompressed when a signature is checked.
    signing: [u8; 32],
    agreement: [u8; 32],
}

/// `p = 2^255 - 19`, little-endian.
const P_LE: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// Whether a 32-byte little-endian field encoding, with bit 255 cleared, is `>= p`.
pub(crate) fn is_non_canonical_field(bytes: &[u8; 32]) -> bool {
    let mut v = *bytes;
    v[31] &= 0x7f;
    // Compare little-endian values from the most significant byte down.
    for i in (0..32).rev() {
        if v[i] != P_LE[i] {
            return v[i] > P_LE[i];
        }
    }
    true
}

impl core::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "IdentityKey({})", &self.fingerprint_hex()[..16])
    }
}

impl IdentityKey {
    /// Decodes and validates an encoded identity key (66 bytes, type 0x01, version 1).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::open(bytes, type_byte::IDENTITY_KEY, IDENTITY_KEY_BYTES)?;
        let key = Self::read_body(&mut r)?;
        r.finish()?;
        Ok(key)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        r.header(type_byte::IDENTITY_KEY)?;
        Self::read_body(r)
    }

    fn read_body(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let signing: [u8; 32] = r.array()?;
        let agreement: [u8; 32] = r.array()?;
        Self::from_parts(signing, agreement)
    }

    /// Reads an identity from state that was already authenticated (a snapshot) and
    /// validated when it was first accepted: checks the encodings and the X25519 key but
    /// skips the Ed25519 decompression (done when a signature is checked).
    pub(crate) fn read_trusted(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        r.header(type_byte::IDENTITY_KEY)?;
        let signing: [u8; 32] = r.array()?;
        let agreement: [u8; 32] = r.array()?;
        Self::check_encodings(&signing, &agreement)?;
        Ok(IdentityKey { signing, agreement })
    }

    /// The checks that need no point decompression: canonical encodings, X25519 not of
    /// low order.
    fn check_encodings(signing: &[u8; 32], agreement: &[u8; 32]) -> Result<(), KeyError> {
        // Ed25519: the y coordinate (bit 255 is the sign of x) must be < p.
        if is_non_canonical_field(signing) {
            return Err(KeyError::InvalidIdentityKey);
        }
        // X25519: bit 255 is ignored by the function, so only 0 is canonical.
        if agreement[31] & 0x80 != 0 {
            return Err(KeyError::InvalidIdentityKey);
        }
        if is_low_order_x25519(agreement) {
            return Err(KeyError::WeakKey("identity agreement key"));
        }
        Ok(())
    }

    fn from_parts(signing: [u8; 32], agreement: [u8; 32]) -> Result<Self, KeyError> {
        if is_non_canonical_field(&signing) {
            return Err(KeyError::InvalidIdentityKey);
        }
        let vk = VerifyingKey::from_bytes(&signing).map_err(|_| KeyError::InvalidIdentityKey)?;
        if vk.is_weak() {
            return Err(KeyError::WeakKey("identity signing key"));
        }
        Self::check_encodings(&signing, &agreement)?;
        Ok(IdentityKey { signing, agreement })
    }

    /// The 66-byte encoding: `0x01 || 0x01 || ed25519 || x25519`.
    pub fn to_bytes(&self) -> [u8; IDENTITY_KEY_BYTES] {
        let mut out = [0u8; IDENTITY_KEY_BYTES];
        out[0] = type_byte::IDENTITY_KEY;
        out[1] = crate::wire::WIRE_VERSION;
        out[2..34].copy_from_slice(&self.signing);
        out[34..].copy_from_slice(&self.agreement);
        out
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.to_bytes());
    }

    /// The Ed25519 verification key.
    pub fn signing_key_bytes(&self) -> &[u8; 32] {
        &self.signing
    }

    /// The X25519 agreement key.
    pub fn agreement_key_bytes(&self) -> &[u8; 32] {
        &self.agreement
    }

    /// The stable fingerprint: `SHA-256("GoChat-E2EE v1 identity fingerprint" || encoding)`.
    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&[labels::IDENTITY_FINGERPRINT, &self.to_bytes()])
    }

    /// The fingerprint as 64 lowercase hex digits.
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Verifies an Ed25519 signature by this identity over `label || message` with the
    /// strict rules (no small-order components, canonical `S`), so signatures are not
    /// malleable.
    pub(crate) fn verify(&self, label: &[u8], message: &[u8], signature: &[u8; 64]) -> bool {
        let mut data = Vec::with_capacity(label.len() + message.len());
        data.extend_from_slice(label);
        data.extend_from_slice(message);
        match VerifyingKey::from_bytes(&self.signing) {
            Ok(vk) => vk.verify_strict(&data, &Signature::from_bytes(signature)).is_ok(),
            Err(_) => false,
        }
    }
}

/// The private half of a device identity. Wiped on drop, never printed.
#[derive(Clone)]
pub struct IdentityKeyPair {
    signing: SigningKey,
    agreement: StaticSecret,
    public: IdentityKey,
}

impl core::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "IdentityKeyPair {{ public: {:?}, secret: <redacted> }}", self.public)
    }
}

impl IdentityKeyPair {
    /// Generates a fresh identity from `rng`.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let mut agreement = [0u8; 32];
            rng.fill_bytes(&mut agreement);
            let out = Self::from_secret_bytes(&seed, &agreement);
            seed.zeroize();
            agreement.zeroize();
            // Astronomically unlikely to loop: only a low-order/weak result is refused.
            if let Ok(k) = out {
                return k;
            }
        }
    }

    /// Rebuilds an identity from its secret bytes (Ed25519 seed, X25519 scalar).
    pub(crate) fn from_secret_bytes(seed: &[u8; 32], agreement: &[u8; 32]) -> Result<Self, KeyError> {
        let signing = SigningKey::from_bytes(seed);
        let agreement = StaticSecret::from(*agreement);
        let public = IdentityKey::from_parts(signing.verifying_key().to_bytes(), x25519_public(&agreement))?;
        Ok(IdentityKeyPair { signing, agreement, public })
    }

    /// The secret bytes (Ed25519 seed, X25519 scalar), borrowed: no copy to wipe.
    pub(crate) fn secret_bytes(&self) -> (&[u8; 32], &[u8; 32]) {
        (self.signing.as_bytes(), self.agreement.as_bytes())
    }

    /// The public identity.
    pub fn public(&self) -> &IdentityKey {
        &self.public
    }

    /// Calls `f` with the Ed25519 seed and the X25519 secret (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        f("identity seed", self.signing.as_bytes());
        f("identity agreement key", self.agreement.as_bytes());
    }

    pub(crate) fn agreement(&self) -> &StaticSecret {
        &self.agreement
    }

    /// Signs `label || message` with the Ed25519 key.
    pub(crate) fn sign(&self, label: &[u8], message: &[u8]) -> [u8; 64] {
        let mut data = Vec::with_capacity(label.len() + message.len());
        data.extend_from_slice(label);
        data.extend_from_slice(message);
        self.signing.sign(&data).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn identity_round_trips_and_refuses_every_bit_flip() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = IdentityKeyPair::generate(&mut rng);
        let bytes = id.public().to_bytes();
        assert_eq!(IdentityKey::from_bytes(&bytes).unwrap(), *id.public());
        for i in 0..bytes.len() * 8 {
            let mut b = bytes;
            b[i / 8] ^= 1 << (i % 8);
            if i == IDENTITY_KEY_BYTES * 8 - 1 {
                // Bit 255 of IKdh: the same X25519 key, non-canonically encoded.
                assert_eq!(IdentityKey::from_bytes(&b), Err(KeyError::InvalidIdentityKey));
            } else if let Ok(k) = IdentityKey::from_bytes(&b) {
                // A flipped key bit can still be a valid key, but never the same identity.
                assert_ne!(k.fingerprint(), id.public().fingerprint());
            }
        }
        assert!(IdentityKey::from_bytes(&bytes[..65]).is_err());
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let id = IdentityKeyPair::generate(&mut rng);
        let good = id.public().to_bytes();
        // X25519 with bit 255 set: the same key to X25519, a second encoding.
        let mut b = good;
        b[65] |= 0x80;
        assert_eq!(IdentityKey::from_bytes(&b), Err(KeyError::InvalidIdentityKey));
        let mut r = Reader::raw(&b);
        assert_eq!(IdentityKey::read_trusted(&mut r), Err(KeyError::InvalidIdentityKey));
        // Ed25519 with y = p + k: find small k where dalek accepts y = p + k as a
        // non-weak point (the same point as y = k); it must be refused.
        let mut refused_but_dalek_accepts = 0;
        for k in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut y = P_LE;
                y[0] = 0xed + k;
                y[31] |= sign;
                assert!(is_non_canonical_field(&y));
                let mut b = good;
                b[2..34].copy_from_slice(&y);
                assert!(IdentityKey::from_bytes(&b).is_err(), "y = p + {k} accepted");
                let mut r = Reader::raw(&b);
                assert!(IdentityKey::read_trusted(&mut r).is_err());
                if VerifyingKey::from_bytes(&y).is_ok_and(|vk| !vk.is_weak()) {
                    refused_but_dalek_accepts += 1;
                }
            }
        }
        assert!(refused_but_dalek_accepts > 0, "no non-canonical y accepted by dalek was tried");
        // The boundary: p - 1 is canonical, p is not.
        let mut pm1 = P_LE;
        pm1[0] = 0xec;
        assert!(!is_non_canonical_field(&pm1));
        assert!(is_non_canonical_field(&P_LE));
        assert!(!is_non_canonical_field(id.public().signing_key_bytes()));
    }

    #[test]
    fn trusted_read_equals_checked_read() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let id = IdentityKeyPair::generate(&mut rng);
        let bytes = id.public().to_bytes();
        let mut r = Reader::raw(&bytes);
        let k = IdentityKey::read_trusted(&mut r).unwrap();
        assert_eq!(k, *id.public());
        let sig = id.sign(b"A", b"m");
        assert!(k.verify(b"A", b"m", &sig));
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let id = IdentityKeyPair::generate(&mut rng);
        let s = format!("{id:?}");
        assert!(s.contains("redacted"));
        let (seed, _) = id.secret_bytes();
        let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!s.contains(&hex[..8]));
    }

    #[test]
    fn signatures_are_domain_separated() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = IdentityKeyPair::generate(&mut rng);
        let sig = id.sign(b"A", b"msg");
        assert!(id.public().verify(b"A", b"msg", &sig));
        assert!(!id.public().verify(b"B", b"msg", &sig));
    }
}
