//! Encrypted attachments (`docs/protocol.md`, section 14): streaming objects and one-shot
//! functions over the core's `attachment` module.
//!
//! Attachments are stateless (key in, stream out): they never touch a `Device`.
//! - Pointers cross the boundary as their encoded bytes (a secret: they hold the key).
//!   wasm-bindgen's copy of a pointer passed in, and the encoding of one passed out, are
//!   wiped in wasm memory when the call is done with them.
//! - Plaintext passed in is taken as an owned `Vec<u8>` and wiped on return; decrypted
//!   plaintext is wiped in wasm memory once copied into its `Uint8Array`.
//! - Sizes, offsets and indexes are JS `number`s: every attachment size (at most 2^40)
//!   is exact in one. A negative, fractional or non-finite one is `Malformed`.
//! - Every refused `update` or `finishStep` leaves its stream object unchanged (the
//!   core's guarantee), so the caller may fix the input and go on.

use gochat_e2ee as core;
use gochat_e2ee::attachment::{
    self as att, AttachmentHeader, AttachmentPointer, Decryptor, Encryptor, FinishStep, DEFAULT_SEGMENT_SIZE,
    HEADER_BYTES, MAX_ATTACHMENT_BYTES, MAX_POINTER_BYTES, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE,
};
use js_sys::{Object, Uint8Array};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

use crate::{bytes, js_error, malformed, rng, JsResult, Obj};

/// The largest integer a JS `number` holds exactly (2^53 − 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn attachment_error(e: att::AttachmentError) -> JsValue {
    js_error(core::Error::from(e))
}

/// A whole, non-negative JS number as a `u64`; anything else is `Malformed`. Numbers
/// past 2^53 are not exact, so they are refused too (every valid size is below 2^41).
fn whole_u64(n: f64, what: &'static str) -> JsResult<u64> {
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER {
        Ok(n as u64)
    } else {
        Err(malformed(what))
    }
}

/// A whole JS number in `0..=u32::MAX`; anything else is `Malformed`.
fn whole_u32(n: f64, what: &'static str) -> JsResult<u32> {
    u32::try_from(whole_u64(n, what)?).map_err(|_| malformed(what))
}

/// A JS `number` from a byte count (every attachment quantity is below 2^53).
fn num(n: u64) -> f64 {
    n as f64
}

/// Decodes a pointer; wasm-bindgen's copy of its bytes is wiped on return.
fn pointer(encoded: Vec<u8>) -> JsResult<AttachmentPointer> {
    let encoded = Zeroizing::new(encoded);
    AttachmentPointer::decode(&encoded).map_err(attachment_error)
}

fn header(encoded: &[u8]) -> JsResult<AttachmentHeader> {
    AttachmentHeader::decode(encoded).map_err(attachment_error)
}

/// The pointer's encoding as a `Uint8Array`; the copy in wasm memory is wiped.
fn pointer_bytes(p: &AttachmentPointer) -> Uint8Array {
    Uint8Array::from(&p.encode()[..])
}

/// Plaintext as a `Uint8Array`; the copy in wasm memory is wiped when `plain` drops.
fn plaintext(plain: Zeroizing<Vec<u8>>) -> Uint8Array {
    Uint8Array::from(&plain[..])
}

/// Encrypts one attachment as it is read (a `File` or `Blob` in chunks), in memory
/// bounded by one segment whatever the file size.
///
/// The size is declared up front. `update(chunk)` returns the blob bytes ready (the
/// header, then every whole segment); once exactly `size` bytes were given,
/// `finishStep()` returns the remaining segments one per call (`{ciphertext, pointer:
/// null}`) and then `{ciphertext: empty, pointer}`: upload every `ciphertext` in order,
/// and send `pointer` (a secret) inside an end-to-end encrypted message. The key and the
/// nonce prefix are fresh from `crypto.getRandomValues` for every attachment.
#[wasm_bindgen]
pub struct AttachmentEncryptor {
    inner: Encryptor,
}

#[wasm_bindgen]
impl AttachmentEncryptor {
    /// Starts an attachment of exactly `size` bytes with 64 KiB segments. Refused:
    /// `TooLarge` (over 2^40 bytes), `Malformed` (an invalid size, content type or file
    /// name: printable ASCII type of 1..=255 bytes; a name of 1..=255 UTF-8 bytes without
    /// control characters, `/`, `\`, and not `.` or `..`).
    #[wasm_bindgen(constructor)]
    pub fn new(size: f64, content_type: &str, file_name: Option<String>) -> JsResult<AttachmentEncryptor> {
        Self::with_segment_size(size, f64::from(DEFAULT_SEGMENT_SIZE), content_type, file_name)
    }

    /// As the constructor with a chosen segment size (1,024..=1,048,576 bytes, else
    /// `Malformed`): larger segments cost fewer tags, smaller ones seek more finely.
    #[wasm_bindgen(js_name = withSegmentSize)]
    pub fn with_segment_size(
        size: f64,
        segment_size: f64,
        content_type: &str,
        file_name: Option<String>,
    ) -> JsResult<AttachmentEncryptor> {
        let size = whole_u64(size, "attachment size")?;
        let segment_size = whole_u32(segment_size, "segment size")?;
        let inner = Encryptor::with_segment_size(size, segment_size, content_type, file_name.as_deref(), &mut rng())
            .map_err(attachment_error)?;
        Ok(AttachmentEncryptor { inner })
    }

    /// Encrypts the next plaintext bytes (any chunking) and returns the blob bytes now
    /// complete (possibly none). Refused with nothing changed: `SizeMismatch` (more than
    /// the declared size in total), `StreamFinished` (after the pointer was returned).
    pub fn update(&mut self, plaintext: Vec<u8>) -> JsResult<Vec<u8>> {
        let plaintext = Zeroizing::new(plaintext);
        self.inner.update(&plaintext).map_err(attachment_error)
    }

    /// After all the declared plaintext: `{ciphertext, pointer: null}` with the next
    /// remaining blob bytes (at most one segment), then `{ciphertext: empty, pointer}`.
    /// Refused: `SizeMismatch` before the declared size was reached (nothing changed:
    /// write the rest, then call again), `StreamFinished` after the pointer.
    #[wasm_bindgen(js_name = finishStep)]
    pub fn finish_step(&mut self) -> JsResult<JsValue> {
        Ok(match self.inner.finish_step().map_err(attachment_error)? {
            FinishStep::Ciphertext(c) => Obj::new().set("ciphertext", bytes(&c)).set("pointer", JsValue::NULL),
            FinishStep::Done(p) => {
                Obj::new().set("ciphertext", Uint8Array::new_with_length(0)).set("pointer", pointer_bytes(&p))
            }
        }
        .done())
    }

    /// The blob's 53-byte header (its first bytes), e.g. to plan range requests.
    pub fn header(&self) -> Vec<u8> {
        self.inner.header().encode().to_vec()
    }
}

/// Decrypts one blob as it is downloaded, for the pointer that names it, in memory
/// bounded by one segment beyond the chunk given.
///
/// `update(chunk)` returns the plaintext of every segment the chunk completes, each
/// authenticated (sealed under the pointer's key at its position). **The attachment is
/// complete, and is the blob the pointer names, only when `finish()` succeeds**: until
/// then, play it if you must, but do not save it as final, show it as received or
/// forward it. A refused `update` changes nothing: fetch the bytes again and go on.
#[wasm_bindgen]
pub struct AttachmentDecryptor {
    inner: Decryptor,
}

#[wasm_bindgen]
impl AttachmentDecryptor {
    /// A decryptor for the blob `pointer` (its encoding) names. `Malformed` / `TooLarge`
    /// for a pointer that does not decode.
    #[wasm_bindgen(constructor)]
    pub fn new(pointer_bytes: Vec<u8>) -> JsResult<AttachmentDecryptor> {
        Ok(AttachmentDecryptor { inner: Decryptor::new(&pointer(pointer_bytes)?) })
    }

    /// Takes the next blob bytes (any chunking) and returns the plaintext they complete
    /// (possibly none). Refused with nothing changed, in the order checked: the header
    /// (`Malformed`, `WrongMessageType`, `UnsupportedVersion`), `WrongKey` (not this
    /// pointer's blob), `SizeMismatch` (the pointer's size does not fit the header),
    /// `TrailingData` (bytes past the end), `Tampered` (a segment's tag), `InvalidPadding`;
    /// `StreamFinished` after `finish` succeeded.
    pub fn update(&mut self, ciphertext: &[u8]) -> JsResult<Uint8Array> {
        Ok(plaintext(self.inner.update(ciphertext).map_err(attachment_error)?))
    }

    /// Ends the stream: succeeds only if every segment arrived and the blob's SHA-256 is
    /// the pointer's digest. Refused: `Truncated` (nothing changed: more bytes may come),
    /// `DigestMismatch` (not the blob the sender committed to: discard what was released),
    /// `StreamFinished` (already finished).
    pub fn finish(&mut self) -> JsResult<()> {
        self.inner.finish().map_err(attachment_error)
    }

    /// Blob bytes accepted so far (a refused chunk is not counted): where to resume a
    /// download.
    pub fn received(&self) -> f64 {
        num(self.inner.received())
    }
}

/// Encrypts a whole attachment held in memory (64 KiB segments): `{blob, pointer}`.
#[wasm_bindgen(js_name = attachmentEncrypt)]
pub fn attachment_encrypt(plaintext: Vec<u8>, content_type: &str, file_name: Option<String>) -> JsResult<JsValue> {
    let plaintext = Zeroizing::new(plaintext);
    let (blob, p) =
        att::encrypt(&plaintext, content_type, file_name.as_deref(), &mut rng()).map_err(attachment_error)?;
    Ok(Obj::new().set("blob", bytes(&blob)).set("pointer", pointer_bytes(&p)).done())
}

/// Decrypts a whole blob held in memory and checks it against the pointer (complete, and
/// its digest): the plaintext, or the first error a streaming decryptor would give.
#[wasm_bindgen(js_name = attachmentDecrypt)]
pub fn attachment_decrypt(pointer_bytes: Vec<u8>, blob: &[u8]) -> JsResult<Uint8Array> {
    let p = pointer(pointer_bytes)?;
    Ok(plaintext(att::decrypt(&p, blob).map_err(attachment_error)?))
}

/// Decrypts segment `index` alone (seeking in audio or video): `header` is the blob's
/// first 53 bytes, `segment` the bytes at `attachmentSegmentRange(header, index)`.
/// Returns its real plaintext (padding stripped; empty for padding only). The segment is
/// authentic, but only a whole `AttachmentDecryptor` run proves the blob is the one the
/// pointer names (the digest). Refused: as `update` for the header, then `Malformed`
/// (no such segment), `Truncated` / `TrailingData` (a wrong length), `Tampered`.
#[wasm_bindgen(js_name = attachmentDecryptSegment)]
pub fn attachment_decrypt_segment(
    pointer_bytes: Vec<u8>,
    header_bytes: &[u8],
    index: f64,
    segment: &[u8],
) -> JsResult<Uint8Array> {
    let p = pointer(pointer_bytes)?;
    let index = whole_u32(index, "segment index")?;
    Ok(plaintext(att::decrypt_segment(&p, header_bytes, index, segment).map_err(attachment_error)?))
}

/// `{segmentSize, paddedLen, segmentCount, ciphertextLen}` of a blob's 53-byte header
/// (decoded and bounded, not authenticated: that takes the pointer).
#[wasm_bindgen(js_name = attachmentHeaderInfo)]
pub fn attachment_header_info(header_bytes: &[u8]) -> JsResult<JsValue> {
    let h = header(header_bytes)?;
    Ok(Obj::new()
        .set("segmentSize", h.segment_size())
        .set("paddedLen", num(h.padded_len()))
        .set("segmentCount", h.segment_count())
        .set("ciphertextLen", num(h.ciphertext_len()))
        .done())
}

/// `{offset, length}`: where segment `index` lies in the blob (tag included), for an
/// HTTP range request. `Malformed` for a segment the blob does not have.
#[wasm_bindgen(js_name = attachmentSegmentRange)]
pub fn attachment_segment_range(header_bytes: &[u8], index: f64) -> JsResult<JsValue> {
    let h = header(header_bytes)?;
    let r = h.segment_range(whole_u32(index, "segment index")?).map_err(attachment_error)?;
    Ok(Obj::new().set("offset", num(r.start)).set("length", num(r.end - r.start)).done())
}

/// The segment holding plaintext byte `plaintextOffset` (for seeking). `Malformed` for
/// an offset past the last segment.
#[wasm_bindgen(js_name = attachmentSegmentForOffset)]
pub fn attachment_segment_for_offset(header_bytes: &[u8], plaintext_offset: f64) -> JsResult<u32> {
    let h = header(header_bytes)?;
    h.segment_for_offset(whole_u64(plaintext_offset, "plaintext offset")?).map_err(attachment_error)
}

/// `{size, contentType, fileName, digest}` of an encoded pointer (`fileName` is `null`
/// when none was given). Never the key.
#[wasm_bindgen(js_name = attachmentPointerInfo)]
pub fn attachment_pointer_info(pointer_bytes: Vec<u8>) -> JsResult<JsValue> {
    let p = pointer(pointer_bytes)?;
    Ok(Obj::new()
        .set("size", num(p.size()))
        .set("contentType", p.content_type())
        .set("fileName", p.file_name().map_or(JsValue::NULL, JsValue::from))
        .set("digest", bytes(p.digest()))
        .done())
}

/// The padded plaintext length of an attachment of `size` bytes (Padmé buckets, at
/// least 1,024): what the server learns of its size. `Malformed` for an invalid number,
/// `TooLarge` over 2^40.
#[wasm_bindgen(js_name = attachmentPaddedLen)]
pub fn attachment_padded_len(size: f64) -> JsResult<f64> {
    let size = whole_u64(size, "attachment size")?;
    if size > MAX_ATTACHMENT_BYTES {
        return Err(attachment_error(att::AttachmentError::TooLarge { size }));
    }
    Ok(num(att::padded_len(size)))
}

/// Adds the attachment limits to the object `limits()` returns.
pub(crate) fn add_limits(o: &Object) {
    let set = |k: &str, v: f64| {
        // Setting a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(o, &k.into(), &v.into());
    };
    set("headerBytes", HEADER_BYTES as f64);
    set("defaultSegmentSize", f64::from(DEFAULT_SEGMENT_SIZE));
    set("minSegmentSize", f64::from(MIN_SEGMENT_SIZE));
    set("maxSegmentSize", f64::from(MAX_SEGMENT_SIZE));
    set("maxAttachmentBytes", num(MAX_ATTACHMENT_BYTES));
    set("maxPointerBytes", MAX_POINTER_BYTES as f64);
}
