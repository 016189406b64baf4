//! The blob header (type 0x40, version 0x01) and the segment layout it fixes.

use core::ops::Range;

use super::{
    padded_len, AttachmentError, HEADER_BYTES, MAX_ATTACHMENT_BYTES, MAX_SEGMENT_SIZE, MIN_PADDED_BYTES,
    MIN_SEGMENT_SIZE, NONCE_PREFIX_BYTES, SEGMENT_TAG_BYTES,
};
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// The header at the start of an encrypted attachment: `0x40 || 0x01 ||
/// segment_size u32 || padded_len u64 || nonce_prefix [7] || key_commitment [32]`
/// (53 bytes). It fixes the blob's exact layout; every segment is sealed with the whole
/// header as associated data, so changing any header byte fails every tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentHeader {
    segment_size: u32,
    padded_len: u64,
    nonce_prefix: [u8; NONCE_PREFIX_BYTES],
    commitment: [u8; 32],
}

impl AttachmentHeader {
    pub(crate) fn new(segment_size: u32, padded_len: u64, nonce_prefix: [u8; 7], commitment: [u8; 32]) -> Self {
        AttachmentHeader { segment_size, padded_len, nonce_prefix, commitment }
    }

    /// Decodes a header (exactly [`HEADER_BYTES`]; the blob's first bytes). Refuses
    /// another type or version, a segment size outside
    /// `MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE`, and a padded length that is not a padding
    /// bucket ([`padded_len`]) of at most `padded_len(MAX_ATTACHMENT_BYTES)`.
    pub fn decode(bytes: &[u8]) -> Result<Self, AttachmentError> {
        let mut r = Reader::open(bytes, type_byte::ATTACHMENT, HEADER_BYTES)?;
        let segment_size = r.u32()?;
        let padded = r.u64()?;
        let nonce_prefix = r.array()?;
        let commitment = r.array()?;
        r.finish()?;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(DecodeError::InvalidValue("segment size").into());
        }
        if padded < MIN_PADDED_BYTES || padded > padded_len(MAX_ATTACHMENT_BYTES) || padded_len(padded) != padded {
            return Err(DecodeError::InvalidValue("padded length").into());
        }
        Ok(AttachmentHeader { segment_size, padded_len: padded, nonce_prefix, commitment })
    }

    /// The 53-byte encoding.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut w = Writer::with_header(type_byte::ATTACHMENT, HEADER_BYTES);
        w.u32(self.segment_size).u64(self.padded_len).bytes(&self.nonce_prefix).bytes(&self.commitment);
        let mut out = [0u8; HEADER_BYTES];
        out.copy_from_slice(&w.into_bytes());
        out
    }

    /// Plaintext bytes per segment (the last segment may hold fewer).
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    /// The padded plaintext length (a padding bucket, at least the real size).
    pub fn padded_len(&self) -> u64 {
        self.padded_len
    }

    /// The per-attachment nonce prefix.
    pub fn nonce_prefix(&self) -> &[u8; NONCE_PREFIX_BYTES] {
        &self.nonce_prefix
    }

    /// The key commitment (HKDF output; checked before anything is decrypted).
    pub fn key_commitment(&self) -> &[u8; 32] {
        &self.commitment
    }

    /// The number of segments, `⌈padded_len / segment_size⌉` (at least 1).
    pub fn segment_count(&self) -> u32 {
        // padded_len ≤ 2^40 and segment_size ≥ 2^10, so this fits in u32.
        self.padded_len.div_ceil(u64::from(self.segment_size)) as u32
    }

    /// The whole blob's length: `53 + padded_len + 16 · segment_count`.
    pub fn ciphertext_len(&self) -> u64 {
        HEADER_BYTES as u64 + self.padded_len + SEGMENT_TAG_BYTES as u64 * u64::from(self.segment_count())
    }

    /// Plaintext bytes in segment `index` (padding included), if it exists.
    pub(crate) fn segment_plain_len(&self, index: u32) -> Option<usize> {
        let count = self.segment_count();
        if index >= count {
            return None;
        }
        let before = u64::from(index) * u64::from(self.segment_size);
        Some((self.padded_len - before).min(u64::from(self.segment_size)) as usize)
    }

    /// Where segment `index` lies in the blob (byte range, tag included), for fetching
    /// it alone (an HTTP range request) and passing it to
    /// [`decrypt_segment`](super::decrypt_segment).
    pub fn segment_range(&self, index: u32) -> Result<Range<u64>, AttachmentError> {
        let len = self.segment_plain_len(index).ok_or(self.out_of_range(index))?;
        let start = HEADER_BYTES as u64 + u64::from(index) * (u64::from(self.segment_size) + SEGMENT_TAG_BYTES as u64);
        Ok(start..start + (len + SEGMENT_TAG_BYTES) as u64)
    }

    /// The segment holding plaintext byte `offset` (for seeking in audio and video);
    /// `SegmentOutOfRange` for an offset at or past the padded length.
    pub fn segment_for_offset(&self, offset: u64) -> Result<u32, AttachmentError> {
        let index = offset / u64::from(self.segment_size);
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        // The last segment may be shorter than `segment_size`: an index in range does not
        // mean the offset is.
        if offset >= self.padded_len {
            return Err(self.out_of_range(index.max(self.segment_count())));
        }
        Ok(index)
    }

    /// The nonce of segment `index`: `prefix || index (u32, big-endian) || last`, where
    /// `last` is 0x01 for the final segment and 0x00 otherwise.
    pub(crate) fn nonce(&self, index: u32) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_BYTES].copy_from_slice(&self.nonce_prefix);
        n[7..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(index + 1 == self.segment_count());
        n
    }

    fn out_of_range(&self, index: u32) -> AttachmentError {
        AttachmentError::SegmentOutOfRange { index, count: self.segment_count() }
    }
}
