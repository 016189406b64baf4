//! Rust baseline for `scripts/bench-bindings.sh`: times the same two flows the Kotlin and
//! Python benchmarks time, through this crate's Rust API (the functions uniffi exports),
//! so the difference to the foreign numbers is the FFI crossing (argument lowering,
//! `Vec<u8>` copies, JNA/ctypes call overhead).
//!
//! ```sh
//! cargo run --release -p gochat-e2ee-ffi --example ffi_baseline [-- ITERS SETUPS]
//! ```
//! Prints `rust encrypt_decrypt_100B <ns per round trip>`,
//! `rust group_encrypt_decrypt_100B <ns>` (one member encrypts to a two-member group, the
//! other decrypts) and `rust session_setup <ns per setup>` lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use gochat_e2ee_ffi::{Device, GroupMemberRecord};

/// Nanoseconds per call of `f`: the best of 3 runs of `n` calls (a shared machine's load
/// only ever adds time), after `n / 10` warm-up calls.
fn best_of_3(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

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
    let ns = best_of_3(iters, round);
    println!("rust encrypt_decrypt_100B {ns:.0}");

    // One call: an encrypt alone (for the per-call figures of the foreign benchmarks).
    let ns = best_of_3(iters, || {
        black_box(alice.encrypt("bob".into(), msg.clone()).unwrap());
    });
    println!("rust encrypt_100B {ns:.0}");

    // Groups: Alice and Bob in a group (pairwise session above), every key delivered.
    let member =
        |d: &Device, name: &str| GroupMemberRecord { name: name.into(), identity_key: d.identity_key(), admin: false };
    let created = alice.group_create(vec![member(&bob, "bob")], 1_700_000_000).unwrap();
    let joined = bob.group_join(created.welcome.clone().unwrap(), 1_700_000_000).unwrap();
    for o in created.outgoing {
        let _ = bob.receive_control("alice".into(), o.message).unwrap();
    }
    for o in joined.outgoing {
        let _ = alice.receive_control("bob".into(), o.message).unwrap();
    }
    let gid = created.group_id;
    let first = alice.group_encrypt(gid.clone(), b"hello".to_vec(), 1_700_000_000).unwrap();
    for o in first.outgoing {
        let _ = bob.receive_control("alice".into(), o.message).unwrap();
    }
    let _ = bob.group_decrypt("alice".into(), first.message).unwrap();
    let group_round = || {
        let sent = alice.group_encrypt(gid.clone(), msg.clone(), 1_700_000_000).unwrap();
        // A rotation (every 1,000 messages by default) distributes the new sender key.
        for o in sent.outgoing {
            let _ = bob.receive_control("alice".into(), o.message).unwrap();
        }
        black_box(bob.group_decrypt("alice".into(), sent.message).unwrap().plaintext);
    };
    let ns = best_of_3(iters / 4, group_round);
    println!("rust group_encrypt_decrypt_100B {ns:.0}");

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
    let ns = (0..3)
        .map(|_| (0..setups).map(|_| setup()).sum::<u128>() as f64 / f64::from(setups))
        .fold(f64::INFINITY, f64::min);
    println!("rust session_setup {ns:.0}");
}
