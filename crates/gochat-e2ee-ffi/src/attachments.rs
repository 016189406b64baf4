//! Encrypted attachments (protocol chapter 14): the streaming `AttachmentEncryptor` and
//! `AttachmentDecryptor` objects and the stateless `attachment_*` functions. Thin like
//! the rest: convert, lock, call the core's `attachment` module, map errors.
//!
//! - Pointers cross as their encoded bytes (`AttachmentPointer::encode`, at most
//!   `MAX_POINTER_BYTES`). A pointer holds the attachment key: the app sends it only
//!   inside an end-to-end encrypted message. The copies this layer receives are wiped
//!   when it is done with them; the one it hands back is the app's to wipe.
//! - Headers cross as their 53 bytes (the blob's first bytes).
//! - Every refused call leaves a stream object exactly as it was (the core is
//!   failure-atomic): a decryptor continues from where it was once the app fetches the
//!   genuine bytes again.
//! - A stream is complete, and its blob the one the pointer names, only once
//!   `AttachmentDecryptor::finish` has succeeded.
//! - A stream object whose lock was poisoned by a panic refuses every further call with
//!   `Internal` (unlike `Device`: a stream is cheap to start again, and an encryptor's
//!   `update` is not staged).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gochat_e2ee as core;
use gochat_e2ee::attachment::{self as att, AttachmentHeader, AttachmentPointer, FinishStep};
use gochat_e2ee::ErrorCode;
use zeroize::Zeroizing;

use crate::{rng, GoChatError, Result};

fn att_err(e: att::AttachmentError) -> GoChatError {
    core::Error::from(e).into()
}

/// The caller's encoded pointer, decoded; the `Vec` uniffi lifted it into is wiped on
/// return.
fn pointer_arg(bytes: Vec<u8>) -> Result<AttachmentPointer> {
    let bytes = Zeroizing::new(bytes);
    AttachmentPointer::decode(&bytes).map_err(att_err)
}

fn header_arg(bytes: &[u8]) -> Result<AttachmentHeader> {
    AttachmentHeader::decode(bytes).map_err(att_err)
}

/// A plaintext the core released, as the `Vec` uniffi carries across (moved, not
/// copied: from here on it is the app's to wipe).
fn released(mut plaintext: Zeroizing<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *plaintext)
}

/// A stream's state behind a poisoned lock may be half-updated: refuse it.
fn poisoned<T>(_: PoisonError<T>) -> GoChatError {
    GoChatError::from_code(
        ErrorCode::Internal,
        "the attachment stream was interrupted by a panic; start it again".to_owned(),
        false,
    )
}

/// An attachment encrypted in memory: the blob to upload and the pointer to send.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct EncryptedAttachment {
    /// The blob for the server: header and every segment.
    pub blob: Vec<u8>,
    /// The encoded pointer (secret: it holds the key; send it only inside an
    /// end-to-end encrypted message).
    pub pointer: Vec<u8>,
}

impl std::fmt::Debug for EncryptedAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedAttachment")
            .field("blob_len", &self.blob.len())
            .field("pointer", &"<redacted>")
            .finish()
    }
}

/// What one `AttachmentEncryptor::finish_step` produced: blob bytes to write, and, on
/// the last step, the pointer (then `ciphertext` is empty).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct AttachmentStep {
    /// The next blob bytes (at most the header and one segment); empty on the last step.
    pub ciphertext: Vec<u8>,
    /// The encoded pointer once the blob is complete (secret), else none: call
    /// `finish_step` again.
    pub pointer: Option<Vec<u8>>,
}

impl std::fmt::Debug for AttachmentStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentStep")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("pointer", &self.pointer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The layout a blob header fixes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AttachmentHeaderInfo {
    /// Plaintext bytes per segment (the last segment may hold fewer).
    pub segment_size: u32,
    /// The padded plaintext length (a padding bucket).
    pub padded_len: u64,
    /// The number of segments (at least 1).
    pub segment_count: u32,
    /// The whole blob's length in bytes.
    pub ciphertext_len: u64,
}

/// Where one segment lies in the blob (tag included): fetch these bytes alone (an HTTP
/// range request `offset..offset + length`) for `attachment_decrypt_segment`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SegmentRange {
    /// The segment's first byte in the blob.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u64,
}

/// What a pointer says about its attachment, without the key.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AttachmentPointerInfo {
    /// The plaintext size in bytes (before padding).
    pub size: u64,
    /// The content type (MIME type, printable ASCII).
    pub content_type: String,
    /// The file name, if the sender gave one: safe to save under as given (no path
    /// separator, no control character, not `.` or `..`).
    pub file_name: Option<String>,
    /// SHA-256 of the whole blob (32 bytes).
    pub digest: Vec<u8>,
}

/// Encrypts one attachment as a stream, in memory bounded by one segment whatever the
/// file size. Thread safe (one lock per encryptor).
///
/// Write every plaintext chunk with `update` (writing what it returns to the blob),
/// then call `finish_step` until its `pointer` is set, writing each `ciphertext`. The
/// key and nonce prefix are fresh from the operating system's CSPRNG for every
/// attachment, so equal files give unrelated blobs.
#[derive(uniffi::Object)]
pub struct AttachmentEncryptor {
    inner: Mutex<att::Encryptor>,
}

impl std::fmt::Debug for AttachmentEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachmentEncryptor(<redacted>)")
    }
}

impl AttachmentEncryptor {
    fn lock(&self) -> Result<MutexGuard<'_, att::Encryptor>> {
        self.inner.lock().map_err(poisoned)
    }

    /// For reads that cannot see a half-updated state (the header is fixed at creation).
    fn read(&self) -> MutexGuard<'_, att::Encryptor> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[uniffi::export]
impl AttachmentEncryptor {
    /// Starts an attachment of exactly `size` plaintext bytes with 64 KiB segments.
    /// Refused: a size over `MAX_ATTACHMENT_BYTES` (`TooLarge`), an empty, long or
    /// non-printable content type or an unsafe file name (`Malformed`).
    #[uniffi::constructor(default(file_name = None))]
    pub fn new(size: u64, content_type: String, file_name: Option<String>) -> Result<Arc<Self>> {
        let e = att::Encryptor::new(size, &content_type, file_name.as_deref(), &mut rng()).map_err(att_err)?;
        Ok(Arc::new(AttachmentEncryptor { inner: Mutex::new(e) }))
    }

    /// As the constructor, with segments of `segment_size` plaintext bytes
    /// (`MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE`, else `Malformed`).
    #[uniffi::constructor(default(file_name = None))]
    pub fn with_segment_size(
        size: u64,
        segment_size: u32,
        content_type: String,
        file_name: Option<String>,
    ) -> Result<Arc<Self>> {
        let e = att::Encryptor::with_segment_size(size, segment_size, &content_type, file_name.as_deref(), &mut rng())
            .map_err(att_err)?;
        Ok(Arc::new(AttachmentEncryptor { inner: Mutex::new(e) }))
    }

    /// Encrypts the next plaintext bytes (any chunking) and returns the blob bytes now
    /// ready: the header on the first call, then every whole segment (the last segment
    /// comes from `finish_step`). Refused: more plaintext than the declared size
    /// (`SizeMismatch`, nothing changed), use after the end (`StreamFinished`).
    pub fn update(&self, plaintext: Vec<u8>) -> Result<Vec<u8>> {
        let plaintext = Zeroizing::new(plaintext);
        self.lock()?.update(&plaintext).map_err(att_err)
    }

    /// Once all the declared plaintext was written: the next blob bytes (one segment,
    /// zero padded; the header first if `update` never ran), and then, with empty
    /// `ciphertext`, the encoded pointer. Call it until `pointer` is set, writing each
    /// `ciphertext`. Refused: before all the plaintext was written (`SizeMismatch`,
    /// nothing changed: write the rest), after the pointer (`StreamFinished`).
    pub fn finish_step(&self) -> Result<AttachmentStep> {
        Ok(match self.lock()?.finish_step().map_err(att_err)? {
            FinishStep::Ciphertext(ciphertext) => AttachmentStep { ciphertext, pointer: None },
            FinishStep::Done(p) => AttachmentStep { ciphertext: Vec::new(), pointer: Some(p.encode().to_vec()) },
        })
    }

    /// The 53-byte header this blob starts with (for `attachment_header_info` and
    /// random access before the upload is done).
    pub fn header(&self) -> Vec<u8> {
        self.read().header().encode().to_vec()
    }
}

/// Decrypts one blob as it arrives, for the pointer that names it, in memory bounded by
/// one segment. Thread safe (one lock per decryptor).
///
/// `update` releases the plaintext of every segment it authenticates (so playback can
/// start early); `finish` checks that the blob is complete and is the one the pointer
/// names (SHA-256). **Until `finish` succeeds the plaintext released so far is
/// authentic but may be incomplete, and the blob may not be the one the sender
/// committed to**: do not mark the attachment as received, save it as final or forward
/// it before then. Every refused call leaves the decryptor exactly as it was.
#[derive(uniffi::Object)]
pub struct AttachmentDecryptor {
    inner: Mutex<att::Decryptor>,
}

impl std::fmt::Debug for AttachmentDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttachmentDecryptor(<redacted>)")
    }
}

impl AttachmentDecryptor {
    fn lock(&self) -> Result<MutexGuard<'_, att::Decryptor>> {
        self.inner.lock().map_err(poisoned)
    }
}

#[uniffi::export]
impl AttachmentDecryptor {
    /// A decryptor for the blob `pointer` (encoded) names. Refused: a malformed pointer
    /// (`Malformed`, `UnsupportedVersion`, `WrongMessageType`), a size over
    /// `MAX_ATTACHMENT_BYTES` (`TooLarge`).
    #[uniffi::constructor]
    pub fn new(pointer: Vec<u8>) -> Result<Arc<Self>> {
        let pointer = pointer_arg(pointer)?;
        Ok(Arc::new(AttachmentDecryptor { inner: Mutex::new(att::Decryptor::new(&pointer)) }))
    }

    /// Takes the next blob bytes (any chunking) and returns the plaintext of the
    /// segments they complete, in order. Refused, releasing nothing and changing
    /// nothing: a malformed header (`Malformed`), another key (`WrongKey`), a pointer
    /// size that does not fit the blob (`SizeMismatch`), bytes after the last segment
    /// (`TrailingData`), a segment that is not authentic (`Tampered`) or has non-zero
    /// padding (`InvalidPadding`), use after `finish` (`StreamFinished`).
    pub fn update(&self, ciphertext: Vec<u8>) -> Result<Vec<u8>> {
        Ok(released(self.lock()?.update(&ciphertext).map_err(att_err)?))
    }

    /// Ends the stream: succeeds only if every segment was received and the blob's
    /// SHA-256 is the pointer's digest. Refused: an incomplete blob (`Truncated`,
    /// nothing changed: more bytes may still come), another blob than the pointer
    /// names (`DigestMismatch`), a second call (`StreamFinished`). Only after this
    /// succeeds is the attachment received.
    pub fn finish(&self) -> Result<()> {
        self.lock()?.finish().map_err(att_err)
    }

    /// Blob bytes accepted so far (refused calls not counted): where to resume a
    /// download.
    pub fn received(&self) -> u64 {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).received()
    }
}

/// Encrypts a whole attachment held in memory (64 KiB segments): the blob to upload and
/// the pointer to send. For large files use `AttachmentEncryptor` (bounded memory).
#[uniffi::export(default(file_name = None))]
pub fn attachment_encrypt(
    plaintext: Vec<u8>,
    content_type: String,
    file_name: Option<String>,
) -> Result<EncryptedAttachment> {
    let plaintext = Zeroizing::new(plaintext);
    let (blob, pointer) = att::encrypt(&plaintext, &content_type, file_name.as_deref(), &mut rng()).map_err(att_err)?;
    Ok(EncryptedAttachment { blob, pointer: pointer.encode().to_vec() })
}

/// Decrypts a whole blob held in memory for its pointer, checking that it is complete
/// and is the one the pointer names (the errors of `AttachmentDecryptor`).
#[uniffi::export]
pub fn attachment_decrypt(pointer: Vec<u8>, blob: Vec<u8>) -> Result<Vec<u8>> {
    let pointer = pointer_arg(pointer)?;
    Ok(released(att::decrypt(&pointer, &blob).map_err(att_err)?))
}

/// Decrypts segment `index` alone (seeking in audio or video), given the blob's 53-byte
/// header and the segment's bytes (`attachment_segment_range`). Returns its real
/// plaintext (padding stripped; empty for a segment of padding only). Refused: the
/// header's checks (`Malformed`, `WrongKey`, `SizeMismatch`), an index past the last
/// segment (`Malformed`), too few or too many bytes (`Truncated`, `TrailingData`), a
/// segment that is not authentic (`Tampered`). The segment is authentic (sealed under
/// the key, at this position), but only a full decryption proves the blob is the one
/// the pointer names (the digest).
#[uniffi::export]
pub fn attachment_decrypt_segment(pointer: Vec<u8>, header: Vec<u8>, index: u32, segment: Vec<u8>) -> Result<Vec<u8>> {
    let pointer = pointer_arg(pointer)?;
    Ok(released(att::decrypt_segment(&pointer, &header, index, &segment).map_err(att_err)?))
}

/// The layout a 53-byte blob header fixes (`Malformed` if it does not decode).
#[uniffi::export]
pub fn attachment_header_info(header: Vec<u8>) -> Result<AttachmentHeaderInfo> {
    let h = header_arg(&header)?;
    Ok(AttachmentHeaderInfo {
        segment_size: h.segment_size(),
        padded_len: h.padded_len(),
        segment_count: h.segment_count(),
        ciphertext_len: h.ciphertext_len(),
    })
}

/// Where segment `index` lies in the blob (`Malformed` if the header does not decode or
/// the blob has no such segment).
#[uniffi::export]
pub fn attachment_segment_range(header: Vec<u8>, index: u32) -> Result<SegmentRange> {
    let range = header_arg(&header)?.segment_range(index).map_err(att_err)?;
    Ok(SegmentRange { offset: range.start, length: range.end - range.start })
}

/// The segment that holds plaintext byte `plaintext_offset` (`Malformed` past the
/// padded length).
#[uniffi::export]
pub fn attachment_segment_for_offset(header: Vec<u8>, plaintext_offset: u64) -> Result<u32> {
    header_arg(&header)?.segment_for_offset(plaintext_offset).map_err(att_err)
}

/// What an encoded pointer says about its attachment: size, content type, file name
/// and digest; never the key. Refused like `AttachmentDecryptor`'s constructor.
#[uniffi::export]
pub fn attachment_pointer_info(pointer: Vec<u8>) -> Result<AttachmentPointerInfo> {
    let p = pointer_arg(pointer)?;
    Ok(AttachmentPointerInfo {
        size: p.size(),
        content_type: p.content_type().to_owned(),
        file_name: p.file_name().map(str::to_owned),
        digest: p.digest().to_vec(),
    })
}

/// The padded plaintext length of an attachment of `size` bytes (Padmé, at least
/// 1,024): what the server learns instead of the size.
#[uniffi::export]
pub fn attachment_padded_len(size: u64) -> u64 {
    att::padded_len(size)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stream_encrypt(plaintext: &[u8], chunk: usize) -> (Vec<u8>, Vec<u8>) {
        let e = AttachmentEncryptor::new(plaintext.len() as u64, "audio/ogg".into(), Some("note.ogg".into())).unwrap();
        let mut blob = Vec::new();
        for c in plaintext.chunks(chunk) {
            blob.extend(e.update(c.to_vec()).unwrap());
        }
        loop {
            let step = e.finish_step().unwrap();
            blob.extend(step.ciphertext);
            if let Some(p) = step.pointer {
                return (blob, p);
            }
        }
    }

    #[test]
    fn streaming_round_trip_through_the_ffi_api() {
        let plaintext: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let (blob, pointer) = stream_encrypt(&plaintext, 50_000);
        let info = attachment_header_info(blob[..att::HEADER_BYTES].to_vec()).unwrap();
        assert_eq!(info.ciphertext_len, blob.len() as u64);
        assert_eq!(info.padded_len, attachment_padded_len(200_000));
        let d = AttachmentDecryptor::new(pointer.clone()).unwrap();
        let mut out = Vec::new();
        for c in blob.chunks(7_777) {
            out.extend(d.update(c.to_vec()).unwrap());
        }
        d.finish().unwrap();
        assert_eq!(out, plaintext);
        assert_eq!(d.received(), blob.len() as u64);
        assert_eq!(d.finish().unwrap_err().code(), "StreamFinished");
        assert_eq!(attachment_decrypt(pointer, blob).unwrap(), plaintext);
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let plaintext = vec![7u8; 70_000];
        let (blob, pointer) = stream_encrypt(&plaintext, 70_000);
        let d = AttachmentDecryptor::new(pointer).unwrap();
        let mut bad = blob.clone();
        bad[100] ^= 1;
        assert_eq!(d.update(bad).unwrap_err().code(), "Tampered");
        assert_eq!(d.received(), 0);
        let mut long = blob.clone();
        long.push(0);
        assert_eq!(d.update(long).unwrap_err().code(), "TrailingData");
        assert_eq!(d.finish().unwrap_err().code(), "Truncated");
        assert_eq!(d.update(blob).unwrap(), plaintext);
        d.finish().unwrap();
    }

    #[test]
    fn random_access_and_pointer_info() {
        let plaintext: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let EncryptedAttachment { blob, pointer } =
            attachment_encrypt(plaintext.clone(), "video/mp4".into(), None).unwrap();
        let header = blob[..att::HEADER_BYTES].to_vec();
        let index = attachment_segment_for_offset(header.clone(), 70_000).unwrap();
        assert_eq!(index, 1);
        let r = attachment_segment_range(header.clone(), index).unwrap();
        let seg = blob[r.offset as usize..(r.offset + r.length) as usize].to_vec();
        let got = attachment_decrypt_segment(pointer.clone(), header.clone(), index, seg).unwrap();
        assert_eq!(got, &plaintext[65_536..131_072]);
        assert_eq!(attachment_segment_range(header, 3).unwrap_err().code(), "Malformed");
        let info = attachment_pointer_info(pointer).unwrap();
        assert_eq!((info.size, info.content_type.as_str(), info.file_name), (150_000, "video/mp4", None));
        assert_eq!(info.digest.len(), 32);
    }

    #[test]
    fn finishing_early_is_a_size_mismatch_and_changes_nothing() {
        let e = AttachmentEncryptor::with_segment_size(3_000, 1_024, "text/plain".into(), None).unwrap();
        let first = e.update(vec![1; 1_000]).unwrap();
        assert_eq!(first, e.header());
        assert_eq!(e.finish_step().unwrap_err().code(), "SizeMismatch");
        assert_eq!(e.update(vec![1; 2_001]).unwrap_err().code(), "SizeMismatch");
        e.update(vec![1; 2_000]).unwrap();
        let mut steps = 0;
        while e.finish_step().unwrap().pointer.is_none() {
            steps += 1;
        }
        assert_eq!(steps, 1);
        assert_eq!(e.finish_step().unwrap_err().code(), "StreamFinished");
        let debug = format!("{:?}", e);
        assert!(!debug.contains('['));
    }
}
