//! Encrypted attachments (files, images, voice notes): streaming AES-256-GCM in a
//! STREAM construction, padded to size buckets, described by an [`AttachmentPointer`].
//!
//! The blob the server stores is `header || segment_0 || … || segment_{n-1}`
//! (`docs/protocol.md` §14). Each attachment has a fresh random 32-byte key; HKDF turns
//! it into an AES-256-GCM key and a 32-byte key commitment that the header carries. The
//! padded plaintext is cut into segments of `segment_size` bytes (the last one shorter);
//! segment `i` is sealed with the nonce `prefix (7) || i (u32) || last (u8)` and the
//! header and the plaintext size as associated data. So:
//!
//! - reordering, dropping, duplicating or replacing a segment fails its tag
//!   ([`AttachmentError::Tampered`]);
//! - a blob cut short is [`AttachmentError::Truncated`], bytes after the last segment
//!   are [`AttachmentError::TrailingData`] (the header fixes the blob's exact length, and
//!   the last segment is sealed as the last);
//! - a wrong key is [`AttachmentError::WrongKey`] (the commitment is checked first);
//! - a blob that is not the one the pointer names is
//!   [`AttachmentError::DigestMismatch`] at [`Decryptor::finish`]: the pointer carries a
//!   SHA-256 of the whole blob, which binds even the sender (who knows the key and could
//!   otherwise build a second blob that decrypts to other content).
//!
//! Plaintext is released one authenticated segment at a time, so playback can start
//! early; **a stream is complete, and its digest matched, only when `finish` succeeds**.
//! Every refused input leaves a [`Decryptor`] exactly as it was.
//!
//! Sizes are padded with Padmé ([`padded_len`]) to at least [`MIN_PADDED_BYTES`]: the
//! server learns the size class, not the size (at most about 12 % overhead).

mod decrypt;
mod encrypt;
mod header;
mod io;
mod pointer;
#[cfg(test)]
mod tests;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use decrypt::{decrypt, decrypt_segment, Decryptor};
pub use encrypt::{encrypt, Encryptor, FinishStep};
pub use header::AttachmentHeader;
pub use io::{DecryptingReader, EncryptingWriter};
pub use pointer::AttachmentPointer;

use crate::crypto::{hkdf, CryptoError};
use crate::labels;
use crate::wire::DecodeError;

/// Length of the blob header (type, version, segment size, padded length, nonce prefix,
/// key commitment).
pub const HEADER_BYTES: usize = 2 + 4 + 8 + NONCE_PREFIX_BYTES + 32;
/// Length of the per-attachment nonce prefix.
pub const NONCE_PREFIX_BYTES: usize = 7;
/// Length of each segment's AES-256-GCM tag.
pub const SEGMENT_TAG_BYTES: usize = 16;
/// The segment size [`Encryptor::new`] uses: 64 KiB.
pub const DEFAULT_SEGMENT_SIZE: u32 = 65_536;
/// Smallest segment size a header may give.
pub const MIN_SEGMENT_SIZE: u32 = 1_024;
/// Largest segment size a header may give: a decryptor buffers at most one segment.
pub const MAX_SEGMENT_SIZE: u32 = 1_048_576;
/// Every attachment is padded to at least this many bytes.
pub const MIN_PADDED_BYTES: u64 = 1_024;
/// Largest plaintext an attachment may have: 1 TiB.
pub const MAX_ATTACHMENT_BYTES: u64 = 1 << 40;
/// Longest content type (MIME type, printable ASCII).
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Longest file name (UTF-8).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Longest encoded pointer.
pub const MAX_POINTER_BYTES: usize = 2 + 32 + 32 + 8 + 1 + MAX_CONTENT_TYPE_BYTES + 2 + MAX_FILE_NAME_BYTES;

/// Why an attachment could not be encrypted or decrypted. A [`Decryptor`] or
/// [`Encryptor`] that returns one is unchanged (except where a variant says otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttachmentError {
    /// A header or pointer is malformed (layout, type, version, a field out of range).
    #[error("malformed attachment data: {0}")]
    Decode(#[from] DecodeError),
    /// The plaintext size is over [`MAX_ATTACHMENT_BYTES`].
    #[error("attachment of {size} bytes is too large")]
    TooLarge {
        /// The size asked for.
        size: u64,
    },
    /// A segment size outside `MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE`.
    #[error("segment size {0} is out of range")]
    InvalidSegmentSize(u32),
    /// A content type that is empty, too long or not printable ASCII.
    #[error("invalid content type")]
    InvalidContentType,
    /// A file name that is empty, too long, not UTF-8, holds a control character or a
    /// path separator, or is `.` or `..`.
    #[error("invalid file name")]
    InvalidFileName,
    /// More plaintext than the size declared to the encryptor.
    #[error("more plaintext than the declared {declared} bytes")]
    TooMuchInput {
        /// The declared size.
        declared: u64,
    },
    /// The data does not have the size it was declared with: the encryptor was finished
    /// before all the declared plaintext was written, or a pointer's size does not fit
    /// the blob's padded length.
    #[error("size mismatch: declared {declared}, found {found}")]
    SizeMismatch {
        /// The size declared (to the encryptor, or in the pointer).
        declared: u64,
        /// The size written (encryptor), or the blob's padded length (decryptor).
        found: u64,
    },
    /// The key does not open this blob (its key commitment differs).
    #[error("wrong attachment key")]
    WrongKey,
    /// A segment's tag does not verify: it was modified, moved, dropped, duplicated or
    /// replaced, or the header was modified.
    #[error("segment {segment} is not authentic")]
    Tampered {
        /// The index of the refused segment.
        segment: u32,
    },
    /// Padding bytes that are not zero (only a holder of the key can produce this).
    #[error("segment {segment} has non-zero padding")]
    InvalidPadding {
        /// The index of the refused segment.
        segment: u32,
    },
    /// The blob ended before its last segment.
    #[error("attachment truncated: {received} of {expected} bytes")]
    Truncated {
        /// The blob's length according to its header (or the header's own length).
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// Bytes after the last segment.
    #[error("bytes after the end of the attachment")]
    TrailingData,
    /// The blob decrypted, but is not the one the pointer names (SHA-256 differs).
    #[error("attachment digest does not match the pointer")]
    DigestMismatch,
    /// Random access to a segment the blob does not have.
    #[error("segment {index} is out of range (the attachment has {count})")]
    SegmentOutOfRange {
        /// The index asked for.
        index: u32,
        /// The number of segments.
        count: u32,
    },
    /// The stream was already finished.
    #[error("the stream is already finished")]
    Finished,
    /// A primitive refused its input (never caused by peer input).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A fresh attachment's 32-byte key: wiped on drop, never printed, compared in
/// constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AttachmentKey([u8; 32]);

impl AttachmentKey {
    /// Wraps key bytes (from a decoded pointer, or for test vectors).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AttachmentKey(bytes)
    }

    /// A fresh random key.
    pub(crate) fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        AttachmentKey(k)
    }

    /// The key bytes (secret).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for AttachmentKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for AttachmentKey {}

impl core::fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AttachmentKey(<redacted>)")
    }
}

/// The padded length of a plaintext of `size` bytes: Padmé (Nikitin et al., PURBs,
/// 2019) of `max(size, MIN_PADDED_BYTES)`. With `E = ⌊log2 L⌋` and
/// `S = ⌊log2 E⌋ + 1`, the low `E − S` bits of `L` are rounded up to zero, so a size
/// leaks `O(log log L)` bits and the overhead is below 12 %.
pub fn padded_len(size: u64) -> u64 {
    let l = size.max(MIN_PADDED_BYTES);
    let e = 63 - u64::from(l.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let mask = (1u64 << (e - s)) - 1;
    (l + mask) & !mask
}

/// Length of a segment's associated data: the header, then the plaintext size.
const AAD_BYTES: usize = HEADER_BYTES + 8;

/// A segment's associated data: `header || u64(size)`. The size is not in the blob (the
/// server learns only the padded length) but is bound into every tag, so a pointer that
/// states another size than the one the blob was sealed with is refused (`Tampered`).
/// `header` is exactly [`HEADER_BYTES`] long (decoded or encoded before).
fn segment_aad(header: &[u8], size: u64) -> [u8; AAD_BYTES] {
    let mut aad = [0u8; AAD_BYTES];
    aad[..HEADER_BYTES].copy_from_slice(&header[..HEADER_BYTES]);
    aad[HEADER_BYTES..].copy_from_slice(&size.to_be_bytes());
    aad
}

/// The AES-256-GCM key schedule of one attachment and its key commitment.
struct SegmentCipher {
    aead: Aes256Gcm,
    commitment: [u8; 32],
}

impl SegmentCipher {
    /// `aes_key || commitment = HKDF-SHA256(salt = 32 zero bytes, ikm = key,
    /// info = "GoChat-E2EE v1 attachment keys", 64)`.
    fn new(key: &AttachmentKey) -> Result<Self, CryptoError> {
        let mut okm = [0u8; 64];
        hkdf(&[0u8; 32], key.as_bytes(), labels::ATTACHMENT_KEYS, &mut okm)?;
        let mut aes_key = [0u8; 32];
        aes_key.copy_from_slice(&okm[..32]);
        let mut commitment = [0u8; 32];
        commitment.copy_from_slice(&okm[32..]);
        okm.zeroize();
        let aead = Aes256Gcm::new(&aes_key.into());
        aes_key.zeroize();
        Ok(SegmentCipher { aead, commitment })
    }

    /// Whether `commitment` is this key's (constant time).
    fn commits_to(&self, commitment: &[u8; 32]) -> bool {
        self.commitment.ct_eq(commitment).into()
    }

    /// Seals `plaintext` into `out[..len]` and writes the tag to `out[len..len + 16]`.
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], plaintext: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
        let len = plaintext.len();
        let too_large = CryptoError::AeadInputTooLarge(len);
        let (body, tag_out) = out.split_at_mut(len);
        let buf = aes_gcm::aead::inout::InOutBuf::new(plaintext, body).map_err(|_| too_large)?;
        let tag = self.aead.encrypt_inout_detached(&Nonce::from(*nonce), aad, buf).map_err(|_| too_large)?;
        tag_out.get_mut(..SEGMENT_TAG_BYTES).ok_or(too_large)?.copy_from_slice(&tag);
        Ok(())
    }

    /// Opens `sealed` (body then tag) into `out` (the body's length); `false` if the tag
    /// does not verify.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], sealed: &[u8], out: &mut [u8]) -> bool {
        let Some(body_len) = sealed.len().checked_sub(SEGMENT_TAG_BYTES) else { return false };
        let (body, tag) = sealed.split_at(body_len);
        let Ok(tag) = <[u8; SEGMENT_TAG_BYTES]>::try_from(tag) else { return false };
        let tag = aes_gcm::aead::Tag::<Aes256Gcm>::from(tag);
        let Ok(buf) = aes_gcm::aead::inout::InOutBuf::new(body, out) else { return false };
        self.aead.decrypt_inout_detached(&Nonce::from(*nonce), aad, buf, &tag).is_ok()
    }
}

/// Below this many bytes in one call the digest is computed inline; above it, on a
/// second thread while the segments are sealed or opened (native targets only).
const PARALLEL_HASH_BYTES: usize = 256 * 1024;

/// Runs `work`, feeding every byte string it hands over to `hasher`: on a scoped second
/// thread while `work` goes on when `parallel` (and the target has threads), else inline
/// after it. The result is the same either way.
///
/// The hand-over is a `Mutex`-guarded list of slices, allocated once with room for
/// `max_parts`, not a channel: a channel's heap block has large padding, copied from the
/// stack when it is built, which can carry stale key material into the heap (the
/// freed-memory test caught exactly that).
fn hash_alongside<'a, T>(
    hasher: &mut Sha256,
    parallel: bool,
    max_parts: usize,
    work: impl FnOnce(&mut dyn FnMut(&'a [u8])) -> T,
) -> T {
    #[cfg(not(target_family = "wasm"))]
    if parallel {
        return parallel::hash_alongside(hasher, max_parts, work);
    }
    let _ = (parallel, max_parts);
    hash_inline(hasher, work)
}

#[cfg(not(target_family = "wasm"))]
mod parallel {
    use std::sync::{Condvar, Mutex, PoisonError};

    use sha2::{Digest, Sha256};

    /// Slices handed from the producer to the hashing thread, in order.
    struct Handoff<'a> {
        /// The slices so far, and whether the producer is done.
        parts: Mutex<(Vec<&'a [u8]>, bool)>,
        more: Condvar,
    }

    impl<'a> Handoff<'a> {
        fn push(&self, part: &'a [u8]) {
            let mut g = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
            g.0.push(part);
            self.more.notify_one();
        }

        fn close(&self) {
            self.parts.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
            self.more.notify_one();
        }

        /// The `i`-th slice, waiting for it; `None` once the producer closed without it.
        fn get(&self, i: usize) -> Option<&'a [u8]> {
            let mut g = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(part) = g.0.get(i) {
                    return Some(*part);
                }
                if g.1 {
                    return None;
                }
                g = self.more.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    pub(super) fn hash_alongside<'a, T>(
        hasher: &mut Sha256,
        max_parts: usize,
        work: impl FnOnce(&mut dyn FnMut(&'a [u8])) -> T,
    ) -> T {
        let handoff = Handoff { parts: Mutex::new((Vec::with_capacity(max_parts), false)), more: Condvar::new() };
        let mut h = hasher.clone();
        let handoff = &handoff;
        let outcome = std::thread::scope(|s| {
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut i = 0;
                while let Some(part) = handoff.get(i) {
                    h.update(part);
                    i += 1;
                }
                h
            });
            let Ok(handle) = spawned else {
                return Err(work);
            };
            let result = work(&mut |part| handoff.push(part));
            handoff.close();
            match handle.join() {
                Ok(h) => Ok((result, h)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        match outcome {
            Ok((result, h)) => {
                *hasher = h;
                result
            }
            // No thread could be started: `work` has not run; do it inline.
            Err(work) => super::hash_inline(hasher, work),
        }
    }
}

fn hash_inline<'a, T>(hasher: &mut Sha256, work: impl FnOnce(&mut dyn FnMut(&'a [u8])) -> T) -> T {
    use sha2::Digest;
    let mut parts: Vec<&'a [u8]> = Vec::new();
    let result = work(&mut |part| parts.push(part));
    for part in parts {
        hasher.update(part);
    }
    result
}
