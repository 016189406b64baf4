//! The attachment targets: `attachment_header` ([`AttachmentHeader::decode`]),
//! `attachment_pointer` ([`AttachmentPointer::decode`]) and `attachment_stream` (the
//! streaming [`Decryptor`] and [`Encryptor`] state machines).
//!
//! `attachment_stream` reads a mode byte, then a script:
//!
//! | mode bit | meaning |
//! |----------|---------|
//! | bit 0 = 0 | decrypt: bit 1 picks the fixture blob ([`AttachmentFixtures::small`], [`AttachmentFixtures::multi`]), `(mode >> 2) % 3` the pointer (genuine, wrong digest, wrong key); the rest is a list of 3-byte operations `op, arg (u16 big-endian)` |
//! | bit 0 = 1 | encrypt: `size u16, segment byte, flags byte`, then 2-byte chunk lengths |
//!
//! Decrypt operations (`op & 7`; `x = 1 << (op >> 5)` is the bit a flip changes, `p` the
//! decryptor's [`Decryptor::received`]):
//!
//! | op | fed to [`Decryptor::update`] |
//! |----|------|
//! | 0, 6, 7 | the next `arg` genuine bytes (clamped to the blob's end) |
//! | 1 | the next `(arg & 0xff) + 1` genuine bytes, byte `(arg >> 8) % n` xored with `x` |
//! | 2 | the next `arg % 64` bytes of the fuzz input itself |
//! | 3 | the genuine rest of the blob and `1 + arg % 4` more bytes |
//! | 4 | (none: [`Decryptor::finish`]) |
//! | 5 | one sealed segment's worth of genuine bytes from offset `arg % len` (a moved, skipped or duplicated segment) |
//!
//! Asserted, for every operation: no panic; a refused update leaves `received()` and
//! `header()` unchanged; genuine bytes at the right position, on a decryptor that has
//! accepted only genuine bytes, are accepted (unless the pointer holds a wrong key);
//! all plaintext released so far is a prefix of the genuine plaintext; `finish` succeeds
//! exactly when the genuine pointer was used, only genuine bytes were accepted, and all of
//! the blob was; after it, every call is `Finished`. At the end, a decryptor that only
//! accepted genuine bytes still accepts the genuine remainder and finishes with the whole
//! plaintext (so no refusal in between corrupted its state).
//!
//! The encrypt mode encrypts a plaintext of `size % 20_000` bytes with segments of
//! `1024 + 64 · segment` bytes, chunked as the input says (a chunk longer than what is
//! left must be refused with `TooMuchInput` and nothing changed; a chunk length with its
//! top bit set first tries `finish_step` early, which must be refused with
//! `SizeMismatch`), and asserts that the blob and the pointer equal a one-shot
//! encryption with the same key and nonce prefix, that the blob has the length its
//! header gives, that it decrypts (chunked the same way, in one piece, and segment by
//! segment with [`decrypt_segment`]) to the plaintext, and that the pointer re-encodes.

use std::sync::OnceLock;

use gochat_e2ee::attachment::{
    decrypt, decrypt_segment, padded_len, AttachmentError, AttachmentHeader, AttachmentKey, AttachmentPointer,
    Decryptor, Encryptor, FinishStep, HEADER_BYTES, MAX_ATTACHMENT_BYTES, MAX_POINTER_BYTES, MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE, SEGMENT_TAG_BYTES,
};

use crate::fixtures::Seed;

/// Key and nonce prefix of every blob the targets build (they need not be secret here).
const KEY: [u8; 32] = [0x4B; 32];
const NONCE_PREFIX: [u8; 7] = [0x4E; 7];

/// At most this many operations are read from one `attachment_stream` input.
pub const MAX_OPS: usize = 64;

/// Largest plaintext of the encrypt mode.
pub const MAX_ENCRYPT_BYTES: usize = 20_000;

/// A genuine blob and three pointers to it.
pub struct Blob {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The blob: header and segments.
    pub blob: Vec<u8>,
    /// The segment size of the blob.
    pub segment_size: u32,
    /// The pointer that names the blob.
    pub pointer: AttachmentPointer,
    /// The same pointer with one bit of its digest flipped.
    pub wrong_digest: AttachmentPointer,
    /// The same pointer with one bit of its key flipped.
    pub wrong_key: AttachmentPointer,
}

/// The attachment fixtures.
pub struct AttachmentFixtures {
    /// 13 bytes with a file name: one segment of 1,024 bytes (mostly padding).
    pub small: Blob,
    /// 5,000 bytes, no file name, 1,024-byte segments: padded to 5,120, five segments.
    pub multi: Blob,
    /// Seeds.
    pub seeds: Vec<(&'static str, Seed)>,
}

static FIXTURES: OnceLock<AttachmentFixtures> = OnceLock::new();

/// The attachment fixtures (built on first use).
pub fn get() -> &'static AttachmentFixtures {
    FIXTURES.get_or_init(build)
}

/// The plaintext of the encrypt mode and of the fixtures: varied bytes, some zeros.
fn plaintext(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(31).wrapping_add(u32::from(salt)) % 251) as u8).collect()
}

/// Encrypts `plaintext` in one piece with the fixed key and nonce prefix.
fn encrypt_once(
    plaintext: &[u8],
    segment_size: u32,
    content_type: &str,
    name: Option<&str>,
) -> (Vec<u8>, AttachmentPointer) {
    let mut e = Encryptor::from_parts(
        AttachmentKey::from_bytes(KEY),
        NONCE_PREFIX,
        plaintext.len() as u64,
        segment_size,
        content_type,
        name,
    )
    .expect("from_parts");
    let mut blob = e.update(plaintext).expect("update");
    let (tail, pointer) = e.finish().expect("finish");
    blob.extend_from_slice(&tail);
    (blob, pointer)
}

/// `pointer` with bit 0 of byte `at` of its encoding flipped.
fn flipped_pointer(pointer: &AttachmentPointer, at: usize) -> AttachmentPointer {
    let mut bytes = pointer.encode();
    bytes[at] ^= 0x01;
    AttachmentPointer::decode(&bytes).expect("a flipped key or digest still decodes")
}

fn blob(len: usize, segment_size: u32, name: Option<&str>) -> Blob {
    let plaintext = plaintext(len, 7);
    let (blob, pointer) = encrypt_once(&plaintext, segment_size, "application/octet-stream", name);
    let wrong_digest = flipped_pointer(&pointer, 2 + 32);
    let wrong_key = flipped_pointer(&pointer, 2);
    Blob { plaintext, blob, segment_size, pointer, wrong_digest, wrong_key }
}

fn flip(mut m: Vec<u8>, at: usize) -> Vec<u8> {
    let i = at.min(m.len() - 1);
    m[i] ^= 0x01;
    m
}

/// One decrypt operation of `attachment_stream`.
fn op(kind: u8, arg: u16) -> [u8; 3] {
    let [hi, lo] = arg.to_be_bytes();
    [kind, hi, lo]
}

fn script(mode: u8, ops: &[[u8; 3]]) -> Vec<u8> {
    let mut v = vec![mode];
    for o in ops {
        v.extend_from_slice(o);
    }
    v
}

const FEED: u8 = 0;
const FLIP: u8 = 1;
const RAW: u8 = 2;
const TRAILING: u8 = 3;
const FINISH: u8 = 4;
const MOVED: u8 = 5;

fn build() -> AttachmentFixtures {
    let small = blob(13, 1024, Some("note.txt"));
    let multi = blob(5000, 1024, None);
    let mut seeds: Vec<(&'static str, Seed)> = Vec::new();

    // Headers.
    let header = |b: &Blob| b.blob[..HEADER_BYTES].to_vec();
    let h_small = header(&small);
    seeds.push(("attachment_header", ("valid-small", h_small.clone())));
    seeds.push(("attachment_header", ("valid-multi-segment", header(&multi))));
    let big = Encryptor::from_parts(
        AttachmentKey::from_bytes(KEY),
        NONCE_PREFIX,
        MAX_ATTACHMENT_BYTES,
        MAX_SEGMENT_SIZE,
        "video/mp4",
        None,
    )
    .expect("from_parts");
    seeds.push(("attachment_header", ("valid-largest", big.header().encode().to_vec())));
    let mut bad_segment = h_small.clone();
    bad_segment[2..6].copy_from_slice(&(MIN_SEGMENT_SIZE - 1).to_be_bytes());
    seeds.push(("attachment_header", ("invalid-segment-size", bad_segment)));
    let mut bad_padded = h_small.clone();
    bad_padded[6..14].copy_from_slice(&1025u64.to_be_bytes());
    seeds.push(("attachment_header", ("invalid-padded-len-not-a-bucket", bad_padded)));
    seeds.push(("attachment_header", ("invalid-version", flip(h_small.clone(), 1))));
    seeds.push(("attachment_header", ("invalid-truncated", h_small[..HEADER_BYTES - 1].to_vec())));
    seeds.push(("attachment_header", ("invalid-trailing", [&h_small[..], &[0]].concat())));

    // Pointers.
    let p_named = small.pointer.encode().to_vec();
    let p_plain = multi.pointer.encode().to_vec();
    seeds.push(("attachment_pointer", ("valid-with-file-name", p_named.clone())));
    seeds.push(("attachment_pointer", ("valid-without-file-name", p_plain.clone())));
    let name_at = p_named.len() - "note.txt".len();
    let mut traversal = p_named.clone();
    traversal[name_at + 4] = b'/';
    seeds.push(("attachment_pointer", ("invalid-path-separator", traversal)));
    let mut too_large = p_plain.clone();
    too_large[66..74].copy_from_slice(&(MAX_ATTACHMENT_BYTES + 1).to_be_bytes());
    seeds.push(("attachment_pointer", ("invalid-too-large", too_large)));
    seeds.push(("attachment_pointer", ("invalid-trailing", [&p_plain[..], &[0]].concat())));
    let mut not_printable = p_plain.clone();
    not_printable[75] = 0x07;
    seeds.push(("attachment_pointer", ("invalid-content-type", not_printable)));
    let mut not_utf8 = p_named.clone();
    not_utf8[name_at] = 0xFF;
    seeds.push(("attachment_pointer", ("invalid-file-name-utf8", not_utf8)));

    // Streams. Mode bit 1: 0 = small, 1 = multi; (mode >> 2) % 3: the pointer.
    let all = |b: &Blob| b.blob.len() as u16;
    let seal = (multi.segment_size as usize + SEGMENT_TAG_BYTES) as u16;
    let s = "attachment_stream";
    seeds.push((s, ("valid-small-one-chunk", script(0, &[op(FEED, all(&small)), op(FINISH, 0)]))));
    seeds.push((s, ("valid-multi-one-chunk", script(2, &[op(FEED, all(&multi)), op(FINISH, 0)]))));
    let mut odd = vec![op(FEED, 20), op(FEED, 40), op(FEED, 1000)];
    odd.extend(std::iter::repeat_n(op(FEED, 777), 6));
    odd.push(op(FINISH, 0));
    seeds.push((s, ("valid-multi-odd-chunks", script(2, &odd))));
    let mut bounds = vec![op(FEED, HEADER_BYTES as u16)];
    bounds.extend(std::iter::repeat_n(op(FEED, seal), 5));
    bounds.push(op(FINISH, 0));
    seeds.push((s, ("valid-multi-segment-boundaries", script(2, &bounds))));
    seeds.push((
        s,
        (
            "valid-refusals-then-genuine",
            script(
                2,
                &[
                    op(FEED, 1000),
                    op(FLIP, 0x10ff),
                    op(FINISH, 0),
                    op(MOVED, 53 + 2 * seal),
                    op(TRAILING, 0),
                    op(FEED, all(&multi)),
                    op(FINISH, 0),
                ],
            ),
        ),
    ));
    seeds.push((s, ("invalid-flipped-byte", script(2, &[op(FEED, 2000), op(FLIP, 0x40ff), op(FINISH, 0)]))));
    seeds.push((s, ("invalid-truncated-at-boundary", script(2, &[op(FEED, 53 + 4 * seal), op(FINISH, 0)]))));
    seeds.push((s, ("invalid-trailing", script(0, &[op(TRAILING, 1), op(FINISH, 0)]))));
    seeds.push((s, ("invalid-moved-segment", script(2, &[op(FEED, 53), op(MOVED, 53 + seal), op(FINISH, 0)]))));
    // A header with another nonce prefix: accepted (the key still commits to it), but
    // no segment opens under it.
    let mut raw = script(0, &[op(RAW, HEADER_BYTES as u16)]);
    raw.extend_from_slice(&flip(h_small.clone(), 14));
    raw.extend_from_slice(&op(FEED, all(&small)));
    raw.extend_from_slice(&op(FINISH, 0));
    seeds.push((s, ("invalid-raw-header-other-nonce", raw)));
    seeds.push((s, ("invalid-wrong-digest", script(2 | 4, &[op(FEED, all(&multi)), op(FINISH, 0)]))));
    seeds.push((s, ("invalid-wrong-key", script(2 | 8, &[op(FEED, all(&multi)), op(FINISH, 0)]))));
    // Encrypt mode: size, segment byte, flags, chunk lengths.
    let enc = |size: u16, seg: u8, flags: u8, chunks: &[u16]| {
        let mut v = vec![1];
        v.extend_from_slice(&size.to_be_bytes());
        v.extend_from_slice(&[seg, flags]);
        for c in chunks {
            v.extend_from_slice(&c.to_be_bytes());
        }
        v
    };
    seeds.push((s, ("valid-encrypt-empty", enc(0, 0, 0, &[]))));
    seeds.push((s, ("valid-encrypt-segment-boundary", enc(2048, 0, 5, &[1024, 1024]))));
    seeds.push((s, ("valid-encrypt-chunked", enc(5000, 0, 2, &[1, 1023, 0x8000 | 1500, 60_000, 2000]))));
    seeds.push((s, ("valid-encrypt-larger-segments", enc(19_999, 47, 3, &[7000, 7000]))));

    AttachmentFixtures { small, multi, seeds }
}

/// The seeds of the three attachment targets.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    get().seeds.clone()
}

/// `attachment_header`: [`AttachmentHeader::decode`]. An accepted header re-encodes to
/// exactly the input, its padded length is a padding bucket in range, and the segment
/// layout it gives is consistent (the last segment ends where the blob does).
pub fn attachment_header(data: &[u8]) -> bool {
    let Ok(h) = AttachmentHeader::decode(data) else { return false };
    assert_eq!(&h.encode()[..], data, "accepted header does not re-encode to its input");
    assert!((MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&h.segment_size()));
    assert_eq!(padded_len(h.padded_len()), h.padded_len(), "padded length is not a bucket");
    assert!(h.padded_len() <= padded_len(MAX_ATTACHMENT_BYTES));
    let n = h.segment_count();
    assert!(n >= 1);
    let last = h.segment_range(n - 1).expect("last segment");
    assert_eq!(last.end, h.ciphertext_len(), "the last segment does not end the blob");
    assert!(last.start < last.end && last.end - last.start <= u64::from(h.segment_size()) + SEGMENT_TAG_BYTES as u64);
    assert!(h.segment_range(n).is_err(), "a segment past the end");
    assert_eq!(h.segment_for_offset(h.padded_len() - 1).expect("last offset"), n - 1);
    assert!(h.segment_for_offset(h.padded_len()).is_err(), "an offset past the padded length");
    true
}

/// `attachment_pointer`: [`AttachmentPointer::decode`]. An accepted pointer re-encodes
/// to exactly the input (the encoding is canonical), is within [`MAX_POINTER_BYTES`], its
/// size within [`MAX_ATTACHMENT_BYTES`], its file name has no path separator, and its
/// `Debug` output does not show the key.
pub fn attachment_pointer(data: &[u8]) -> bool {
    let Ok(p) = AttachmentPointer::decode(data) else { return false };
    assert_eq!(&p.encode()[..], data, "accepted pointer does not re-encode to its input");
    assert!(data.len() <= MAX_POINTER_BYTES);
    assert!(p.size() <= MAX_ATTACHMENT_BYTES);
    assert!(!p.content_type().is_empty());
    if let Some(name) = p.file_name() {
        assert!(!name.contains(['/', '\\']) && name != "." && name != "..", "unsafe file name {name:?}");
    }
    let again = AttachmentPointer::decode(&p.encode()).expect("re-decode");
    assert_eq!(again, p);
    // The Debug output must not depend on the key (it may equal the digest, so searching
    // the output for the key's bytes is not enough).
    let mut other = p.encode();
    other[2] ^= 0x01;
    let other = AttachmentPointer::decode(&other).expect("another key");
    assert_eq!(format!("{p:?}"), format!("{other:?}"), "Debug shows the key");
    true
}

/// `attachment_stream`: see the module documentation. Returns whether the stream was
/// decrypted and finished (decrypt mode) or the round trip ran (encrypt mode).
pub fn attachment_stream(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else { return false };
    if mode & 1 == 1 {
        return encrypt_round_trip(rest);
    }
    let f = get();
    let b = if mode & 2 == 0 { &f.small } else { &f.multi };
    let which = (mode >> 2) % 3;
    let pointer = [&b.pointer, &b.wrong_digest, &b.wrong_key][usize::from(which)];
    DecryptRun::new(b, pointer, which).run(rest)
}

/// The state of one decrypt script.
struct DecryptRun<'a> {
    b: &'a Blob,
    d: Decryptor,
    /// The pointer is the genuine one.
    genuine_pointer: bool,
    /// The pointer's key opens the blob.
    right_key: bool,
    /// Some accepted update held bytes other than the blob's at that position.
    tainted: bool,
    released: Vec<u8>,
    finished: bool,
}

impl<'a> DecryptRun<'a> {
    fn new(b: &'a Blob, pointer: &AttachmentPointer, which: u8) -> Self {
        DecryptRun {
            b,
            d: Decryptor::new(pointer),
            genuine_pointer: which == 0,
            right_key: which != 2,
            tainted: false,
            released: Vec::new(),
            finished: false,
        }
    }

    fn pos(&self) -> usize {
        self.d.received() as usize
    }

    fn genuine(&self, from: usize, n: usize) -> &'a [u8] {
        let blob = &self.b.blob;
        let from = from.min(blob.len());
        &blob[from..(from + n).min(blob.len())]
    }

    fn run(mut self, mut input: &[u8]) -> bool {
        let mut finished_in_script = false;
        for _ in 0..MAX_OPS {
            let Some((o, rest)) = input.split_first_chunk::<3>() else { break };
            input = rest;
            let arg = u16::from_be_bytes([o[1], o[2]]);
            let pos = self.pos();
            let chunk: Vec<u8> = match o[0] & 7 {
                FLIP => {
                    let mut c = self.genuine(pos, usize::from(arg & 0xff) + 1).to_vec();
                    if !c.is_empty() {
                        let at = usize::from(arg >> 8) % c.len();
                        c[at] ^= 1 << (o[0] >> 5);
                    }
                    c
                }
                RAW => {
                    let n = (usize::from(arg) % 64).min(input.len());
                    let (c, rest) = input.split_at(n);
                    input = rest;
                    c.to_vec()
                }
                TRAILING => {
                    let mut c = self.genuine(pos, self.b.blob.len()).to_vec();
                    c.extend(std::iter::repeat_n(o[1], 1 + usize::from(arg) % 4));
                    c
                }
                FINISH => {
                    finished_in_script |= self.finish();
                    continue;
                }
                MOVED => {
                    let from = usize::from(arg) % self.b.blob.len();
                    self.genuine(from, self.b.segment_size as usize + SEGMENT_TAG_BYTES).to_vec()
                }
                _ => self.genuine(pos, usize::from(arg)).to_vec(),
            };
            self.update(&chunk);
        }
        // No refusal may have left a mark: the genuine remainder is still accepted.
        if !self.finished && self.right_key && !self.tainted {
            let rest = self.genuine(self.pos(), self.b.blob.len()).to_vec();
            self.update(&rest);
            assert_eq!(self.pos(), self.b.blob.len());
            assert_eq!(self.finish(), self.genuine_pointer);
            assert_eq!(self.released, self.b.plaintext, "the genuine blob decrypted to other bytes");
        }
        finished_in_script
    }

    fn update(&mut self, chunk: &[u8]) {
        let pos = self.pos();
        let header = self.d.header().cloned();
        let is_genuine = self.genuine(pos, chunk.len()) == chunk && pos + chunk.len() <= self.b.blob.len();
        match self.d.update(chunk) {
            Ok(pt) => {
                assert!(!self.finished, "update accepted after finish");
                assert!(self.right_key || self.d.header().is_none(), "a header accepted under a wrong key");
                assert_eq!(self.pos(), pos + chunk.len(), "received() does not count the accepted bytes");
                self.tainted |= !is_genuine;
                self.released.extend_from_slice(&pt);
                assert!(
                    self.b.plaintext.starts_with(&self.released),
                    "released plaintext is not a prefix of the genuine plaintext"
                );
            }
            Err(e) => {
                assert_eq!(self.pos(), pos, "refused update ({e:?}) changed received()");
                assert_eq!(self.d.header().cloned(), header, "refused update ({e:?}) changed the header");
                if self.finished {
                    assert_eq!(e, AttachmentError::Finished);
                } else {
                    assert!(!(is_genuine && self.right_key && !self.tainted), "genuine bytes at {pos} refused: {e:?}");
                }
            }
        }
    }

    /// Calls `finish`; returns whether it succeeded.
    fn finish(&mut self) -> bool {
        let pos = self.pos();
        let complete = pos == self.b.blob.len();
        match self.d.finish() {
            Ok(()) => {
                assert!(!self.finished, "finish succeeded twice");
                assert!(
                    self.genuine_pointer && !self.tainted && complete,
                    "finish accepted a blob that is not the genuine one"
                );
                assert_eq!(self.released, self.b.plaintext, "finished with other plaintext");
                self.finished = true;
                assert_eq!(self.d.update(&[]), Err(AttachmentError::Finished));
                true
            }
            Err(e) => {
                assert_eq!(self.pos(), pos, "refused finish ({e:?}) changed received()");
                assert!(
                    self.finished || !(self.genuine_pointer && !self.tainted && complete),
                    "the genuine blob was refused at finish: {e:?}"
                );
                false
            }
        }
    }
}

/// The encrypt mode of `attachment_stream`.
fn encrypt_round_trip(data: &[u8]) -> bool {
    let Some((head, mut rest)) = data.split_first_chunk::<4>() else { return false };
    let size = usize::from(u16::from_be_bytes([head[0], head[1]])) % MAX_ENCRYPT_BYTES;
    let segment_size = MIN_SEGMENT_SIZE + 64 * u32::from(head[2]);
    let flags = head[3];
    let content_type =
        ["application/pdf", "audio/ogg", "image/jpeg", "text/plain; charset=utf-8"][usize::from(flags & 3)];
    let name = (flags & 4 != 0).then_some("voice note 1.ogg");
    let plaintext = plaintext(size, flags);
    let mut chunks = Vec::new();
    while let Some((c, r)) = rest.split_first_chunk::<2>() {
        chunks.push(u16::from_be_bytes(*c));
        rest = r;
        if chunks.len() == MAX_OPS {
            break;
        }
    }

    let mut e = Encryptor::from_parts(
        AttachmentKey::from_bytes(KEY),
        NONCE_PREFIX,
        size as u64,
        segment_size,
        content_type,
        name,
    )
    .expect("from_parts with valid arguments");
    let mut blob = Vec::new();
    let mut at = 0;
    for &c in &chunks {
        if c & 0x8000 != 0 && at < size {
            let early = e.finish_step();
            assert!(
                matches!(early, Err(AttachmentError::SizeMismatch { .. })),
                "finish_step before the end: {early:?}"
            );
        }
        let n = usize::from(c & 0x7fff);
        if at + n > size {
            let over: Vec<u8> = plaintext[at..].iter().copied().chain(std::iter::repeat_n(0, at + n - size)).collect();
            assert!(
                matches!(e.update(&over), Err(AttachmentError::TooMuchInput { .. })),
                "more plaintext than declared was not refused"
            );
            continue;
        }
        blob.extend_from_slice(&e.update(&plaintext[at..at + n]).expect("update within the declared size"));
        at += n;
    }
    blob.extend_from_slice(&e.update(&plaintext[at..]).expect("update of the rest"));
    let mut pointer = None;
    let mut steps = 0;
    while pointer.is_none() {
        match e.finish_step().expect("finish_step") {
            FinishStep::Ciphertext(bytes) => blob.extend_from_slice(&bytes),
            FinishStep::Done(p) => pointer = Some(p),
        }
        steps += 1;
        assert!(steps <= 2 + padded_len(size as u64) as usize / segment_size as usize, "finish_step does not end");
    }
    let pointer = pointer.expect("pointer");
    assert!(matches!(e.finish_step(), Err(AttachmentError::Finished)));
    assert!(matches!(e.update(&[]), Err(AttachmentError::Finished)));

    let (reference, ref_pointer) = encrypt_once(&plaintext, segment_size, content_type, name);
    assert!(blob == reference, "the chunking changed the blob");
    assert_eq!(pointer, ref_pointer, "the chunking changed the pointer");
    let header = AttachmentHeader::decode(&blob[..HEADER_BYTES]).expect("own header");
    assert_eq!(header.padded_len(), padded_len(size as u64));
    assert_eq!(blob.len() as u64, header.ciphertext_len(), "blob length is not the header's");
    assert_eq!(pointer.size(), size as u64);
    assert_eq!(AttachmentPointer::decode(&pointer.encode()).expect("own pointer"), pointer);

    // Decrypt: chunked like the plaintext was, in one piece, and segment by segment.
    let mut d = Decryptor::new(&pointer);
    let mut out = Vec::new();
    let mut at = 0;
    for &c in &chunks {
        let n = usize::from(c & 0x7fff).min(blob.len() - at);
        out.extend_from_slice(&d.update(&blob[at..at + n]).expect("decrypt a genuine chunk"));
        at += n;
    }
    out.extend_from_slice(&d.update(&blob[at..]).expect("decrypt the rest"));
    d.finish().expect("finish a genuine blob");
    assert!(out == plaintext, "round trip changed the plaintext");
    assert!(decrypt(&pointer, &blob).expect("one-shot decrypt")[..] == plaintext[..]);
    let mut joined = Vec::new();
    for i in 0..header.segment_count() {
        let r = header.segment_range(i).expect("range");
        let seg = decrypt_segment(&pointer, &blob[..HEADER_BYTES], i, &blob[r.start as usize..r.end as usize])
            .expect("decrypt_segment");
        joined.extend_from_slice(&seg);
    }
    assert!(joined == plaintext, "random access gave other bytes");
    true
}
