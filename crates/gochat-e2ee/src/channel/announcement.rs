//! The channel wire objects (types 0x30 to 0x33): encoding, decoding and signatures.
//!
//! Decoders check only what the bytes alone decide (layout, sizes, value ranges, that
//! every public key is a canonical, valid, non-weak Ed25519 point). Whose key signed,
//! and whether the signature verifies, is checked by the callers in the documented
//! order.

use zeroize::Zeroizing;

use super::{
    read_channel_key, type_byte, verify, ChannelError, ChannelId, ChannelSigningKey, ANNOUNCEMENT_OVERHEAD_BYTES,
    KEY_DISTRIBUTION_BYTES, KEY_ROTATION_BYTES, MAX_ANNOUNCEMENT_BODY_BYTES, MAX_ANNOUNCEMENT_BYTES,
    MAX_RESTRICTED_ANNOUNCEMENT_BYTES, RESTRICTED_HEADER_BYTES, RESTRICTED_PADDING_BLOCK,
};
use crate::crypto::AEAD_TAG_BYTES;
use crate::labels;
use crate::wire::{DecodeError, Reader, Writer};

/// What an announcement's body holds. Any other byte is refused when decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// UTF-8 text (0x01; the library does not check the encoding).
    Text,
    /// A JSON document (0x02; not parsed by the library).
    Json,
    /// A pointer to an attachment stored elsewhere (0x03; opaque to the library).
    AttachmentPointer,
}

impl ContentType {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            ContentType::Text => 0x01,
            ContentType::Json => 0x02,
            ContentType::AttachmentPointer => 0x03,
        }
    }

    /// The content type of a wire byte; `None` for every unassigned byte (including 0x04).
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(ContentType::Text),
            0x02 => Some(ContentType::Json),
            0x03 => Some(ContentType::AttachmentPointer),
            _ => None,
        }
    }
}

/// A decoded, signature-checked announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// The channel it was posted to.
    pub channel_id: ChannelId,
    /// Its sequence number in the channel (shared with key rotations).
    pub seq: u64,
    /// The publisher's clock when posting (Unix seconds; only bounded above on receipt).
    pub timestamp: u64,
    /// What the body holds.
    pub content_type: ContentType,
    /// The body (at most `MAX_ANNOUNCEMENT_BODY_BYTES`).
    pub body: Vec<u8>,
    /// The Ed25519 public key of the channel key that signed it.
    pub signer: [u8; 32],
}

/// An announcement as decoded, before its signature is checked.
pub(super) struct DecodedAnnouncement<'a> {
    pub(super) announcement: Announcement,
    signed: &'a [u8],
    signature: [u8; 64],
}

impl DecodedAnnouncement<'_> {
    /// Checks the signature by `announcement.signer` (strict Ed25519).
    pub(super) fn verify_signature(&self) -> Result<(), ChannelError> {
        verify(&self.announcement.signer, labels::SIG_CHANNEL_ANNOUNCEMENT, self.signed, &self.signature)
    }
}

/// Encodes and signs an announcement (type 0x30).
pub(super) fn encode_announcement(
    key: &ChannelSigningKey,
    channel_id: &ChannelId,
    seq: u64,
    timestamp: u64,
    content_type: ContentType,
    body: &[u8],
) -> Result<Vec<u8>, ChannelError> {
    if body.len() > MAX_ANNOUNCEMENT_BODY_BYTES {
        return Err(ChannelError::BodyTooLarge { len: body.len(), max: MAX_ANNOUNCEMENT_BODY_BYTES });
    }
    // Exact capacity: appending the signature never reallocates (and so never leaves a
    // copy of a restricted channel's plaintext behind).
    let mut w = Writer::with_header(type_byte::ANNOUNCEMENT, ANNOUNCEMENT_OVERHEAD_BYTES + body.len());
    w.bytes(&channel_id.0).u64(seq).u64(timestamp).u8(content_type.to_byte()).var_bytes(body).bytes(&key.public);
    let mut out = w.into_bytes();
    let signature = key.sign(labels::SIG_CHANNEL_ANNOUNCEMENT, &out);
    out.extend_from_slice(&signature);
    Ok(out)
}

/// Decodes an announcement (type 0x30) without checking its signature.
pub(super) fn decode_announcement(bytes: &[u8]) -> Result<DecodedAnnouncement<'_>, DecodeError> {
    let mut r = Reader::open(bytes, type_byte::ANNOUNCEMENT, MAX_ANNOUNCEMENT_BYTES)?;
    let channel_id = ChannelId(r.array()?);
    let seq = r.u64()?;
    let timestamp = r.u64()?;
    let content_type = ContentType::from_byte(r.u8()?).ok_or(DecodeError::InvalidValue("content type"))?;
    let body = r.var_bytes(MAX_ANNOUNCEMENT_BODY_BYTES, "announcement body")?.to_vec();
    let signer = read_channel_key(&mut r, "announcement signer")?;
    let signed_len = r.position();
    let signature = r.array::<64>()?;
    r.finish()?;
    Ok(DecodedAnnouncement {
        announcement: Announcement { channel_id, seq, timestamp, content_type, body, signer },
        signed: &bytes[..signed_len],
        signature,
    })
}

/// Verifies an announcement (type 0x30) on its own, with no state: decodes it, checks
/// that it is signed by `agency_key` (`WrongSigner` otherwise) and that the strict
/// Ed25519 signature verifies (`BadSignature`).
///
/// This proves "this announcement really came from the holder of this channel key",
/// for a copy forwarded outside the channel. It does not check the sequence number,
/// the time or the channel id, so it says nothing about freshness, replay or
/// whether the key is still the channel's current key: a [`super::Subscription`] does.
pub fn verify_announcement(bytes: &[u8], agency_key: &[u8; 32]) -> Result<Announcement, ChannelError> {
    let decoded = decode_announcement(bytes)?;
    if decoded.announcement.signer != *agency_key {
        return Err(ChannelError::WrongSigner);
    }
    decoded.verify_signature()?;
    Ok(decoded.announcement)
}

/// A decoded key rotation (type 0x31), signatures not yet checked.
pub(super) struct DecodedRotation<'a> {
    pub(super) channel_id: ChannelId,
    pub(super) seq: u64,
    pub(super) timestamp: u64,
    pub(super) old_key: [u8; 32],
    pub(super) new_key: [u8; 32],
    bytes: &'a [u8],
    old_signature: [u8; 64],
    new_signature: [u8; 64],
}

/// Offset of the old key's signature in a key rotation.
const ROTATION_OLD_SIG_AT: usize = 2 + 32 + 8 + 8 + 32 + 32;
/// Offset of the new key's signature in a key rotation.
const ROTATION_NEW_SIG_AT: usize = ROTATION_OLD_SIG_AT + 64;

impl DecodedRotation<'_> {
    /// Checks both signatures: the old key's over everything before it, and the new
    /// key's (proof of possession) over everything before it.
    pub(super) fn verify_signatures(&self) -> Result<(), ChannelError> {
        verify(
            &self.old_key,
            labels::SIG_CHANNEL_KEY_ROTATION,
            &self.bytes[..ROTATION_OLD_SIG_AT],
            &self.old_signature,
        )?;
        verify(&self.new_key, labels::SIG_CHANNEL_KEY_ROTATION, &self.bytes[..ROTATION_NEW_SIG_AT], &self.new_signature)
    }
}

/// Encodes a key rotation signed by `old` and then by `new`.
pub(super) fn encode_rotation(
    old: &ChannelSigningKey,
    new: &ChannelSigningKey,
    channel_id: &ChannelId,
    seq: u64,
    timestamp: u64,
) -> Vec<u8> {
    let mut w = Writer::with_header(type_byte::KEY_ROTATION, KEY_ROTATION_BYTES);
    w.bytes(&channel_id.0).u64(seq).u64(timestamp).bytes(&old.public).bytes(&new.public);
    let mut out = w.into_bytes();
    let old_signature = old.sign(labels::SIG_CHANNEL_KEY_ROTATION, &out);
    out.extend_from_slice(&old_signature);
    let new_signature = new.sign(labels::SIG_CHANNEL_KEY_ROTATION, &out);
    out.extend_from_slice(&new_signature);
    out
}

/// Decodes a key rotation; refuses a new key equal to the old one.
pub(super) fn decode_rotation(bytes: &[u8]) -> Result<DecodedRotation<'_>, DecodeError> {
    let mut r = Reader::open(bytes, type_byte::KEY_ROTATION, KEY_ROTATION_BYTES)?;
    let channel_id = ChannelId(r.array()?);
    let seq = r.u64()?;
    let timestamp = r.u64()?;
    let old_key = read_channel_key(&mut r, "rotation old key")?;
    let new_key = read_channel_key(&mut r, "rotation new key")?;
    if new_key == old_key {
        return Err(DecodeError::InvalidValue("rotation new key"));
    }
    let old_signature = r.array::<64>()?;
    let new_signature = r.array::<64>()?;
    r.finish()?;
    Ok(DecodedRotation { channel_id, seq, timestamp, old_key, new_key, bytes, old_signature, new_signature })
}

/// A decoded restricted announcement (type 0x32), not yet decrypted.
pub(super) struct DecodedRestricted<'a> {
    pub(super) channel_id: ChannelId,
    pub(super) key_id: u32,
    pub(super) iteration: u32,
    /// Every byte before the ciphertext.
    pub(super) aad: &'a [u8],
    pub(super) ciphertext: &'a [u8],
}

/// Writes the header (the AAD) of a restricted announcement.
pub(super) fn restricted_header(channel_id: &ChannelId, key_id: u32, iteration: u32) -> Vec<u8> {
    let mut w = Writer::with_header(type_byte::RESTRICTED_ANNOUNCEMENT, RESTRICTED_HEADER_BYTES);
    w.bytes(&channel_id.0).u32(key_id).u32(iteration);
    w.into_bytes()
}

/// Decodes a restricted announcement, refusing a ciphertext that is not
/// `16 + 64k` bytes (k >= 1).
pub(super) fn decode_restricted(bytes: &[u8]) -> Result<DecodedRestricted<'_>, DecodeError> {
    let mut r = Reader::open(bytes, type_byte::RESTRICTED_ANNOUNCEMENT, MAX_RESTRICTED_ANNOUNCEMENT_BYTES)?;
    let channel_id = ChannelId(r.array()?);
    let key_id = r.u32()?;
    let iteration = r.u32()?;
    let aad_len = r.position();
    let ciphertext = r.rest();
    r.finish()?;
    let padded = ciphertext.len().checked_sub(AEAD_TAG_BYTES).ok_or(DecodeError::InvalidValue("ciphertext length"))?;
    if padded == 0 || padded % RESTRICTED_PADDING_BLOCK != 0 {
        return Err(DecodeError::InvalidValue("ciphertext length"));
    }
    Ok(DecodedRestricted { channel_id, key_id, iteration, aad: &bytes[..aad_len], ciphertext })
}

/// A decoded, not yet verified key distribution (type 0x33).
pub(super) struct DecodedDistribution<'a> {
    pub(super) channel_id: ChannelId,
    pub(super) key_id: u32,
    pub(super) iteration: u32,
    pub(super) chain_key: Zeroizing<[u8; 32]>,
    pub(super) signer: [u8; 32],
    signed: &'a [u8],
    signature: [u8; 64],
}

impl DecodedDistribution<'_> {
    /// Checks the signature by `signer` (strict Ed25519).
    pub(super) fn verify_signature(&self) -> Result<(), ChannelError> {
        verify(&self.signer, labels::SIG_CHANNEL_KEY_DISTRIBUTION, self.signed, &self.signature)
    }
}

/// Encodes and signs a key distribution. It holds a chain key, so it is returned in
/// a buffer that is wiped when dropped.
pub(super) fn encode_distribution(
    key: &ChannelSigningKey,
    channel_id: &ChannelId,
    key_id: u32,
    iteration: u32,
    chain_key: &[u8; 32],
) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::with_header(type_byte::KEY_DISTRIBUTION, KEY_DISTRIBUTION_BYTES);
    w.bytes(&channel_id.0).u32(key_id).u32(iteration).bytes(chain_key).bytes(&key.public);
    // Capacity is the full length, so appending the signature does not reallocate.
    let mut out = w.into_secret_bytes();
    let signature = key.sign(labels::SIG_CHANNEL_KEY_DISTRIBUTION, &out);
    out.extend_from_slice(&signature);
    out
}

/// Decodes a key distribution without checking its signature.
pub(super) fn decode_distribution(bytes: &[u8]) -> Result<DecodedDistribution<'_>, DecodeError> {
    let mut r = Reader::open(bytes, type_byte::KEY_DISTRIBUTION, KEY_DISTRIBUTION_BYTES)?;
    let channel_id = ChannelId(r.array()?);
    let key_id = r.u32()?;
    let iteration = r.u32()?;
    let chain_key = Zeroizing::new(r.array::<32>()?);
    let signer = read_channel_key(&mut r, "distribution signer")?;
    let signed_len = r.position();
    let signature = r.array::<64>()?;
    r.finish()?;
    Ok(DecodedDistribution {
        channel_id,
        key_id,
        iteration,
        chain_key,
        signer,
        signed: &bytes[..signed_len],
        signature,
    })
}
