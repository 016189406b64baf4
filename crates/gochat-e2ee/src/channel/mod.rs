//! Official broadcast channels: an agency posts, subscribers verify every post.
//!
//! A channel belongs to one agency. Only a holder of the channel's Ed25519 signing key
//! (the *channel key*) can produce an announcement that a [`Subscription`] accepts:
//! every announcement is signed over its whole encoding, and a subscriber accepts it only
//! if it names the subscribed channel, is signed by the channel key the subscriber
//! currently trusts, carries a sequence number greater than the last one it accepted
//! (strictly monotonic: no replay, rollback or reordering), and is not dated more than
//! [`MAX_ANNOUNCEMENT_FUTURE_SECS`] in the future.
//!
//! The channel key can be replaced with a `KeyRotation` (type 0x31)
//! signed by the old key and by the new one (proof of possession); it shares the
//! sequence space with announcements, so it cannot be replayed or reordered behind
//! newer posts.
//!
//! A *restricted* channel additionally encrypts every announcement (type 0x32) with a
//! single-sender chain (the sender chain of [`crate::group::chain`]); the chain key is
//! handed out in a signed `ChannelKeyDistribution` (type 0x33) that the
//! Device layer carries inside each subscriber's pairwise 1:1 session. Removing a
//! subscriber is done by the app: it calls [`Publisher::rotate_content_key`] and sends
//! the new [`Publisher::key_distribution`] to every remaining subscriber only.
//!
//! Every operation is failure-atomic: an error leaves the [`Publisher`] or
//! [`Subscription`] byte-for-byte unchanged.
//!
//! The byte layouts are specified in `docs/channels-spec.md`.

mod announcement;
mod publisher;
mod subscription;
#[cfg(test)]
mod tests;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, Secret32};
use crate::group::chain::ChainError;
use crate::records::TrackedMap;
use crate::wire::{DecodeError, Reader, Writer};

pub use announcement::{verify_announcement, Announcement, ContentType};
pub use publisher::{Publisher, RESTORE_SEQ_GAP};
pub(crate) use subscription::StagedContentKey;
pub use subscription::{Received, Subscription};

/// Type bytes of the channel layer (0x30 to 0x3F are reserved for channels).
pub mod type_byte {
    /// A signed announcement.
    pub const ANNOUNCEMENT: u8 = 0x30;
    /// A channel key rotation signed by the old and the new key.
    pub const KEY_ROTATION: u8 = 0x31;
    /// An announcement encrypted under a restricted channel's content key.
    pub const RESTRICTED_ANNOUNCEMENT: u8 = 0x32;
    /// A restricted channel's content key, signed by the channel key.
    pub const KEY_DISTRIBUTION: u8 = 0x33;
}

/// Largest announcement body.
pub const MAX_ANNOUNCEMENT_BODY_BYTES: usize = 65_536;
/// Bytes of an announcement besides its body: header 2, channel id 32, seq 8,
/// timestamp 8, content type 1, body length 4, signer 32, signature 64.
pub const ANNOUNCEMENT_OVERHEAD_BYTES: usize = 2 + 32 + 8 + 8 + 1 + 4 + 32 + 64;
/// Largest announcement (type 0x30): 65_687 bytes.
pub const MAX_ANNOUNCEMENT_BYTES: usize = ANNOUNCEMENT_OVERHEAD_BYTES + MAX_ANNOUNCEMENT_BODY_BYTES;
/// Length of a key rotation (type 0x31): 242 bytes.
pub const KEY_ROTATION_BYTES: usize = 2 + 32 + 8 + 8 + 32 + 32 + 64 + 64;
/// Bytes of a restricted announcement before its ciphertext (the AAD): header 2,
/// channel id 32, key id 4, iteration 4.
pub const RESTRICTED_HEADER_BYTES: usize = 2 + 32 + 4 + 4;
/// Padding block of a restricted announcement's plaintext.
pub const RESTRICTED_PADDING_BLOCK: usize = crate::ratchet::PADDING_BLOCK;
/// Largest padded plaintext of a restricted announcement: the largest announcement
/// padded (at least one byte of padding) to a multiple of 64: 65_728 bytes.
pub const MAX_RESTRICTED_PADDED_BYTES: usize =
    (MAX_ANNOUNCEMENT_BYTES / RESTRICTED_PADDING_BLOCK + 1) * RESTRICTED_PADDING_BLOCK;
/// Largest restricted announcement (type 0x32): 65_786 bytes.
pub const MAX_RESTRICTED_ANNOUNCEMENT_BYTES: usize =
    RESTRICTED_HEADER_BYTES + crate::crypto::AEAD_TAG_BYTES + MAX_RESTRICTED_PADDED_BYTES;
/// Length of a key distribution (type 0x33): 170 bytes.
pub const KEY_DISTRIBUTION_BYTES: usize = 2 + 32 + 4 + 4 + 32 + 32 + 64;
/// How far in the future (after the caller's `now`) an announcement's or rotation's
/// timestamp may be (`FromFuture`).
pub const MAX_ANNOUNCEMENT_FUTURE_SECS: u64 = 300;
/// Most content keys a restricted subscription holds (the oldest is dropped).
pub const MAX_CHANNEL_KEYS: usize = 4;
/// Skipped message keys kept per content key of a subscription: none. Sequence numbers
/// are strictly monotonic and a publisher draws them in iteration order, so a post at
/// a skipped iteration could only be refused as `StaleSequence`; keeping its key would
/// only widen what a stolen subscriber state reveals.
pub const MAX_CHANNEL_SKIPPED_KEYS: usize = 0;
/// Most publishers, and most subscriptions, in one [`Channels`].
pub const MAX_CHANNELS: usize = 4096;

/// The 32-byte identifier of a channel (random, chosen by the publisher).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub [u8; 32]);

impl ChannelId {
    /// The identifier's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Whether a channel's posts are readable by anyone or only by key holders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Posts are signed, not encrypted (type 0x30).
    Public,
    /// Posts are signed and then encrypted under a distributed content key (type 0x32).
    Restricted,
}

impl ChannelKind {
    fn to_byte(self) -> u8 {
        match self {
            ChannelKind::Public => 0,
            ChannelKind::Restricted => 1,
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(ChannelKind::Public),
            1 => Ok(ChannelKind::Restricted),
            _ => Err(DecodeError::InvalidValue("channel kind")),
        }
    }
}

/// Why the channel layer refused an input or an operation. The state is unchanged in
/// every case.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    /// The bytes are not a well-formed object of the expected type.
    #[error("malformed channel object: {0}")]
    Decode(#[from] DecodeError),
    /// The signature does not verify (strict Ed25519) under the named key.
    #[error("bad signature")]
    BadSignature,
    /// Signed (or claimed to be signed) by a key that is not the channel's current key.
    /// After a key rotation this is retryable once the rotation has been received.
    #[error("signed by a key that is not the channel's current key")]
    WrongSigner,
    /// The sequence number is not greater than the last one accepted: a replay, a
    /// rollback, or a post delivered after a later one.
    #[error("stale sequence number {got} (highest accepted {last})")]
    StaleSequence {
        /// The highest sequence number accepted so far (0: none).
        last: u64,
        /// The sequence number of the refused object.
        got: u64,
    },
    /// The timestamp is more than `MAX_ANNOUNCEMENT_FUTURE_SECS` after `now`.
    #[error("timestamp {timestamp} is too far after now ({now})")]
    FromFuture {
        /// The object's timestamp.
        timestamp: u64,
        /// The caller's clock.
        now: u64,
    },
    /// The object names another channel.
    #[error("object belongs to another channel")]
    WrongChannel,
    /// A restricted announcement names a content key this subscription does not hold.
    /// Retryable once the key's distribution has been accepted.
    #[error("content key {key_id} is not held")]
    UnknownKey {
        /// The key id named by the announcement.
        key_id: u32,
    },
    /// The content key's chain refused the iteration (replay, lost, too far ahead).
    #[error("content key chain: {0}")]
    Chain(#[from] ChainError),
    /// The restricted announcement's AEAD tag does not verify.
    #[error("restricted announcement failed authentication")]
    AuthenticationFailed,
    /// The decrypted plaintext is not correctly padded.
    #[error("restricted announcement has invalid padding")]
    InvalidPadding,
    /// The object or operation does not fit the channel's kind: an encrypted post or a
    /// key distribution on a public channel, a plain post on a restricted one.
    #[error("object does not fit the channel's kind")]
    WrongKind,
    /// The body is longer than `MAX_ANNOUNCEMENT_BODY_BYTES`.
    #[error("announcement body of {len} bytes exceeds the maximum of {max}")]
    BodyTooLarge {
        /// Length of the body.
        len: usize,
        /// `MAX_ANNOUNCEMENT_BODY_BYTES`.
        max: usize,
    },
    /// The publisher's sequence numbers are used up.
    #[error("channel sequence numbers exhausted")]
    SequenceExhausted,
    /// A [`Channels`] map already holds `MAX_CHANNELS` entries.
    #[error("too many channels")]
    TooManyChannels,
    /// A [`Channels`] map already holds this channel.
    #[error("channel already present")]
    AlreadyPresent,
    /// This device neither publishes to nor is subscribed to the channel (for a post or
    /// key: subscribe first, with the key from the agency's directory).
    #[error("unknown channel")]
    UnknownChannel,
    /// The restricted channel's content key was retired when the state was restored
    /// from a snapshot (its chain position may already have been used): rotate the
    /// content key, then post.
    #[error("content key retired by a restore: rotate it")]
    ContentKeyRetired,
    /// A primitive refused its input (never caused by peer input).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// What [`crate::Device::channel_rotate_content_key`] did: the new content key's id,
/// its pairwise control messages for the listed subscribers, and the subscribers that
/// got nothing (no session, or an identity change the app has not approved).
#[must_use = "the outgoing messages must be sent and the withheld subscribers handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRekey {
    /// The new content key's id.
    pub key_id: u32,
    /// One pairwise control message per subscriber that gets the key.
    pub outgoing: Vec<crate::group::Outgoing>,
    /// The subscribers that were not sent the key, and why.
    pub withheld: Vec<crate::group::Withheld>,
}

/// A restricted channel's content key accepted by [`crate::Device::receive_control`]:
/// signed by the channel key this device trusts, relayed by `sender` over its pairwise
/// session (whose identity event is reported, like any pairwise message).
#[must_use = "the identity event must be checked"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelKeyReceived {
    /// The channel the key is for.
    pub channel_id: ChannelId,
    /// The peer whose pairwise session carried it.
    pub sender: String,
    /// The content key's id.
    pub key_id: u32,
    /// What the pairwise session learned about the sender's identity.
    pub identity: crate::trust::IdentityEvent,
}

/// Whether 32 bytes are the canonical encoding of a valid, non-weak Ed25519 point.
fn is_valid_channel_key(key: &[u8; 32]) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|vk| !vk.is_weak() && vk.to_bytes() == *key)
}

/// Reads a channel public key, refusing anything but a canonical, valid, non-weak point.
fn read_channel_key(r: &mut Reader<'_>, field: &'static str) -> Result<[u8; 32], DecodeError> {
    let key = r.array::<32>()?;
    if !is_valid_channel_key(&key) {
        return Err(DecodeError::InvalidValue(field));
    }
    Ok(key)
}

/// Verifies a strict Ed25519 signature by `key` over `label || message`.
fn verify(key: &[u8; 32], label: &[u8], message: &[u8], signature: &[u8; 64]) -> Result<(), ChannelError> {
    let vk = VerifyingKey::from_bytes(key).map_err(|_| ChannelError::BadSignature)?;
    vk.verify_strict(&labelled(label, message), &Signature::from_bytes(signature))
        .map_err(|_| ChannelError::BadSignature)
}

/// `label || message`, the signed data. Wiped on drop: a restricted post's body and a
/// key distribution's chain key are part of `message`.
fn labelled(label: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut data = Zeroizing::new(Vec::with_capacity(label.len() + message.len()));
    data.extend_from_slice(label);
    data.extend_from_slice(message);
    data
}

/// A channel signing key, held as an Ed25519 signing key (its 32-byte seed is wiped on
/// drop, never printed) with its public key, computed once rather than per post.
struct ChannelSigningKey {
    signing: SigningKey,
    public: [u8; 32],
}

impl core::fmt::Debug for ChannelSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ChannelSigningKey {{ public: {:02x?}, seed: <redacted> }}", &self.public[..8])
    }
}

impl ChannelSigningKey {
    fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Secret32([0; 32]);
        rng.fill_bytes(&mut seed.0);
        Self::from_seed(seed)
    }

    fn from_seed(seed: Secret32) -> Self {
        let signing = SigningKey::from_bytes(seed.as_bytes());
        let public = signing.verifying_key().to_bytes();
        ChannelSigningKey { signing, public }
    }

    /// The 32-byte seed (for the state encoding and `for_each_secret`).
    fn seed(&self) -> &[u8; 32] {
        self.signing.as_bytes()
    }

    fn sign(&self, label: &[u8], message: &[u8]) -> [u8; 64] {
        self.signing.sign(&labelled(label, message)).to_bytes()
    }
}

/// Every channel a device publishes to or is subscribed to, at most [`MAX_CHANNELS`] of
/// each, ordered by channel id (so the state encoding is unique).
#[derive(Debug, Default)]
pub struct Channels {
    publishers: TrackedMap<ChannelId, Publisher>,
    subscriptions: TrackedMap<ChannelId, Subscription>,
}

impl Channels {
    /// No channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a publisher. Refused (`AlreadyPresent`, `TooManyChannels`) without change.
    pub fn insert_publisher(&mut self, publisher: Publisher) -> Result<(), ChannelError> {
        let id = publisher.channel_id();
        if self.publishers.contains_key(&id) {
            return Err(ChannelError::AlreadyPresent);
        }
        if self.publishers.len() >= MAX_CHANNELS {
            return Err(ChannelError::TooManyChannels);
        }
        self.publishers.insert(id, publisher);
        Ok(())
    }

    /// Adds a subscription. Refused (`AlreadyPresent`, `TooManyChannels`) without change.
    pub fn insert_subscription(&mut self, subscription: Subscription) -> Result<(), ChannelError> {
        let id = subscription.channel_id();
        if self.subscriptions.contains_key(&id) {
            return Err(ChannelError::AlreadyPresent);
        }
        if self.subscriptions.len() >= MAX_CHANNELS {
            return Err(ChannelError::TooManyChannels);
        }
        self.subscriptions.insert(id, subscription);
        Ok(())
    }

    /// The publisher of `id`, if held.
    pub fn publisher(&self, id: &ChannelId) -> Option<&Publisher> {
        self.publishers.get(id)
    }

    /// The publisher of `id`, mutably.
    pub fn publisher_mut(&mut self, id: &ChannelId) -> Option<&mut Publisher> {
        self.publishers.get_mut(id)
    }

    /// The subscription to `id`, if held.
    pub fn subscription(&self, id: &ChannelId) -> Option<&Subscription> {
        self.subscriptions.get(id)
    }

    /// The subscription to `id`, mutably.
    pub fn subscription_mut(&mut self, id: &ChannelId) -> Option<&mut Subscription> {
        self.subscriptions.get_mut(id)
    }

    /// Removes and returns the publisher of `id` (its signing key is wiped when dropped).
    pub fn remove_publisher(&mut self, id: &ChannelId) -> Option<Publisher> {
        self.publishers.remove(id)
    }

    /// Removes and returns the subscription to `id`.
    pub fn remove_subscription(&mut self, id: &ChannelId) -> Option<Subscription> {
        self.subscriptions.remove(id)
    }

    /// Marks every channel changed.
    pub(crate) fn mark_all(&mut self) {
        self.publishers.mark_all();
        self.subscriptions.mark_all();
    }

    /// The publishers and subscriptions changed since the last call (for the store's
    /// change set); clears the marks.
    pub(crate) fn take_touched(
        &mut self,
    ) -> (std::collections::BTreeSet<ChannelId>, std::collections::BTreeSet<ChannelId>) {
        (self.publishers.take_touched(), self.subscriptions.take_touched())
    }

    /// Replaces (or removes) the publisher of `id` with one read from a store record.
    pub(crate) fn put_publisher(&mut self, id: ChannelId, publisher: Option<Publisher>) {
        match publisher {
            Some(p) => {
                self.publishers.insert(id, p);
            }
            None => {
                self.publishers.remove(&id);
            }
        }
    }

    /// Replaces (or removes) the subscription to `id` with one read from a store record.
    pub(crate) fn put_subscription(&mut self, id: ChannelId, subscription: Option<Subscription>) {
        match subscription {
            Some(s) => {
                self.subscriptions.insert(id, s);
            }
            None => {
                self.subscriptions.remove(&id);
            }
        }
    }

    /// Retires every publisher after a restore (see `Publisher::retire_after_restore`).
    pub(crate) fn retire_after_restore(&mut self) {
        self.publishers.values_mut().for_each(Publisher::retire_after_restore);
    }

    /// The ids of the channels published to, ascending.
    pub fn publisher_ids(&self) -> impl Iterator<Item = &ChannelId> {
        self.publishers.keys()
    }

    /// The ids of the channels subscribed to, ascending.
    pub fn subscription_ids(&self) -> impl Iterator<Item = &ChannelId> {
        self.subscriptions.keys()
    }

    /// Length of `Self::write`'s output.
    pub fn encoded_len(&self) -> usize {
        4 + self.publishers.values().map(Publisher::encoded_len).sum::<usize>()
            + 4
            + self.subscriptions.values().map(Subscription::encoded_len).sum::<usize>()
    }

    /// Writes the state: `count u32 || publishers || count u32 || subscriptions`, each
    /// list in ascending channel id order.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.publishers.len() as u32);
        for p in self.publishers.values() {
            p.write(w);
        }
        w.u32(self.subscriptions.len() as u32);
        for s in self.subscriptions.values() {
            s.write(w);
        }
    }

    /// Reads a state written by [`Self::write`], refusing counts over `MAX_CHANNELS` and
    /// lists not in strictly ascending channel id order.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut out = Channels::new();
        let n = r.count(MAX_CHANNELS, "publisher count")?;
        for _ in 0..n {
            let p = Publisher::read(r)?;
            if out.publishers.last_key_value().is_some_and(|(k, _)| *k >= p.channel_id()) {
                return Err(DecodeError::InvalidValue("publisher order"));
            }
            out.publishers.insert(p.channel_id(), p);
        }
        let n = r.count(MAX_CHANNELS, "subscription count")?;
        for _ in 0..n {
            let s = Subscription::read(r)?;
            if out.subscriptions.last_key_value().is_some_and(|(k, _)| *k >= s.channel_id()) {
                return Err(DecodeError::InvalidValue("subscription order"));
            }
            out.subscriptions.insert(s.channel_id(), s);
        }
        Ok(out)
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

    /// Calls `f` with every secret byte string held (signing key seeds, chain keys,
    /// skipped message keys).
    pub fn for_each_secret(&self, f: &mut dyn FnMut(&'static str, &[u8])) {
        for p in self.publishers.values() {
            p.for_each_secret(f);
        }
        for s in self.subscriptions.values() {
            s.for_each_secret(f);
        }
    }
}
