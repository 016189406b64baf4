//! The independent model of `attachments.json`: every value re-derived from the inputs
//! with the raw primitives (`hkdf`, `aes-gcm`, `sha2`), following `docs/protocol.md` §14
//! (never the library's attachment code). The label is spelled out here. The refused
//! inputs are decided by the receiver's checks of §14.5, in their order.

use serde_json::{json, Value};

use super::attachments::{apply, change_from_json};
use super::{arr, field, hex_field, hv, prim, str_field, u64_field};

/// §14.7.
const ATTACHMENT_KEYS: &[u8] = b"GoChat-E2EE v1 attachment keys";
const HEADER_BYTES: usize = 53;
const TAG_BYTES: usize = 16;
const MIN_PADDED: u64 = 1024;
const MIN_SEGMENT: u64 = 1024;
const MAX_SEGMENT: u64 = 1 << 20;
const MAX_SIZE: u64 = 1 << 40;
const MAX_POINTER_BYTES: usize = 587;

/// §14.3: `Padmé(max(size, 1024))`.
fn pad(size: u64) -> u64 {
    let l = size.max(MIN_PADDED);
    let e = 63 - u64::from(l.leading_zeros()); // ⌊log2 L⌋
    let s = 64 - u64::from(e.leading_zeros()); // ⌊log2 E⌋ + 1
    let m = (1u64 << (e - s)) - 1;
    (l + m) & !m
}

/// §14.2: `aes_key || key_commitment = HKDF(0^32, K, label, 64)`.
fn keys(key: &[u8]) -> Result<([u8; 32], [u8; 32]), String> {
    let okm = prim::hkdf(&[0u8; 32], key, ATTACHMENT_KEYS, 64)?;
    let (mut a, mut c) = ([0u8; 32], [0u8; 32]);
    a.copy_from_slice(&okm[..32]);
    c.copy_from_slice(&okm[32..]);
    Ok((a, c))
}

/// §14.1: `nonce_prefix || u32(i) || last_i`.
fn nonce(prefix: &[u8], i: u64, n: u64) -> Result<[u8; 12], String> {
    let mut out = [0u8; 12];
    out.get_mut(..7).ok_or("nonce")?.copy_from_slice(prefix.get(..7).ok_or("the nonce prefix is not 7 bytes")?);
    out[7..11].copy_from_slice(&(i as u32).to_be_bytes());
    out[11] = u8::from(i + 1 == n);
    Ok(out)
}

pub fn run(inputs: &Value) -> Result<(Value, Value), String> {
    let mut inter_cases = Vec::new();
    let mut out_cases = Vec::new();
    let mut made = Vec::new();
    for c in arr(inputs, "cases")? {
        let name = str_field(c, "name")?;
        let key = hex_field(c, "key")?;
        let prefix = hex_field(c, "nonce_prefix")?;
        if key.len() != 32 || prefix.len() != 7 {
            return Err(format!("{name}: key or nonce prefix of the wrong length"));
        }
        let seg = u64_field(c, "segment_size")?;
        let content_type = str_field(c, "content_type")?;
        let file_name = match field(c, "file_name")? {
            Value::Null => "",
            v => v.as_str().ok_or("file_name is not a string")?,
        };
        let plaintext = hex_field(c, "plaintext")?;
        let size = plaintext.len() as u64;
        let (aes_key, commitment) = keys(&key)?;
        let padded = pad(size);
        let n = padded.div_ceil(seg);
        let mut header = vec![0x40, 0x01];
        header.extend_from_slice(&(seg as u32).to_be_bytes());
        header.extend_from_slice(&padded.to_be_bytes());
        header.extend_from_slice(&prefix);
        header.extend_from_slice(&commitment);
        let mut p = plaintext.clone();
        p.resize(padded as usize, 0);
        let mut blob = header.clone();
        let aad = [&header[..], &size.to_be_bytes()].concat();
        let mut nonces = Vec::new();
        for (i, chunk) in p.chunks(seg as usize).enumerate() {
            let nonce_i = nonce(&prefix, i as u64, n)?;
            blob.extend_from_slice(&prim::aes_gcm_seal(&aes_key, &nonce_i, &aad, chunk)?);
            nonces.push(hv(&nonce_i));
        }
        let digest = prim::sha256(&[&blob]);
        let mut pointer = vec![0x41, 0x01];
        pointer.extend_from_slice(&key);
        pointer.extend_from_slice(&digest);
        pointer.extend_from_slice(&size.to_be_bytes());
        pointer.push(content_type.len() as u8);
        pointer.extend_from_slice(content_type.as_bytes());
        pointer.extend_from_slice(&(file_name.len() as u16).to_be_bytes());
        pointer.extend_from_slice(file_name.as_bytes());
        inter_cases.push(json!({
            "name": name, "aes_key": hv(&aes_key), "key_commitment": hv(&commitment), "padded_len": padded,
            "segment_count": n, "nonces": nonces, "aad": hv(&aad), "blob_len": blob.len(),
        }));
        out_cases.push(json!({
            "name": name, "header": hv(&header), "blob": hv(&blob), "digest": hv(&digest), "pointer": hv(&pointer),
        }));
        made.push((name.to_owned(), blob, pointer, seg as usize));
    }
    let mut inter_refusals = Vec::new();
    let mut out_refusals = Vec::new();
    for r in arr(inputs, "refusals")? {
        let name = str_field(r, "name")?;
        let case = str_field(r, "case")?;
        let (_, blob, pointer, seg) =
            made.iter().find(|m| m.0 == case).ok_or_else(|| format!("refusal {name}: no case {case}"))?;
        let (blob, pointer) = apply(&change_from_json(field(r, "change")?)?, blob, pointer, *seg)?;
        let (code, segment) = match receive(&pointer, &blob)? {
            Ok(()) => return Err(format!("refusal {name}: the model accepts it")),
            Err(e) => e,
        };
        inter_refusals.push(json!({"name": name, "blob_len": blob.len(), "blob_digest": hv(&prim::sha256(&[&blob]))}));
        out_refusals.push(match segment {
            Some(s) => json!({"name": name, "error": code, "segment": s}),
            None => json!({"name": name, "error": code}),
        });
    }
    Ok((
        json!({"cases": inter_cases, "refusals": inter_refusals}),
        json!({"cases": out_cases, "refusals": out_refusals}),
    ))
}

type Refused = (&'static str, Option<u64>);

/// The pointer's key, digest and size (§14.4), or its refusal.
fn decode_pointer(p: &[u8]) -> Result<([u8; 32], [u8; 32], u64), Refused> {
    let malformed = ("Malformed", None);
    if p.len() < 2 {
        return Err(malformed);
    }
    if p[0] != 0x41 {
        return Err(("WrongMessageType", None));
    }
    if p[1] != 0x01 {
        return Err(("UnsupportedVersion", None));
    }
    if p.len() > MAX_POINTER_BYTES {
        return Err(("TooLarge", None));
    }
    if p.len() < 2 + 32 + 32 + 8 + 1 {
        return Err(malformed);
    }
    let (mut key, mut digest) = ([0u8; 32], [0u8; 32]);
    key.copy_from_slice(&p[2..34]);
    digest.copy_from_slice(&p[34..66]);
    let size = u64::from_be_bytes(p[66..74].try_into().map_err(|_| malformed)?);
    if size > MAX_SIZE {
        return Err(("TooLarge", None));
    }
    let ct_len = usize::from(p[74]);
    let ct = p.get(75..75 + ct_len).ok_or(malformed)?;
    if ct.is_empty() || !ct.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(malformed);
    }
    let at = 75 + ct_len;
    let name_len =
        usize::from(u16::from_be_bytes(p.get(at..at + 2).ok_or(malformed)?.try_into().map_err(|_| malformed)?));
    let name = p.get(at + 2..at + 2 + name_len).ok_or(malformed)?;
    let ok_name = name_len == 0
        || (name_len <= 255
            && core::str::from_utf8(name)
                .is_ok_and(|s| s != "." && s != ".." && !s.chars().any(|c| c.is_control() || c == '/' || c == '\\')));
    if !ok_name || p.len() != at + 2 + name_len {
        return Err(malformed);
    }
    Ok((key, digest, size))
}

/// §14.5 for a blob fed in one chunk and then finished: `Ok(Ok(()))` if accepted, else
/// the error code (and the segment of a `Tampered` or `InvalidPadding`).
fn receive(pointer: &[u8], blob: &[u8]) -> Result<Result<(), Refused>, String> {
    let (key, digest, size) = match decode_pointer(pointer) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    // Step 3 (an incomplete header is only noticed at `finish`).
    if blob.len() < HEADER_BYTES {
        return Ok(Err(("Truncated", None)));
    }
    // Step 1: the header.
    let header = &blob[..HEADER_BYTES];
    if header[0] != 0x40 {
        return Ok(Err(("WrongMessageType", None)));
    }
    if header[1] != 0x01 {
        return Ok(Err(("UnsupportedVersion", None)));
    }
    let seg = u64::from(u32::from_be_bytes(header[2..6].try_into().map_err(|_| "header")?));
    let padded = u64::from_be_bytes(header[6..14].try_into().map_err(|_| "header")?);
    if !(MIN_SEGMENT..=MAX_SEGMENT).contains(&seg)
        || padded < MIN_PADDED
        || padded > pad(MAX_SIZE)
        || pad(padded) != padded
    {
        return Ok(Err(("Malformed", None)));
    }
    let (aes_key, commitment) = keys(&key)?;
    if header[21..53] != commitment {
        return Ok(Err(("WrongKey", None)));
    }
    if pad(size) != padded {
        return Ok(Err(("SizeMismatch", None)));
    }
    // Step 2: length, then each complete segment in order.
    let n = padded.div_ceil(seg);
    let expected = HEADER_BYTES as u64 + padded + TAG_BYTES as u64 * n;
    if blob.len() as u64 > expected {
        return Ok(Err(("TrailingData", None)));
    }
    // 14.1: every tag covers the header and the pointer's size.
    let aad = [header, &size.to_be_bytes()].concat();
    let mut at = HEADER_BYTES;
    for i in 0..n {
        let plain_len = (padded - i * seg).min(seg) as usize;
        let Some(sealed) = blob.get(at..at + plain_len + TAG_BYTES) else { break };
        let Ok(plain) = prim::aes_gcm_open(&aes_key, &nonce(&header[14..21], i, n)?, &aad, sealed) else {
            return Ok(Err(("Tampered", Some(i))));
        };
        let real = size.saturating_sub(i * seg).min(plain_len as u64) as usize;
        if plain[real..].iter().any(|b| *b != 0) {
            return Ok(Err(("InvalidPadding", Some(i))));
        }
        at += plain_len + TAG_BYTES;
    }
    // Step 3: complete, and the blob the pointer names.
    if (blob.len() as u64) < expected {
        return Ok(Err(("Truncated", None)));
    }
    if prim::sha256(&[blob]) != digest {
        return Ok(Err(("DigestMismatch", None)));
    }
    Ok(Ok(()))
}
