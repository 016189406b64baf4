//! The rollback anchor: a store whose file was replaced by an older copy is refused when
//! the app gives the generation it recorded (`open_at_least`), and a running handle that
//! sees its store's generation go down refuses to continue. Without the anchor the
//! older copy opens (the store cannot tell; `docs/store.md`, "Rollback").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use gochat_e2ee::{Device, ErrorCode, PreKeyBundle};
use gochat_e2ee_store::{
    Argon2Params, Backend, Durability, PlatformKey, SqliteBackend, StoreError, StoredDevice, Unlock,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000;
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn key() -> Unlock {
    Unlock::Key(PlatformKey::new([7; 32]))
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gochat-rollback-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sqlite(path: &Path) -> Box<dyn Backend> {
    Box::new(SqliteBackend::open(path, Durability::Full).unwrap())
}

/// Copies the store file and its WAL side files (a byte-exact copy of the store).
fn copy_store(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let (f, t) =
            (PathBuf::from(format!("{}{suffix}", from.display())), PathBuf::from(format!("{}{suffix}", to.display())));
        let _ = std::fs::remove_file(&t);
        if f.exists() {
            std::fs::copy(&f, &t).unwrap();
        }
    }
}

/// Alice in a store at `path` with a session to Bob (in memory), after one exchange.
fn conversation(path: &Path) -> (StoredDevice, Device, ChaCha20Rng) {
    let mut r = ChaCha20Rng::seed_from_u64(9);
    let mut bob = Device::new("bob", NOW, &mut r);
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let mut alice =
        StoredDevice::create(sqlite(path), &key(), SMALL, Device::new("alice", NOW, &mut r), &mut r).unwrap();
    let m = alice.transact(&mut r, |d, r| {
        let _ = d.initiate("bob", &bundle, r)?;
        d.encrypt("bob", b"first")
    });
    let _ = bob.decrypt("alice", &m.unwrap(), &mut r).unwrap();
    (alice, bob, r)
}

#[test]
fn an_older_copy_of_the_store_is_refused_against_the_recorded_generation() {
    let d = dir("anchor");
    let (path, backup) = (d.join("store.sqlite"), d.join("backup.sqlite"));
    let (alice, mut bob, mut r) = conversation(&path);
    let old = alice.generation();
    drop(alice);
    copy_store(&path, &backup);

    let mut alice = StoredDevice::open_at_least(sqlite(&path), &key(), old).unwrap();
    for i in 0..3u8 {
        let m = alice.transact(&mut r, |d, _| d.encrypt("bob", &[i; 8])).unwrap();
        assert_eq!(bob.decrypt("alice", &m, &mut r).unwrap().plaintext, vec![i; 8]);
    }
    let anchor = alice.generation();
    assert_eq!(anchor, old + 3, "one generation per committed operation");
    drop(alice);

    // The thief (or a backup restore) puts the older file back.
    copy_store(&backup, &path);
    let rows_before = SqliteBackend::open(&path, Durability::Full).unwrap().all().unwrap();
    let refused = StoredDevice::open_at_least(sqlite(&path), &key(), anchor).unwrap_err();
    assert!(matches!(refused, StoreError::RolledBack { found, expected } if found == old && expected == anchor));
    assert_eq!(refused.code(), ErrorCode::StoreRolledBack);
    let rows_after = SqliteBackend::open(&path, Durability::Full).unwrap().all().unwrap();
    assert_eq!(rows_before, rows_after, "a refused open writes nothing");

    // Without the anchor the store cannot tell: the older copy opens.
    let reopened = StoredDevice::open(sqlite(&path), &key()).unwrap();
    assert_eq!(reopened.generation(), old);
    // The recorded generation itself (or any lower one) is accepted.
    drop(reopened);
    assert!(StoredDevice::open_at_least(sqlite(&path), &key(), old).is_ok());
}

#[test]
fn a_running_handle_refuses_a_store_that_went_back() {
    let d = dir("live");
    let (path, backup) = (d.join("store.sqlite"), d.join("backup.sqlite"));
    let (alice, _bob, mut r) = conversation(&path);
    drop(alice);
    copy_store(&path, &backup);
    let mut alice = StoredDevice::open(sqlite(&path), &key()).unwrap();
    for i in 0..2u8 {
        let _ = alice.transact(&mut r, |d, _| d.encrypt("bob", &[i; 8])).unwrap();
    }
    let seen = alice.generation();
    let digest = alice.device().state_digest();

    // Another process puts an older file in place while this handle is open.
    let mut other = StoredDevice::open(sqlite(&backup), &key()).unwrap();
    other.transact(&mut r, |_, _| Ok(())).unwrap();
    drop(other);
    let mut live = SqliteBackend::open(&path, Durability::Full).unwrap();
    let mut old_rows = SqliteBackend::open(&backup, Durability::Full).unwrap();
    live.begin().unwrap();
    old_rows.begin().unwrap();
    for (hash, value) in old_rows.all().unwrap() {
        live.put(&hash, Some(&value), 1).unwrap();
    }
    let old_generation = old_rows.get_meta("generation").unwrap().unwrap();
    old_rows.rollback().unwrap();
    live.put_meta("generation", &old_generation).unwrap();
    live.commit().unwrap();
    drop(live);

    let refused = alice.transact(&mut r, |d, _| d.encrypt("bob", b"must not be sent")).unwrap_err();
    assert!(matches!(refused, StoreError::RolledBack { expected, .. } if expected == seen), "{refused:?}");
    assert_eq!(alice.device().state_digest(), digest, "nothing applied from the older rows");
}
