//! Streaming and random-access decryption.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    hash_alongside, padded_len, segment_aad, AttachmentError, AttachmentHeader, AttachmentPointer, SegmentCipher,
    AAD_BYTES, HEADER_BYTES, PARALLEL_HASH_BYTES, SEGMENT_TAG_BYTES,
};

/// A header checked against a pointer, with the key schedule it opens with.
struct Opened {
    header: AttachmentHeader,
    /// The segments' associated data: the header bytes, then the pointer's size (u64).
    aad: [u8; AAD_BYTES],
    cipher: SegmentCipher,
}

impl Opened {
    /// Checks, in order: the header decodes (`Decode`), the key commits to it
    /// (`WrongKey`), the pointer's size pads to the header's length (`SizeMismatch`).
    fn new(pointer: &AttachmentPointer, bytes: &[u8]) -> Result<Self, AttachmentError> {
        let header = AttachmentHeader::decode(bytes)?;
        let cipher = SegmentCipher::new(pointer.key())?;
        if !cipher.commits_to(header.key_commitment()) {
            return Err(AttachmentError::WrongKey);
        }
        if padded_len(pointer.size()) != header.padded_len() {
            return Err(AttachmentError::SizeMismatch { declared: pointer.size(), found: header.padded_len() });
        }
        let aad = segment_aad(bytes, pointer.size());
        Ok(Opened { header, aad, cipher })
    }

    /// Sealed length of segment `index` (body and tag).
    fn sealed_len(&self, index: u32) -> Option<usize> {
        self.header.segment_plain_len(index).map(|n| n + SEGMENT_TAG_BYTES)
    }

    /// Opens segment `index` and appends its real plaintext (padding stripped, after
    /// checking it is zero) to `out`. On error `out` is as it was (in length).
    fn open_segment(
        &self,
        size: u64,
        index: u32,
        sealed: &[u8],
        out: &mut Zeroizing<Vec<u8>>,
    ) -> Result<(), AttachmentError> {
        let body_len = sealed.len() - SEGMENT_TAG_BYTES;
        let start = out.len();
        out.resize(start + body_len, 0);
        if !self.cipher.open(&self.header.nonce(index), &self.aad, sealed, &mut out[start..]) {
            out.truncate(start);
            return Err(AttachmentError::Tampered { segment: index });
        }
        let offset = u64::from(index) * u64::from(self.header.segment_size());
        let real = size.saturating_sub(offset).min(body_len as u64) as usize;
        if out[start + real..].iter().any(|b| *b != 0) {
            out.truncate(start);
            return Err(AttachmentError::InvalidPadding { segment: index });
        }
        out.truncate(start + real);
        Ok(())
    }
}

/// Decrypts one blob as it arrives, in bounded memory (one segment buffered), for the
/// pointer that names it.
///
/// [`Self::update`] releases the plaintext of every segment that has been authenticated
/// (so audio can start playing), and [`Self::finish`] checks that the blob is complete
/// and is exactly the one the pointer names (SHA-256). **Until `finish` succeeds, the
/// plaintext released so far is authentic but may be incomplete**, and the blob may not
/// be the one the sender committed to in the pointer: an app must not treat the
/// attachment as received before then.
///
/// Every refused input leaves the decryptor exactly as it was, so a caller may fetch the
/// bytes again and continue.
pub struct Decryptor {
    pointer: AttachmentPointer,
    opened: Option<Opened>,
    /// Received bytes of the header or segment in progress (never a whole one).
    pending: Vec<u8>,
    next_index: u32,
    received: u64,
    hasher: Sha256,
    finished: bool,
}

impl core::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decryptor")
            .field("header", &self.header())
            .field("next_index", &self.next_index)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor for the blob `pointer` names.
    pub fn new(pointer: &AttachmentPointer) -> Self {
        Decryptor {
            pointer: pointer.clone(),
            opened: None,
            pending: Vec::with_capacity(HEADER_BYTES),
            next_index: 0,
            received: 0,
            hasher: Sha256::new(),
            finished: false,
        }
    }

    /// The blob's header, once its 53 bytes have been received and checked.
    pub fn header(&self) -> Option<&AttachmentHeader> {
        self.opened.as_ref().map(|o| &o.header)
    }

    /// Blob bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Takes the next blob bytes (any chunking) and returns the plaintext of the
    /// segments they complete, in order. Checks, in order: the header decodes
    /// (`Decode`), the key commits to it (`WrongKey`), the pointer's size pads to its
    /// padded length (`SizeMismatch`); no bytes after the last segment (`TrailingData`);
    /// each completed segment's tag (`Tampered { segment }`) and zero padding
    /// (`InvalidPadding`). On any error nothing is released or changed. After a
    /// successful [`Self::finish`], `Finished`.
    pub fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
        if self.finished {
            return Err(AttachmentError::Finished);
        }
        // The header, if this call completes it.
        let mut header_bytes = [0u8; HEADER_BYTES];
        let mut newly_opened = None;
        let mut input_rest = input;
        if self.opened.is_none() {
            let have = self.pending.len();
            if have + input.len() < HEADER_BYTES {
                self.pending.extend_from_slice(input);
                self.received += input.len() as u64;
                return Ok(Zeroizing::new(Vec::new()));
            }
            let need = HEADER_BYTES - have;
            header_bytes[..have].copy_from_slice(&self.pending);
            header_bytes[have..].copy_from_slice(&input[..need]);
            newly_opened = Some(Opened::new(&self.pointer, &header_bytes)?);
            input_rest = &input[need..];
        }
        let (opened, held): (&Opened, &[u8]) = match (&newly_opened, &self.opened) {
            (Some(o), _) => (o, &[]),
            (None, Some(o)) => (o, &self.pending),
            (None, None) => return Err(AttachmentError::Finished), // unreachable: opened above
        };
        // Plan: which segments this call completes.
        let mut end = self.next_index;
        let mut available = held.len() + input_rest.len();
        while let Some(len) = opened.sealed_len(end) {
            if available < len {
                break;
            }
            available -= len;
            end += 1;
        }
        if opened.sealed_len(end).is_none() && available > 0 {
            return Err(AttachmentError::TrailingData);
        }
        let completes = end > self.next_index;
        // Bytes of `input_rest` consumed by completed segments (the first one consumes
        // all of `held`, which is always less than one segment).
        let used = if completes { input_rest.len() - available } else { 0 };
        let consumed = &input_rest[..used];
        let mut out = Zeroizing::new(Vec::with_capacity(held.len() + used));
        let mut hasher = self.hasher.clone();
        let size = self.pointer.size();
        let first = self.next_index;
        let parallel = used >= PARALLEL_HASH_BYTES;
        let header_part: &[u8] = if newly_opened.is_some() { &header_bytes } else { &[] };
        hash_alongside(&mut hasher, parallel, 3, |feed| -> Result<(), AttachmentError> {
            feed(header_part);
            if completes {
                feed(held);
                feed(consumed);
            }
            let mut rest = consumed;
            let mut index = first;
            if completes && !held.is_empty() {
                let len = opened.sealed_len(index).unwrap_or(0);
                let need = len - held.len();
                let mut joined = Vec::with_capacity(len);
                joined.extend_from_slice(held);
                joined.extend_from_slice(&rest[..need]);
                opened.open_segment(size, index, &joined, &mut out)?;
                rest = &rest[need..];
                index += 1;
            }
            while index < end {
                let len = opened.sealed_len(index).unwrap_or(0);
                let (sealed, later) = rest.split_at(len);
                opened.open_segment(size, index, sealed, &mut out)?;
                rest = later;
                index += 1;
            }
            Ok(())
        })?;
        // Commit.
        let leftover = &input_rest[used..];
        if completes || newly_opened.is_some() {
            self.pending.clear();
        }
        if let Some(o) = newly_opened {
            // Room for one whole sealed segment (`pending` is empty here).
            self.pending.reserve_exact(o.sealed_len(0).unwrap_or(0));
            self.opened = Some(o);
        }
        self.pending.extend_from_slice(leftover);
        self.hasher = hasher;
        self.next_index = end;
        self.received += input.len() as u64;
        Ok(out)
    }

    /// Ends the stream: succeeds only if every segment was received and the SHA-256 of
    /// the whole blob is the pointer's digest. Refuses an incomplete blob (`Truncated`,
    /// nothing changed: more bytes may still come) and a different blob
    /// (`DigestMismatch`). Only after this succeeds is the attachment received.
    pub fn finish(&mut self) -> Result<(), AttachmentError> {
        if self.finished {
            return Err(AttachmentError::Finished);
        }
        let Some(opened) = &self.opened else {
            return Err(AttachmentError::Truncated { expected: HEADER_BYTES as u64, received: self.received });
        };
        if self.next_index < opened.header.segment_count() {
            return Err(AttachmentError::Truncated {
                expected: opened.header.ciphertext_len(),
                received: self.received,
            });
        }
        let digest: [u8; 32] = self.hasher.clone().finalize().into();
        if !bool::from(digest.ct_eq(self.pointer.digest())) {
            return Err(AttachmentError::DigestMismatch);
        }
        self.finished = true;
        Ok(())
    }
}

/// Decrypts segment `index` alone (seeking in audio or video), given the blob's header
/// and the segment's bytes ([`AttachmentHeader::segment_range`]). Returns its real
/// plaintext (padding stripped; empty for a segment of padding only). Checks the header
/// as [`Decryptor::update`] does, then the index (`SegmentOutOfRange`), the length
/// (`Truncated` / `TrailingData`) and the tag (`Tampered`). The digest cannot be checked
/// on one segment: the segment is authentic (sealed under the key, at this position),
/// but only a full [`Decryptor`] run proves the blob is the one the pointer names.
pub fn decrypt_segment(
    pointer: &AttachmentPointer,
    header: &[u8],
    index: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    let opened = Opened::new(pointer, header)?;
    let len = opened
        .sealed_len(index)
        .ok_or(AttachmentError::SegmentOutOfRange { index, count: opened.header.segment_count() })?;
    if sealed.len() < len {
        return Err(AttachmentError::Truncated { expected: len as u64, received: sealed.len() as u64 });
    }
    if sealed.len() > len {
        return Err(AttachmentError::TrailingData);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    opened.open_segment(pointer.size(), index, sealed, &mut out)?;
    Ok(out)
}

/// Decrypts a whole blob held in memory and checks it against the pointer (complete,
/// and its digest).
pub fn decrypt(pointer: &AttachmentPointer, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, AttachmentError> {
    let mut d = Decryptor::new(pointer);
    let out = d.update(blob)?;
    d.finish()?;
    Ok(out)
}
