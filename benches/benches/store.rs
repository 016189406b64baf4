//! The store (issue 12): what a durable decrypt costs on top of the core, on SQLite
//! (Durability Full and Normal) and in memory, at 10 and 1,000 stored sessions; startup
//! (`StoredDevice::open`) with 1,000 sessions and 100 groups; Argon2id unlock at DEFAULT.
//!
//! Run: `cargo bench -p gochat-e2ee-benches --bench store -- --warm-up-time 1 --measurement-time 3`.
//! A measured decrypt is `StoredDevice::decrypt` + `ack` of a fresh message on a warm
//! chain (the message is made outside the timing), which is what an app does per message.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gochat_e2ee::{Device, PreKeyBundle};
use gochat_e2ee_store::{
    Argon2Params, Backend, DataKey, Durability, Keyslot, MemoryBackend, Passcode, PlatformKey, SqliteBackend, StoreId,
    StoredDevice, Unlock,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000;
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn key() -> Unlock {
    Unlock::Key(PlatformKey::new([7; 32]))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gochat-store-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite")
}

/// Bob with `sessions` sessions (one of them with Alice, warm) and `groups` groups.
fn bob(sessions: usize, groups: usize, r: &mut ChaCha20Rng) -> (Device, Device) {
    let mut alice = Device::new("alice", NOW, r);
    let mut bob = Device::new("bob", NOW, r);
    bob.account_mut().generate_one_time_prekeys(2, r).unwrap();
    let mut hub = Device::new("hub", NOW, r);
    for i in 1..sessions {
        let bundle = PreKeyBundle::from_bytes(&hub.next_bundle().unwrap().to_bytes()).unwrap();
        let _ = bob.initiate(&format!("peer-{i}"), &bundle, r).unwrap();
    }
    for g in 0..groups {
        let _ = g;
        let _ = bob.group_create(&[], NOW, r).unwrap();
    }
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let _ = alice.initiate("bob", &bundle, r).unwrap();
    let first = alice.encrypt("bob", b"hello").unwrap();
    let _ = bob.decrypt("alice", &first, r).unwrap();
    let reply = bob.encrypt("alice", b"hi").unwrap();
    let _ = alice.decrypt("bob", &reply, r).unwrap();
    (alice, bob)
}

fn decrypt(c: &mut Criterion) {
    for sessions in [10usize, 1_000] {
        for (name, backend) in
            [("sqlite-full", None), ("sqlite-normal", Some(Durability::Normal)), ("memory", Some(Durability::Full))]
        {
            let mut r = ChaCha20Rng::seed_from_u64(sessions as u64);
            let (mut alice, bob) = bob(sessions, 0, &mut r);
            let backend: Box<dyn Backend> = match (name, backend) {
                ("memory", _) => Box::new(MemoryBackend::new()),
                (_, d) => Box::new(
                    SqliteBackend::open(temp(&format!("{name}-{sessions}")), d.unwrap_or(Durability::Full)).unwrap(),
                ),
            };
            let mut stored = StoredDevice::create(backend, &key(), SMALL, bob, &mut r).unwrap();
            c.bench_function(&format!("store_decrypt/{name}/{sessions}_sessions"), |b| {
                b.iter_batched(
                    || alice.encrypt("bob", &[0x61; 100]).unwrap(),
                    |m| {
                        let rx = stored.decrypt("alice", &m, &mut r).unwrap();
                        stored.ack(&rx.digest).unwrap();
                        black_box(rx)
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
}

/// One decrypt committed durably, the ack not counted: `StoredDevice::decrypt` alone
/// (one transaction with its inbox entry); the kept results are acknowledged in bulk
/// (`ack_many`, untimed) so the inbox never fills.
fn decrypt_only(c: &mut Criterion) {
    for (name, durability) in [("sqlite-full", Durability::Full), ("sqlite-normal", Durability::Normal)] {
        for sessions in [10usize, 1_000] {
            let mut r = ChaCha20Rng::seed_from_u64(sessions as u64 + 11);
            let (mut alice, bob) = bob(sessions, 0, &mut r);
            let path = temp(&format!("only-{name}-{sessions}"));
            let backend = Box::new(SqliteBackend::open(path, durability).unwrap());
            let mut stored = StoredDevice::create(backend, &key(), SMALL, bob, &mut r).unwrap();
            c.bench_function(&format!("store_decrypt_only/{name}/{sessions}_sessions"), |b| {
                b.iter_custom(|n| {
                    let mut total = std::time::Duration::ZERO;
                    let mut kept = Vec::new();
                    for _ in 0..n {
                        let m = alice.encrypt("bob", &[0x61; 100]).unwrap();
                        let t = std::time::Instant::now();
                        let rx = stored.decrypt("alice", &m, &mut r).unwrap();
                        total += t.elapsed();
                        kept.push(rx.digest);
                        if kept.len() == 500 {
                            stored.ack_many(&kept).unwrap();
                            kept.clear();
                        }
                    }
                    stored.ack_many(&kept).unwrap();
                    total
                })
            });
        }
    }
}

/// A backlog of 100 messages made durable: `decrypt_batch` (one transaction) and then
/// `ack_many` (one more), so two commits (two fsyncs under `Full`) per 100 messages. The
/// figure is per batch; per message, divide by 100. The encrypts are not timed.
fn batch(c: &mut Criterion) {
    for (name, durability) in [("sqlite-full", Durability::Full), ("sqlite-normal", Durability::Normal)] {
        let mut r = ChaCha20Rng::seed_from_u64(7);
        let (mut alice, bob) = bob(1_000, 0, &mut r);
        let backend = Box::new(SqliteBackend::open(temp(&format!("batch-{name}")), durability).unwrap());
        let mut stored = StoredDevice::create(backend, &key(), SMALL, bob, &mut r).unwrap();
        c.bench_function(&format!("store_decrypt_batch_and_ack/{name}/100_messages"), |b| {
            b.iter_custom(|n| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..n {
                    let ms: Vec<Vec<u8>> = (0..100).map(|_| alice.encrypt("bob", &[0x61; 100]).unwrap()).collect();
                    let pairs: Vec<(&str, &[u8])> = ms.iter().map(|m| ("alice", m.as_slice())).collect();
                    let t = std::time::Instant::now();
                    let out = stored.decrypt_batch(&pairs, &mut r).unwrap();
                    let digests: Vec<[u8; 32]> = out.iter().map(|o| o.as_ref().unwrap().digest).collect();
                    assert_eq!(stored.ack_many(&digests).unwrap(), 100);
                    total += t.elapsed();
                    black_box(out);
                }
                total
            })
        });
    }
}

fn startup(c: &mut Criterion) {
    let mut r = ChaCha20Rng::seed_from_u64(3);
    let (_, bob) = bob(1_000, 100, &mut r);
    let path = temp("startup");
    drop(
        StoredDevice::create(
            Box::new(SqliteBackend::open(&path, Durability::Full).unwrap()),
            &key(),
            SMALL,
            bob,
            &mut r,
        )
        .unwrap(),
    );
    c.bench_function("store_open/sqlite/1000_sessions_100_groups", |b| {
        b.iter(|| {
            black_box(
                StoredDevice::open(Box::new(SqliteBackend::open(&path, Durability::Full).unwrap()), &key()).unwrap(),
            )
        })
    });
}

fn unlock(c: &mut Criterion) {
    let mut r = ChaCha20Rng::seed_from_u64(4);
    let passcode = Unlock::Passcode(Passcode::from_text("correct horse").unwrap());
    let slot =
        Keyslot::wrap(&DataKey::generate(&mut r), &passcode, Argon2Params::DEFAULT, StoreId::generate(&mut r), &mut r)
            .unwrap();
    let mut g = c.benchmark_group("store_unlock");
    g.sample_size(10);
    g.bench_function("argon2id_default", |b| b.iter(|| black_box(slot.unwrap(&passcode).unwrap())));
    g.finish();
}

criterion_group!(benches, decrypt, decrypt_only, batch, startup, unlock);
criterion_main!(benches);
