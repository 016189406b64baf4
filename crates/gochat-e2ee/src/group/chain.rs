//! The symmetric sender chain shared by group sender keys and restricted channels.
//!
//! A chain is the 1:1 symmetric ratchet (6.1) used by one sender for many receivers:
//! `MK = HMAC(CK, 0x01)`, `CK' = HMAC(CK, 0x02)`, with an iteration counter. The
//! message key becomes an AES-256-GCM key and nonce through HKDF with a label that
//! names the use (group message or channel announcement), so a key computed for one
//! can never open the other.
//!
//! `ReceiverChain` is a receiver's copy: the chain key at its next iteration plus
//! at most [`MAX_SKIPPED_KEYS`] keys of iterations that were skipped (out-of-order
//! delivery). Decrypting is two-phase: `ReceiverChain::stage` computes the message
//! key and the would-be new state without touching `self`; the caller checks the AEAD
//! tag (and anything else) and only then calls `ReceiverChain::apply`. A failed
//! decrypt therefore changes nothing.

use std::collections::VecDeque;

use thiserror::Error;
use zeroize::Zeroize;

use crate::crypto::{AeadKey, CryptoError, Secret32};
use crate::ratchet::ChainKey;
use crate::wire::{DecodeError, Reader, Writer};

/// Most iterations a received message may skip ahead of its chain (`TooFarAhead`).
pub const MAX_FORWARD_JUMP: u32 = 25_000;
/// Most skipped message keys kept per received chain (oldest evicted first).
pub const MAX_SKIPPED_KEYS: usize = 2_000;

/// Bytes one skipped key takes in a state encoding (iteration, key).
pub(crate) const SKIPPED_ENTRY_BYTES: usize = 4 + 32;

/// Why a received chain refused an iteration. The chain is unchanged in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChainError {
    /// The iteration was already read (its key was used and deleted).
    #[error("message already received")]
    Duplicate,
    /// The iteration is more than `MAX_FORWARD_JUMP` ahead of the chain.
    #[error("message is too far ahead of its chain")]
    TooFarAhead,
    /// The iteration's key is not held: it was evicted under `MAX_SKIPPED_KEYS`, or
    /// the message was sent before the iteration this copy of the chain starts at.
    #[error("message key is not held (evicted, or sent before the key was shared)")]
    MessageLost,
    /// The sending chain has reached the last iteration (2^32 - 1).
    #[error("sender chain exhausted")]
    Exhausted,
}

/// An AES-256-GCM key and nonce for the message at one iteration of a chain.
pub(crate) fn message_key(mk: &Secret32, label: &[u8]) -> Result<AeadKey, CryptoError> {
    AeadKey::derive(mk.as_bytes(), label)
}

/// A sender's own chain: the key for its next iteration.
#[derive(Clone, Debug)]
pub(crate) struct SenderChain {
    key: ChainKey,
    iteration: u32,
}

impl SenderChain {
    pub(crate) fn new(key: [u8; 32], iteration: u32) -> Self {
        SenderChain { key: ChainKey(Secret32(key)), iteration }
    }

    /// The iteration the next message will use.
    pub(crate) fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The chain key at [`Self::iteration`] (what a distribution hands out).
    pub(crate) fn key_bytes(&self) -> &[u8; 32] {
        self.key.0.as_bytes()
    }

    /// Returns the iteration and message key of the next message and advances the
    /// chain (the old chain key is wiped when it is replaced). Refused at the last
    /// iteration.
    pub(crate) fn next(&mut self) -> Result<(u32, Secret32), ChainError> {
        if self.iteration == u32::MAX {
            return Err(ChainError::Exhausted);
        }
        let (mk, next) = self.key.step();
        let i = self.iteration;
        self.key = next;
        self.iteration += 1;
        Ok((i, mk))
    }

    pub(crate) const STATE_BYTES: usize = 32 + 4;

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(self.key.0.as_bytes()).u32(self.iteration);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut key = r.array::<32>()?;
        let iteration = r.u32()?;
        let chain = SenderChain::new(key, iteration);
        key.zeroize();
        Ok(chain)
    }
}

/// One skipped iteration's message key. Boxed (see [`ReceiverChain`]): it stays at one
/// address until dropped, and dropping it wipes the key in place.
#[derive(Clone, Debug)]
struct SkippedKey {
    iteration: u32,
    key: Secret32,
}

/// New skipped keys, each boxed already so that storing them moves only pointers;
/// clippy's `vec_box` advice would undo exactly that.
#[allow(clippy::vec_box)]
type NewSkippedKeys = Vec<Box<SkippedKey>>;

/// A receiver's copy of a sender chain.
///
/// Skipped keys are boxed one by one, as in the 1:1 ratchet: a `VecDeque` that grows,
/// pops or removes moves its elements bitwise and frees the old slots without wiping
/// them, so inline keys would leave copies behind; the deque only moves pointers.
#[derive(Clone, Debug)]
pub(crate) struct ReceiverChain {
    chain: SenderChain,
    /// Keys of skipped iterations, in ascending iteration order.
    skipped: VecDeque<Box<SkippedKey>>,
    /// Every iteration below this one that has no skipped key is reported
    /// `MessageLost` rather than `Duplicate`: its key was evicted, or it precedes
    /// the start of this copy.
    lost_below: u32,
}

/// The outcome of [`ReceiverChain::stage`]: the message key, and how to change the
/// chain once the message has been authenticated.
pub(crate) struct Staged {
    pub(crate) key: Secret32,
    step: Step,
}

enum Step {
    /// The key was a skipped one, at this position in `skipped`.
    Skipped(usize),
    /// The chain advances to `chain`; `new_skipped` are the keys between.
    Advance { chain: SenderChain, new_skipped: NewSkippedKeys },
}

impl Staged {
    /// How many skipped keys applying this adds (for the state budget).
    pub(crate) fn added_keys(&self) -> usize {
        match &self.step {
            Step::Skipped(_) => 0,
            Step::Advance { new_skipped, .. } => new_skipped.len(),
        }
    }
}

impl ReceiverChain {
    /// A copy of a chain whose key at `iteration` is `key` (from a distribution).
    pub(crate) fn new(key: [u8; 32], iteration: u32) -> Self {
        ReceiverChain { chain: SenderChain::new(key, iteration), skipped: VecDeque::new(), lost_below: iteration }
    }

    /// The next iteration this copy expects.
    #[cfg(test)]
    pub(crate) fn next_iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// The first iteration this copy can read (the distributed position, raised by
    /// eviction): iterations below it that have no skipped key are `MessageLost`.
    #[cfg(test)]
    pub(crate) fn lost_below(&self) -> u32 {
        self.lost_below
    }

    /// Number of skipped keys held.
    pub(crate) fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// Computes the key of `iteration` without changing anything: at most
    /// `MAX_FORWARD_JUMP` chain steps (two HMACs each).
    pub(crate) fn stage(&self, iteration: u32) -> Result<Staged, ChainError> {
        if iteration < self.chain.iteration {
            let pos = self.skipped.iter().position(|k| k.iteration == iteration);
            return match pos {
                Some(p) => Ok(Staged { key: self.skipped[p].key.clone(), step: Step::Skipped(p) }),
                None if iteration < self.lost_below => Err(ChainError::MessageLost),
                None => Err(ChainError::Duplicate),
            };
        }
        let jump = iteration - self.chain.iteration;
        if jump > MAX_FORWARD_JUMP {
            return Err(ChainError::TooFarAhead);
        }
        let mut chain = self.chain.clone();
        // Only the last MAX_SKIPPED_KEYS skipped keys can be kept; the earlier ones
        // are derived (the chain must pass through them) but not stored.
        let keep_from = iteration.saturating_sub(MAX_SKIPPED_KEYS as u32);
        let mut new_skipped = Vec::with_capacity((jump as usize).min(MAX_SKIPPED_KEYS));
        while chain.iteration < iteration {
            let (i, mk) = chain.next()?;
            if i >= keep_from {
                new_skipped.push(Box::new(SkippedKey { iteration: i, key: mk }));
            }
        }
        let (_, key) = chain.next()?;
        Ok(Staged { key, step: Step::Advance { chain, new_skipped } })
    }

    /// Commits a staged step, evicting the oldest skipped keys beyond `MAX_SKIPPED_KEYS`.
    /// Returns the number of keys evicted.
    pub(crate) fn apply(&mut self, staged: Staged) -> usize {
        match staged.step {
            Step::Skipped(p) => {
                self.skipped.remove(p);
                0
            }
            Step::Advance { chain, new_skipped } => {
                let first_new = new_skipped.first().map(|k| k.iteration);
                if let Some(first) = first_new {
                    // Iterations derived but not stored (a jump over MAX_SKIPPED_KEYS)
                    // are lost, exactly like evicted ones.
                    if first > self.chain.iteration {
                        self.lost_below = self.lost_below.max(first);
                    }
                }
                self.skipped.extend(new_skipped);
                self.chain = chain;
                self.evict_to(MAX_SKIPPED_KEYS)
            }
        }
    }

    /// Evicts the oldest skipped keys until at most `keep` are held; returns how many.
    pub(crate) fn evict_to(&mut self, keep: usize) -> usize {
        let mut n = 0;
        while self.skipped.len() > keep {
            if let Some(k) = self.skipped.pop_front() {
                self.lost_below = self.lost_below.max(k.iteration + 1);
                n += 1;
            }
        }
        n
    }

    pub(crate) fn encoded_len(&self) -> usize {
        SenderChain::STATE_BYTES + 4 + 4 + self.skipped.len() * SKIPPED_ENTRY_BYTES
    }

    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        f("sender chain key", self.chain.key_bytes());
        for k in &self.skipped {
            f("sender skipped key", k.key.as_bytes());
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        self.chain.write(w);
        w.u32(self.lost_below);
        w.u32(self.skipped.len() as u32);
        for k in &self.skipped {
            w.u32(k.iteration).bytes(k.key.as_bytes());
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain = SenderChain::read(r)?;
        let lost_below = r.u32()?;
        let n = r.count(MAX_SKIPPED_KEYS, "skipped key count")?;
        let mut skipped = VecDeque::with_capacity(n);
        let mut last = None;
        for _ in 0..n {
            let i = r.u32()?;
            let k = Secret32(r.array::<32>()?);
            if last.is_some_and(|l| i <= l) || i >= chain.iteration {
                return Err(DecodeError::InvalidValue("skipped key order"));
            }
            last = Some(i);
            skipped.push_back(Box::new(SkippedKey { iteration: i, key: k }));
        }
        if lost_below > chain.iteration {
            return Err(DecodeError::InvalidValue("lost_below"));
        }
        Ok(ReceiverChain { chain, skipped, lost_below })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_at(rc: &mut ReceiverChain, i: u32) -> Result<[u8; 32], ChainError> {
        let s = rc.stage(i)?;
        let k = *s.key.as_bytes();
        rc.apply(s);
        Ok(k)
    }

    #[test]
    fn receiver_matches_sender_in_any_order_and_refuses_replays() {
        let mut tx = SenderChain::new([7; 32], 5);
        let keys: Vec<_> = (0..10).map(|_| tx.next().unwrap()).collect();
        let mut rx = ReceiverChain::new([7; 32], 5);
        for idx in [3usize, 0, 9, 1, 2, 8, 4, 5, 6, 7] {
            let (i, k) = &keys[idx];
            assert_eq!(&read_at(&mut rx, *i).unwrap(), k.as_bytes());
        }
        assert_eq!(rx.skipped_len(), 0);
        assert_eq!(read_at(&mut rx, 9), Err(ChainError::Duplicate));
        assert_eq!(read_at(&mut rx, 4), Err(ChainError::MessageLost), "before the distributed position");
    }

    #[test]
    fn bounds_are_enforced_and_a_refusal_changes_nothing() {
        let mut rx = ReceiverChain::new([1; 32], 0);
        assert_eq!(rx.stage(MAX_FORWARD_JUMP + 1).err(), Some(ChainError::TooFarAhead));
        let before = format!("{:?}", (rx.next_iteration(), rx.skipped_len(), rx.lost_below()));
        let _ = rx.stage(MAX_FORWARD_JUMP);
        assert_eq!(before, format!("{:?}", (rx.next_iteration(), rx.skipped_len(), rx.lost_below())));
        read_at(&mut rx, MAX_FORWARD_JUMP).unwrap();
        assert_eq!(rx.skipped_len(), MAX_SKIPPED_KEYS);
        assert_eq!(rx.lost_below(), MAX_FORWARD_JUMP - MAX_SKIPPED_KEYS as u32);
        assert_eq!(read_at(&mut rx, 0), Err(ChainError::MessageLost));
        assert!(read_at(&mut rx, MAX_FORWARD_JUMP - 1).is_ok());
        assert_eq!(read_at(&mut rx, MAX_FORWARD_JUMP - 1), Err(ChainError::Duplicate));
    }

    #[test]
    fn state_round_trips() {
        let mut rx = ReceiverChain::new([3; 32], 2);
        read_at(&mut rx, 9).unwrap();
        let mut w = Writer::raw(rx.encoded_len());
        rx.write(&mut w);
        let bytes = w.into_bytes();
        assert_eq!(bytes.len(), rx.encoded_len());
        let back = ReceiverChain::read(&mut Reader::raw(&bytes)).unwrap();
        assert_eq!((back.next_iteration(), back.skipped_len(), back.lost_below()), (10, 7, 2));
    }
}
