//! `gochat-e2ee demo attachment`: Alice sends Bob a voice note through an untrusted
//! server.
//!
//! The blob goes to the server's storage, which learns its length (a padded size class)
//! and nothing else; the pointer (key, digest, size, type, name) goes inside the 1:1
//! E2EE session. Bob streams the blob back: plaintext is released one authenticated
//! segment at a time, and the note is received only once `finish` has checked the whole
//! blob against the pointer. Then a seek (one segment alone) and three hostile blobs.

use gochat_e2ee::attachment::{
    decrypt_segment, padded_len, AttachmentError, AttachmentHeader, AttachmentPointer, Decryptor, Encryptor,
    FinishStep, HEADER_BYTES, SEGMENT_TAG_BYTES,
};
use gochat_e2ee::Device;
use rand_core::UnwrapErr;
use zeroize::Zeroizing;

type Rng = UnwrapErr<getrandom::SysRng>;

/// The voice note's size in bytes.
const NOTE_BYTES: usize = 150_000;
/// The recorder hands the encoder audio in pieces of this size.
const RECORD_CHUNK: usize = 24_000;
/// The download arrives in pieces of this size.
const NETWORK_CHUNK: usize = 40_000;
/// Where Bob seeks to (a plaintext byte offset).
const SEEK_OFFSET: u64 = 100_000;

fn err(e: impl Into<gochat_e2ee::Error>) -> String {
    e.into().to_string()
}

fn code(e: AttachmentError) -> &'static str {
    gochat_e2ee::Error::from(e).code().as_str()
}

/// Alice and Bob with an established 1:1 session (one message each way).
fn pair(now: u64, rng: &mut Rng) -> Result<(Device, Device), String> {
    let mut alice = Device::new("alice", now, rng);
    let mut bob = Device::new("bob", now, rng);
    let bundle = bob.next_bundle().map_err(err)?;
    let _ = alice.initiate("bob", &bundle, rng).map_err(err)?;
    let hello = alice.encrypt("bob", b"hi").map_err(err)?;
    let _ = bob.decrypt("alice", &hello, rng).map_err(err)?;
    let reply = bob.encrypt("alice", b"hi").map_err(err)?;
    let _ = alice.decrypt("bob", &reply, rng).map_err(err)?;
    Ok((alice, bob))
}

/// Stand-in audio bytes (never printed).
fn voice_note() -> Zeroizing<Vec<u8>> {
    Zeroizing::new((0..NOTE_BYTES).map(|i| (i.wrapping_mul(31) % 251) as u8).collect())
}

/// Encrypts `plaintext` as it is "recorded", `RECORD_CHUNK` bytes at a time.
fn encrypt_streaming(
    plaintext: &[u8],
    content_type: &str,
    file_name: &str,
    rng: &mut Rng,
) -> Result<(Vec<u8>, AttachmentPointer), String> {
    let mut encryptor = Encryptor::new(plaintext.len() as u64, content_type, Some(file_name), rng).map_err(err)?;
    let mut blob = Vec::new();
    for part in plaintext.chunks(RECORD_CHUNK) {
        blob.extend_from_slice(&encryptor.update(part).map_err(err)?);
    }
    loop {
        match encryptor.finish_step().map_err(err)? {
            FinishStep::Ciphertext(bytes) => blob.extend_from_slice(&bytes),
            FinishStep::Done(pointer) => return Ok((blob, pointer)),
        }
    }
}

/// Streams `blob` through a decryptor in `NETWORK_CHUNK` pieces, then `finish`. Returns
/// the plaintext released before the first refusal, and the refusal if any.
fn stream(pointer: &AttachmentPointer, blob: &[u8]) -> (usize, Result<(), AttachmentError>) {
    let mut decryptor = Decryptor::new(pointer);
    let mut released = 0;
    for part in blob.chunks(NETWORK_CHUNK) {
        match decryptor.update(part) {
            Ok(out) => released += out.len(),
            Err(e) => return (released, Err(e)),
        }
    }
    (released, decryptor.finish())
}

/// Runs the demo, printing to stdout.
pub fn run(now: u64) -> Result<(), String> {
    let mut rng: Rng = UnwrapErr(getrandom::SysRng);
    let (mut alice, mut bob) = pair(now, &mut rng)?;
    println!();
    println!("Attachments: Alice sends Bob a voice note (Alice and Bob already share a 1:1 session).");
    println!();

    let note = voice_note();
    let (blob, pointer) = encrypt_streaming(&note, "audio/ogg", "voice-note.ogg", &mut rng)?;
    let header = AttachmentHeader::decode(blob.get(..HEADER_BYTES).unwrap_or(&[])).map_err(err)?;
    let padded = header.padded_len();
    let segments = header.segment_count();
    println!(
        "Alice records voice-note.ogg ({NOTE_BYTES} B of audio/ogg) and encrypts it while recording: a fresh key, {segments} segments of {} KiB.",
        header.segment_size() / 1024
    );
    println!(
        "  [server stores a blob of {} B: header {HEADER_BYTES} + size class {padded} + {segments} tags of {SEGMENT_TAG_BYTES}; no key, name or type]",
        blob.len()
    );
    if padded_len(148_000) == padded {
        println!(
            "  (a 148000 B document would give a blob of exactly the same length: the server learns the class only)"
        );
    }

    let encoded = pointer.encode();
    let message = alice.encrypt("bob", &encoded).map_err(err)?;
    println!(
        "Alice sends the pointer ({} B: key, SHA-256 of the blob, size, type, name) in the 1:1 session.",
        encoded.len()
    );
    println!("  [server relays a ratchet message ({} B)]", message.len());
    let got = bob.decrypt("alice", &message, &mut rng).map_err(err)?;
    let pointer_bytes = Zeroizing::new(got.plaintext);
    let received = AttachmentPointer::decode(&pointer_bytes).map_err(err)?;
    println!(
        "Bob reads the pointer: {}, {:?}, {} B; he fetches the blob in pieces of {NETWORK_CHUNK} B.",
        received.content_type(),
        received.file_name().unwrap_or(""),
        received.size()
    );

    let mut decryptor = Decryptor::new(&received);
    let mut played = Zeroizing::new(Vec::with_capacity(NOTE_BYTES));
    let seg = header.segment_size() as usize;
    let mut done = 0; // segments authenticated so far
    for (i, part) in blob.chunks(NETWORK_CHUNK).enumerate() {
        let out = decryptor.update(part).map_err(err)?;
        played.extend_from_slice(&out);
        let now_done = if played.len() == NOTE_BYTES { segments } else { (played.len() / seg) as u32 };
        let remark = match (done, now_done) {
            (a, b) if a == b => "segment not complete yet".to_owned(),
            (0, 1) => "segment 0 authenticated: playback starts".to_owned(),
            (a, b) if b == segments => format!("segments {a}..{} authenticated, padding stripped", b - 1),
            (a, b) => format!("segments {a}..{} authenticated", b - 1),
        };
        done = now_done;
        println!("  piece {} ({} B): {} B of audio released ({remark})", i + 1, part.len(), out.len());
    }
    println!("  all {} B released, but the note is not received until finish checks it.", played.len());
    decryptor.finish().map_err(err)?;
    let same = *played == *note;
    println!(
        "  finish: every segment present and the blob's SHA-256 matches the pointer: received (identical: {same})."
    );
    if !same {
        return Err("the decrypted voice note differs from the original".into());
    }

    let index = header.segment_for_offset(SEEK_OFFSET).map_err(err)?;
    let range = header.segment_range(index).map_err(err)?;
    let slice = |r: core::ops::Range<u64>| blob.get(r.start as usize..r.end as usize).unwrap_or(&[]);
    let part = decrypt_segment(&received, slice(0..HEADER_BYTES as u64), index, slice(range.clone())).map_err(err)?;
    println!(
        "Bob seeks to byte {SEEK_OFFSET}: segment {index}, blob bytes {}..{} (a range request) decrypt alone to {} B (authentic; the digest needs the whole blob).",
        range.start,
        range.end,
        part.len()
    );

    println!("A malicious server:");
    let last = header.segment_range(segments - 1).map_err(err)?;
    let mut tampered = blob.clone();
    if let Some(b) = tampered.get_mut(last.start as usize + 7) {
        *b ^= 1;
    }
    match stream(&received, &tampered) {
        (released, Err(e)) => println!(
            "  flips one bit in segment {}: refused with {} after {released} B were released; the refused piece released nothing.",
            segments - 1,
            code(e)
        ),
        (_, Ok(())) => return Err("a tampered blob must be refused".into()),
    }
    let cut = blob.get(..blob.len() - 100).unwrap_or(&[]);
    match stream(&received, cut) {
        (_, Err(e)) => {
            println!("  withholds the last 100 B: every piece is accepted, finish refuses with {}.", code(e))
        }
        (_, Ok(())) => return Err("a truncated blob must be refused".into()),
    }
    let (other, _) = encrypt_streaming(&note, "audio/ogg", "voice-note.ogg", &mut rng)?;
    match stream(&received, &other) {
        (_, Err(e)) => println!("  serves another blob of the same note: refused at its header with {}.", code(e)),
        (_, Ok(())) => return Err("another blob must be refused".into()),
    }
    Ok(())
}
