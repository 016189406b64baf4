//! The attachment vector, `attachments.json` (`docs/protocol.md` §14): blobs and pointers
//! made by the library's `Encryptor` with a given key and nonce prefix, and refused
//! blobs and pointers with their error codes. The independent re-derivation is
//! [`super::attachment_model`]. The file format is documented in `docs/test-vectors.md`
//! ("Attachment vectors").

use std::collections::BTreeMap;

use gochat_e2ee::attachment::{decrypt, AttachmentError, AttachmentKey, AttachmentPointer, Encryptor};
use serde_json::{json, Value};

use super::{hex_field, hv, prim, str_field, u64_field};

/// The vector's name and description.
pub(crate) const NAME: &str = "attachments";
pub(crate) const DESCRIPTION: &str = "Encrypted attachments (§14): a 13-byte file with a file name, an empty file, a file of exactly two 1,024-byte segments, and a 5,000-byte file in five 1,024-byte segments (the last partly padding), each with its key, nonce prefix, derived AES key and key commitment, Padmé length, every segment nonce, header, blob, SHA-256 digest and pointer; then refused inputs with their error codes: a wrong key, a flipped segment byte, a flipped header byte, swapped segments, a blob cut at a segment boundary, a trailing byte, a pointer digest that does not match, a pointer size in another padding bucket and one in the same bucket (bound into every segment's AAD).";

/// One attachment: its name, segment size, content type, file name and plaintext.
struct Case {
    name: &'static str,
    segment_size: u32,
    content_type: &'static str,
    file_name: Option<&'static str>,
    plaintext: Vec<u8>,
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "small",
            segment_size: 1024,
            content_type: "text/plain",
            file_name: Some("hello.txt"),
            plaintext: b"Hello, GoChat".to_vec(),
        },
        Case {
            name: "empty",
            segment_size: 1024,
            content_type: "application/octet-stream",
            file_name: None,
            plaintext: Vec::new(),
        },
        Case {
            name: "segment_boundary",
            segment_size: 1024,
            content_type: "application/octet-stream",
            file_name: None,
            plaintext: pattern(2048),
        },
        Case {
            name: "multi_segment",
            segment_size: 1024,
            content_type: "image/jpeg",
            file_name: Some("photo 1.jpg"),
            plaintext: pattern(5000),
        },
    ]
}

/// A refused input: a change to one case's blob or pointer.
pub(crate) enum Change {
    /// The pointer's key replaced.
    PointerKey([u8; 32]),
    /// The pointer's digest with byte 0 xored with 0x01.
    PointerDigest,
    /// The pointer's size replaced.
    PointerSize(u64),
    /// Blob byte `at` xored with 0x01.
    Flip(usize),
    /// Segments `a` and `b` (both full-sized) exchanged.
    Swap(u32, u32),
    /// The blob cut to `len` bytes.
    Truncate(usize),
    /// One byte appended.
    Append(u8),
}

struct Refusal {
    name: &'static str,
    case: &'static str,
    change: Change,
}

fn refusals() -> Vec<Refusal> {
    let other_key = prim::sha256(&[b"GoChat-E2EE test vectors/attachments/other key"]);
    let seg = 53 + 1024 + 16;
    vec![
        Refusal { name: "wrong_key", case: "multi_segment", change: Change::PointerKey(other_key) },
        Refusal { name: "flipped_segment_byte", case: "multi_segment", change: Change::Flip(53 + 2 * seg + 100) },
        Refusal { name: "flipped_nonce_prefix", case: "small", change: Change::Flip(14) },
        Refusal { name: "swapped_segments", case: "multi_segment", change: Change::Swap(1, 2) },
        Refusal { name: "truncated_at_segment_boundary", case: "segment_boundary", change: Change::Truncate(seg) },
        Refusal { name: "trailing_byte", case: "small", change: Change::Append(0) },
        Refusal { name: "digest_mismatch", case: "multi_segment", change: Change::PointerDigest },
        Refusal { name: "size_mismatch", case: "small", change: Change::PointerSize(1025) },
        Refusal { name: "size_in_same_bucket", case: "small", change: Change::PointerSize(20) },
    ]
}

/// The key and nonce prefix of a case: `SHA-256("GoChat-E2EE test vectors/attachments/"
/// || case || "/key")`, and the first 7 bytes of the same with `"/nonce"`.
fn key_and_nonce(case: &str) -> ([u8; 32], [u8; 7]) {
    let key = prim::sha256(&[b"GoChat-E2EE test vectors/attachments/", case.as_bytes(), b"/key"]);
    let n = prim::sha256(&[b"GoChat-E2EE test vectors/attachments/", case.as_bytes(), b"/nonce"]);
    let mut nonce = [0u8; 7];
    nonce.copy_from_slice(&n[..7]);
    (key, nonce)
}

fn lib<T>(r: Result<T, AttachmentError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("library: {what}: {e}"))
}

/// The stable error code of an attachment error, and the segment of a `Tampered`.
fn refusal_json(e: AttachmentError) -> Value {
    let segment = match e {
        AttachmentError::Tampered { segment } | AttachmentError::InvalidPadding { segment } => Some(segment),
        _ => None,
    };
    let code = gochat_e2ee::Error::from(e).code().as_str();
    match segment {
        Some(s) => json!({"error": code, "segment": s}),
        None => json!({"error": code}),
    }
}

/// The blob and pointer bytes of a refusal, from its case's (an error if the change does
/// not fit them).
pub(crate) fn apply(
    change: &Change,
    blob: &[u8],
    pointer: &[u8],
    segment_size: usize,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (mut blob, mut pointer) = (blob.to_vec(), pointer.to_vec());
    let out_of_range = || "a change outside the blob or pointer".to_owned();
    match change {
        Change::PointerKey(k) => pointer.get_mut(2..34).ok_or_else(out_of_range)?.copy_from_slice(k),
        Change::PointerDigest => *pointer.get_mut(34).ok_or_else(out_of_range)? ^= 0x01,
        Change::PointerSize(s) => pointer.get_mut(66..74).ok_or_else(out_of_range)?.copy_from_slice(&s.to_be_bytes()),
        Change::Flip(at) => *blob.get_mut(*at).ok_or_else(out_of_range)? ^= 0x01,
        Change::Swap(a, b) => {
            let sealed = segment_size + 16;
            let range = |i: u32| 53 + i as usize * sealed..53 + (i as usize + 1) * sealed;
            let seg_a = blob.get(range(*a)).ok_or_else(out_of_range)?.to_vec();
            let seg_b = blob.get(range(*b)).ok_or_else(out_of_range)?.to_vec();
            blob[range(*a)].copy_from_slice(&seg_b);
            blob[range(*b)].copy_from_slice(&seg_a);
        }
        Change::Truncate(len) => blob.truncate(*len),
        Change::Append(b) => blob.push(*b),
    }
    Ok((blob, pointer))
}

/// The change of a refusal as written in `inputs.refusals[]`.
fn change_json(c: &Change) -> Value {
    match c {
        Change::PointerKey(k) => json!({"op": "pointer_key", "key": hv(k)}),
        Change::PointerDigest => json!({"op": "pointer_digest_flip"}),
        Change::PointerSize(s) => json!({"op": "pointer_size", "size": s}),
        Change::Flip(at) => json!({"op": "flip", "at": at}),
        Change::Swap(a, b) => json!({"op": "swap_segments", "a": a, "b": b}),
        Change::Truncate(len) => json!({"op": "truncate", "len": len}),
        Change::Append(b) => json!({"op": "append", "byte": hv(&[*b])}),
    }
}

/// Reads a change back from `inputs.refusals[i].change` (for the model).
pub(crate) fn change_from_json(v: &Value) -> Result<Change, String> {
    let n = |name: &str| u64_field(v, name).map(|x| x as usize);
    Ok(match str_field(v, "op")? {
        "pointer_key" => Change::PointerKey(
            hex_field(v, "key")?.try_into().map_err(|_| "pointer_key: the key is not 32 bytes".to_owned())?,
        ),
        "pointer_digest_flip" => Change::PointerDigest,
        "pointer_size" => Change::PointerSize(u64_field(v, "size")?),
        "flip" => Change::Flip(n("at")?),
        "swap_segments" => Change::Swap(n("a")? as u32, n("b")? as u32),
        "truncate" => Change::Truncate(n("len")?),
        "append" => Change::Append(*hex_field(v, "byte")?.first().ok_or("append: no byte")?),
        other => return Err(format!("unknown change {other:?}")),
    })
}

/// Runs the cases through the library: the file's inputs and the library's outputs.
pub(crate) fn run_library() -> Result<(Value, Value), String> {
    let mut in_cases = Vec::new();
    let mut out_cases = Vec::new();
    let mut made: BTreeMap<&str, (Vec<u8>, Vec<u8>, usize)> = BTreeMap::new();
    for c in cases() {
        let (key, nonce) = key_and_nonce(c.name);
        let size = c.plaintext.len() as u64;
        let mut e = lib(
            Encryptor::from_parts(
                AttachmentKey::from_bytes(key),
                nonce,
                size,
                c.segment_size,
                c.content_type,
                c.file_name,
            ),
            "from_parts",
        )?;
        let mut blob = lib(e.update(&c.plaintext), "update")?;
        let (tail, pointer) = lib(e.finish(), "finish")?;
        blob.extend_from_slice(&tail);
        let pointer_bytes = pointer.encode().to_vec();
        // The library must read back what it wrote.
        let decoded = lib(AttachmentPointer::decode(&pointer_bytes), "pointer decode")?;
        let plain = lib(decrypt(&decoded, &blob), "decrypt")?;
        if plain[..] != c.plaintext[..] {
            return Err(format!("library: {} decrypted to other bytes", c.name));
        }
        in_cases.push(json!({
            "name": c.name, "key": hv(&key), "nonce_prefix": hv(&nonce), "segment_size": c.segment_size,
            "content_type": c.content_type, "file_name": c.file_name, "plaintext": hv(&c.plaintext),
        }));
        out_cases.push(json!({
            "name": c.name, "header": hv(&blob[..53]), "blob": hv(&blob), "digest": hv(pointer.digest()),
            "pointer": hv(&pointer_bytes),
        }));
        made.insert(c.name, (blob, pointer_bytes, c.segment_size as usize));
    }
    let mut in_refusals = Vec::new();
    let mut out_refusals = Vec::new();
    for r in refusals() {
        let (blob, pointer, segment_size) = made.get(r.case).ok_or("refusal of an unknown case")?;
        let (blob, pointer) = apply(&r.change, blob, pointer, *segment_size)?;
        let result = match AttachmentPointer::decode(&pointer) {
            Err(e) => refusal_json(e),
            Ok(p) => match decrypt(&p, &blob) {
                Ok(_) => return Err(format!("library: refusal {} was accepted", r.name)),
                Err(e) => refusal_json(e),
            },
        };
        in_refusals.push(json!({"name": r.name, "case": r.case, "change": change_json(&r.change)}));
        let mut o = json!({"name": r.name});
        if let (Some(o), Some(res)) = (o.as_object_mut(), result.as_object()) {
            o.extend(res.clone());
        }
        out_refusals.push(o);
    }
    Ok((json!({"cases": in_cases, "refusals": in_refusals}), json!({"cases": out_cases, "refusals": out_refusals})))
}
