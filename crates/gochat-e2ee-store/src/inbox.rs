//! The inbox entry: a decrypted result kept in the store until the app acknowledges it.
//!
//! An operation that consumes an incoming message (a 1:1 decrypt, a group decrypt, a
//! channel post) advances state that a redelivery cannot advance again. The store
//! therefore commits the operation's result in the same transaction as the state step,
//! under the record key `0x80 || digest`, and returns it again (without touching any
//! state) when the same bytes arrive before [`crate::StoredDevice::ack`].
//!
//! - **Digests are domain separated per kind.** A 1:1 message is named by the core's
//!   [`Device::message_digest`] (the digest a retry request names), a group message by
//!   [`group_digest`], a channel post by [`channel_digest`]: the same bytes offered as
//!   another kind never find another kind's entry.
//! - **Versioned encoding** (`docs/protocol.md` §16.6): `0x02 || kind || body`, with kind
//!   0x01 (1:1), 0x02 (group), 0x03 (channel). Version 0x01 (a 1:1 body without the kind
//!   byte, written by the first release) is still read; it is never written.
//! - **Strict decoding.** Every length is bounded by the bytes that remain, every enum
//!   byte is checked and trailing bytes are refused (`StoreCorrupt`).

use gochat_e2ee::channel::{Announcement, ChannelId, ContentType, Received as ChannelReceived};
use gochat_e2ee::group::GroupPlaintext;
use gochat_e2ee::{ChangeReason, Decrypted, Device, IdentityEvent, IdentityKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::backend::StoreError;
use crate::labels;

/// The kind byte of an inbox entry's record key (store-private kinds are 0x80..=0xFF).
pub const INBOX_KIND: u8 = 0x80;
/// The version byte of the inbox entries this library writes.
pub const INBOX_VERSION: u8 = 0x02;
/// The version byte of a first-release inbox entry (a 1:1 result; read, never written).
pub const INBOX_VERSION_DIRECT_V1: u8 = 0x01;
/// Entry kind: a 1:1 message.
pub const ENTRY_DIRECT: u8 = 0x01;
/// Entry kind: a group message.
pub const ENTRY_GROUP: u8 = 0x02;
/// Entry kind: a channel post (announcement or key rotation).
pub const ENTRY_CHANNEL: u8 = 0x03;

/// The length of an encoded identity key.
const IK: usize = 66;

/// What an inbox entry holds: the result the app is shown, exactly as first returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxEntry {
    /// A 1:1 message from `peer`.
    Direct {
        /// The peer name the app gave.
        peer: String,
        /// Plaintext, sender identity and identity event.
        decrypted: Decrypted,
    },
    /// A group message.
    Group(GroupPlaintext),
    /// A channel post.
    Channel {
        /// The channel the post names.
        channel_id: ChannelId,
        /// The accepted announcement or key rotation.
        received: ChannelReceived,
    },
}

/// The digest naming a group message in the inbox: `SHA-256("GoChat-E2EE v1 store
/// inbox group" || message)`.
pub fn group_digest(message: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(labels::STORE_INBOX_GROUP).chain_update(message).finalize().into()
}

/// The digest naming a channel post in the inbox: `SHA-256("GoChat-E2EE v1 store inbox
/// channel" || post)`.
pub fn channel_digest(post: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(labels::STORE_INBOX_CHANNEL).chain_update(post).finalize().into()
}

/// The digest naming a 1:1 message in the inbox (the core's message digest).
pub fn direct_digest(message: &[u8]) -> [u8; 32] {
    Device::message_digest(message)
}

/// The record key of the inbox entry for `digest`: `0x80 || digest`.
pub fn inbox_key(digest: &[u8; 32]) -> Vec<u8> {
    [&[INBOX_KIND][..], &digest[..]].concat()
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn reason_byte(r: ChangeReason) -> u8 {
    match r {
        ChangeReason::Notify => 0,
        ChangeReason::Certified => 1,
        ChangeReason::AwaitingApproval => 2,
        ChangeReason::Uncertified => 3,
    }
}

impl InboxEntry {
    /// The entry body, in a buffer wiped on drop (it holds plaintext).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.encoded_len_hint()));
        out.push(INBOX_VERSION);
        match self {
            InboxEntry::Direct { peer, decrypted } => {
                out.push(ENTRY_DIRECT);
                encode_direct_body(&mut out, peer, decrypted);
            }
            InboxEntry::Group(p) => {
                out.push(ENTRY_GROUP);
                put_bytes(&mut out, p.sender.as_bytes());
                out.extend_from_slice(&p.sender_identity.to_bytes());
                out.extend_from_slice(&p.key_id.to_be_bytes());
                out.extend_from_slice(&p.iteration.to_be_bytes());
                put_bytes(&mut out, &p.plaintext);
            }
            InboxEntry::Channel { channel_id, received } => {
                out.push(ENTRY_CHANNEL);
                out.extend_from_slice(channel_id.as_bytes());
                match received {
                    ChannelReceived::Announcement(a) => {
                        out.push(0x01);
                        out.extend_from_slice(a.channel_id.as_bytes());
                        out.extend_from_slice(&a.seq.to_be_bytes());
                        out.extend_from_slice(&a.timestamp.to_be_bytes());
                        out.push(a.content_type.to_byte());
                        out.extend_from_slice(&a.signer);
                        put_bytes(&mut out, &a.body);
                    }
                    ChannelReceived::KeyRotated { old, new, seq } => {
                        out.push(0x02);
                        out.extend_from_slice(old);
                        out.extend_from_slice(new);
                        out.extend_from_slice(&seq.to_be_bytes());
                    }
                }
            }
        }
        out
    }

    fn encoded_len_hint(&self) -> usize {
        2 + match self {
            InboxEntry::Direct { peer, decrypted } => 8 + peer.len() + decrypted.plaintext.len() + 2 * IK + 3,
            InboxEntry::Group(p) => 16 + p.sender.len() + IK + p.plaintext.len(),
            InboxEntry::Channel { received: ChannelReceived::Announcement(a), .. } => {
                32 + 1 + 32 + 17 + 32 + 4 + a.body.len()
            }
            InboxEntry::Channel { .. } => 32 + 1 + 72,
        }
    }

    /// Decodes an entry body (version 0x02, or a first-release 0x01 1:1 body). Refused
    /// (`StoreCorrupt`): an unknown version, kind or enum byte, a length past the end,
    /// an invalid identity key or peer name, trailing bytes.
    pub fn decode(b: &[u8]) -> Result<InboxEntry, StoreError> {
        let mut r = Cursor(b);
        let entry = match r.u8()? {
            INBOX_VERSION_DIRECT_V1 => decode_direct_body(&mut r)?,
            INBOX_VERSION => match r.u8()? {
                ENTRY_DIRECT => decode_direct_body(&mut r)?,
                ENTRY_GROUP => {
                    let sender = r.string()?;
                    let sender_identity = r.identity()?;
                    let key_id = r.u32()?;
                    let iteration = r.u32()?;
                    let plaintext = r.bytes()?.to_vec();
                    InboxEntry::Group(GroupPlaintext { plaintext, sender, sender_identity, key_id, iteration })
                }
                ENTRY_CHANNEL => {
                    let channel_id = ChannelId(r.array()?);
                    let received = match r.u8()? {
                        0x01 => {
                            let id = ChannelId(r.array()?);
                            let seq = r.u64()?;
                            let timestamp = r.u64()?;
                            let content_type = ContentType::from_byte(r.u8()?).ok_or_else(corrupt)?;
                            let signer = r.array()?;
                            let body = r.bytes()?.to_vec();
                            ChannelReceived::Announcement(Announcement {
                                channel_id: id,
                                seq,
                                timestamp,
                                content_type,
                                body,
                                signer,
                            })
                        }
                        0x02 => ChannelReceived::KeyRotated { old: r.array()?, new: r.array()?, seq: r.u64()? },
                        _ => return Err(corrupt()),
                    };
                    InboxEntry::Channel { channel_id, received }
                }
                _ => return Err(corrupt()),
            },
            _ => return Err(corrupt()),
        };
        if !r.0.is_empty() {
            return Err(corrupt());
        }
        Ok(entry)
    }
}

fn encode_direct_body(out: &mut Vec<u8>, peer: &str, d: &Decrypted) {
    put_bytes(out, peer.as_bytes());
    put_bytes(out, &d.plaintext);
    out.extend_from_slice(&d.sender.to_bytes());
    match &d.identity {
        IdentityEvent::New => out.push(0),
        IdentityEvent::Same => out.push(1),
        IdentityEvent::Changed { previous, approved, reason } => {
            out.push(2);
            out.extend_from_slice(&previous.to_bytes());
            out.push(u8::from(*approved));
            out.push(reason_byte(*reason));
        }
    }
}

fn decode_direct_body(r: &mut Cursor<'_>) -> Result<InboxEntry, StoreError> {
    let peer = r.string()?;
    let plaintext = r.bytes()?.to_vec();
    let sender = r.identity()?;
    let identity = match r.u8()? {
        0 => IdentityEvent::New,
        1 => IdentityEvent::Same,
        2 => {
            let previous = r.identity()?;
            let approved = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(corrupt()),
            };
            let reason = match r.u8()? {
                0 => ChangeReason::Notify,
                1 => ChangeReason::Certified,
                2 => ChangeReason::AwaitingApproval,
                3 => ChangeReason::Uncertified,
                _ => return Err(corrupt()),
            };
            IdentityEvent::Changed { previous, approved, reason }
        }
        _ => return Err(corrupt()),
    };
    Ok(InboxEntry::Direct { peer, decrypted: Decrypted { plaintext, sender, identity } })
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("inbox entry".into())
}

/// A bounds-checked reader over an entry body.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(a)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, StoreError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt())
    }
    fn identity(&mut self) -> Result<IdentityKey, StoreError> {
        IdentityKey::from_bytes(self.take(IK)?).map_err(|_| corrupt())
    }
}
