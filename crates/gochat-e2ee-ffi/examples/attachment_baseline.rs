//! Rust baseline for the attachment part of `scripts/bench-bindings.sh`: streaming
//! encryption and decryption throughput through this crate's Rust API (the
//! `AttachmentEncryptor` / `AttachmentDecryptor` objects uniffi exports, so locking and
//! the `Vec<u8>` copies of every chunk are included), the same flows as
//! `bindings/kotlin/src/test/kotlin/gov/gochat/e2ee/AttachmentBench.kt`.
//!
//! ```sh
//! cargo run --release -p gochat-e2ee-ffi --example attachment_baseline [-- REPEATS]
//! ```
//! For 1 MiB and 100 MiB files in 1 MiB chunks (64 KiB segments), prints
//! `rust attachment_<encrypt|decrypt>_<size> <MB/s>` lines (MB = 10^6 plaintext bytes;
//! the best of REPEATS runs, default 5, after one warm-up run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use gochat_e2ee_ffi::{AttachmentDecryptor, AttachmentEncryptor};

const CHUNK: usize = 1 << 20;

/// Encrypts `chunks` chunks of 1 MiB: the blob (in the chunks the encryptor returned),
/// the pointer and the seconds taken.
fn encrypt(chunk: &[u8], chunks: usize) -> (Vec<Vec<u8>>, Vec<u8>, f64) {
    let t = Instant::now();
    let e = AttachmentEncryptor::new((chunk.len() * chunks) as u64, "video/mp4".into(), None).unwrap();
    let mut blob = Vec::with_capacity(chunks + 2);
    for _ in 0..chunks {
        blob.push(e.update(chunk.to_vec()).unwrap());
    }
    loop {
        let step = e.finish_step().unwrap();
        if let Some(pointer) = step.pointer {
            return (blob, pointer, t.elapsed().as_secs_f64());
        }
        blob.push(step.ciphertext);
    }
}

/// Decrypts `pieces` (the blob cut into 1 MiB pieces); the seconds taken.
fn decrypt(pointer: &[u8], pieces: &[Vec<u8>]) -> f64 {
    let t = Instant::now();
    let d = AttachmentDecryptor::new(pointer.to_vec()).unwrap();
    for p in pieces {
        black_box(d.update(p.clone()).unwrap());
    }
    d.finish().unwrap();
    t.elapsed().as_secs_f64()
}

fn main() {
    let repeats: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 + 7) as u8).collect();
    for (name, chunks) in [("1MiB", 1usize), ("100MiB", 100)] {
        let mb = (CHUNK * chunks) as f64 / 1e6;
        let (mut best_enc, mut best_dec) = (f64::MAX, f64::MAX);
        for run in 0..=repeats {
            // A small file is timed over many rounds so the clock resolution does not matter.
            let rounds = if chunks == 1 { 20 } else { 1 };
            let mut enc = 0.0;
            let mut dec = 0.0;
            for _ in 0..rounds {
                let (blob, pointer, secs) = encrypt(&chunk, chunks);
                enc += secs;
                let joined: Vec<u8> = blob.concat();
                let pieces: Vec<Vec<u8>> = joined.chunks(CHUNK).map(<[u8]>::to_vec).collect();
                dec += decrypt(&pointer, &pieces);
            }
            if run > 0 {
                best_enc = best_enc.min(enc / f64::from(rounds));
                best_dec = best_dec.min(dec / f64::from(rounds));
            }
        }
        println!("rust attachment_encrypt_{name} {:.0}", mb / best_enc);
        println!("rust attachment_decrypt_{name} {:.0}", mb / best_dec);
    }
}
