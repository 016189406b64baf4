//! `StoredDevice::decrypt_batch`: a backlog in one transaction (one commit), each message
//! as `decrypt` would treat it, results released only after the commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

fn sqlite(path: &std::path::Path) -> Box<dyn Backend> {
    Box::new(SqliteBackend::open(path, Durability::Full).unwrap())
}

#[test]
fn a_backlog_commits_once_and_each_message_is_decrypt() {
    let dir = std::env::temp_dir().join(format!("gochat-batch-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bob.sqlite");
    let mut r = ChaCha20Rng::seed_from_u64(5);
    let mut alice = Device::new("alice", NOW, &mut r);
    let mut bob = StoredDevice::create(sqlite(&path), &key(), SMALL, Device::new("bob", NOW, &mut r), &mut r).unwrap();
    let bundle = bob.transact(&mut r, |d, _| d.next_bundle()).unwrap();
    let _ = alice.initiate("bob", &PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap(), &mut r).unwrap();
    let sent: Vec<Vec<u8>> = (0..20u8).map(|i| alice.encrypt("bob", &[i; 8]).unwrap()).collect();
    let mut forged = sent[5].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;

    let before = bob.generation();
    let mut batch: Vec<(&str, &[u8])> = sent.iter().map(|m| ("alice", m.as_slice())).collect();
    batch.insert(3, ("alice", forged.as_slice()));
    batch.push(("alice", sent[0].as_slice())); // a repeat inside the batch
    let out = bob.decrypt_batch(&batch, &mut r).unwrap();
    assert_eq!(bob.generation(), before + 1, "one commit for the whole batch");
    assert_eq!(out.len(), batch.len());
    let err = out[3].as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuthenticationFailed, "{err:?}");
    let ok: Vec<_> = out.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(ok.len(), 21);
    for (i, got) in ok.iter().take(20).enumerate() {
        assert_eq!(got.decrypted.plaintext, vec![i as u8; 8]);
        assert!(!got.redelivered);
    }
    assert!(ok[20].redelivered && ok[20].digest == ok[0].digest, "the repeat is the first result again");
    assert_eq!(bob.inbox_len().unwrap(), 20);

    // Reopened, the unacknowledged results come back; acknowledged ones are duplicates.
    let first_ten: Vec<[u8; 32]> = ok.iter().take(10).map(|got| got.digest).collect();
    let generation = bob.generation();
    assert_eq!(bob.ack_many(&[first_ten.clone(), first_ten.clone()].concat()).unwrap(), 10, "repeats count once");
    assert_eq!(bob.generation(), generation + 1, "one commit for the whole ack");
    assert_eq!(bob.ack_many(&first_ten).unwrap(), 0, "already acknowledged");
    assert_eq!(bob.inbox_len().unwrap(), 10);
    drop(bob);
    let mut bob = StoredDevice::open(sqlite(&path), &key()).unwrap();
    let again: Vec<(&str, &[u8])> = sent.iter().map(|m| ("alice", m.as_slice())).collect();
    let out = bob.decrypt_batch(&again, &mut r).unwrap();
    for (i, o) in out.iter().enumerate() {
        match o {
            Ok(got) => assert!(i >= 10 && got.redelivered, "message {i}"),
            Err(StoreError::Protocol(e)) => assert!(i < 10 && e.code() == ErrorCode::Duplicate, "message {i}: {e:?}"),
            Err(e) => panic!("message {i}: {e:?}"),
        }
    }
    // The conversation goes on after the batch.
    let m = alice.encrypt("bob", b"after").unwrap();
    assert_eq!(bob.decrypt("alice", &m, &mut r).unwrap().decrypted.plaintext, b"after");
    let _ = std::fs::remove_dir_all(&dir);
}
