//! Signed X25519 prekeys, one-time X25519 prekeys and signed ML-KEM-1024 prekeys.
//!
//! Every prekey is signed by the identity key over a label, the full identity encoding
//! and every field of the prekey, so a server (or anyone) that changes any byte of a
//! prekey, or pairs it with another identity, produces a record that fails to verify.

use ml_kem::ml_kem_1024::{Ciphertext, DecapsulationKey, EncapsulationKey};
use ml_kem::{Decapsulate, Encapsulate, KeyExport, Seed};
use rand_core::CryptoRng;
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

use super::{IdentityKey, IdentityKeyPair, KeyError};
use crate::crypto::{is_low_order_x25519, random_x25519, x25519_public, Secret32};
use crate::labels;
use crate::wire::{Reader, Writer};

/// Length of an ML-KEM-1024 encapsulation (public) key.
pub const KEM_PUBLIC_KEY_BYTES: usize = 1568;
/// Length of an ML-KEM-1024 ciphertext.
pub const KEM_CIPHERTEXT_BYTES: usize = 1568;
/// Length of an ML-KEM-1024 decapsulation key seed (`d || z`, FIPS 203).
pub const KEM_SEED_BYTES: usize = 64;

/// The public part of a signed X25519 prekey, as published in bundles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPreKeyPublic {
    /// Identifier chosen by the owner, unique among its signed prekeys.
    pub id: u32,
    /// Creation time, in seconds since the Unix epoch (as given by the caller).
    pub created_at: u64,
    /// The X25519 public key.
    pub key: [u8; 32],
    /// Ed25519 signature by the identity key.
    pub signature: [u8; 64],
}

impl SignedPreKeyPublic {
    fn signed_data(identity: &IdentityKey, id: u32, created_at: u64, key: &[u8; 32]) -> Vec<u8> {
        let mut w = Writer::raw(66 + 44);
        identity.write(&mut w);
        w.u32(id).u64(created_at).bytes(key);
        w.into_bytes()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.id).u64(self.created_at).bytes(&self.key).bytes(&self.signature);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        Ok(SignedPreKeyPublic { id: r.u32()?, created_at: r.u64()?, key: r.array()?, signature: r.array()? })
    }

    /// Checks the signature and refuses a low-order key.
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), KeyError> {
        if is_low_order_x25519(&self.key) {
            return Err(KeyError::WeakKey("signed prekey"));
        }
        let data = Self::signed_data(identity, self.id, self.created_at, &self.key);
        if !identity.verify(labels::SIG_SIGNED_PREKEY, &data, &self.signature) {
            return Err(KeyError::BadSignature("signed prekey"));
        }
        Ok(())
    }
}

/// The public part of a one-time X25519 prekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneTimePreKeyPublic {
    /// Identifier, unique among the owner's one-time prekeys (never reused).
    pub id: u32,
    /// The X25519 public key.
    pub key: [u8; 32],
    /// Ed25519 signature by the identity key.
    pub signature: [u8; 64],
}

impl OneTimePreKeyPublic {
    fn signed_data(identity: &IdentityKey, id: u32, key: &[u8; 32]) -> Vec<u8> {
        let mut w = Writer::raw(66 + 36);
        identity.write(&mut w);
        w.u32(id).bytes(key);
        w.into_bytes()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.id).bytes(&self.key).bytes(&self.signature);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        Ok(OneTimePreKeyPublic { id: r.u32()?, key: r.array()?, signature: r.array()? })
    }

    /// Checks the signature and refuses a low-order key.
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), KeyError> {
        if is_low_order_x25519(&self.key) {
            return Err(KeyError::WeakKey("one-time prekey"));
        }
        let data = Self::signed_data(identity, self.id, &self.key);
        if !identity.verify(labels::SIG_ONE_TIME_PREKEY, &data, &self.signature) {
            return Err(KeyError::BadSignature("one-time prekey"));
        }
        Ok(())
    }
}

/// Whether an ML-KEM prekey may be used once or many times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PqPreKeyKind {
    /// Consumed by the first session that uses it.
    OneTime,
    /// Used when no one-time PQ prekey is left; reuse is allowed, replay is refused.
    LastResort,
}

impl PqPreKeyKind {
    fn byte(self) -> u8 {
        match self {
            PqPreKeyKind::OneTime => 0,
            PqPreKeyKind::LastResort => 1,
        }
    }

    fn from_byte(b: u8) -> Result<Self, KeyError> {
        match b {
            0 => Ok(PqPreKeyKind::OneTime),
            1 => Ok(PqPreKeyKind::LastResort),
            _ => Err(crate::wire::DecodeError::InvalidValue("pq prekey kind").into()),
        }
    }
}

/// The public part of a signed ML-KEM-1024 prekey.
#[derive(Clone, PartialEq, Eq)]
pub struct PqPreKeyPublic {
    /// Identifier, unique among the owner's PQ prekeys (never reused).
    pub id: u32,
    /// One-time or last-resort.
    pub kind: PqPreKeyKind,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// The 1568-byte ML-KEM-1024 encapsulation key.
    pub key: Box<[u8; KEM_PUBLIC_KEY_BYTES]>,
    /// Ed25519 signature by the identity key.
    pub signature: [u8; 64],
}

impl core::fmt::Debug for PqPreKeyPublic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PqPreKeyPublic").field("id", &self.id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl PqPreKeyPublic {
    fn signed_data(identity: &IdentityKey, id: u32, kind: PqPreKeyKind, created_at: u64, key: &[u8]) -> Vec<u8> {
        let mut w = Writer::raw(66 + 13 + KEM_PUBLIC_KEY_BYTES);
        identity.write(&mut w);
        w.u32(id).u8(kind.byte()).u64(created_at).bytes(key);
        w.into_bytes()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.id).u8(self.kind.byte()).u64(self.created_at).bytes(&self.key[..]).bytes(&self.signature);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let id = r.u32()?;
        let kind = PqPreKeyKind::from_byte(r.u8()?)?;
        let created_at = r.u64()?;
        let key: Box<[u8; KEM_PUBLIC_KEY_BYTES]> = Box::new(r.array()?);
        Ok(PqPreKeyPublic { id, kind, created_at, key, signature: r.array()? })
    }

    /// Checks the signature and that the key is a valid ML-KEM-1024 encapsulation key
    /// (the FIPS 203 modulus check).
    pub fn verify(&self, identity: &IdentityKey) -> Result<(), KeyError> {
        self.verified_key(identity).map(|_| ())
    }

    /// As [`PqPreKeyPublic::verify`], returning the parsed encapsulation key.
    pub(crate) fn verified_key(&self, identity: &IdentityKey) -> Result<Box<EncapsulationKey>, KeyError> {
        let data = Self::signed_data(identity, self.id, self.kind, self.created_at, &self.key[..]);
        if !identity.verify(labels::SIG_PQ_PREKEY, &data, &self.signature) {
            return Err(KeyError::BadSignature("pq prekey"));
        }
        let arr = ml_kem::array::Array::try_from(&self.key[..]).map_err(|_| KeyError::InvalidPqKey)?;
        Ok(Box::new(EncapsulationKey::new(&arr).map_err(|_| KeyError::InvalidPqKey)?))
    }
}

/// Encapsulates a fresh shared secret to a verified ML-KEM-1024 key.
pub(crate) fn encapsulate<R: CryptoRng + ?Sized>(
    ek: &EncapsulationKey,
    rng: &mut R,
) -> (Box<[u8; KEM_CIPHERTEXT_BYTES]>, Secret32) {
    let (ct, mut ss) = ek.encapsulate_with_rng(rng);
    let mut ct_out = Box::new([0u8; KEM_CIPHERTEXT_BYTES]);
    ct_out.copy_from_slice(ct.as_slice());
    let mut secret = Secret32([0; 32]);
    secret.0.copy_from_slice(ss.as_slice());
    ss.as_mut_slice().zeroize();
    (ct_out, secret)
}

/// Expands an ML-KEM-1024 seed into its decapsulation key. The seed is copied into
/// ML-KEM's `Seed` type for the call; that copy is wiped here (the key itself wipes on
/// drop; copies the compiler or ML-KEM make on the stack are not reached).
fn expand(seed: &[u8; KEM_SEED_BYTES]) -> Box<DecapsulationKey> {
    let mut s = Seed::default();
    s.copy_from_slice(&seed[..]);
    // `Seed` is `Copy`: the call takes a copy, and `s` is still ours to wipe.
    let dk = Box::new(DecapsulationKey::from_seed(s));
    s.as_mut_slice().zeroize();
    dk
}

/// A signed X25519 prekey with its secret. Wiped on drop, never printed.
#[derive(Clone)]
pub struct SignedPreKey {
    pub(crate) secret: StaticSecret,
    pub(crate) public: SignedPreKeyPublic,
}

/// A one-time X25519 prekey with its secret. Wiped on drop, never printed.
#[derive(Clone)]
pub struct OneTimePreKey {
    pub(crate) secret: StaticSecret,
    pub(crate) public: OneTimePreKeyPublic,
}

/// An ML-KEM-1024 prekey with its decapsulation key. Wiped on drop, never printed.
#[derive(Clone)]
pub struct PqPreKey {
    pub(crate) seed: Box<[u8; KEM_SEED_BYTES]>,
    /// Expanded from the seed on first use, or when an import checks the seed against
    /// the public key.
    decapsulation: std::sync::OnceLock<Box<DecapsulationKey>>,
    pub(crate) public: PqPreKeyPublic,
}

macro_rules! redacted_debug {
    ($t:ty) => {
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($t), " {{ id: {}, secret: <redacted> }}"), self.public.id)
            }
        }
    };
}
redacted_debug!(SignedPreKey);
redacted_debug!(OneTimePreKey);
redacted_debug!(PqPreKey);

impl SignedPreKey {
    /// Generates and signs a new signed prekey.
    pub fn generate<R: CryptoRng + ?Sized>(identity: &IdentityKeyPair, id: u32, created_at: u64, rng: &mut R) -> Self {
        let secret = random_x25519(rng);
        let key = x25519_public(&secret);
        let data = SignedPreKeyPublic::signed_data(identity.public(), id, created_at, &key);
        let signature = identity.sign(labels::SIG_SIGNED_PREKEY, &data);
        SignedPreKey { secret, public: SignedPreKeyPublic { id, created_at, key, signature } }
    }

    /// The public, signed part.
    pub fn public(&self) -> &SignedPreKeyPublic {
        &self.public
    }

    pub(crate) fn write_secret(&self, w: &mut Writer) {
        w.bytes(self.secret.as_bytes());
        self.public.write(w);
    }

    pub(crate) fn read_secret(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let secret = StaticSecret::from(r.array::<32>()?);
        let public = SignedPreKeyPublic::read(r)?;
        if x25519_public(&secret) != public.key {
            return Err(KeyError::InconsistentKeyPair);
        }
        Ok(SignedPreKey { secret, public })
    }
}

impl OneTimePreKey {
    /// Generates and signs a new one-time prekey.
    pub fn generate<R: CryptoRng + ?Sized>(identity: &IdentityKeyPair, id: u32, rng: &mut R) -> Self {
        let secret = random_x25519(rng);
        let key = x25519_public(&secret);
        let data = OneTimePreKeyPublic::signed_data(identity.public(), id, &key);
        let signature = identity.sign(labels::SIG_ONE_TIME_PREKEY, &data);
        OneTimePreKey { secret, public: OneTimePreKeyPublic { id, key, signature } }
    }

    /// The public, signed part.
    pub fn public(&self) -> &OneTimePreKeyPublic {
        &self.public
    }

    pub(crate) fn write_secret(&self, w: &mut Writer) {
        w.bytes(self.secret.as_bytes());
        self.public.write(w);
    }

    pub(crate) fn read_secret(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let secret = StaticSecret::from(r.array::<32>()?);
        let public = OneTimePreKeyPublic::read(r)?;
        if x25519_public(&secret) != public.key {
            return Err(KeyError::InconsistentKeyPair);
        }
        Ok(OneTimePreKey { secret, public })
    }
}

impl PqPreKey {
    /// Generates and signs a new ML-KEM-1024 prekey.
    pub fn generate<R: CryptoRng + ?Sized>(
        identity: &IdentityKeyPair,
        id: u32,
        kind: PqPreKeyKind,
        created_at: u64,
        rng: &mut R,
    ) -> Self {
        let mut seed = Box::new([0u8; KEM_SEED_BYTES]);
        rng.fill_bytes(&mut seed[..]);
        let dk = expand(&seed);
        let mut key = Box::new([0u8; KEM_PUBLIC_KEY_BYTES]);
        key.copy_from_slice(dk.encapsulation_key().to_bytes().as_slice());
        let data = PqPreKeyPublic::signed_data(identity.public(), id, kind, created_at, &key[..]);
        let signature = identity.sign(labels::SIG_PQ_PREKEY, &data);
        let decapsulation = std::sync::OnceLock::from(dk);
        PqPreKey { seed, decapsulation, public: PqPreKeyPublic { id, kind, created_at, key, signature } }
    }

    /// The public, signed part.
    pub fn public(&self) -> &PqPreKeyPublic {
        &self.public
    }

    /// Decapsulates a ciphertext. ML-KEM uses implicit rejection: a wrong ciphertext
    /// gives a pseudorandom secret, which then fails at the first AEAD check.
    pub(crate) fn decapsulate(&self, ct: &[u8; KEM_CIPHERTEXT_BYTES]) -> Secret32 {
        let ct = Ciphertext::from(*ct);
        let dk = self.decapsulation.get_or_init(|| expand(&self.seed));
        let mut ss = dk.decapsulate(&ct);
        let mut out = Secret32([0; 32]);
        out.0.copy_from_slice(ss.as_slice());
        ss.as_mut_slice().zeroize();
        out
    }

    pub(crate) fn write_secret(&self, w: &mut Writer) {
        w.bytes(&self.seed[..]);
        self.public.write(w);
    }

    /// Whether the stored seed regenerates the stored public key. Expands the
    /// decapsulation key (a key generation) and keeps it for later decapsulations.
    pub(crate) fn seed_matches_public(&self) -> bool {
        let dk = self.decapsulation.get_or_init(|| expand(&self.seed));
        dk.encapsulation_key().to_bytes().as_slice() == &self.public.key[..]
    }

    pub(crate) fn read_secret(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let seed: Box<[u8; KEM_SEED_BYTES]> = Box::new(r.array()?);
        let public = PqPreKeyPublic::read(r)?;
        Ok(PqPreKey { seed, decapsulation: std::sync::OnceLock::new(), public })
    }
}

impl Drop for PqPreKey {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}
