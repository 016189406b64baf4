//! A subscriber's side of a channel: the channel key it trusts, the sequence numbers it
//! has accepted and, for a restricted channel, the content keys it was given.

use zeroize::Zeroizing;

use super::announcement::{decode_announcement, decode_distribution, decode_restricted, decode_rotation, Announcement};
use super::{
    is_valid_channel_key, read_channel_key, type_byte, ChannelError, ChannelId, ChannelKind,
    MAX_ANNOUNCEMENT_FUTURE_SECS, MAX_CHANNEL_KEYS, MAX_CHANNEL_SKIPPED_KEYS,
};
use crate::group::chain::{message_key, ReceiverChain};
use crate::labels;
use crate::ratchet::unpad;
use crate::wire::{DecodeError, Reader, Writer};

/// What [`Subscription::receive`] accepted.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// An announcement (public, or decrypted from a restricted post).
    Announcement(Announcement),
    /// The channel key was replaced: posts are now accepted only from `new`.
    KeyRotated {
        /// The previous channel key.
        old: [u8; 32],
        /// The channel key from now on.
        new: [u8; 32],
        /// The rotation's sequence number.
        seq: u64,
    },
}

/// A subscriber's state for one channel.
///
/// Accepts only objects for its channel that are signed by the channel key it currently
/// trusts (set at subscription, changed only by a rotation signed by that key and by its
/// successor). Sequence numbers are strictly monotonic: an announcement or rotation is
/// accepted only if its sequence number is greater than the last one accepted, so a
/// replay, a rollback and a post delivered after a later one are all `StaleSequence`
/// (the server must deliver a channel's history in sequence order). Every refusal
/// leaves the state byte-for-byte unchanged.
pub struct Subscription {
    channel_id: ChannelId,
    kind: ChannelKind,
    channel_key: [u8; 32],
    /// Highest sequence number accepted (0: none yet).
    last_seq: u64,
    /// Content keys by id, oldest first (restricted channels only).
    keys: Vec<(u32, ReceiverChain)>,
}

/// A checked content key, not yet applied (`chain` is `None` when the id is already
/// held: the existing copy keeps its position).
pub(crate) struct StagedContentKey {
    pub(crate) key_id: u32,
    chain: Option<ReceiverChain>,
}

impl core::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel_id", &self.channel_id)
            .field("kind", &self.kind)
            .field("channel_key", &self.channel_key)
            .field("last_seq", &self.last_seq)
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Subscribes to `channel_id` trusting `channel_key` (obtained out of band, e.g. from
    /// the agency's directory entry). Refuses a key that is not a canonical, valid,
    /// non-weak Ed25519 point.
    pub fn new(channel_id: ChannelId, channel_key: [u8; 32], kind: ChannelKind) -> Result<Self, ChannelError> {
        if !is_valid_channel_key(&channel_key) {
            return Err(DecodeError::InvalidValue("channel key").into());
        }
        Ok(Subscription { channel_id, kind, channel_key, last_seq: 0, keys: Vec::new() })
    }

    /// The channel's id.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// The channel key trusted now.
    pub fn channel_key(&self) -> &[u8; 32] {
        &self.channel_key
    }

    /// The highest sequence number accepted (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The ids of the content keys held, oldest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.iter().map(|(id, _)| *id).collect()
    }

    /// Receives a channel object: 0x30 (public channel), 0x31 (either kind) or 0x32
    /// (restricted channel). Any other type is `Decode(WrongType)`; a post of the
    /// wrong kind is `WrongKind`.
    ///
    /// Announcement checks, in order: decode, channel id (`WrongChannel`), signer is the
    /// current channel key (`WrongSigner`), strict signature (`BadSignature`), sequence
    /// number (`StaleSequence`), timestamp at most `now + MAX_ANNOUNCEMENT_FUTURE_SECS`
    /// (`FromFuture`). A restricted post first passes: decode, outer channel id, key id
    /// held (`UnknownKey`, retryable after [`Self::accept_key`]), chain position
    /// (`Chain`), AEAD (`AuthenticationFailed`), padding (`InvalidPadding`); then the
    /// inner announcement passes every announcement check. Only then is anything
    /// changed. A rotation: decode, channel id, old key is the current key
    /// (`WrongSigner`), both signatures (`BadSignature`), seq above the highest accepted
    /// (`StaleSequence`), timestamp (`FromFuture`).
    pub fn receive(&mut self, bytes: &[u8], now: u64) -> Result<Received, ChannelError> {
        match bytes.first().copied() {
            Some(type_byte::ANNOUNCEMENT) => {
                if self.kind != ChannelKind::Public {
                    return Err(ChannelError::WrongKind);
                }
                let a = self.check_announcement(bytes, now)?;
                self.last_seq = a.seq;
                Ok(Received::Announcement(a))
            }
            Some(type_byte::KEY_ROTATION) => self.receive_rotation(bytes, now),
            Some(type_byte::RESTRICTED_ANNOUNCEMENT) => {
                if self.kind != ChannelKind::Restricted {
                    return Err(ChannelError::WrongKind);
                }
                self.receive_restricted(bytes, now)
            }
            Some(found) => Err(DecodeError::WrongType { expected: type_byte::ANNOUNCEMENT, found }.into()),
            None => Err(DecodeError::Empty.into()),
        }
    }

    /// Every announcement check, without changing anything.
    fn check_announcement(&self, bytes: &[u8], now: u64) -> Result<Announcement, ChannelError> {
        let decoded = decode_announcement(bytes)?;
        let a = &decoded.announcement;
        if a.channel_id != self.channel_id {
            return Err(ChannelError::WrongChannel);
        }
        if a.signer != self.channel_key {
            return Err(ChannelError::WrongSigner);
        }
        decoded.verify_signature()?;
        self.check_seq(a.seq)?;
        check_time(a.timestamp, now)?;
        Ok(decoded.announcement)
    }

    fn receive_restricted(&mut self, bytes: &[u8], now: u64) -> Result<Received, ChannelError> {
        let d = decode_restricted(bytes)?;
        if d.channel_id != self.channel_id {
            return Err(ChannelError::WrongChannel);
        }
        let pos = self
            .keys
            .iter()
            .position(|(id, _)| *id == d.key_id)
            .ok_or(ChannelError::UnknownKey { key_id: d.key_id })?;
        let staged = self.keys[pos].1.stage(d.iteration)?;
        let aead = message_key(&staged.key, labels::CHANNEL_MESSAGE_KEYS)?;
        let padded = Zeroizing::new(aead.open_siv(d.aad, d.ciphertext).ok_or(ChannelError::AuthenticationFailed)?);
        let inner = Zeroizing::new(unpad(padded.to_vec()).map_err(|_| ChannelError::InvalidPadding)?);
        let a = self.check_announcement(&inner, now)?;
        let chain = &mut self.keys[pos].1;
        chain.apply(staged);
        chain.evict_to(MAX_CHANNEL_SKIPPED_KEYS);
        self.last_seq = a.seq;
        Ok(Received::Announcement(a))
    }

    fn receive_rotation(&mut self, bytes: &[u8], now: u64) -> Result<Received, ChannelError> {
        let d = decode_rotation(bytes)?;
        if d.channel_id != self.channel_id {
            return Err(ChannelError::WrongChannel);
        }
        if d.old_key != self.channel_key {
            return Err(ChannelError::WrongSigner);
        }
        d.verify_signatures()?;
        self.check_seq(d.seq)?;
        check_time(d.timestamp, now)?;
        self.last_seq = d.seq;
        self.channel_key = d.new_key;
        Ok(Received::KeyRotated { old: d.old_key, new: d.new_key, seq: d.seq })
    }

    /// Accepts a restricted channel's content key from a 0x33 distribution (delivered
    /// inside a pairwise session). Checks, in order: decode, channel id
    /// (`WrongChannel`), kind (`WrongKind` on a public channel), signer is the current
    /// channel key (`WrongSigner`; after a rotation, retryable once the rotation has
    /// been received), strict signature (`BadSignature`). A key id already held keeps
    /// the existing copy (its chain position is not reset). At most
    /// [`MAX_CHANNEL_KEYS`] are held: adding one more drops the oldest. Returns the
    /// key id.
    pub fn accept_key(&mut self, bytes: &[u8]) -> Result<u32, ChannelError> {
        let staged = self.stage_key(bytes)?;
        let key_id = staged.key_id;
        self.apply_key(staged);
        Ok(key_id)
    }

    /// The checks of [`Self::accept_key`], without changing anything: the key to apply
    /// with [`Self::apply_key`] once the pairwise session that carried it commits.
    pub(crate) fn stage_key(&self, bytes: &[u8]) -> Result<StagedContentKey, ChannelError> {
        let d = decode_distribution(bytes)?;
        if d.channel_id != self.channel_id {
            return Err(ChannelError::WrongChannel);
        }
        if self.kind != ChannelKind::Restricted {
            return Err(ChannelError::WrongKind);
        }
        if d.signer != self.channel_key {
            return Err(ChannelError::WrongSigner);
        }
        d.verify_signature()?;
        let held = self.keys.iter().any(|(id, _)| *id == d.key_id);
        let chain = (!held).then(|| ReceiverChain::new(*d.chain_key, d.iteration));
        Ok(StagedContentKey { key_id: d.key_id, chain })
    }

    /// Applies a key staged by [`Self::stage_key`] on this subscription.
    pub(crate) fn apply_key(&mut self, staged: StagedContentKey) {
        let Some(chain) = staged.chain else { return };
        if self.keys.len() >= MAX_CHANNEL_KEYS {
            self.keys.remove(0);
        }
        self.keys.push((staged.key_id, chain));
    }

    /// Refuses a sequence number not greater than the last one accepted.
    fn check_seq(&self, seq: u64) -> Result<(), ChannelError> {
        if seq <= self.last_seq {
            return Err(ChannelError::StaleSequence { last: self.last_seq, got: seq });
        }
        Ok(())
    }

    /// Length of `Self::write`'s output.
    pub fn encoded_len(&self) -> usize {
        32 + 1 + 32 + 8 + 4 + self.keys.iter().map(|(_, c)| 4 + c.encoded_len()).sum::<usize>()
    }

    /// Writes the state: `channel_id [32] || kind u8 || channel_key [32] || last_seq u64
    /// || count u32 || (key_id u32 || chain)*`, keys oldest first.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.channel_id.0)
            .u8(self.kind.to_byte())
            .bytes(&self.channel_key)
            .u64(self.last_seq)
            .u32(self.keys.len() as u32);
        for (id, chain) in &self.keys {
            w.u32(*id);
            chain.write(w);
        }
    }

    /// Reads a state written by [`Self::write`], refusing an invalid channel key, more than `MAX_CHANNEL_KEYS` keys (any on a
    /// public channel), a repeated key id and a chain over `MAX_CHANNEL_SKIPPED_KEYS`.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let channel_id = ChannelId(r.array()?);
        let kind = ChannelKind::read(r)?;
        let channel_key = read_channel_key(r, "subscription channel key")?;
        let last_seq = r.u64()?;
        let max = if kind == ChannelKind::Restricted { MAX_CHANNEL_KEYS } else { 0 };
        let n = r.count(max, "subscription key count")?;
        let mut keys: Vec<(u32, ReceiverChain)> = Vec::with_capacity(n);
        for _ in 0..n {
            let id = r.u32()?;
            let chain = ReceiverChain::read(r)?;
            if keys.iter().any(|(k, _)| *k == id) {
                return Err(DecodeError::InvalidValue("subscription key id"));
            }
            if chain.skipped_len() > MAX_CHANNEL_SKIPPED_KEYS {
                return Err(DecodeError::InvalidValue("subscription skipped keys"));
            }
            keys.push((id, chain));
        }
        Ok(Subscription { channel_id, kind, channel_key, last_seq, keys })
    }

    /// The state encoding (`Self::write`) in a buffer wiped when dropped: it holds
    /// secrets. Exactly [`Self::encoded_len`] bytes.
    pub fn to_state_bytes(&self) -> Zeroizing<Vec<u8>> {
        crate::wire::encode_state(self.encoded_len(), |w| self.write(w))
    }

    /// Decodes a state encoding made by [`Self::to_state_bytes`] (validated as
    /// `Self::read` does; trailing bytes refused).
    pub fn from_state_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        crate::wire::decode_state(bytes, Self::read)
    }

    /// Calls `f` with every secret: each content key's chain key and skipped keys.
    pub fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        for (_, chain) in &self.keys {
            chain.for_each_secret(f);
        }
    }
}

fn check_time(timestamp: u64, now: u64) -> Result<(), ChannelError> {
    if timestamp > now.saturating_add(MAX_ANNOUNCEMENT_FUTURE_SECS) {
        return Err(ChannelError::FromFuture { timestamp, now });
    }
    Ok(())
}
