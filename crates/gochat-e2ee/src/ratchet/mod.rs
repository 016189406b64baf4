//! The Double Ratchet (Signal specification, revision 4), with bounded state.
//!
//! - Root chain: `RK', CK = HKDF-SHA256(salt = RK, ikm = DH, info = "GoChat-E2EE v1 ratchet root", L = 64)`.
//! - Symmetric chains: `MK = HMAC-SHA256(CK, 0x01)`, `CK' = HMAC-SHA256(CK, 0x02)`.
//! - Message encryption (message version 2): `key || nonce = HKDF-SHA256(salt = 0^32,
//!   ikm = MK, info = "GoChat-E2EE v2 1:1 message keys" || epoch (u32), L = 44)`,
//!   AES-256-GCM-SIV (RFC 8452) with the full tag, `AAD = session AD || every message
//!   byte before the ciphertext`. GCM-SIV is nonce-misuse resistant: a sender whose
//!   state was restored from an older snapshot and who re-uses a message key leaks at
//!   most whether two plaintexts are equal, never their XOR or the authentication key.
//! - The sender epoch counts restores of the session; a receiver that sees a used
//!   counter with a newer epoch reports [`RatchetError::CounterReused`] rather than
//!   dropping the message as a duplicate.
//! - Plaintexts are padded to a multiple of [`PADDING_BLOCK`] bytes.
//!
//! Decryption is failure-atomic: every new chain key, root key, ratchet key and skipped
//! key is computed into a staged update that is applied only after the AEAD tag has
//! verified. A failed decrypt leaves the state byte-for-byte unchanged. Work per
//! message is bounded by the caller's `max_jump` (see `docs/protocol.md`, "Work budget").

use std::collections::VecDeque;

use rand_core::CryptoRng;
use thiserror::Error;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{
    dh, hkdf, hmac_sha256_pair, random_x25519, x25519_public, AeadKey, CryptoError, Secret32, AEAD_TAG_BYTES,
};
use crate::labels;
use crate::wire::{DecodeError, Reader, Writer};

/// How far ahead of a receiving chain a message on the current session may be (as libsignal).
pub const MAX_FORWARD_JUMP: u32 = 25_000;
/// How far ahead a message may be on an archived session (or a session whose identity
/// is not approved). Keeps the work of one hostile message tried on every session of a
/// record within `MAX_FORWARD_JUMP + MAX_ARCHIVED_SESSIONS * MAX_ARCHIVED_FORWARD_JUMP`
/// chain steps.
pub const MAX_ARCHIVED_FORWARD_JUMP: u32 = 250;
/// Skipped message keys stored per session; beyond it the oldest is evicted.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// Receiving chains kept per session; beyond it the oldest is dropped.
pub const MAX_RECEIVER_CHAINS: usize = 5;
/// Records of dropped receiving chains (ratchet key, next counter, epoch) kept per
/// session, so a replay on a dropped chain is still recognised as a duplicate.
pub const MAX_DROPPED_CHAINS: usize = 64;
/// Ranges of evicted skipped keys remembered per session, so a message whose key was
/// evicted is reported as lost rather than as a duplicate.
pub const MAX_EVICTED_RANGES: usize = 32;
/// Plaintexts are padded to a multiple of this many bytes.
pub const PADDING_BLOCK: usize = 64;
/// Largest plaintext accepted by `encrypt` (so that the padded size is at most 64 KiB).
pub const MAX_PLAINTEXT_BYTES: usize = 65_535;
/// Largest padded plaintext, i.e. the largest ciphertext body minus the tag.
pub const MAX_PADDED_BYTES: usize = MAX_PLAINTEXT_BYTES + 1;
/// Size of the ratchet header: ratchet key, previous-chain length, counter, sender epoch.
pub const RATCHET_HEADER_BYTES: usize = 32 + 4 + 4 + 4;

/// Why a message could not be decrypted on a session (or encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RatchetError {
    /// This message was already decrypted. Decided from the header alone (before any
    /// authentication), so a forged header naming a used counter gets this too.
    #[error("message already received")]
    Duplicate,
    /// The message's key was discarded under the state bounds before the message
    /// arrived (its skipped key was evicted, or its receiving chain was dropped): it can
    /// never be decrypted here. The app should show "a message could not be decrypted".
    #[error("message key was discarded before the message arrived")]
    MessageLost,
    /// The counter was already used on this chain, but by an older sender epoch: the
    /// sender restored older state and sent a new message under a used counter.
    #[error("sender re-used a message counter after restoring older state")]
    CounterReused,
    /// The message counter is further ahead of its chain than this session allows.
    #[error("message is {jump} ahead of its chain (maximum {max})")]
    TooFarAhead {
        /// How far ahead the message is.
        jump: u64,
        /// The bound that applied (`MAX_FORWARD_JUMP` or `MAX_ARCHIVED_FORWARD_JUMP`).
        max: u32,
    },
    /// The AEAD tag did not verify: the message was modified, or is not for this session.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The message's ratchet key gave an all-zero X25519 output.
    #[error("non-contributory ratchet key")]
    NonContributory,
    /// The decrypted padding is malformed (only a broken or malicious sender does this).
    #[error("invalid padding")]
    InvalidPadding,
    /// The plaintext is longer than `MAX_PLAINTEXT_BYTES`.
    #[error("plaintext of {0} bytes is too large")]
    PlaintextTooLarge(usize),
    /// The sending chain has used all 2^32 counters; start a new session.
    #[error("chain exhausted")]
    ChainExhausted,
    /// The session cannot send yet (a responder before its first received message).
    #[error("session cannot send yet")]
    NotReadyToSend,
    /// A primitive refused an internal length (a bug, never peer input).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The ratchet header carried by every 1:1 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatchetHeader {
    /// The sender's current ratchet public key.
    pub ratchet_key: [u8; 32],
    /// Length of the sender's previous sending chain.
    pub previous_counter: u32,
    /// Index of this message in the sending chain.
    pub counter: u32,
    /// The sender's epoch for this session: 0 at creation, plus one at every import of
    /// the session from a snapshot.
    pub epoch: u32,
}

impl RatchetHeader {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.ratchet_key).u32(self.previous_counter).u32(self.counter).u32(self.epoch);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RatchetHeader { ratchet_key: r.array()?, previous_counter: r.u32()?, counter: r.u32()?, epoch: r.u32()? })
    }
}

/// Checks the length of a ciphertext body: a non-empty whole number of padding blocks
/// plus the tag, and no more than the maximum.
pub(crate) fn check_ciphertext_len(len: usize) -> Result<(), DecodeError> {
    let body = len.checked_sub(AEAD_TAG_BYTES).ok_or(DecodeError::Truncated)?;
    if body == 0 || body % PADDING_BLOCK != 0 || body > MAX_PADDED_BYTES {
        return Err(DecodeError::InvalidValue("ciphertext length"));
    }
    Ok(())
}

/// ISO/IEC 7816-4 padding: `plaintext || 0x80 || 0x00*` to a multiple of `PADDING_BLOCK`.
pub(crate) fn pad(plaintext: &[u8]) -> Vec<u8> {
    let padded_len = (plaintext.len() / PADDING_BLOCK + 1) * PADDING_BLOCK;
    let mut out = Vec::with_capacity(padded_len + AEAD_TAG_BYTES);
    out.extend_from_slice(plaintext);
    out.push(0x80);
    out.resize(padded_len, 0);
    out
}

/// Removes padding written by [`pad`].
pub(crate) fn unpad(mut padded: Vec<u8>) -> Result<Vec<u8>, RatchetError> {
    let end = padded.iter().rposition(|b| *b != 0).ok_or(RatchetError::InvalidPadding)?;
    if padded.get(end) != Some(&0x80) || padded.len() - end > PADDING_BLOCK {
        padded.zeroize();
        return Err(RatchetError::InvalidPadding);
    }
    padded.truncate(end);
    Ok(padded)
}

/// Bytes one stored skipped message key takes in a state encoding.
pub(crate) const SKIPPED_KEY_STATE_BYTES: usize = 32 + 4 + 32;

/// The longest state encoding of one ratchet under its bounds: every list full. No
/// single message can grow a ratchet's encoding by more than this.
pub(crate) const MAX_RATCHET_STATE_BYTES: usize = 32 * 3
    + 1
    + 32
    + 4
    + 4
    + 4
    + 4
    + MAX_RECEIVER_CHAINS * (32 + 32 + 4 + 4)
    + 4
    + MAX_SKIPPED_KEYS * SKIPPED_KEY_STATE_BYTES
    + 4
    + MAX_DROPPED_CHAINS * (32 + 4 + 4)
    + 4
    + MAX_EVICTED_RANGES * (32 + 4 + 4);

/// A symmetric-chain key.
#[derive(Clone, Debug)]
pub(crate) struct ChainKey(pub(crate) Secret32);

impl ChainKey {
    /// One step of the symmetric ratchet: returns the message key and the next chain key.
    pub(crate) fn step(&self) -> (Secret32, ChainKey) {
        let [mk, next] =
            hmac_sha256_pair(self.0.as_bytes(), &[labels::CHAIN_MESSAGE_KEY_BYTE], &[labels::CHAIN_NEXT_KEY_BYTE]);
        (Secret32(mk), ChainKey(Secret32(next)))
    }
}

/// `KDF_RK`: one root-chain step.
pub(crate) fn kdf_rk(root: &Secret32, dh_out: &Secret32) -> Result<(Secret32, ChainKey), CryptoError> {
    let mut okm = [0u8; 64];
    hkdf(root.as_bytes(), dh_out.as_bytes(), labels::RATCHET_ROOT, &mut okm)?;
    let mut rk = Secret32([0; 32]);
    let mut ck = Secret32([0; 32]);
    rk.0.copy_from_slice(&okm[..32]);
    ck.0.copy_from_slice(&okm[32..]);
    okm.zeroize();
    Ok((rk, ChainKey(ck)))
}

/// Expands a message key into the AES-256-GCM-SIV key and nonce for sender `epoch`.
pub(crate) fn message_aead_key(mk: &Secret32, epoch: u32) -> Result<AeadKey, CryptoError> {
    let mut info = [0u8; 64];
    let n = labels::MESSAGE_KEYS.len();
    info[..n].copy_from_slice(labels::MESSAGE_KEYS);
    info[n..n + 4].copy_from_slice(&epoch.to_be_bytes());
    AeadKey::derive(mk.as_bytes(), &info[..n + 4])
}

#[derive(Clone, Debug)]
struct ReceivingChain {
    ratchet_key: [u8; 32],
    chain: ChainKey,
    counter: u32,
    /// The newest sender epoch authenticated on this chain.
    epoch: u32,
}

/// What is left of a receiving chain after it was dropped: enough to tell a replay
/// (counter below `next_counter`) from a message that can no longer be decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DroppedChain {
    ratchet_key: [u8; 32],
    next_counter: u32,
    epoch: u32,
}

/// Counters `lo..hi` of chain `ratchet_key` whose skipped keys were evicted unused.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EvictedRange {
    ratchet_key: [u8; 32],
    lo: u32,
    hi: u32,
}

#[derive(Clone, Debug)]
struct SkippedKey {
    ratchet_key: [u8; 32],
    counter: u32,
    key: Secret32,
}

/// The state of one Double Ratchet session.
///
/// Receiving chains and skipped keys are boxed one by one: a `VecDeque` that grows,
/// pops or removes moves its elements bitwise and frees or reuses the old slots without
/// wiping them, so an inline chain key would leave copies behind. Boxed, each key stays
/// at one address until its box is dropped, and dropping it wipes it in place
/// (`Secret32` zeroizes on drop); the deques only ever move pointers.
#[derive(Clone)]
pub(crate) struct RatchetState {
    root: Secret32,
    our_ratchet: StaticSecret,
    our_ratchet_pub: [u8; 32],
    sending: Option<(ChainKey, u32)>,
    previous_counter: u32,
    /// Our sender epoch: bumped at every import, written into every header.
    epoch: u32,
    /// Oldest first.
    receiving: VecDeque<Box<ReceivingChain>>,
    /// Oldest first.
    skipped: VecDeque<Box<SkippedKey>>,
    /// Oldest first.
    dropped: VecDeque<DroppedChain>,
    /// Oldest first.
    evicted: VecDeque<EvictedRange>,
}

impl core::fmt::Debug for RatchetState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RatchetState")
            .field("epoch", &self.epoch)
            .field("receiving_chains", &self.receiving.len())
            .field("skipped_keys", &self.skipped.len())
            .field("dropped_chains", &self.dropped.len())
            .finish_non_exhaustive()
    }
}

/// Changes computed by a decrypt, applied only after the AEAD has verified.
enum Staged {
    Skipped(usize),
    Chain {
        index: usize,
        chain: ChainKey,
        counter: u32,
        skipped: NewSkippedKeys,
        lost: Option<EvictedRange>,
    },
    /// The receiving half of a DH ratchet step; the sending half (a fresh ratchet key
    /// and a second DH) is computed only after the message has authenticated.
    DhStep {
        root: Secret32,
        receiving: Box<ReceivingChain>,
        skipped: NewSkippedKeys,
        lost: Option<EvictedRange>,
    },
}

/// New skipped keys, each boxed already so that storing them moves only pointers (see
/// [`RatchetState`]); clippy's `vec_box` advice would undo exactly that.
#[allow(clippy::vec_box)]
type NewSkippedKeys = Vec<Box<SkippedKey>>;

/// The result of [`advance`]: skipped keys to store, the counters whose keys were not
/// kept (beyond `MAX_SKIPPED_KEYS`), the message key and the next chain key.
type Advanced = (NewSkippedKeys, Option<EvictedRange>, Secret32, ChainKey);

/// Derives message keys from `chain` at `from` up to (excluding) `to`, keeping only the
/// newest `MAX_SKIPPED_KEYS` of them, then the key at `to`. Refuses a jump over `max_jump`
/// before doing any work.
fn advance(
    ratchet_key: &[u8; 32],
    mut chain: ChainKey,
    from: u32,
    to: u32,
    max_jump: u32,
) -> Result<Advanced, RatchetError> {
    let jump = u64::from(to) - u64::from(from);
    if jump > u64::from(max_jump) {
        return Err(RatchetError::TooFarAhead { jump, max: max_jump });
    }
    let keep_from = to.saturating_sub(MAX_SKIPPED_KEYS as u32).max(from);
    let mut skipped = Vec::with_capacity((to - keep_from) as usize);
    for counter in from..to {
        let (mk, next) = chain.step();
        if counter >= keep_from {
            skipped.push(Box::new(SkippedKey { ratchet_key: *ratchet_key, counter, key: mk }));
        }
        chain = next;
    }
    let (mk, next) = chain.step();
    let lost = (keep_from > from).then_some(EvictedRange { ratchet_key: *ratchet_key, lo: from, hi: keep_from });
    Ok((skipped, lost, mk, next))
}

impl RatchetState {
    /// Initiator: `DHs` fresh, `DHr = SPK_B`, `RK, CKs = KDF_RK(SK, DH(DHs, DHr))`.
    pub(crate) fn new_initiator<R: CryptoRng + ?Sized>(
        secret: &Secret32,
        their_signed_prekey: &[u8; 32],
        rng: &mut R,
    ) -> Result<Self, RatchetError> {
        let our_ratchet = random_x25519(rng);
        let shared = dh(&our_ratchet, their_signed_prekey).map_err(|_| RatchetError::NonContributory)?;
        let (root, sending) = kdf_rk(secret, &shared)?;
        Ok(RatchetState {
            root,
            our_ratchet_pub: x25519_public(&our_ratchet),
            our_ratchet,
            sending: Some((sending, 0)),
            previous_counter: 0,
            epoch: 0,
            receiving: VecDeque::new(),
            skipped: VecDeque::new(),
            dropped: VecDeque::new(),
            evicted: VecDeque::new(),
        })
    }

    /// Responder: `DHs = SPK_B`, `RK = SK`, no chains yet.
    pub(crate) fn new_responder(secret: &Secret32, our_signed_prekey: &StaticSecret, public: [u8; 32]) -> Self {
        RatchetState {
            root: secret.clone(),
            our_ratchet_pub: public,
            our_ratchet: our_signed_prekey.clone(),
            sending: None,
            previous_counter: 0,
            epoch: 0,
            receiving: VecDeque::new(),
            skipped: VecDeque::new(),
            dropped: VecDeque::new(),
            evicted: VecDeque::new(),
        }
    }

    /// Marks this state as restored from a snapshot: later messages carry a newer
    /// sender epoch, so they never share a message key and nonce with messages sent by
    /// the state that was exported, and the receiver can tell them from replays.
    pub(crate) fn bump_epoch(&mut self) {
        self.epoch = self.epoch.saturating_add(1);
    }

    /// Whether `header` names a chain (live or dropped) or a skipped key this state
    /// knows, so that no DH ratchet step is needed to handle it.
    pub(crate) fn recognizes(&self, header: &RatchetHeader) -> bool {
        let rk = &header.ratchet_key;
        self.receiving.iter().any(|c| &c.ratchet_key == rk)
            || self.skipped.iter().any(|k| &k.ratchet_key == rk)
            || self.dropped.iter().any(|d| &d.ratchet_key == rk)
            || self.evicted.iter().any(|e| &e.ratchet_key == rk)
    }

    /// Whether `header` names a counter this state already used (a replay), decided
    /// from the header alone without any key derivation.
    /// Exactly when decrypting would refuse it with `Duplicate` (the same header-only
    /// decision, [`RatchetState::header_verdict`]).
    pub(crate) fn is_replay(&self, header: &RatchetHeader) -> bool {
        self.skipped_index(header).is_none() && self.header_verdict(header) == Some(RatchetError::Duplicate)
    }

    fn skipped_index(&self, header: &RatchetHeader) -> Option<usize> {
        self.skipped.iter().position(|k| k.ratchet_key == header.ratchet_key && k.counter == header.counter)
    }

    /// The refusal the header alone decides for a message with no stored skipped key,
    /// before any key derivation: `ChainExhausted` (counter `u32::MAX`, which no sender
    /// uses), then a counter already used on a known receiving or dropped chain
    /// (`Duplicate`, `CounterReused` or `MessageLost`), a counter past a dropped chain's
    /// end or on a chain whose keys were all evicted (`MessageLost`). `None` when the
    /// message must be tried (a known chain ahead, or a new ratchet key).
    fn header_verdict(&self, header: &RatchetHeader) -> Option<RatchetError> {
        if header.counter == u32::MAX {
            return Some(RatchetError::ChainExhausted);
        }
        if let Some(chain) = self.receiving.iter().find(|c| c.ratchet_key == header.ratchet_key) {
            return (header.counter < chain.counter).then(|| self.used_counter(header, chain.epoch));
        }
        if let Some(d) = self.dropped.iter().find(|d| d.ratchet_key == header.ratchet_key) {
            return Some(if header.counter < d.next_counter {
                self.used_counter(header, d.epoch)
            } else {
                RatchetError::MessageLost
            });
        }
        // Every key of this chain that we held was evicted: the chain itself is gone.
        self.evicted.iter().any(|e| e.ratchet_key == header.ratchet_key).then_some(RatchetError::MessageLost)
    }

    /// Encrypts `plaintext`: appends the ratchet header to `w` (which already holds the
    /// message prefix), authenticates `session_ad || w` and appends the ciphertext.
    pub(crate) fn encrypt(
        &mut self,
        session_ad: &[u8],
        mut w: Writer,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, RatchetError> {
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(RatchetError::PlaintextTooLarge(plaintext.len()));
        }
        let (chain, counter) = self.sending.as_ref().ok_or(RatchetError::NotReadyToSend)?;
        if *counter == u32::MAX {
            return Err(RatchetError::ChainExhausted);
        }
        let header = RatchetHeader {
            ratchet_key: self.our_ratchet_pub,
            previous_counter: self.previous_counter,
            counter: *counter,
            epoch: self.epoch,
        };
        let (mk, next) = chain.step();
        header.write(&mut w);
        let aad = [session_ad, &w.into_bytes()].concat();
        // Allocated at its final size by `pad`, wiped on every path.
        let padded = Zeroizing::new(pad(plaintext));
        let ct = message_aead_key(&mk, header.epoch)?.seal_siv(&aad, &padded);
        drop(padded);
        let ct = ct?;
        self.sending = Some((next, counter + 1));
        let mut out = aad;
        out.drain(..session_ad.len());
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a message whose header is `header`, whose bytes before the ciphertext
    /// are `prefix`, and whose ciphertext is `ciphertext`, refusing a forward jump over
    /// `max_jump`. Changes state only on success.
    pub(crate) fn decrypt<R: CryptoRng + ?Sized>(
        &mut self,
        session_ad: &[u8],
        prefix: &[u8],
        header: &RatchetHeader,
        ciphertext: &[u8],
        max_jump: u32,
        rng: &mut R,
    ) -> Result<Vec<u8>, RatchetError> {
        let (staged, mk) = self.stage(header, max_jump)?;
        let aad = [session_ad, prefix].concat();
        let padded = message_aead_key(&mk, header.epoch)?
            .open_siv(&aad, ciphertext)
            .ok_or(RatchetError::AuthenticationFailed)?;
        // Wiped if the step below fails; handed to the caller as it is otherwise.
        let mut plaintext = Zeroizing::new(unpad(padded)?);
        self.apply(staged, header, rng)?;
        Ok(core::mem::take(&mut *plaintext))
    }

    /// Classifies a counter below a chain's next counter that has no skipped key.
    fn used_counter(&self, header: &RatchetHeader, chain_epoch: u32) -> RatchetError {
        if self.is_evicted(&header.ratchet_key, header.counter) {
            RatchetError::MessageLost
        } else if header.epoch > chain_epoch {
            RatchetError::CounterReused
        } else {
            RatchetError::Duplicate
        }
    }

    fn is_evicted(&self, ratchet_key: &[u8; 32], counter: u32) -> bool {
        self.evicted.iter().any(|e| &e.ratchet_key == ratchet_key && (e.lo..e.hi).contains(&counter))
    }

    fn stage(&self, header: &RatchetHeader, max_jump: u32) -> Result<(Staged, Secret32), RatchetError> {
        if let Some(i) = self.skipped_index(header) {
            let key = self.skipped.get(i).map(|k| k.key.clone()).ok_or(RatchetError::Duplicate)?;
            return Ok((Staged::Skipped(i), key));
        }
        if let Some(refused) = self.header_verdict(header) {
            return Err(refused);
        }
        if let Some(index) = self.receiving.iter().position(|c| c.ratchet_key == header.ratchet_key) {
            let chain = self.receiving.get(index).ok_or(RatchetError::Duplicate)?;
            let (skipped, lost, mk, next) =
                advance(&chain.ratchet_key, chain.chain.clone(), chain.counter, header.counter, max_jump)?;
            return Ok((Staged::Chain { index, chain: next, counter: header.counter + 1, skipped, lost }, mk));
        }
        // A new ratchet key from the peer: the receiving half of a DH ratchet step.
        if header.counter > max_jump {
            return Err(RatchetError::TooFarAhead { jump: u64::from(header.counter), max: max_jump });
        }
        let recv_dh = dh(&self.our_ratchet, &header.ratchet_key).map_err(|_| RatchetError::NonContributory)?;
        let (root, recv_chain) = kdf_rk(&self.root, &recv_dh)?;
        let (skipped, lost, mk, next) = advance(&header.ratchet_key, recv_chain, 0, header.counter, max_jump)?;
        let receiving = Box::new(ReceivingChain {
            ratchet_key: header.ratchet_key,
            chain: next,
            counter: header.counter + 1,
            epoch: 0,
        });
        Ok((Staged::DhStep { root, receiving, skipped, lost }, mk))
    }

    /// Stores new skipped keys (evicting the oldest beyond `MAX_SKIPPED_KEYS`) and
    /// remembers the counters whose keys were never kept or were evicted.
    fn push_skipped(&mut self, keys: NewSkippedKeys, lost: Option<EvictedRange>) {
        if let Some(l) = lost {
            self.push_evicted(l);
        }
        self.skipped.extend(keys);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            if let Some(k) = self.skipped.pop_front() {
                self.push_evicted(EvictedRange { ratchet_key: k.ratchet_key, lo: k.counter, hi: k.counter + 1 });
            }
        }
    }

    /// Adds a range of lost counters, merging it into the newest range when contiguous.
    fn push_evicted(&mut self, range: EvictedRange) {
        if let Some(last) = self.evicted.back_mut() {
            if last.ratchet_key == range.ratchet_key && last.hi == range.lo {
                last.hi = range.hi;
                return;
            }
        }
        self.evicted.push_back(range);
        while self.evicted.len() > MAX_EVICTED_RANGES {
            self.evicted.pop_front();
        }
    }

    fn apply<R: CryptoRng + ?Sized>(
        &mut self,
        staged: Staged,
        header: &RatchetHeader,
        rng: &mut R,
    ) -> Result<(), RatchetError> {
        match staged {
            Staged::Skipped(i) => {
                self.skipped.remove(i);
            }
            Staged::Chain { index, chain, counter, skipped, lost } => {
                if let Some(c) = self.receiving.get_mut(index) {
                    c.chain = chain;
                    c.counter = counter;
                    c.epoch = c.epoch.max(header.epoch);
                }
                self.push_skipped(skipped, lost);
            }
            Staged::DhStep { root, mut receiving, skipped, lost } => {
                // The sending half: drawn only now, after the message has authenticated.
                let our_ratchet = random_x25519(rng);
                let send_dh = dh(&our_ratchet, &header.ratchet_key).map_err(|_| RatchetError::NonContributory)?;
                let (root, sending) = kdf_rk(&root, &send_dh)?;
                receiving.epoch = header.epoch;
                self.root = root;
                self.previous_counter = self.sending.as_ref().map_or(0, |(_, n)| *n);
                self.our_ratchet_pub = x25519_public(&our_ratchet);
                self.our_ratchet = our_ratchet;
                self.sending = Some((sending, 0));
                self.receiving.push_back(receiving);
                while self.receiving.len() > MAX_RECEIVER_CHAINS {
                    if let Some(c) = self.receiving.pop_front() {
                        self.dropped.push_back(DroppedChain {
                            ratchet_key: c.ratchet_key,
                            next_counter: c.counter,
                            epoch: c.epoch,
                        });
                    }
                }
                while self.dropped.len() > MAX_DROPPED_CHAINS {
                    self.dropped.pop_front();
                }
                self.push_skipped(skipped, lost);
            }
        }
        Ok(())
    }

    /// The exact length of [`RatchetState::write`]'s output, computed without writing.
    pub(crate) fn encoded_len(&self) -> usize {
        32 * 3
            + 1
            + if self.sending.is_some() { 32 + 4 } else { 0 }
            + 4
            + 4
            + 4
            + self.receiving.len() * (32 + 32 + 4 + 4)
            + 4
            + self.skipped.len() * SKIPPED_KEY_STATE_BYTES
            + 4
            + self.dropped.len() * (32 + 4 + 4)
            + 4
            + self.evicted.len() * (32 + 4 + 4)
    }

    /// Calls `f` with the root key, ratchet key, chain keys and skipped message keys
    /// (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        f("root key", self.root.as_bytes());
        f("ratchet key", self.our_ratchet.as_bytes());
        if let Some((ck, _)) = &self.sending {
            f("sending chain key", ck.0.as_bytes());
        }
        for c in &self.receiving {
            f("receiving chain key", c.chain.0.as_bytes());
        }
        for k in &self.skipped {
            f("skipped message key", k.key.as_bytes());
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(self.root.as_bytes()).bytes(self.our_ratchet.as_bytes()).bytes(&self.our_ratchet_pub);
        match &self.sending {
            Some((ck, n)) => {
                w.flag(true).bytes(ck.0.as_bytes()).u32(*n);
            }
            None => {
                w.flag(false);
            }
        }
        w.u32(self.previous_counter);
        w.u32(self.epoch);
        w.u32(self.receiving.len() as u32);
        for c in &self.receiving {
            w.bytes(&c.ratchet_key).bytes(c.chain.0.as_bytes()).u32(c.counter).u32(c.epoch);
        }
        w.u32(self.skipped.len() as u32);
        for k in &self.skipped {
            w.bytes(&k.ratchet_key).u32(k.counter).bytes(k.key.as_bytes());
        }
        w.u32(self.dropped.len() as u32);
        for d in &self.dropped {
            w.bytes(&d.ratchet_key).u32(d.next_counter).u32(d.epoch);
        }
        w.u32(self.evicted.len() as u32);
        for e in &self.evicted {
            w.bytes(&e.ratchet_key).u32(e.lo).u32(e.hi);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let root = Secret32(r.array()?);
        let our_ratchet = StaticSecret::from(r.array::<32>()?);
        let our_ratchet_pub = r.array()?;
        let sending =
            if r.flag("sending chain flag")? { Some((ChainKey(Secret32(r.array()?)), r.u32()?)) } else { None };
        let previous_counter = r.u32()?;
        let epoch = r.u32()?;
        let n = r.count(MAX_RECEIVER_CHAINS, "receiving chain count")?;
        let mut receiving = VecDeque::with_capacity(n);
        for _ in 0..n {
            receiving.push_back(Box::new(ReceivingChain {
                ratchet_key: r.array()?,
                chain: ChainKey(Secret32(r.array()?)),
                counter: r.u32()?,
                epoch: r.u32()?,
            }));
        }
        let n = r.count(MAX_SKIPPED_KEYS, "skipped key count")?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back(Box::new(SkippedKey {
                ratchet_key: r.array()?,
                counter: r.u32()?,
                key: Secret32(r.array()?),
            }));
        }
        let n = r.count(MAX_DROPPED_CHAINS, "dropped chain count")?;
        let mut dropped = VecDeque::with_capacity(n);
        for _ in 0..n {
            dropped.push_back(DroppedChain { ratchet_key: r.array()?, next_counter: r.u32()?, epoch: r.u32()? });
        }
        let n = r.count(MAX_EVICTED_RANGES, "evicted range count")?;
        let mut evicted = VecDeque::with_capacity(n);
        for _ in 0..n {
            let e = EvictedRange { ratchet_key: r.array()?, lo: r.u32()?, hi: r.u32()? };
            if e.lo >= e.hi {
                return Err(DecodeError::InvalidValue("evicted range"));
            }
            evicted.push_back(e);
        }
        Ok(RatchetState {
            root,
            our_ratchet_pub,
            our_ratchet,
            sending,
            previous_counter,
            epoch,
            receiving,
            skipped,
            dropped,
            evicted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_accepts_exactly_max_forward_jump_and_refuses_one_more() {
        let chain = || ChainKey(Secret32([3; 32]));
        let from = 5;
        let (skipped, lost, _, _) =
            advance(&[1; 32], chain(), from, from + MAX_FORWARD_JUMP, MAX_FORWARD_JUMP).unwrap();
        assert_eq!(skipped.len(), MAX_SKIPPED_KEYS.min(MAX_FORWARD_JUMP as usize));
        // The keys not kept are recorded as lost, so they are never reported as duplicates.
        let lost = lost.unwrap();
        assert_eq!((lost.lo, lost.hi), (from, from + MAX_FORWARD_JUMP - MAX_SKIPPED_KEYS as u32));
        let err = advance(&[1; 32], chain(), from, from + MAX_FORWARD_JUMP + 1, MAX_FORWARD_JUMP).unwrap_err();
        assert_eq!(err, RatchetError::TooFarAhead { jump: u64::from(MAX_FORWARD_JUMP) + 1, max: MAX_FORWARD_JUMP });
        // The archived-session bound, likewise exact.
        let b = MAX_ARCHIVED_FORWARD_JUMP;
        assert!(advance(&[1; 32], chain(), from, from + b, b).is_ok());
        let err = advance(&[1; 32], chain(), from, from + b + 1, b).unwrap_err();
        assert_eq!(err, RatchetError::TooFarAhead { jump: u64::from(b) + 1, max: b });
    }

    #[test]
    fn replay_check_and_decrypt_share_one_header_verdict() {
        let mut st = RatchetState::new_responder(&Secret32([1; 32]), &StaticSecret::from([2; 32]), [3; 32]);
        let k = [9u8; 32];
        st.receiving.push_back(Box::new(ReceivingChain {
            ratchet_key: k,
            chain: ChainKey(Secret32([4; 32])),
            counter: 5,
            epoch: 0,
        }));
        st.skipped.push_back(Box::new(SkippedKey { ratchet_key: k, counter: 2, key: Secret32([5; 32]) }));
        st.dropped.push_back(DroppedChain { ratchet_key: [8; 32], next_counter: 3, epoch: 0 });
        let h = |ratchet_key: [u8; 32], counter: u32, epoch: u32| RatchetHeader {
            ratchet_key,
            previous_counter: 0,
            counter,
            epoch,
        };
        let verdict = |header: &RatchetHeader| st.stage(header, MAX_FORWARD_JUMP).err();
        // (header, what decrypt decides before authentication, is_replay)
        let cases = [
            (h(k, 2, 0), None, false),                                      // a held skipped key
            (h(k, 3, 0), Some(RatchetError::Duplicate), true),              // used
            (h(k, 3, 1), Some(RatchetError::CounterReused), false),         // used, newer epoch
            (h(k, 5, 0), None, false),                                      // next on the chain
            (h(k, u32::MAX, 0), Some(RatchetError::ChainExhausted), false), // before "used"
            (h([8; 32], 1, 0), Some(RatchetError::Duplicate), true),        // dropped chain, used
            (h([8; 32], 3, 0), Some(RatchetError::MessageLost), false),     // dropped chain, past its end
            (h([8; 32], u32::MAX, 0), Some(RatchetError::ChainExhausted), false),
        ];
        for (header, expected, replay) in cases {
            assert_eq!(verdict(&header), expected, "{header:?}");
            assert_eq!(st.is_replay(&header), replay, "{header:?}");
        }
    }

    #[test]
    fn evicted_ranges_merge_only_on_one_chain_and_keep_exactly_the_bound() {
        let mut st = RatchetState::new_responder(&Secret32([1; 32]), &StaticSecret::from([2; 32]), [3; 32]);
        let (a, b) = ([10u8; 32], [11u8; 32]);
        // Contiguous ranges of one chain merge into one record.
        st.push_evicted(EvictedRange { ratchet_key: a, lo: 0, hi: 10 });
        st.push_evicted(EvictedRange { ratchet_key: a, lo: 10, hi: 20 });
        assert_eq!(st.evicted.len(), 1);
        assert!(st.is_evicted(&a, 15));
        // A range of another chain that starts where the last one ended stays its own.
        st.push_evicted(EvictedRange { ratchet_key: b, lo: 20, hi: 30 });
        assert_eq!(st.evicted.len(), 2);
        assert!(st.is_evicted(&b, 25) && !st.is_evicted(&a, 25));
        // Disjoint ranges: exactly MAX_EVICTED_RANGES are kept, the oldest forgotten.
        for i in 0..(2 * MAX_EVICTED_RANGES as u32) {
            st.push_evicted(EvictedRange { ratchet_key: b, lo: 100 + 10 * i, hi: 105 + 10 * i });
        }
        assert_eq!(st.evicted.len(), MAX_EVICTED_RANGES);
        assert!(!st.is_evicted(&a, 15));
    }

    #[test]
    fn ratchet_state_debug_hides_every_secret() {
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(9);
        let peer = random_x25519(&mut rng);
        let sk = Secret32(core::array::from_fn(|i| 0xC0 ^ i as u8));
        let state = RatchetState::new_initiator(&sk, &x25519_public(&peer), &mut rng).unwrap();
        let text = format!("{state:?}");
        let (ck, _) = state.sending.clone().unwrap();
        for secret in [*state.root.as_bytes(), *ck.0.as_bytes(), state.our_ratchet.to_bytes(), *sk.as_bytes()] {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            assert!(!text.to_lowercase().contains(&hex), "{text}");
            let dec = format!("{:?}", &secret[..4]);
            assert!(!text.contains(&dec[1..dec.len() - 1]), "{text}");
        }
    }

    #[test]
    fn padding_round_trips_and_hides_small_length_differences() {
        for len in [0usize, 1, 63, 64, 65, 1000] {
            let p = pad(&vec![0xAB; len]);
            assert_eq!(p.len() % PADDING_BLOCK, 0);
            assert!(p.len() > len);
            assert_eq!(unpad(p).unwrap(), vec![0xAB; len]);
        }
        assert_eq!(pad(b"a").len(), pad(&[1u8; 63]).len());
        assert_eq!(unpad(vec![0; 64]).unwrap_err(), RatchetError::InvalidPadding);
        assert_eq!(unpad(vec![1; 64]).unwrap_err(), RatchetError::InvalidPadding);
    }

    #[test]
    fn ciphertext_length_rules() {
        assert!(check_ciphertext_len(16).is_err());
        assert!(check_ciphertext_len(15).is_err());
        assert!(check_ciphertext_len(16 + 64).is_ok());
        assert!(check_ciphertext_len(16 + 65).is_err());
        assert!(check_ciphertext_len(16 + MAX_PADDED_BYTES).is_ok());
        assert!(check_ciphertext_len(16 + MAX_PADDED_BYTES + 64).is_err());
    }

    #[test]
    fn chain_step_matches_signal_construction() {
        let ck = ChainKey(Secret32([7; 32]));
        let (mk, next) = ck.step();
        assert_eq!(mk.0, crate::crypto::hmac_sha256(&[7; 32], &[1]));
        assert_eq!(next.0 .0, crate::crypto::hmac_sha256(&[7; 32], &[2]));
    }
}
