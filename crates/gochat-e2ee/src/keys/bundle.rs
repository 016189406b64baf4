//! The prekey bundle: what a device publishes so others can start sessions with it.

use super::{IdentityKey, KeyError, OneTimePreKeyPublic, PqPreKeyPublic, SignedPreKeyPublic};
use super::{IDENTITY_KEY_BYTES, KEM_PUBLIC_KEY_BYTES};
use crate::wire::{type_byte, Reader, Writer};
use ml_kem::ml_kem_1024::EncapsulationKey;

/// The exact size of a bundle that carries a one-time prekey; no bundle is larger.
pub const MAX_BUNDLE_BYTES: usize = 2 + IDENTITY_KEY_BYTES + SPK_BYTES + 1 + OPK_BYTES + PQ_BYTES;
pub(crate) const SPK_BYTES: usize = 4 + 8 + 32 + 64;
pub(crate) const OPK_BYTES: usize = 4 + 32 + 64;
pub(crate) const PQ_BYTES: usize = 4 + 1 + 8 + KEM_PUBLIC_KEY_BYTES + 64;

/// A verified prekey bundle.
///
/// A value of this type has passed every check: each signature verifies under the
/// bundle's identity key, no X25519 key is of low order, and the ML-KEM key is valid.
/// Changing any byte of an encoded bundle makes [`PreKeyBundle::from_bytes`] refuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    identity: IdentityKey,
    signed_prekey: SignedPreKeyPublic,
    one_time_prekey: Option<OneTimePreKeyPublic>,
    pq_prekey: PqPreKeyPublic,
    /// `pq_prekey.key`, parsed and checked once by `new`.
    pq_key: Box<EncapsulationKey>,
}

impl PreKeyBundle {
    /// Assembles a bundle from published parts (as a server would), verifying them all.
    pub fn new(
        identity: IdentityKey,
        signed_prekey: SignedPreKeyPublic,
        one_time_prekey: Option<OneTimePreKeyPublic>,
        pq_prekey: PqPreKeyPublic,
    ) -> Result<Self, KeyError> {
        signed_prekey.verify(&identity)?;
        if let Some(opk) = &one_time_prekey {
            opk.verify(&identity)?;
        }
        let pq_key = pq_prekey.verified_key(&identity)?;
        Ok(PreKeyBundle { identity, signed_prekey, one_time_prekey, pq_prekey, pq_key })
    }

    /// Decodes and verifies an encoded bundle (type 0x02, version 1).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::open(bytes, type_byte::PREKEY_BUNDLE, MAX_BUNDLE_BYTES)?;
        let identity = IdentityKey::read(&mut r)?;
        let signed_prekey = SignedPreKeyPublic::read(&mut r)?;
        let one_time_prekey =
            if r.flag("one-time prekey flag")? { Some(OneTimePreKeyPublic::read(&mut r)?) } else { None };
        let pq_prekey = PqPreKeyPublic::read(&mut r)?;
        r.finish()?;
        Self::new(identity, signed_prekey, one_time_prekey, pq_prekey)
    }

    /// The encoding specified in `docs/protocol.md` ("Prekey bundle").
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(type_byte::PREKEY_BUNDLE, MAX_BUNDLE_BYTES);
        self.identity.write(&mut w);
        self.signed_prekey.write(&mut w);
        w.flag(self.one_time_prekey.is_some());
        if let Some(opk) = &self.one_time_prekey {
            opk.write(&mut w);
        }
        self.pq_prekey.write(&mut w);
        w.into_bytes()
    }

    /// The owner's identity.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// The signed X25519 prekey.
    pub fn signed_prekey(&self) -> &SignedPreKeyPublic {
        &self.signed_prekey
    }

    /// The one-time X25519 prekey, if the bundle carries one.
    pub fn one_time_prekey(&self) -> Option<&OneTimePreKeyPublic> {
        self.one_time_prekey.as_ref()
    }

    /// The signed ML-KEM-1024 prekey (one-time or last-resort).
    pub fn pq_prekey(&self) -> &PqPreKeyPublic {
        &self.pq_prekey
    }

    /// Encapsulates a fresh ML-KEM shared secret to the bundle's PQ prekey.
    pub(crate) fn encapsulate<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> (Box<[u8; super::KEM_CIPHERTEXT_BYTES]>, crate::crypto::Secret32) {
        super::prekeys::encapsulate(&self.pq_key, rng)
    }
}
