//! Encrypted attachments (issue 10): streaming encryption and decryption throughput,
//! next to raw AES-256-GCM over the same bytes and SHA-256 alone.
//!
//! Run: `cargo bench -p gochat-e2ee-benches --bench attachments`.
//! One group per operation and size, `attachment_<encrypt|decrypt>_<size>/<implementation>`,
//! every function over the same plaintext length (`Throughput::Bytes`, so Criterion
//! prints MiB/s):
//!
//! - `streaming`: `Encryptor::update` with 1 MiB chunks, then `finish_step` until the
//!   pointer; or `Decryptor::update` with 1 MiB chunks of the blob, then `finish` (tags,
//!   padding and SHA-256 digest checked). This is what an app pays.
//! - `raw_aes_gcm_segments`: `Aes256Gcm` (the same crate and version as the core) over
//!   the same 64 KiB segmentation, nonces and associated data, into preallocated buffers
//!   (encryption in place, decryption out of place): the floor, no digest.
//! - `raw_aes_gcm_one_shot`: one AES-256-GCM call over the whole buffer.
//! - `sha256`: SHA-256 alone over the blob's bytes (the digest the pointer carries),
//!   to show where the rest of the time goes.
//!
//! The sizes are exact Padmé buckets (no padding), so every function handles the same
//! plaintext bytes. The sample counts are small (10, flat sampling) so that the 100 MiB
//! groups finish in about a minute on a 2-core machine.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use aes_gcm::Aes256Gcm;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use gochat_e2ee::attachment::{
    padded_len, AttachmentPointer, Decryptor, Encryptor, FinishStep, DEFAULT_SEGMENT_SIZE, HEADER_BYTES,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;
/// The chunk an app hands to `update` (one read from a file or the network).
const CHUNK: usize = MIB;
const SEG: usize = DEFAULT_SEGMENT_SIZE as usize;
const TAG: usize = 16;
const SIZES: [(usize, &str); 2] = [(MIB, "1MiB"), (100 * MIB, "100MiB")];

fn plaintext(len: usize) -> Vec<u8> {
    // Any bytes do (AES-GCM and SHA-256 are data-independent); a pattern is cheap.
    (0..len).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect()
}

fn nonce(i: usize) -> Nonce<Aes256Gcm> {
    let mut n = [0u8; 12];
    n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
    Nonce::<Aes256Gcm>::from(n)
}

/// The streaming encryptor, chunk by chunk, returning the blob's length (the blob bytes
/// are dropped as they are produced, as an upload would).
fn stream_encrypt(data: &[u8], rng: &mut ChaCha20Rng) -> (usize, AttachmentPointer) {
    let mut e = Encryptor::new(data.len() as u64, "application/octet-stream", None, rng).unwrap();
    let mut len = 0;
    for chunk in data.chunks(CHUNK) {
        len += black_box(e.update(chunk).unwrap()).len();
    }
    loop {
        match e.finish_step().unwrap() {
            FinishStep::Ciphertext(bytes) => len += black_box(bytes).len(),
            FinishStep::Done(pointer) => return (len, pointer),
        }
    }
}

/// The whole blob in memory (outside the timing, for the decryption benchmarks).
fn blob_of(data: &[u8], rng: &mut ChaCha20Rng) -> (Vec<u8>, AttachmentPointer) {
    let mut e = Encryptor::new(data.len() as u64, "application/octet-stream", None, rng).unwrap();
    let mut blob = Vec::with_capacity(data.len() + data.len() / 1000 + HEADER_BYTES + TAG);
    for chunk in data.chunks(CHUNK) {
        blob.extend_from_slice(&e.update(chunk).unwrap());
    }
    let (tail, pointer) = e.finish().unwrap();
    blob.extend_from_slice(&tail);
    (blob, pointer)
}

fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, len: usize) {
    g.throughput(Throughput::Bytes(len as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(if len > 10 * MIB { 8 } else { 3 }));
}

fn encrypt(c: &mut Criterion) {
    let key = [7u8; 32];
    let aad = [0x40u8; HEADER_BYTES];
    let cipher = Aes256Gcm::new(&key.into());
    for (len, name) in SIZES {
        assert_eq!(padded_len(len as u64), len as u64, "{name} must be an exact padding bucket");
        let data = plaintext(len);
        let mut g = c.benchmark_group(format!("attachment_encrypt_{name}"));
        configure(&mut g, len);

        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (blob_len, _) = stream_encrypt(&data, &mut rng);
        println!("[size] {name}: plaintext {len} bytes, blob {blob_len} bytes");
        g.bench_function("streaming", |b| b.iter(|| stream_encrypt(black_box(&data), &mut rng).0));

        let mut buf = data.clone();
        let mut tags = vec![Tag::<Aes256Gcm>::default(); len.div_ceil(SEG)];
        g.bench_function("raw_aes_gcm_segments", |b| {
            b.iter(|| {
                for (i, (seg, tag)) in buf.chunks_mut(SEG).zip(tags.iter_mut()).enumerate() {
                    *tag = cipher.encrypt_inout_detached(&nonce(i), &aad, seg.into()).unwrap();
                }
                black_box(&tags);
            })
        });
        g.bench_function("raw_aes_gcm_one_shot", |b| {
            b.iter(|| black_box(cipher.encrypt_inout_detached(&nonce(0), &aad, buf.as_mut_slice().into()).unwrap()))
        });
        g.bench_function("sha256", |b| b.iter(|| black_box(Sha256::digest(black_box(&buf)))));
        g.finish();
    }
}

fn decrypt(c: &mut Criterion) {
    let key = [7u8; 32];
    let aad = [0x40u8; HEADER_BYTES];
    let cipher = Aes256Gcm::new(&key.into());
    for (len, name) in SIZES {
        let data = plaintext(len);
        let mut g = c.benchmark_group(format!("attachment_decrypt_{name}"));
        configure(&mut g, len);

        let (blob, pointer) = blob_of(&data, &mut ChaCha20Rng::seed_from_u64(2));
        g.bench_function("streaming", |b| {
            b.iter(|| {
                let mut d = Decryptor::new(&pointer);
                let mut out = 0;
                for chunk in blob.chunks(CHUNK) {
                    out += black_box(d.update(chunk).unwrap()).len();
                }
                d.finish().unwrap();
                assert_eq!(out, len);
            })
        });

        // The same segmentation: sealed segments laid out as in a blob, opened out of
        // place into a preallocated plaintext buffer.
        let mut sealed = data.clone();
        let tags: Vec<Tag<Aes256Gcm>> = sealed
            .chunks_mut(SEG)
            .enumerate()
            .map(|(i, seg)| cipher.encrypt_inout_detached(&nonce(i), &aad, seg.into()).unwrap())
            .collect();
        let mut out = vec![0u8; len];
        g.bench_function("raw_aes_gcm_segments", |b| {
            b.iter(|| {
                for (i, ((body, tag), dst)) in sealed.chunks(SEG).zip(&tags).zip(out.chunks_mut(SEG)).enumerate() {
                    let io = InOutBuf::new(body, dst).unwrap();
                    cipher.decrypt_inout_detached(&nonce(i), &aad, io, tag).unwrap();
                }
                black_box(&out);
            })
        });
        let mut whole = data.clone();
        let whole_tag = cipher.encrypt_inout_detached(&nonce(0), &aad, whole.as_mut_slice().into()).unwrap();
        g.bench_function("raw_aes_gcm_one_shot", |b| {
            b.iter(|| {
                let io = InOutBuf::new(whole.as_slice(), out.as_mut_slice()).unwrap();
                cipher.decrypt_inout_detached(&nonce(0), &aad, io, &whole_tag).unwrap();
                black_box(&out);
            })
        });
        g.bench_function("sha256", |b| b.iter(|| black_box(Sha256::digest(black_box(&blob)))));
        g.finish();
    }
}

criterion_group!(benches, encrypt, decrypt);
criterion_main!(benches);
