//! `StoredDevice`: every operation one transaction, results released only after the
//! commit, refused operations write nothing, handles on one store never fork.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gochat_e2ee::{Device, ErrorCode, PreKeyBundle};
use gochat_e2ee_store::backend::{ChangedRow, Row};
use gochat_e2ee_store::{
    Argon2Params, Backend, Durability, MemoryBackend, Passcode, PlatformKey, SqliteBackend, StoreError, StoredDevice,
    Unlock,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000;
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn key() -> Unlock {
    Unlock::Key(PlatformKey::new([7; 32]))
}

fn passcode(p: &str) -> Unlock {
    Unlock::Passcode(Passcode::from_text(p).unwrap())
}

fn device(name: &str, r: &mut ChaCha20Rng) -> Device {
    let mut d = Device::new(name, NOW, r);
    d.account_mut().generate_one_time_prekeys(4, r).unwrap();
    d.account_mut().generate_pq_prekeys(4, NOW, r).unwrap();
    d
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gochat-store-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite")
}

fn sqlite(path: &std::path::Path) -> Box<dyn Backend> {
    Box::new(SqliteBackend::open(path, Durability::Full).unwrap())
}

/// Alice in a store (`backend`), Bob in memory, with a session Alice started.
fn alice_and_bob(backend: Box<dyn Backend>, seed: u64) -> (StoredDevice, Device, ChaCha20Rng) {
    let mut r = rng(seed);
    let alice = StoredDevice::create(backend, &key(), SMALL, device("alice", &mut r), &mut r).unwrap();
    let mut bob = device("bob", &mut r);
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let mut alice = alice;
    let _ = alice.transact(&mut r, |d, r| d.initiate("bob", &bundle, r)).unwrap();
    (alice, bob, r)
}

fn rows(path: &std::path::Path) -> Vec<Row> {
    SqliteBackend::open(path, Durability::Full).unwrap().all().unwrap()
}

#[test]
fn a_conversation_survives_closing_and_reopening_the_store() {
    let path = temp_path("reopen");
    let (mut alice, mut bob, mut r) = alice_and_bob(sqlite(&path), 1);
    for i in 0..5u8 {
        let m = alice.transact(&mut r, |d, _| d.encrypt("bob", &[i; 10])).unwrap();
        assert_eq!(bob.decrypt("alice", &m, &mut r).unwrap().plaintext, vec![i; 10]);
        let reply = bob.encrypt("alice", &[100 + i]).unwrap();
        let got = alice.decrypt("bob", &reply, &mut r).unwrap();
        assert_eq!(got.decrypted.plaintext, vec![100 + i]);
        assert!(!got.redelivered);
        assert!(alice.ack(&got.digest).unwrap());
        if i % 2 == 1 {
            let digest = alice.device().state_digest();
            drop(alice);
            alice = StoredDevice::open(sqlite(&path), &key()).unwrap();
            assert_eq!(alice.device().state_digest(), digest, "the store holds the whole state");
        }
    }
}

#[test]
fn a_refused_operation_writes_nothing() {
    let path = temp_path("refused");
    let (mut alice, mut bob, mut r) = alice_and_bob(sqlite(&path), 2);
    let m = alice.transact(&mut r, |d, _| d.encrypt("bob", b"hi")).unwrap();
    let _ = bob.decrypt("alice", &m, &mut r).unwrap();
    let reply = bob.encrypt("alice", b"ok").unwrap();
    let before = rows(&path);
    let mut forged = reply.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let e = alice.decrypt("bob", &forged, &mut r).unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthenticationFailed);
    let e = alice.transact(&mut r, |d, _| d.encrypt("nobody", b"x")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NoSession);
    assert_eq!(rows(&path), before, "refused operations changed the store");
    // The genuine message still decrypts, and a redelivery returns it again.
    let got = alice.decrypt("bob", &reply, &mut r).unwrap();
    let again = alice.decrypt("bob", &reply, &mut r).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.decrypted, got.decrypted);
    assert!(alice.ack(&got.digest).unwrap());
    assert_eq!(alice.decrypt("bob", &reply, &mut r).unwrap_err().code(), ErrorCode::Duplicate);
}

/// A backend whose commit fails while `fail` is set (a full disk, a killed writer).
struct Failing {
    inner: MemoryBackend,
    fail: Arc<AtomicBool>,
}

impl Backend for Failing {
    fn begin(&mut self) -> Result<(), StoreError> {
        self.inner.begin()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            self.inner.rollback()?;
            return Err(StoreError::Sqlite("disk full".into()));
        }
        self.inner.commit()
    }
    fn rollback(&mut self) -> Result<(), StoreError> {
        self.inner.rollback()
    }
    fn get_meta(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_meta(name)
    }
    fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.put_meta(name, value)
    }
    fn get(&mut self, key_hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key_hash)
    }
    fn put(&mut self, key_hash: &[u8; 32], value: Option<&[u8]>, generation: u64) -> Result<(), StoreError> {
        self.inner.put(key_hash, value, generation)
    }
    fn changed_since(&mut self, generation: u64) -> Result<Vec<ChangedRow>, StoreError> {
        self.inner.changed_since(generation)
    }
    fn all(&mut self) -> Result<Vec<Row>, StoreError> {
        self.inner.all()
    }
}

#[test]
fn a_failed_commit_never_releases_the_ciphertext_and_the_handle_recovers() {
    let fail = Arc::new(AtomicBool::new(false));
    let backend = Failing { inner: MemoryBackend::new(), fail: fail.clone() };
    let (mut alice, mut bob, mut r) = alice_and_bob(Box::new(backend), 3);
    let first = alice.transact(&mut r, |d, _| d.encrypt("bob", b"one")).unwrap();
    let _ = bob.decrypt("alice", &first, &mut r).unwrap();
    let committed = alice.device().state_digest();
    fail.store(true, Ordering::SeqCst);
    let e = alice.transact(&mut r, |d, _| d.encrypt("bob", b"never released")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreIo);
    fail.store(false, Ordering::SeqCst);
    // The next operation starts from what the store holds, not from the lost step.
    assert_eq!(alice.sync_now().map(|()| alice.device().state_digest()).unwrap(), committed);
    let second = alice.transact(&mut r, |d, _| d.encrypt("bob", b"two")).unwrap();
    assert_eq!(bob.decrypt("alice", &second, &mut r).unwrap().plaintext, b"two");
}

#[test]
fn a_batch_whose_commit_fails_releases_nothing_and_the_handle_recovers() {
    let fail = Arc::new(AtomicBool::new(false));
    let backend = Failing { inner: MemoryBackend::new(), fail: fail.clone() };
    let (mut alice, mut bob, mut r) = alice_and_bob(Box::new(backend), 13);
    let first = alice.transact(&mut r, |d, _| d.encrypt("bob", b"one")).unwrap();
    let _ = bob.decrypt("alice", &first, &mut r).unwrap();
    let backlog: Vec<Vec<u8>> = (0..5u8).map(|i| bob.encrypt("alice", &[i; 4]).unwrap()).collect();
    let batch: Vec<(&str, &[u8])> = backlog.iter().map(|m| ("bob", m.as_slice())).collect();
    let committed = alice.device().state_digest();
    let inbox = alice.inbox_len().unwrap();
    fail.store(true, Ordering::SeqCst);
    let e = alice.decrypt_batch(&batch, &mut r).unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreIo);
    fail.store(false, Ordering::SeqCst);
    // Nothing of the batch was kept, and the handle reloads what the store holds.
    assert_eq!(alice.sync_now().map(|()| alice.device().state_digest()).unwrap(), committed);
    assert_eq!(alice.inbox_len().unwrap(), inbox);
    // The same backlog then decrypts in full, as new messages (none was released before).
    let out = alice.decrypt_batch(&batch, &mut r).unwrap();
    for (i, o) in out.iter().enumerate() {
        let got = o.as_ref().unwrap();
        assert_eq!(got.decrypted.plaintext, vec![i as u8; 4]);
        assert!(!got.redelivered);
    }
    // A batch over the bound is refused before any work.
    let many = vec![("bob", backlog[0].as_slice()); gochat_e2ee_store::MAX_BATCH_MESSAGES + 1];
    let digest = alice.device().state_digest();
    assert_eq!(alice.decrypt_batch(&many, &mut r).unwrap_err().code(), ErrorCode::TooLarge);
    assert_eq!(alice.device().state_digest(), digest);
}

#[test]
fn two_handles_in_two_threads_never_fork_a_session() {
    let path = temp_path("threads");
    let (mut alice, mut bob, mut r) = alice_and_bob(sqlite(&path), 4);
    let m = alice.transact(&mut r, |d, _| d.encrypt("bob", b"start")).unwrap();
    let _ = bob.decrypt("alice", &m, &mut r).unwrap();
    drop(alice);
    let run = |seed: u64, path: std::path::PathBuf| {
        std::thread::spawn(move || {
            let mut r = rng(seed);
            let mut handle = StoredDevice::open(sqlite(&path), &key()).unwrap();
            (0..25).map(|i| handle.transact(&mut r, |d, _| d.encrypt("bob", &[i])).unwrap()).collect::<Vec<_>>()
        })
    };
    let (a, b) = (run(10, path.clone()), run(11, path.clone()));
    let mut all: Vec<Vec<u8>> = a.join().unwrap();
    all.extend(b.join().unwrap());
    for m in &all {
        let _ = bob
            .decrypt("alice", m, &mut r)
            .unwrap_or_else(|e| panic!("a message of the two handles was refused: {e:?}"));
    }
}

#[test]
fn peer_names_are_never_stored_in_the_clear() {
    let path = temp_path("names");
    let (mut alice, mut bob, mut r) = alice_and_bob(sqlite(&path), 5);
    let name = "very-secret-minister@mof.gov.my/phone";
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let _ = alice.transact(&mut r, |d, r| d.initiate(name, &bundle, r)).unwrap();
    let _ = alice.transact(&mut r, |d, _| d.encrypt(name, b"classified")).unwrap();
    drop(alice);
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        bytes.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    for needle in [name.as_bytes(), b"very-secret-minister", b"classified", b"alice"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{:?} is in the store files",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn wrong_passcodes_are_counted_and_the_limit_is_reported() {
    let path = temp_path("passcode");
    let mut r = rng(6);
    let mut store =
        StoredDevice::create(sqlite(&path), &passcode("1234-correct"), SMALL, device("ana", &mut r), &mut r).unwrap();
    store.set_attempt_limit(3).unwrap();
    drop(store);
    for n in 1..=2 {
        let e = StoredDevice::open(sqlite(&path), &passcode("0000")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::WrongKey);
        assert_eq!(StoredDevice::failed_attempts(&mut *sqlite(&path)).unwrap(), n);
    }
    // The right passcode resets the counter.
    drop(StoredDevice::open(sqlite(&path), &passcode("1234-correct")).unwrap());
    assert_eq!(StoredDevice::failed_attempts(&mut *sqlite(&path)).unwrap(), 0);
    for _ in 0..2 {
        assert_eq!(StoredDevice::open(sqlite(&path), &passcode("0000")).unwrap_err().code(), ErrorCode::WrongKey);
    }
    let e = StoredDevice::open(sqlite(&path), &passcode("0000")).unwrap_err();
    assert!(matches!(e, StoreError::AttemptLimitReached { failures: 3 }), "{e:?}");
    // From now on even the right passcode is refused until the app decides.
    let e = StoredDevice::open(sqlite(&path), &passcode("1234-correct")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::AttemptLimitReached);
    // A platform key is the wrong method for this slot.
    assert_eq!(StoredDevice::open(sqlite(&path), &key()).unwrap_err().code(), ErrorCode::WrongKey);
}

#[test]
fn changing_the_passcode_rewraps_the_data_key_and_leaves_every_record() {
    let path = temp_path("change");
    let mut r = rng(7);
    let mut store =
        StoredDevice::create(sqlite(&path), &passcode("old"), SMALL, device("ana", &mut r), &mut r).unwrap();
    let before = rows(&path);
    let e = store.change_passcode(&passcode("not it"), &passcode("new"), SMALL, &mut r).unwrap_err();
    assert_eq!(e.code(), ErrorCode::WrongKey);
    store.change_passcode(&passcode("old"), &passcode("new"), SMALL, &mut r).unwrap();
    assert_eq!(rows(&path), before, "records were re-encrypted");
    let digest = store.device().state_digest();
    drop(store);
    assert_eq!(StoredDevice::open(sqlite(&path), &passcode("old")).unwrap_err().code(), ErrorCode::WrongKey);
    assert_eq!(StoredDevice::open(sqlite(&path), &passcode("new")).unwrap().device().state_digest(), digest);
}

#[test]
fn exporting_retires_the_store_and_the_import_continues_the_conversation() {
    let path = temp_path("export");
    let (mut alice, mut bob, mut r) = alice_and_bob(sqlite(&path), 8);
    let m = alice.transact(&mut r, |d, _| d.encrypt("bob", b"before the move")).unwrap();
    let _ = bob.decrypt("alice", &m, &mut r).unwrap();
    let moving = Passcode::from_text("transfer-code").unwrap();
    let container = alice.export(&moving, SMALL, &mut r).unwrap();
    // The old installation refuses everything, in this handle and any other.
    assert_eq!(alice.transact(&mut r, |d, _| d.encrypt("bob", b"x")).unwrap_err().code(), ErrorCode::StoreRetired);
    assert_eq!(StoredDevice::open(sqlite(&path), &key()).unwrap_err().code(), ErrorCode::StoreRetired);
    // A wrong transfer code opens nothing.
    let wrong = Passcode::from_text("guess").unwrap();
    let e =
        StoredDevice::import(Box::new(MemoryBackend::new()), &key(), SMALL, &container, &wrong, &mut r).unwrap_err();
    assert_eq!(e.code(), ErrorCode::WrongKey);
    let new_path = temp_path("export-new");
    let mut moved = StoredDevice::import(sqlite(&new_path), &key(), SMALL, &container, &moving, &mut r).unwrap();
    let m = moved.transact(&mut r, |d, _| d.encrypt("bob", b"after the move")).unwrap();
    assert_eq!(bob.decrypt("alice", &m, &mut r).unwrap().plaintext, b"after the move");
    // Creating a store where one exists is refused.
    let e = StoredDevice::create(sqlite(&new_path), &key(), SMALL, device("x", &mut r), &mut r).unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreExists);
}

#[test]
fn the_inbox_is_bounded() {
    let (mut alice, mut bob, mut r) = alice_and_bob(Box::new(MemoryBackend::new()), 9);
    let m = alice.transact(&mut r, |d, _| d.encrypt("bob", b"hi")).unwrap();
    let _ = bob.decrypt("alice", &m, &mut r).unwrap();
    let mut digests = Vec::new();
    for i in 0..gochat_e2ee_store::MAX_INBOX {
        let reply = bob.encrypt("alice", &i.to_be_bytes()).unwrap();
        digests.push(alice.decrypt("bob", &reply, &mut r).unwrap().digest);
    }
    let one_more = bob.encrypt("alice", b"over").unwrap();
    let before = alice.device().state_digest();
    assert_eq!(alice.decrypt("bob", &one_more, &mut r).unwrap_err().code(), ErrorCode::InboxFull);
    assert_eq!(alice.device().state_digest(), before);
    assert!(alice.ack(&digests[0]).unwrap());
    assert!(!alice.ack(&digests[0]).unwrap());
    assert_eq!(alice.decrypt("bob", &one_more, &mut r).unwrap().decrypted.plaintext, b"over");
}
