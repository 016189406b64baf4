//! A `StoredDevice` over a `JournalBackend` whose host (the web's IndexedDB layer) stores
//! the journal itself: when the host fails to store a commit, it puts the disk's rows back
//! (`JournalBackend::replace_with`) and the device reloads (`reload_before_next`), so the
//! undone ratchet step is never used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use gochat_e2ee::{Device, PreKeyBundle};
use gochat_e2ee_store::{Argon2Params, Journal, JournalBackend, PlatformKey, StoreError, StoredDevice, Unlock};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000;

/// What the host keeps: meta rows and record rows (generation, value or tombstone).
#[derive(Default, Clone)]
struct Disk {
    meta: BTreeMap<String, Vec<u8>>,
    records: BTreeMap<[u8; 32], (u64, Option<Vec<u8>>)>,
}

impl Disk {
    fn new() -> Self {
        let mut d = Disk::default();
        d.meta.insert("schema_version".into(), 1u32.to_be_bytes().to_vec());
        d
    }
    fn store(&mut self, j: Journal) {
        self.meta.extend(j.meta);
        self.records.extend(j.records);
    }
    fn load(&self) -> JournalBackend {
        JournalBackend::load(
            self.meta.clone(),
            self.records.iter().map(|(k, (g, v))| (*k, *g, v.clone())).collect::<Vec<_>>(),
        )
        .unwrap()
    }
}

#[test]
fn a_failed_host_write_is_undone_and_the_device_reloads_before_its_next_operation() {
    let mut r = ChaCha20Rng::seed_from_u64(1);
    let mut disk = Disk::new();
    let host = disk.load();
    let unlock = Unlock::Key(PlatformKey::new([7; 32]));
    let mut alice = StoredDevice::create(
        Box::new(host.handle()),
        &unlock,
        Argon2Params::DEFAULT,
        Device::new("alice", NOW, &mut r),
        &mut r,
    )
    .unwrap();
    disk.store(host.take_journal().unwrap());
    let mut bob = Device::new("bob", NOW, &mut r);
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let _ = alice.transact(&mut r, |d, r| d.initiate("bob", &bundle, r)).unwrap();
    let hello = alice.transact(&mut r, |d, _| d.encrypt("bob", b"hello")).unwrap();
    disk.store(host.take_journal().unwrap());
    assert_eq!(bob.decrypt("alice", &hello, &mut r).unwrap().plaintext, b"hello");

    // The decrypt commits into the journal, but the host fails to store it.
    let stored = alice.generation();
    let m = bob.encrypt("alice", b"lost write").unwrap();
    let got = alice.decrypt("bob", &m, &mut r).unwrap();
    assert!(!got.redelivered);
    host.poison();
    host.replace_with(disk.load()).unwrap();

    assert!(
        matches!(alice.sync_now(), Err(StoreError::RolledBack { .. })),
        "without the reload the lost commit looks like a rollback"
    );
    alice.reload_before_next(stored);
    let again = alice.decrypt("bob", &m, &mut r).unwrap();
    assert!(!again.redelivered, "the undone step is gone: a first delivery again");
    assert_eq!(again.decrypted.plaintext, b"lost write");
    disk.store(host.take_journal().unwrap());

    // The disk and a fresh handle agree with the device.
    let mut reopened = StoredDevice::open(Box::new(disk.load()), &unlock).unwrap();
    let next = reopened.transact(&mut r, |d, _| d.encrypt("bob", b"after")).unwrap();
    assert_eq!(bob.decrypt("alice", &next, &mut r).unwrap().plaintext, b"after");
}

#[test]
fn a_reload_still_refuses_a_disk_older_than_the_last_stored_commit() {
    let mut r = ChaCha20Rng::seed_from_u64(2);
    let mut disk = Disk::new();
    let host = disk.load();
    let unlock = Unlock::Key(PlatformKey::new([7; 32]));
    let mut alice = StoredDevice::create(
        Box::new(host.handle()),
        &unlock,
        Argon2Params::DEFAULT,
        Device::new("alice", NOW, &mut r),
        &mut r,
    )
    .unwrap();
    disk.store(host.take_journal().unwrap());
    let old = disk.clone();
    alice
        .transact(&mut r, |d, r| d.account_mut().generate_one_time_prekeys(2, r).map(|_| ()).map_err(Into::into))
        .unwrap();
    disk.store(host.take_journal().unwrap());
    let stored = alice.generation();
    // The host "reloads" an older copy than what it stored: still a rollback.
    host.replace_with(old.load()).unwrap();
    alice.reload_before_next(stored);
    assert!(matches!(alice.sync_now(), Err(StoreError::RolledBack { .. })));
}
