//! Sender keys: a member device's own sending state per group, and its copies of the
//! other members' keys.
//!
//! A sender key generation is a random key id, a random chain (group/chain.rs) and a
//! fresh Ed25519 signing key. Every generation gets a new signing key, so a signing
//! key stolen from one generation cannot sign messages of the next (Sender Keys+).

use std::collections::VecDeque;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::wire::{DecodeError, Reader, Writer};

use super::chain::{ReceiverChain, SenderChain};

/// Generations of one sender's key a receiver keeps (older ones are dropped).
pub const MAX_SENDER_GENERATIONS: usize = 4;

/// When a sender rotates its key by itself (besides every removal, every device
/// replacement and every restore of older state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate after this many messages on one generation (0: never by count).
    pub max_messages: u32,
    /// Rotate when a generation is this old, in seconds (0: never by age).
    pub max_age_secs: u64,
}

impl Default for RotationPolicy {
    /// 1,000 messages or 7 days, whichever comes first.
    fn default() -> Self {
        RotationPolicy { max_messages: 1_000, max_age_secs: 7 * 24 * 3600 }
    }
}

/// This device's sending state in one group.
#[derive(Clone)]
pub(crate) struct OwnSenderKey {
    pub(crate) key_id: u32,
    pub(crate) chain: SenderChain,
    /// The generation's signing key, kept expanded (its public key computed once, not
    /// per message); its seed is wiped on drop.
    signing: SigningKey,
    pub(crate) created_at: u64,
    pub(crate) sent: u32,
    /// Set when the key must not be used again: after a restore (import), a removal
    /// or a replacement. The next send rotates first.
    pub(crate) retired: bool,
}

impl core::fmt::Debug for OwnSenderKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnSenderKey").field("key_id", &self.key_id).field("sent", &self.sent).finish_non_exhaustive()
    }
}

impl OwnSenderKey {
    /// A new generation: random key id, chain and signing key, starting at iteration 0.
    pub(crate) fn generate<R: CryptoRng + ?Sized>(now: u64, rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let signing = SigningKey::from_bytes(&seed);
        rng.fill_bytes(&mut seed);
        let chain = SenderChain::new(seed, 0);
        seed.zeroize();
        let mut id = [0u8; 4];
        rng.fill_bytes(&mut id);
        OwnSenderKey { key_id: u32::from_be_bytes(id), chain, signing, created_at: now, sent: 0, retired: false }
    }

    pub(crate) fn signing_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub(crate) fn sign(&self, data: &[&[u8]]) -> [u8; 64] {
        let msg = data.concat();
        self.signing.sign(&msg).to_bytes()
    }

    /// Whether the policy (or a retirement) asks for a new generation before sending.
    pub(crate) fn due(&self, policy: &RotationPolicy, now: u64) -> bool {
        self.retired
            || (policy.max_messages != 0 && self.sent >= policy.max_messages)
            || (policy.max_age_secs != 0 && now.saturating_sub(self.created_at) >= policy.max_age_secs)
    }

    pub(crate) const STATE_BYTES: usize = 4 + SenderChain::STATE_BYTES + 32 + 8 + 4 + 1;

    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        f("own sender chain key", self.chain.key_bytes());
        f("own sender signing key", self.signing.as_bytes());
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.key_id);
        self.chain.write(w);
        w.bytes(self.signing.as_bytes()).u64(self.created_at).u32(self.sent).flag(self.retired);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key_id = r.u32()?;
        let chain = SenderChain::read(r)?;
        let mut seed = r.array()?;
        let signing = SigningKey::from_bytes(&seed);
        seed.zeroize();
        let created_at = r.u64()?;
        let sent = r.u32()?;
        let retired = r.flag("retired flag")?;
        Ok(OwnSenderKey { key_id, chain, signing, created_at, sent, retired })
    }
}

/// A copy of another member's sender key generation.
#[derive(Clone, Debug)]
pub(crate) struct ReceivedKey {
    pub(crate) key_id: u32,
    /// The generation's public signing key, decompressed once (when the distribution
    /// is accepted or the state read), not per message.
    pub(crate) signing: VerifyingKey,
    pub(crate) chain: ReceiverChain,
}

impl ReceivedKey {
    pub(crate) fn verify(&self, data: &[u8], signature: &[u8; 64]) -> bool {
        self.signing.verify_strict(data, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        4 + 32 + self.chain.encoded_len()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.key_id).bytes(self.signing.as_bytes());
        self.chain.write(w);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key_id = r.u32()?;
        let signing =
            VerifyingKey::from_bytes(&r.array()?).map_err(|_| DecodeError::InvalidValue("sender signing key"))?;
        let chain = ReceiverChain::read(r)?;
        Ok(ReceivedKey { key_id, signing, chain })
    }
}

/// The generations held for one sender, newest last.
pub(crate) type Generations = VecDeque<ReceivedKey>;
