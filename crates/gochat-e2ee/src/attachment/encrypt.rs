//! Streaming encryption: plaintext in, blob bytes out, in bounded memory.

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::pointer::{check_content_type, check_file_name};
use super::{
    hash_alongside, padded_len, segment_aad, AttachmentError, AttachmentHeader, AttachmentKey, AttachmentPointer,
    SegmentCipher, AAD_BYTES, DEFAULT_SEGMENT_SIZE, HEADER_BYTES, MAX_ATTACHMENT_BYTES, MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE, NONCE_PREFIX_BYTES, PARALLEL_HASH_BYTES, SEGMENT_TAG_BYTES,
};

/// What one [`Encryptor::finish_step`] produced.
#[must_use]
#[derive(Debug)]
pub enum FinishStep {
    /// More blob bytes (at most the header and one segment): write them, then call
    /// `finish_step` again.
    Ciphertext(Vec<u8>),
    /// The blob is complete; this pointer names it (send it inside an E2EE message).
    Done(AttachmentPointer),
}

/// The checks every encryptor constructor makes: size (`TooLarge`), segment size
/// (`InvalidSegmentSize`), content type and file name.
fn check_parameters(
    size: u64,
    segment_size: u32,
    content_type: &str,
    file_name: Option<&str>,
) -> Result<(), AttachmentError> {
    if size > MAX_ATTACHMENT_BYTES {
        return Err(AttachmentError::TooLarge { size });
    }
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        return Err(AttachmentError::InvalidSegmentSize(segment_size));
    }
    check_content_type(content_type)?;
    if let Some(name) = file_name {
        check_file_name(name)?;
    }
    Ok(())
}

/// Encrypts one attachment of a size declared up front (the header fixes the padded
/// length). Memory stays at one segment whatever the file size: [`Self::update`] returns
/// the blob bytes that are ready, [`Self::finish_step`] the padding segments one at a
/// time and then the pointer.
///
/// The key and the nonce prefix are fresh from the caller's CSPRNG for every
/// attachment, so no key and nonce pair is ever used twice, even for equal files.
pub struct Encryptor {
    key: AttachmentKey,
    cipher: SegmentCipher,
    header: AttachmentHeader,
    /// The segments' associated data: the header bytes, then the plaintext size (u64).
    aad: [u8; AAD_BYTES],
    header_sent: bool,
    size: u64,
    written: u64,
    content_type: String,
    file_name: Option<String>,
    /// Plaintext of segment `next_index` received so far; its capacity (one segment) is
    /// allocated once and wiped when emptied, so it never reallocates.
    pending: Zeroizing<Vec<u8>>,
    next_index: u32,
    hasher: Sha256,
    done: bool,
}

impl core::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encryptor")
            .field("header", &self.header)
            .field("size", &self.size)
            .field("written", &self.written)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// Starts an attachment of exactly `size` plaintext bytes with the default 64 KiB
    /// segments. Refuses a size over [`MAX_ATTACHMENT_BYTES`] (`TooLarge`), an invalid
    /// content type or file name (see [`AttachmentPointer`]).
    pub fn new<R: CryptoRng + ?Sized>(
        size: u64,
        content_type: &str,
        file_name: Option<&str>,
        rng: &mut R,
    ) -> Result<Self, AttachmentError> {
        Self::with_segment_size(size, DEFAULT_SEGMENT_SIZE, content_type, file_name, rng)
    }

    /// As [`Self::new`] with a chosen segment size (`MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE`,
    /// else `InvalidSegmentSize`).
    pub fn with_segment_size<R: CryptoRng + ?Sized>(
        size: u64,
        segment_size: u32,
        content_type: &str,
        file_name: Option<&str>,
        rng: &mut R,
    ) -> Result<Self, AttachmentError> {
        check_parameters(size, segment_size, content_type, file_name)?;
        let key = AttachmentKey::generate(rng);
        let mut nonce_prefix = [0u8; NONCE_PREFIX_BYTES];
        rng.fill_bytes(&mut nonce_prefix);
        Self::from_parts(key, nonce_prefix, size, segment_size, content_type, file_name)
    }

    /// An encryptor with a given key and nonce prefix (deterministic test vectors).
    #[doc(hidden)]
    pub fn from_parts(
        key: AttachmentKey,
        nonce_prefix: [u8; NONCE_PREFIX_BYTES],
        size: u64,
        segment_size: u32,
        content_type: &str,
        file_name: Option<&str>,
    ) -> Result<Self, AttachmentError> {
        check_parameters(size, segment_size, content_type, file_name)?;
        let cipher = SegmentCipher::new(&key)?;
        let header = AttachmentHeader::new(segment_size, padded_len(size), nonce_prefix, cipher.commitment);
        let aad = segment_aad(&header.encode(), size);
        Ok(Encryptor {
            key,
            cipher,
            header,
            aad,
            header_sent: false,
            size,
            written: 0,
            content_type: content_type.to_owned(),
            file_name: file_name.map(str::to_owned),
            pending: Zeroizing::new(Vec::with_capacity(segment_size as usize)),
            next_index: 0,
            hasher: Sha256::new(),
            done: false,
        })
    }

    /// The header this blob starts with.
    pub fn header(&self) -> &AttachmentHeader {
        &self.header
    }

    /// The declared plaintext size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Encrypts the next plaintext bytes and returns the blob bytes now complete: the
    /// header on the first call, then every whole segment (the last segment, which
    /// holds the padding, comes from [`Self::finish_step`]). Refuses more plaintext than
    /// declared (`TooMuchInput`, nothing changed) and use after the end (`Finished`).
    pub fn update(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        if self.done {
            return Err(AttachmentError::Finished);
        }
        let total = self.written.checked_add(plaintext.len() as u64).filter(|t| *t <= self.size);
        let Some(total) = total else {
            return Err(AttachmentError::TooMuchInput { declared: self.size });
        };
        let seg = self.header.segment_size() as usize;
        let last = self.header.segment_count() - 1;
        // Segments wholly covered by plaintext now, never the last one.
        let complete = ((total / seg as u64).min(u64::from(last))) as u32;
        let header_len = if self.header_sent { 0 } else { HEADER_BYTES };
        let segments = (complete - self.next_index) as usize;
        let mut out = vec![0u8; header_len + segments * (seg + SEGMENT_TAG_BYTES)];
        out[..header_len].copy_from_slice(&self.aad[..header_len]);
        let parallel = out.len() >= PARALLEL_HASH_BYTES;
        let (cipher, header, aad, pending) = (&self.cipher, &self.header, &self.aad, &mut self.pending);
        let first = self.next_index;
        let rest =
            hash_alongside(&mut self.hasher, parallel, segments + 1, |feed| -> Result<&[u8], AttachmentError> {
                let (head, body) = out.split_at_mut(header_len);
                feed(head);
                let mut input = plaintext;
                for (i, sealed) in body.chunks_mut(seg + SEGMENT_TAG_BYTES).enumerate() {
                    let index = first + i as u32;
                    let nonce = header.nonce(index);
                    if pending.is_empty() {
                        let (now, later) = input.split_at(seg);
                        cipher.seal(&nonce, aad, now, sealed)?;
                        input = later;
                    } else {
                        let need = seg - pending.len();
                        pending.extend_from_slice(&input[..need]);
                        input = &input[need..];
                        cipher.seal(&nonce, aad, pending, sealed)?;
                        pending.zeroize();
                    }
                    feed(sealed);
                }
                Ok(input)
            })?;
        self.pending.extend_from_slice(rest);
        self.written = total;
        self.next_index = complete;
        self.header_sent = true;
        Ok(out)
    }

    /// Once all the declared plaintext is written: returns the remaining blob bytes one
    /// segment at a time (the header first if [`Self::update`] never ran), padding with
    /// zeros, and then [`FinishStep::Done`] with the pointer. Refuses to finish early
    /// (`SizeMismatch`, nothing changed; more plaintext may still be written) and use
    /// after `Done` (`Finished`).
    pub fn finish_step(&mut self) -> Result<FinishStep, AttachmentError> {
        if self.done {
            return Err(AttachmentError::Finished);
        }
        if self.written != self.size {
            return Err(AttachmentError::SizeMismatch { declared: self.size, found: self.written });
        }
        let Some(plain_len) = self.header.segment_plain_len(self.next_index) else {
            let digest: [u8; 32] = self.hasher.clone().finalize().into();
            self.done = true;
            let pointer = AttachmentPointer::new(
                self.key.clone(),
                digest,
                self.size,
                self.content_type.clone(),
                self.file_name.clone(),
            );
            return Ok(FinishStep::Done(pointer));
        };
        let header_len = if self.header_sent { 0 } else { HEADER_BYTES };
        let mut out = vec![0u8; header_len + plain_len + SEGMENT_TAG_BYTES];
        out[..header_len].copy_from_slice(&self.aad[..header_len]);
        // Zero padding up to the segment's length (within the buffer's capacity).
        self.pending.resize(plain_len, 0);
        let nonce = self.header.nonce(self.next_index);
        self.cipher.seal(&nonce, &self.aad, &self.pending, &mut out[header_len..])?;
        self.pending.zeroize();
        self.hasher.update(&out);
        self.header_sent = true;
        self.next_index += 1;
        Ok(FinishStep::Ciphertext(out))
    }

    /// Runs [`Self::finish_step`] to the end and returns the remaining blob bytes with
    /// the pointer. The padding can be up to about 12 % of the size: for large files,
    /// call `finish_step` instead to keep memory bounded.
    pub fn finish(mut self) -> Result<(Vec<u8>, AttachmentPointer), AttachmentError> {
        let mut blob = Vec::new();
        loop {
            match self.finish_step()? {
                FinishStep::Ciphertext(bytes) => blob.extend_from_slice(&bytes),
                FinishStep::Done(pointer) => return Ok((blob, pointer)),
            }
        }
    }
}

/// Encrypts a whole attachment held in memory (default segment size): returns the blob
/// to upload and the pointer to send.
pub fn encrypt<R: CryptoRng + ?Sized>(
    plaintext: &[u8],
    content_type: &str,
    file_name: Option<&str>,
    rng: &mut R,
) -> Result<(Vec<u8>, AttachmentPointer), AttachmentError> {
    let mut e = Encryptor::new(plaintext.len() as u64, content_type, file_name, rng)?;
    let mut blob = e.update(plaintext)?;
    let (tail, pointer) = e.finish()?;
    blob.extend_from_slice(&tail);
    Ok((blob, pointer))
}
