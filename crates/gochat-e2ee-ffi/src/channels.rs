//! Official broadcast channels (protocol chapter 13), as the `Device` object's
//! `channel_*` methods, `receive_control` for every pairwise control message, and the
//! stateless `verify_announcement`. Thin like the rest: convert, lock, call the core
//! (failure-atomic: a refused post or key changes nothing). Channel ids and keys cross
//! as byte arrays; a wrong length is refused with `Malformed` (ids) or `InvalidKey`
//! (keys) before the core is called.

use gochat_e2ee as core;
use gochat_e2ee::channel::ChannelId;
use gochat_e2ee::ErrorCode;

use gochat_e2ee_store::inbox::channel_digest;

use crate::groups::{bytes32, fan_out, outgoing, withheld, FanOutRecord, OutgoingRecord, WithheldRecord};
use crate::holder::Holder;
use crate::{rng, Device, IdentityEvent, Result, SenderKeyReceivedRecord};

fn channel_id_arg(bytes: &[u8]) -> Result<ChannelId> {
    Ok(ChannelId(bytes32(bytes, "a channel id", ErrorCode::Malformed)?))
}

fn channel_key_arg(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes32(bytes, "a channel key", ErrorCode::InvalidKey)
}

/// Whether a channel's posts are readable by anyone or only by key holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChannelKind {
    /// Posts are signed, not encrypted (type 0x30).
    Public,
    /// Posts are signed, then encrypted under a content key the publisher sends to each
    /// subscriber pairwise (type 0x32).
    Restricted,
}

impl From<ChannelKind> for core::channel::ChannelKind {
    fn from(k: ChannelKind) -> Self {
        match k {
            ChannelKind::Public => core::channel::ChannelKind::Public,
            ChannelKind::Restricted => core::channel::ChannelKind::Restricted,
        }
    }
}

/// What an announcement's body holds (opaque to the library).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ContentType {
    /// UTF-8 text (the encoding is not checked).
    Text,
    /// A JSON document (not parsed).
    Json,
    /// A pointer to an attachment stored elsewhere.
    AttachmentPointer,
}

impl From<ContentType> for core::channel::ContentType {
    fn from(c: ContentType) -> Self {
        match c {
            ContentType::Text => core::channel::ContentType::Text,
            ContentType::Json => core::channel::ContentType::Json,
            ContentType::AttachmentPointer => core::channel::ContentType::AttachmentPointer,
        }
    }
}

impl From<core::channel::ContentType> for ContentType {
    fn from(c: core::channel::ContentType) -> Self {
        match c {
            core::channel::ContentType::Text => ContentType::Text,
            core::channel::ContentType::Json => ContentType::Json,
            core::channel::ContentType::AttachmentPointer => ContentType::AttachmentPointer,
        }
    }
}

/// A signature-checked announcement.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AnnouncementRecord {
    /// The channel it was posted to (32 bytes).
    pub channel_id: Vec<u8>,
    /// Its sequence number in the channel (shared with signing-key rotations).
    pub seq: u64,
    /// The publisher's clock when posting (Unix seconds; only bounded above on receipt).
    pub timestamp: u64,
    /// What the body holds.
    pub content_type: ContentType,
    /// The body.
    pub body: Vec<u8>,
    /// The channel signing key that signed it (32-byte Ed25519 public key).
    pub signer: Vec<u8>,
}

impl From<core::channel::Announcement> for AnnouncementRecord {
    fn from(a: core::channel::Announcement) -> Self {
        AnnouncementRecord {
            channel_id: a.channel_id.0.to_vec(),
            seq: a.seq,
            timestamp: a.timestamp,
            content_type: a.content_type.into(),
            body: a.body,
            signer: a.signer.to_vec(),
        }
    }
}

/// What `channel_receive` accepted. Every variant carries the post's inbox `digest` (32
/// bytes; on a store-backed device pass it to `ack` once the app has handled the post)
/// and `redelivered` (true: the store kept this result from an earlier delivery that was
/// not acknowledged, and nothing advanced; the app may have handled it already).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ChannelReceivedRecord {
    /// An announcement (public, or decrypted from a restricted post).
    Announcement {
        /// The announcement.
        announcement: AnnouncementRecord,
        /// The post's inbox digest (32 bytes), for `ack`.
        digest: Vec<u8>,
        /// True if the store returned a kept, unacknowledged result again.
        redelivered: bool,
    },
    /// The channel's signing key was replaced: posts are accepted only from `new` now.
    KeyRotated {
        /// The previous signing key (32 bytes).
        old: Vec<u8>,
        /// The signing key from now on (32 bytes).
        new: Vec<u8>,
        /// The rotation's sequence number.
        seq: u64,
        /// The post's inbox digest (32 bytes), for `ack`.
        digest: Vec<u8>,
        /// True if the store returned a kept, unacknowledged result again.
        redelivered: bool,
    },
}

impl ChannelReceivedRecord {
    fn new(r: core::channel::Received, digest: [u8; 32], redelivered: bool) -> Self {
        let digest = digest.to_vec();
        match r {
            core::channel::Received::Announcement(a) => {
                ChannelReceivedRecord::Announcement { announcement: a.into(), digest, redelivered }
            }
            core::channel::Received::KeyRotated { old, new, seq } => {
                ChannelReceivedRecord::KeyRotated { old: old.to_vec(), new: new.to_vec(), seq, digest, redelivered }
            }
        }
    }
}

/// A restricted channel's new content key and its pairwise messages.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChannelRekeyRecord {
    /// The new content key's id.
    pub key_id: u32,
    /// The new key, as pairwise messages to the subscribers given.
    pub outgoing: Vec<OutgoingRecord>,
    /// Subscribers that were not sent it, and why: act on each.
    pub withheld: Vec<WithheldRecord>,
}

/// A restricted channel's content key received over a pairwise session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChannelKeyReceivedRecord {
    /// The channel (32 bytes).
    pub channel_id: Vec<u8>,
    /// The peer that sent it.
    pub sender: String,
    /// The content key's id.
    pub key_id: u32,
    /// How the pairwise sender's identity relates to its pin: must be checked.
    pub identity_event: IdentityEvent,
}

/// What `receive_control` accepted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ControlReceived {
    /// A group sender key (0x23).
    SenderKey {
        /// The key received.
        received: SenderKeyReceivedRecord,
    },
    /// A restricted channel's content key (0x33).
    ChannelKey {
        /// The key received.
        received: ChannelKeyReceivedRecord,
    },
}

/// Verifies a public announcement (0x30) on its own, with no state: that it is signed
/// by `agency_key` (32 bytes; `WrongSigner` otherwise) and the strict Ed25519 signature
/// verifies (`BadSignature`). For a copy forwarded outside the channel: it proves who
/// signed it, not that it is fresh or that the key is still the channel's current one.
#[uniffi::export]
pub fn verify_announcement(announcement: Vec<u8>, agency_key: Vec<u8>) -> Result<AnnouncementRecord> {
    let key = channel_key_arg(&agency_key)?;
    Ok(core::channel::verify_announcement(&announcement, &key).map_err(core::Error::from)?.into())
}

#[uniffi::export]
impl Device {
    /// Creates a channel this device publishes; returns its id (32 bytes). Give the id
    /// and `channel_public_key` to subscribers out of band.
    pub fn channel_create(&self, kind: ChannelKind) -> Result<Vec<u8>> {
        Ok(self.with(|d| d.channel_create(kind.into(), &mut rng()))?.0.to_vec())
    }

    /// The published channel's current signing key (32-byte Ed25519 public key).
    pub fn channel_public_key(&self, channel_id: Vec<u8>) -> Result<Vec<u8>> {
        let id = channel_id_arg(&channel_id)?;
        Ok(self.lock().channel_public_key(&id)?.to_vec())
    }

    /// Signs (and on a restricted channel encrypts) a post stamped `now`: a 0x30
    /// announcement on a public channel, a 0x32 restricted one otherwise. Post it to
    /// every subscriber. After a restore from a snapshot, a restricted channel refuses
    /// (`ChainExhausted`) until `channel_rotate_content_key` replaces its content key.
    pub fn channel_announce(
        &self,
        channel_id: Vec<u8>,
        content_type: ContentType,
        body: Vec<u8>,
        now: u64,
    ) -> Result<Vec<u8>> {
        let id = channel_id_arg(&channel_id)?;
        self.with(|d| d.channel_announce(&id, content_type.into(), &body, now))
    }

    /// Replaces the channel's signing key: a 0x31 rotation signed by the old and the new
    /// key, to post like an announcement (subscribers follow it).
    pub fn channel_rotate_signing_key(&self, channel_id: Vec<u8>, now: u64) -> Result<Vec<u8>> {
        let id = channel_id_arg(&channel_id)?;
        self.with(|d| d.channel_rotate_signing_key(&id, now, &mut rng()))
    }

    /// The restricted channel's current content key, as pairwise messages to each of
    /// `subscribers` (peer names with sessions); the others are withheld. Refused on a
    /// public channel (`WrongChannel`) and after a restore (`ChainExhausted`: rotate the
    /// content key instead).
    pub fn channel_send_key(&self, channel_id: Vec<u8>, subscribers: Vec<String>) -> Result<FanOutRecord> {
        let id = channel_id_arg(&channel_id)?;
        Ok(fan_out(self.with(|d| d.channel_send_key(&id, &subscribers))?))
    }

    /// A new content key for the restricted channel, sent to `subscribers` only:
    /// removing a subscriber is rotating and leaving it out (it cannot read later
    /// posts).
    pub fn channel_rotate_content_key(
        &self,
        channel_id: Vec<u8>,
        subscribers: Vec<String>,
    ) -> Result<ChannelRekeyRecord> {
        let id = channel_id_arg(&channel_id)?;
        let r = self.with(|d| d.channel_rotate_content_key(&id, &subscribers, &mut rng()))?;
        Ok(ChannelRekeyRecord { key_id: r.key_id, outgoing: outgoing(r.outgoing), withheld: withheld(r.withheld) })
    }

    /// Subscribes to a channel whose id and signing key (32 bytes each) came out of
    /// band: only posts signed by that key (or its rotated successors) are accepted.
    pub fn channel_subscribe(&self, channel_id: Vec<u8>, channel_key: Vec<u8>, kind: ChannelKind) -> Result<()> {
        let (id, key) = (channel_id_arg(&channel_id)?, channel_key_arg(&channel_key)?);
        self.with(|d| d.channel_subscribe(id, key, kind.into()))?;
        Ok(())
    }

    /// Receives a post (0x30, 0x31 or 0x32; the channel is read from it). Refused: a
    /// replay or a post too old (`StaleSequence`), another signer (`WrongSigner`; after
    /// a missed rotation, retry once it arrives), a post dated too far after `now`
    /// (`FromFuture`), a restricted post whose key has not arrived (`MissingSenderKey`:
    /// retry after it has).
    ///
    /// On a store-backed device the result is kept in the store's inbox, committed with
    /// the sequence step, until `ack(digest)`: the same post delivered again (after a
    /// crash) returns it again with `redelivered` set instead of `StaleSequence`.
    pub fn channel_receive(&self, post: Vec<u8>, now: u64) -> Result<ChannelReceivedRecord> {
        let (received, digest, redelivered) = self.with_holder(|h| match h {
            Holder::Memory(d) => Ok((d.channel_receive(&post, now)?, channel_digest(&post), false)),
            Holder::Stored(s) => {
                let p = s.channel_receive(&post, now, &mut rng())?;
                Ok((p.received, p.digest, p.redelivered))
            }
        })?;
        Ok(ChannelReceivedRecord::new(received, digest, redelivered))
    }

    /// Receives any pairwise control message from `peer`: a group sender key or a
    /// restricted channel's content key. A refused one leaves the session as it was.
    pub fn receive_control(&self, peer: String, message: Vec<u8>) -> Result<ControlReceived> {
        Ok(match self.with(|d| d.receive_control(&peer, &message, &mut rng()))? {
            core::device::ControlReceived::SenderKey(r) => ControlReceived::SenderKey { received: r.into() },
            core::device::ControlReceived::ChannelKey(r) => ControlReceived::ChannelKey {
                received: ChannelKeyReceivedRecord {
                    channel_id: r.channel_id.0.to_vec(),
                    sender: r.sender,
                    key_id: r.key_id,
                    identity_event: r.identity.into(),
                },
            },
        })
    }

    /// Deletes the publisher and subscription state of the channel; whether any was
    /// held. A wrong-length id names no channel.
    pub fn channel_forget(&self, channel_id: Vec<u8>) -> Result<bool> {
        let Ok(id) = channel_id_arg(&channel_id) else { return Ok(false) };
        self.with(|d| Ok(d.channel_forget(&id)))
    }
}
