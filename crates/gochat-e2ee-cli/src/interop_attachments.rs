//! The attachment operations of the interop driver (`docs/interop.md`, "Attachments").
//!
//! Attachments are stateless (key in, stream out): these ops need no device. Each one
//! takes the request object and returns the result fields; the framing, `id` and errors
//! are handled by `interop.rs`. Encryption and decryption go through the streaming
//! [`Encryptor`] and [`Decryptor`] in caller-chosen chunks, so an external program can
//! check that the chunking never changes the bytes or the outcome. Every argument is
//! read first (a bad one is `BadRequest`), before the library sees any of them.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::attachment::AttachmentKey;
use gochat_e2ee::attachment::{
    decrypt_segment, padded_len, AttachmentError, AttachmentPointer, Decryptor, Encryptor, FinishStep,
    DEFAULT_SEGMENT_SIZE, NONCE_PREFIX_BYTES,
};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::interop::{b64_arg, str_arg, Failure, Rng};

/// Whether `op` is one of the attachment ops below.
pub fn is_op(op: &str) -> bool {
    OPS.contains(&op)
}

const OPS: &[&str] =
    &["attachment_encrypt", "attachment_decrypt", "attachment_decrypt_segment", "attachment_pointer_info"];

/// Runs an attachment op (one listed in `OPS`).
pub fn dispatch(op: &str, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    match op {
        "attachment_encrypt" => encrypt_op(obj, rng),
        "attachment_decrypt" => decrypt_op(obj),
        "attachment_decrypt_segment" => decrypt_segment_op(obj),
        "attachment_pointer_info" => pointer_info_op(obj),
        other => Err(Failure { error: "UnknownOp", detail: format!("unknown op {other:?}") }),
    }
}

/// `attachment_encrypt`: the plaintext through an [`Encryptor`], `chunk` bytes per
/// `update`, then `finish_step` to the end. With `key` and `nonce_prefix` the result is
/// a pure function of the arguments (`Encryptor::from_parts`); without them both are
/// fresh from the driver's CSPRNG.
fn encrypt_op(obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    let plaintext = Zeroizing::new(b64_arg(obj, "plaintext")?);
    let content_type = str_arg(obj, "content_type")?;
    let file_name = opt_str_arg(obj, "file_name")?;
    let segment_size = match opt_u64_arg(obj, "segment_size")? {
        None => DEFAULT_SEGMENT_SIZE,
        Some(s) => u32::try_from(s).map_err(|_| Failure::bad_request("`segment_size` must fit in 32 bits"))?,
    };
    let chunk = chunk_arg(obj, plaintext.len())?;
    let size = plaintext.len() as u64;
    let mut encryptor = match (obj.get("key"), obj.get("nonce_prefix")) {
        (None, None) => Encryptor::with_segment_size(size, segment_size, content_type, file_name, rng),
        (Some(_), Some(_)) => {
            let key = fixed_arg::<32>(obj, "key")?;
            let nonce_prefix = fixed_arg::<NONCE_PREFIX_BYTES>(obj, "nonce_prefix")?;
            let key = AttachmentKey::from_bytes(*key);
            Encryptor::from_parts(key, *nonce_prefix, size, segment_size, content_type, file_name)
        }
        _ => return Err(Failure::bad_request("give both `key` and `nonce_prefix`, or neither")),
    }
    .map_err(attachment_failure)?;
    let header = encryptor.header().clone();
    let mut blob = Vec::with_capacity(usize::try_from(header.ciphertext_len()).unwrap_or(0));
    for part in plaintext.chunks(chunk) {
        blob.extend_from_slice(&encryptor.update(part).map_err(attachment_failure)?);
    }
    let pointer = loop {
        match encryptor.finish_step().map_err(attachment_failure)? {
            FinishStep::Ciphertext(bytes) => blob.extend_from_slice(&bytes),
            FinishStep::Done(pointer) => break pointer,
        }
    };
    Ok(json!({
        "blob": B64.encode(&blob),
        "pointer": B64.encode(pointer.encode()),
        "header": B64.encode(header.encode()),
        "digest": B64.encode(pointer.digest()),
        "padded_len": header.padded_len(),
        "segment_size": header.segment_size(),
        "segment_count": header.segment_count(),
    }))
}

/// `attachment_decrypt`: the blob through a [`Decryptor`], `chunk` bytes per `update`,
/// then `finish`. Plaintext is returned only if `finish` succeeds (the blob is complete
/// and is the one the pointer names); on any error, none is.
fn decrypt_op(obj: &Map<String, Value>) -> Result<Value, Failure> {
    let pointer = Zeroizing::new(b64_arg(obj, "pointer")?);
    let blob = b64_arg(obj, "blob")?;
    let chunk = chunk_arg(obj, blob.len())?;
    let pointer = AttachmentPointer::decode(&pointer).map_err(attachment_failure)?;
    let mut decryptor = Decryptor::new(&pointer);
    let mut plaintext = Zeroizing::new(Vec::new());
    for part in blob.chunks(chunk) {
        plaintext.extend_from_slice(&decryptor.update(part).map_err(attachment_failure)?);
    }
    decryptor.finish().map_err(attachment_failure)?;
    Ok(json!({ "plaintext": B64.encode(&*plaintext) }))
}

/// `attachment_decrypt_segment`: one segment alone (random access). Authentic, but the
/// digest is not checked: only `attachment_decrypt` proves the whole blob is the one the
/// pointer names.
fn decrypt_segment_op(obj: &Map<String, Value>) -> Result<Value, Failure> {
    let pointer = Zeroizing::new(b64_arg(obj, "pointer")?);
    let header = b64_arg(obj, "header")?;
    let index = obj
        .get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| Failure::bad_request("`index` must be a non-negative integer"))?;
    let index = u32::try_from(index).map_err(|_| Failure::bad_request("`index` must fit in 32 bits"))?;
    let segment = b64_arg(obj, "segment")?;
    let pointer = AttachmentPointer::decode(&pointer).map_err(attachment_failure)?;
    let plaintext = decrypt_segment(&pointer, &header, index, &segment).map_err(attachment_failure)?;
    Ok(json!({ "plaintext": B64.encode(&*plaintext) }))
}

/// `attachment_pointer_info`: the public fields of a pointer (never its key).
fn pointer_info_op(obj: &Map<String, Value>) -> Result<Value, Failure> {
    let pointer = Zeroizing::new(b64_arg(obj, "pointer")?);
    let pointer = AttachmentPointer::decode(&pointer).map_err(attachment_failure)?;
    Ok(json!({
        "size": pointer.size(),
        "padded_len": padded_len(pointer.size()),
        "content_type": pointer.content_type(),
        "file_name": pointer.file_name(),
        "digest": B64.encode(pointer.digest()),
    }))
}

fn attachment_failure(e: AttachmentError) -> Failure {
    Failure::from(gochat_e2ee::Error::from(e))
}

/// A base64 argument of exactly `N` bytes (secret-safe: wiped on drop).
fn fixed_arg<const N: usize>(obj: &Map<String, Value>, name: &str) -> Result<Zeroizing<[u8; N]>, Failure> {
    let bytes = Zeroizing::new(b64_arg(obj, name)?);
    let mut out = Zeroizing::new([0u8; N]);
    if bytes.len() != N {
        return Err(Failure::bad_request(format!("`{name}` must be {N} bytes")));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// The optional `chunk` argument (bytes per `update`, at least 1); default: all of
/// `whole` in one call.
fn chunk_arg(obj: &Map<String, Value>, whole: usize) -> Result<usize, Failure> {
    match opt_u64_arg(obj, "chunk")? {
        None => Ok(whole.max(1)),
        Some(0) => Err(Failure::bad_request("`chunk` must be at least 1")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

fn opt_u64_arg(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, Failure> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or_else(|| Failure::bad_request(format!("`{name}` must be a non-negative integer")))
        }
    }
}

fn opt_str_arg<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Failure> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Failure::bad_request(format!("`{name}` must be a string or null"))),
    }
}
