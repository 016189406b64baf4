//! Rust baseline for `scripts/bench-bindings.sh`: times the same two flows the Kotlin and
//! Python benchmarks time, through this crate's Rust API (the functions uniffi exports),
//! so the difference to the foreign numbers is the FFI crossing (argument lowering,
//! `Vec<u8>` copies, JNA/ctypes call overhead).
//!
//! ```sh
//! cargo run --release -p gochat-e2ee-ffi --example ffi_baseline [-- ITERS SETUPS]
//! ```
//! Prints `rust encrypt_decrypt_100B <ns per round trip>` and
//! `rust session_setup <ns per setup>` lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use gochat_e2ee_ffi::Device;

fn main() {
    let mut args = std::env::args().skip(1);
    let iters: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let setups: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);

    // Steady state: an answered session (so messages are ratchet messages, not prekey
    // messages), one sending chain, 100-byte message.
    let alice = Device::new("alice".into(), 1_700_000_000);
    let bob = Device::new("bob".into(), 1_700_000_000);
    let _ = alice.initiate("bob".into(), bob.next_bundle().unwrap()).unwrap();
    let first = alice.encrypt("bob".into(), b"hello".to_vec()).unwrap();
    let _ = bob.decrypt("alice".into(), first).unwrap();
    let reply = bob.encrypt("alice".into(), b"hi".to_vec()).unwrap();
    let _ = alice.decrypt("bob".into(), reply).unwrap();
    let msg = vec![0x42u8; 100];
    let round = || {
        let c = alice.encrypt("bob".into(), msg.clone()).unwrap();
        let p = bob.decrypt("alice".into(), c).unwrap().plaintext;
        black_box(p);
    };
    for _ in 0..iters / 10 {
        round();
    }
    let t = Instant::now();
    for _ in 0..iters {
        round();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
    println!("rust encrypt_decrypt_100B {ns:.0}");

    // Session setup: bundle -> initiate -> first encrypt -> responder decrypt.
    let setup = || {
        let a = Device::new("alice".into(), 1_700_000_000);
        let b = Device::new("bob".into(), 1_700_000_000);
        // Device creation is outside the timed part, as in the foreign benchmarks.
        let t = Instant::now();
        let bundle = b.next_bundle().unwrap();
        let _ = a.initiate("bob".into(), bundle).unwrap();
        let c = a.encrypt("bob".into(), msg.clone()).unwrap();
        black_box(b.decrypt("alice".into(), c).unwrap().plaintext);
        t.elapsed().as_nanos()
    };
    for _ in 0..setups / 10 {
        setup();
    }
    let total: u128 = (0..setups).map(|_| setup()).sum();
    println!("rust session_setup {:.0}", total as f64 / f64::from(setups));
}
