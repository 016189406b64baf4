//! Peak memory of a streamed attachment (issue 10): shows that encrypting and
//! decrypting a file costs the same memory whatever its size.
//!
//! Run one process per size (the peak, `VmHWM`, is per process):
//! `cargo run --release -p gochat-e2ee-benches --example attachment_memory -- 1GiB`
//! (sizes: a number of bytes, or with a `KiB`, `MiB` or `GiB` suffix).
//!
//! 1. Encrypt: generated plaintext, 1 MiB at a time, through an `EncryptingWriter` into
//!    a sink that hashes and discards the blob.
//! 2. Decrypt: a `DecryptingReader` reads the same blob, regenerated on the fly by a
//!    second `Encryptor` from the same seed (so the same key and nonce prefix), chunk by
//!    chunk: neither the plaintext nor the blob is ever held in memory or on disk.
//!    The decrypted plaintext's SHA-256 is checked against the generated plaintext's.
//!
//! Prints `VmHWM` (peak resident set) and `VmRSS` from `/proc/self/status` after each
//! phase, and a summary line `size=… peak_kib=… encrypt_mib_s=… decrypt_mib_s=…`.
//! This is a measurement tool for `docs/benchmarks.md`, not a test.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Read, Write};
use std::time::Instant;

use gochat_e2ee::attachment::{AttachmentPointer, DecryptingReader, EncryptingWriter, Encryptor, FinishStep};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const CHUNK: usize = 1 << 20;
const SEED: u64 = 0x6174_7461_6368;
const CONTENT_TYPE: &str = "application/octet-stream";

/// Deterministic plaintext (xorshift64*), any length, in bounded memory.
struct Plaintext {
    state: u64,
    left: u64,
}

impl Plaintext {
    fn new(len: u64) -> Self {
        Plaintext { state: 0x9E37_79B9_7F4A_7C15, left: len }
    }

    /// Fills the front of `buf` with the next bytes; returns how many (0 at the end).
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for word in buf[..n].chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let v = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        self.left -= n as u64;
        n
    }
}

/// Hashes and counts what is written, keeps nothing.
struct HashSink {
    hasher: Sha256,
    len: u64,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The blob, produced on demand by an `Encryptor` fed from a `Plaintext`.
struct BlobSource {
    plain: Plaintext,
    encryptor: Encryptor,
    chunk: Vec<u8>,
    ready: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for BlobSource {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.ready.len() {
            if self.done {
                return Ok(0);
            }
            let n = self.plain.fill(&mut self.chunk);
            self.ready = if n > 0 {
                self.encryptor.update(&self.chunk[..n]).map_err(io::Error::other)?
            } else {
                match self.encryptor.finish_step().map_err(io::Error::other)? {
                    FinishStep::Ciphertext(bytes) => bytes,
                    FinishStep::Done(_) => {
                        self.done = true;
                        Vec::new()
                    }
                }
            };
            self.pos = 0;
        }
        let n = dst.len().min(self.ready.len() - self.pos);
        dst[..n].copy_from_slice(&self.ready[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().unwrap()
}

fn report(phase: &str) -> u64 {
    let hwm = status("VmHWM:");
    println!("{phase:<10} VmHWM {hwm:>8} KiB   VmRSS {:>8} KiB", status("VmRSS:"));
    hwm
}

fn parse_size(arg: &str) -> u64 {
    let (digits, unit) = match arg.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => arg.split_at(i),
        None => (arg, ""),
    };
    let shift = match unit {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => panic!("size: a number with an optional KiB, MiB or GiB suffix, not {arg:?}"),
    };
    digits.parse::<u64>().expect("size") << shift
}

fn encryptor(size: u64) -> Encryptor {
    Encryptor::new(size, CONTENT_TYPE, None, &mut ChaCha20Rng::seed_from_u64(SEED)).unwrap()
}

fn encrypt(size: u64) -> (AttachmentPointer, [u8; 32], u64) {
    let mut plain = Plaintext::new(size);
    let mut chunk = vec![0u8; CHUNK];
    let mut plain_hash = Sha256::new();
    let sink = HashSink { hasher: Sha256::new(), len: 0 };
    let mut writer = EncryptingWriter::new(sink, encryptor(size));
    loop {
        let n = plain.fill(&mut chunk);
        if n == 0 {
            break;
        }
        plain_hash.update(&chunk[..n]);
        writer.write_all(&chunk[..n]).unwrap();
    }
    let (sink, pointer) = writer.finish().unwrap();
    let blob_digest: [u8; 32] = sink.hasher.finalize().into();
    assert_eq!(&blob_digest, pointer.digest(), "the pointer names the blob written");
    (pointer, plain_hash.finalize().into(), sink.len)
}

fn decrypt(size: u64, pointer: &AttachmentPointer) -> [u8; 32] {
    let source = BlobSource {
        plain: Plaintext::new(size),
        encryptor: encryptor(size),
        chunk: vec![0u8; CHUNK],
        ready: Vec::new(),
        pos: 0,
        done: false,
    };
    let mut reader = DecryptingReader::new(source, pointer);
    let mut buf = vec![0u8; CHUNK];
    let mut hash = Sha256::new();
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        len += n as u64;
    }
    assert!(reader.is_complete());
    assert_eq!(len, size);
    hash.finalize().into()
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "16MiB".to_owned());
    let size = parse_size(&arg);
    let mib = size as f64 / f64::from(1u32 << 20);
    report("start");

    let t = Instant::now();
    let (pointer, plain_digest, blob_len) = encrypt(size);
    let enc_s = t.elapsed().as_secs_f64();
    report("encrypted");

    let t = Instant::now();
    let decrypted = decrypt(size, &pointer);
    let dec_s = t.elapsed().as_secs_f64();
    assert_eq!(decrypted, plain_digest, "decrypted plaintext differs");
    let peak = report("decrypted");

    // The decrypt phase also runs the second encryptor that regenerates the blob, so its
    // rate is a lower bound of decryption alone.
    println!(
        "size={arg} plaintext_bytes={size} blob_bytes={blob_len} peak_kib={peak} encrypt_s={enc_s:.2} \
         encrypt_mib_s={:.0} decrypt_with_regeneration_s={dec_s:.2} decrypt_with_regeneration_mib_s={:.0}",
        mib / enc_s,
        mib / dec_s
    );
}
