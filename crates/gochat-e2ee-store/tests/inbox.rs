//! The inbox for group and channel messages: a result committed with the chain step,
//! redelivered (same result, nothing advanced) until `ack`, bounded by `MAX_INBOX`, and
//! a refused message writes nothing. Export refuses while results wait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gochat_e2ee::channel::{ChannelKind, ContentType, Received as ChannelReceived};
use gochat_e2ee::group::{GroupId, GroupMember};
use gochat_e2ee::{Device, ErrorCode, PreKeyBundle};
use gochat_e2ee_store::inbox::{channel_digest, direct_digest, group_digest, InboxEntry};
use gochat_e2ee_store::{
    Argon2Params, Backend, Durability, MemoryBackend, Passcode, PlatformKey, SqliteBackend, StoreError, StoredDevice,
    Unlock, MAX_INBOX,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000;
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn key() -> Unlock {
    Unlock::Key(PlatformKey::new([9; 32]))
}

fn device(name: &str, r: &mut ChaCha20Rng) -> Device {
    let mut d = Device::new(name, NOW, r);
    d.account_mut().generate_one_time_prekeys(4, r).unwrap();
    d.account_mut().generate_pq_prekeys(4, NOW, r).unwrap();
    d
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gochat-inbox-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite")
}

fn sqlite(path: &std::path::Path) -> Box<dyn Backend> {
    Box::new(SqliteBackend::open(path, Durability::Full).unwrap())
}

/// Alice in a store, Bob in memory, with a pairwise session both ways, and a group Bob
/// created with Alice in it (Alice joined and holds Bob's sender key).
fn group_pair(backend: Box<dyn Backend>, seed: u64) -> (StoredDevice, Device, GroupId, ChaCha20Rng) {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    let mut alice = StoredDevice::create(backend, &key(), SMALL, device("alice", &mut r), &mut r).unwrap();
    let mut bob = device("bob", &mut r);
    let bundle = PreKeyBundle::from_bytes(&bob.next_bundle().unwrap().to_bytes()).unwrap();
    let _ = alice.transact(&mut r, |d, r| d.initiate("bob", &bundle, r)).unwrap();
    let hello = alice.transact(&mut r, |d, _| d.encrypt("bob", b"hello")).unwrap();
    let _ = bob.decrypt("alice", &hello, &mut r).unwrap();
    let reply = bob.encrypt("alice", b"hi").unwrap();
    let got = alice.decrypt("bob", &reply, &mut r).unwrap();
    assert!(alice.ack(&got.digest).unwrap());
    let member = GroupMember { name: "alice".into(), identity: *alice.device().identity(), admin: false };
    let change = bob.group_create(&[member], NOW, &mut r).unwrap();
    let welcome = change.welcome.clone().unwrap();
    let _ = alice.transact(&mut r, |d, r| d.group_join(&welcome, NOW, r)).unwrap();
    let to_alice = change.outgoing.iter().find(|o| o.peer == "alice").unwrap().message.clone();
    let _ = alice.transact(&mut r, |d, r| d.group_receive("bob", &to_alice, r)).unwrap();
    (alice, bob, change.group_id, r)
}

#[test]
fn a_group_message_is_redelivered_after_reopening_until_it_is_acknowledged() {
    let path = temp_path("group-reopen");
    let (mut alice, mut bob, gid, mut r) = group_pair(sqlite(&path), 1);
    let sent = bob.group_encrypt(&gid, b"to the group", NOW, &mut r).unwrap();
    let got = alice.group_decrypt("bob", &sent.message, &mut r).unwrap();
    assert_eq!(got.plaintext.plaintext, b"to the group");
    assert_eq!(got.plaintext.sender, "bob");
    assert_eq!(got.digest, group_digest(&sent.message));
    assert!(!got.redelivered);
    // The app crashed before handling it: the reopened store gives it again, and the
    // redelivery advances nothing.
    drop(alice);
    let mut alice = StoredDevice::open(sqlite(&path), &key()).unwrap();
    assert_eq!(alice.inbox_len().unwrap(), 1);
    let before = alice.device().state_digest();
    let again = alice.group_decrypt("bob", &sent.message, &mut r).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext, got.plaintext);
    assert_eq!(again.digest, got.digest);
    assert_eq!(alice.device().state_digest(), before);
    // After the ack the replay is the core's Duplicate.
    assert!(alice.ack(&got.digest).unwrap());
    assert_eq!(alice.inbox_len().unwrap(), 0);
    let e = alice.group_decrypt("bob", &sent.message, &mut r).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Duplicate);
    // The next message still decrypts.
    let next = bob.group_encrypt(&gid, b"next", NOW, &mut r).unwrap();
    assert_eq!(alice.group_decrypt("bob", &next.message, &mut r).unwrap().plaintext.plaintext, b"next");
}

#[test]
fn a_refused_group_message_writes_nothing() {
    let (mut alice, mut bob, gid, mut r) = group_pair(Box::new(MemoryBackend::new()), 2);
    let sent = bob.group_encrypt(&gid, b"genuine", NOW, &mut r).unwrap();
    let before = alice.device().state_digest();
    let mut forged = sent.message.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(alice.group_decrypt("bob", &forged, &mut r).is_err());
    // A wrong sender name fails the signature.
    assert!(alice.group_decrypt("carol", &sent.message, &mut r).is_err());
    assert_eq!(alice.device().state_digest(), before);
    assert_eq!(alice.inbox_len().unwrap(), 0);
    assert!(!alice.group_decrypt("bob", &sent.message, &mut r).unwrap().redelivered);
}

/// Bob publishes a channel of `kind` that the stored Alice subscribes to.
fn channel_pair(seed: u64, kind: ChannelKind) -> (StoredDevice, Device, gochat_e2ee::channel::ChannelId, ChaCha20Rng) {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    let path = temp_path(&format!("channel-{seed}"));
    let mut alice = StoredDevice::create(sqlite(&path), &key(), SMALL, device("alice", &mut r), &mut r).unwrap();
    let mut agency = device("agency", &mut r);
    let id = agency.channel_create(kind, &mut r).unwrap();
    let pk = agency.channel_public_key(&id).unwrap();
    alice.transact(&mut r, |d, _| d.channel_subscribe(id, pk, kind)).unwrap();
    (alice, agency, id, r)
}

#[test]
fn a_channel_post_and_a_rotation_are_redelivered_until_acknowledged() {
    let (mut alice, mut agency, id, mut r) = channel_pair(3, ChannelKind::Public);
    let post = agency.channel_announce(&id, ContentType::Text, b"bulletin", NOW).unwrap();
    let got = alice.channel_receive(&post, NOW, &mut r).unwrap();
    assert!(!got.redelivered);
    assert_eq!(got.channel_id, id);
    assert_eq!(got.digest, channel_digest(&post));
    let ChannelReceived::Announcement(a) = &got.received else { panic!("an announcement") };
    assert_eq!(a.body, b"bulletin");
    let before = alice.device().state_digest();
    // Redelivered (not StaleSequence), advancing nothing, even at another `now`.
    let again = alice.channel_receive(&post, NOW + 10, &mut r).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.received, got.received);
    assert_eq!(alice.device().state_digest(), before);
    let rotation = agency.channel_rotate_signing_key(&id, NOW, &mut r).unwrap();
    let rotated = alice.channel_receive(&rotation, NOW, &mut r).unwrap();
    assert!(matches!(rotated.received, ChannelReceived::KeyRotated { .. }));
    assert_eq!(rotated.channel_id, id);
    let expected = gochat_e2ee_store::ChannelPost { redelivered: true, ..rotated.clone() };
    assert_eq!(alice.channel_receive(&rotation, NOW, &mut r).unwrap(), expected);
    assert_eq!(alice.inbox_len().unwrap(), 2);
    assert!(alice.ack(&got.digest).unwrap());
    assert!(alice.ack(&rotated.digest).unwrap());
    // After the acks the post is refused again (signed by the replaced key).
    assert_eq!(alice.channel_receive(&post, NOW, &mut r).unwrap_err().code(), ErrorCode::WrongSigner);
}

#[test]
fn a_refused_post_writes_nothing() {
    let (mut alice, mut agency, id, mut r) = channel_pair(4, ChannelKind::Restricted);
    let post = agency.channel_announce(&id, ContentType::Text, b"secret", NOW).unwrap();
    let before = alice.device().state_digest();
    // No content key yet: retryable, and nothing is kept.
    assert_eq!(alice.channel_receive(&post, NOW, &mut r).unwrap_err().code(), ErrorCode::MissingSenderKey);
    let future = agency.channel_announce(&id, ContentType::Text, b"later", NOW + 100_000).unwrap();
    assert!(alice.channel_receive(&future, NOW, &mut r).is_err());
    assert_eq!(alice.device().state_digest(), before);
    assert_eq!(alice.inbox_len().unwrap(), 0);
}

#[test]
fn the_inbox_bound_counts_every_kind() {
    let (mut alice, mut bob, gid, mut r) = group_pair(Box::new(MemoryBackend::new()), 5);
    let mut digests = Vec::new();
    for i in 0..MAX_INBOX {
        let sent = if i % 2 == 0 {
            let m = bob.group_encrypt(&gid, &i.to_be_bytes(), NOW, &mut r).unwrap().message;
            alice.group_decrypt("bob", &m, &mut r).unwrap().digest
        } else {
            let m = bob.encrypt("alice", &i.to_be_bytes()).unwrap();
            alice.decrypt("bob", &m, &mut r).unwrap().digest
        };
        digests.push(sent);
    }
    let over = bob.group_encrypt(&gid, b"over", NOW, &mut r).unwrap().message;
    let before = alice.device().state_digest();
    assert_eq!(alice.group_decrypt("bob", &over, &mut r).unwrap_err().code(), ErrorCode::InboxFull);
    assert_eq!(alice.device().state_digest(), before);
    assert!(alice.ack(&digests[0]).unwrap());
    assert_eq!(alice.group_decrypt("bob", &over, &mut r).unwrap().plaintext.plaintext, b"over");
}

#[test]
fn export_is_refused_while_results_wait_and_allowed_after_the_acks() {
    let path = temp_path("export-pending");
    let (mut alice, mut bob, gid, mut r) = group_pair(sqlite(&path), 6);
    let sent = bob.group_encrypt(&gid, b"unread", NOW, &mut r).unwrap();
    let got = alice.group_decrypt("bob", &sent.message, &mut r).unwrap();
    let transfer = Passcode::from_text("transfer").unwrap();
    let e = alice.export(&transfer, SMALL, &mut r).unwrap_err();
    assert_eq!(e, StoreError::InboxNotEmpty { pending: 1 });
    assert_eq!(e.code(), ErrorCode::InboxNotEmpty);
    // Nothing was written: the store is live, in this handle and another.
    let next = bob.group_encrypt(&gid, b"still live", NOW, &mut r).unwrap();
    let n = alice.group_decrypt("bob", &next.message, &mut r).unwrap();
    assert!(StoredDevice::open(sqlite(&path), &key()).is_ok());
    // The app's sequence: handle and ack every pending result, then move.
    assert!(alice.ack(&got.digest).unwrap());
    assert!(alice.ack(&n.digest).unwrap());
    let container = alice.export(&transfer, SMALL, &mut r).unwrap();
    let mut moved =
        StoredDevice::import(Box::new(MemoryBackend::new()), &key(), SMALL, &container, &transfer, &mut r).unwrap();
    let after = bob.group_encrypt(&gid, b"after the move", NOW, &mut r).unwrap();
    assert_eq!(moved.group_decrypt("bob", &after.message, &mut r).unwrap().plaintext.plaintext, b"after the move");
}

#[test]
fn inbox_entries_round_trip_and_digests_are_domain_separated() {
    let (mut alice, mut bob, gid, mut r) = group_pair(Box::new(MemoryBackend::new()), 7);
    let m = bob.group_encrypt(&gid, b"x", NOW, &mut r).unwrap().message;
    assert_ne!(group_digest(&m), channel_digest(&m));
    assert_ne!(group_digest(&m), direct_digest(&m));
    assert_ne!(channel_digest(&m), direct_digest(&m));
    let got = alice.group_decrypt("bob", &m, &mut r).unwrap();
    let entry = InboxEntry::Group(got.plaintext.clone());
    let bytes = entry.encode();
    assert_eq!(InboxEntry::decode(&bytes).unwrap(), entry);
    for cut in 0..bytes.len() {
        assert!(InboxEntry::decode(&bytes[..cut]).is_err(), "a truncation at {cut} is refused");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(InboxEntry::decode(&longer).is_err());
    // The same bytes offered as a 1:1 message find no group entry.
    assert!(alice.decrypt("bob", &m, &mut r).is_err());
}

/// Prints what the inbox costs a group decrypt on SQLite (`Durability::Full`): the same
/// number of messages through `transact` (committed, no result kept) and through
/// `group_decrypt` (result kept), then a redelivery and an `ack`.
/// `cargo test -p gochat-e2ee-store --release --test inbox -- --ignored measure`
#[test]
#[ignore = "timing; run by hand"]
fn measure_group_inbox_overhead() {
    const N: usize = 200;
    let path = temp_path("measure");
    let (mut alice, mut bob, gid, mut r) = group_pair(sqlite(&path), 11);
    let msgs: Vec<Vec<u8>> =
        (0..2 * N).map(|i| bob.group_encrypt(&gid, &[i as u8; 100], NOW, &mut r).unwrap().message).collect();
    let t = std::time::Instant::now();
    for m in &msgs[..N] {
        let _ = alice.transact(&mut r, |d, _| d.group_decrypt("bob", m)).unwrap();
    }
    let plain = t.elapsed() / N as u32;
    let t = std::time::Instant::now();
    let mut digests = Vec::new();
    for m in &msgs[N..] {
        digests.push(alice.group_decrypt("bob", m, &mut r).unwrap().digest);
    }
    let kept = t.elapsed() / N as u32;
    let t = std::time::Instant::now();
    for m in &msgs[N..] {
        assert!(alice.group_decrypt("bob", m, &mut r).unwrap().redelivered);
    }
    let again = t.elapsed() / N as u32;
    let t = std::time::Instant::now();
    for d in &digests {
        assert!(alice.ack(d).unwrap());
    }
    let ack = t.elapsed() / N as u32;
    println!(
        "group decrypt, 100 B, SQLite Full, {N} each: transact {plain:?}, group_decrypt (inbox) {kept:?}, redelivery {again:?}, ack {ack:?}"
    );
}
