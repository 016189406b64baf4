#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Secrets really are wiped (issue 8, item 7; the class of vodozemac's GHSA-c3hm-hxwf-g5c6):
//! no heap block the library frees still holds a secret.
//!
//! The whole test binary runs under [`WipeCheck`], which scans every freed block (and the
//! old block of every `realloc`, which it always moves) for registered secrets. One
//! deterministic conversation runs twice:
//! 1. *collect*: after every step the test registers every secret the devices hold
//!    (`Device::for_each_secret_for_testing`: identity seed and agreement key, prekey
//!    secrets, ML-KEM seeds, root, ratchet and chain keys, skipped message keys), the
//!    message key of every chain key it sees, the PQXDH key schedule of the first session
//!    (`initiate_traced`: DH outputs, ML-KEM shared secret, session secret), the snapshot
//!    key and every plaintext;
//! 2. *check*: the same conversation (same seeds, so the same secrets) runs with the
//!    check armed, so a copy freed even before the step that first showed its secret is
//!    caught.
//!
//! The conversation covers device creation, prekey generation and rotation, a PQXDH
//! session (initiate and accept, one-time prekey consumed), out-of-order delivery across
//! 14 DH ratchet steps (more than `MAX_RECEIVER_CHAINS`, so chains are dropped), a jump
//! past `MAX_SKIPPED_KEYS` (keys evicted), skipped keys used from the middle of the
//! store, a tampered message, `state_digest`, `export`, a tampered and a good `import`,
//! `export_session` / `import_session`, a retry request with a new session from the
//! last-resort prekey, a group (sender-key rotations, out-of-order group messages), a
//! restricted channel (posts, content-key and signing-key rotations, content
//! keys over pairwise control messages), an export and import holding both, attachments
//! (streaming both ways in odd chunks, a refused tampered chunk, random access, the `io`
//! adapters, a 300 KiB file hashed on the second thread), and dropping every device.
//!
//! It runs as one `#[test]`, so no other test of this binary allocates concurrently; the
//! harness's own threads may, and their blocks are scanned too (they hold no secrets).

use gochat_e2ee::channel::{ChannelKind, ContentType, Received};
use gochat_e2ee::group::{GroupMember, RotationPolicy};
use gochat_e2ee::limits::{MAX_RECEIVER_CHAINS, MAX_RETIRED_PREKEYS, MAX_SKIPPED_KEYS};
use gochat_e2ee::{Decrypted, Device, SnapshotKey};
use gochat_e2ee_wipecheck::{self as wipe, WipeCheck, SECRET_BYTES};
use hmac::{Hmac, KeyInit, Mac};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

#[global_allocator]
static ALLOCATOR: WipeCheck = WipeCheck;

const NOW: u64 = 1_700_000_000;
/// DH ratchet steps in the out-of-order part (each side's receiving chains exceed
/// `MAX_RECEIVER_CHAINS`).
const ROUNDS: usize = 14;
/// Messages in the burst that the receiver sees only the last of.
const BURST: usize = MAX_SKIPPED_KEYS + 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Collect,
    Check,
}

/// Registers secrets (collect) or checks that the check run shows no new ones.
struct Observer {
    phase: Phase,
    /// Secrets seen in the check run that the collect run did not register: the runs
    /// diverged, and the check would miss them.
    unregistered: usize,
}

impl Observer {
    fn secret(&mut self, label: &'static str, bytes: &[u8]) {
        match self.phase {
            Phase::Collect => wipe::register(label, bytes),
            Phase::Check => {
                if !wipe::is_registered(bytes) {
                    self.unregistered += 1;
                }
            }
        }
    }

    /// Every secret of `d`, plus the message key of each of its chain keys
    /// (`MK = HMAC-SHA256(CK, 0x01)`, docs/protocol.md 6.1).
    fn device(&mut self, d: &Device) {
        d.for_each_secret_for_testing(&mut |label, bytes| {
            self.secret(label, bytes);
            if label.ends_with("chain key") {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(bytes).unwrap();
                mac.update(&[0x01]);
                let mk = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
                self.secret("message key", &mk[..]);
            }
        });
    }
}

/// A random plaintext of `len` bytes, registered as a secret.
fn text(obs: &mut Observer, texts: &mut ChaCha20Rng, len: usize) -> Zeroizing<Vec<u8>> {
    let mut t = Zeroizing::new(vec![0u8; len]);
    texts.fill_bytes(&mut t);
    obs.secret("plaintext", &t);
    t
}

struct Sent {
    message: Vec<u8>,
    plaintext: Zeroizing<Vec<u8>>,
}

fn send(obs: &mut Observer, texts: &mut ChaCha20Rng, from: &mut Device, peer: &str, len: usize) -> Sent {
    let plaintext = text(obs, texts, len);
    let message = from.encrypt(peer, &plaintext).unwrap();
    obs.device(from);
    Sent { message, plaintext }
}

fn recv(obs: &mut Observer, rng: &mut ChaCha20Rng, to: &mut Device, peer: &str, m: &Sent) {
    let Decrypted { plaintext, .. } = to.decrypt(peer, &m.message, rng).unwrap();
    let plaintext = Zeroizing::new(plaintext);
    assert_eq!(plaintext[..], m.plaintext[..]);
    obs.device(to);
}

/// The conversation; returns the final state digests (equal in both runs).
fn conversation(obs: &mut Observer) -> [[u8; 32]; 2] {
    let mut rng = ChaCha20Rng::seed_from_u64(0x005E_C2E7);
    let mut texts = ChaCha20Rng::seed_from_u64(0x7E47);

    // Devices, prekeys, rotations.
    let mut alice = Device::new("alice", NOW, &mut rng);
    let mut bob = Device::new("bob", NOW, &mut rng);
    obs.device(&alice);
    obs.device(&bob);
    bob.account_mut().generate_one_time_prekeys(30, &mut rng).unwrap();
    bob.account_mut().generate_pq_prekeys(3, NOW, &mut rng).unwrap();
    alice.account_mut().generate_one_time_prekeys(5, &mut rng).unwrap();
    alice.account_mut().generate_pq_prekeys(2, NOW, &mut rng).unwrap();
    obs.device(&alice);
    obs.device(&bob);
    // More rotations than MAX_RETIRED_PREKEYS, so the oldest retired keys are dropped.
    for i in 1..=MAX_RETIRED_PREKEYS as u64 + 2 {
        bob.account_mut().rotate_signed_prekey(NOW + i, &mut rng).unwrap();
        bob.account_mut().rotate_last_resort_prekey(NOW + i, &mut rng).unwrap();
        obs.device(&bob);
    }

    // PQXDH, with the key schedule of the initiator.
    let bundle = bob.next_bundle().unwrap();
    assert!(bundle.one_time_prekey().is_some(), "the session must use DH4");
    let mut trace = alice.initiate_traced("bob", &bundle, &mut rng).unwrap();
    for d in &trace.dh {
        obs.secret("PQXDH DH output", d);
    }
    obs.secret("ML-KEM shared secret", &trace.kem_secret);
    obs.secret("session secret", &trace.secret);
    trace.dh.zeroize();
    trace.ikm.zeroize();
    trace.kem_secret.zeroize();
    trace.secret.zeroize();
    drop(trace);
    obs.device(&alice);

    // Out of order across DH ratchet steps: of each batch of four, deliver 3, 0, 2 and
    // hold 1 back until the same direction's next round (a key from an older chain).
    let mut held: Vec<Sent> = Vec::new();
    for round in 0..ROUNDS {
        let (tx, tx_peer, rx, rx_peer) = if round % 2 == 0 {
            (&mut alice, "bob", &mut bob, "alice")
        } else {
            (&mut bob, "alice", &mut alice, "bob")
        };
        let mut batch: Vec<Sent> = (0..4).map(|i| send(obs, &mut texts, tx, tx_peer, 40 + 50 * i)).collect();
        for i in [3, 0, 2] {
            recv(obs, &mut rng, rx, rx_peer, &batch[i]);
        }
        held.push(batch.swap_remove(1));
        if round >= 2 {
            let m = held.remove(0);
            recv(obs, &mut rng, rx, rx_peer, &m);
        }
    }
    const { assert!(ROUNDS / 2 > MAX_RECEIVER_CHAINS) };
    for (i, m) in held.drain(..).enumerate() {
        // Round ROUNDS - 2 was Alice's, round ROUNDS - 1 Bob's.
        if i == 0 {
            recv(obs, &mut rng, &mut bob, "alice", &m);
        } else {
            recv(obs, &mut rng, &mut alice, "bob", &m);
        }
    }

    // A burst Bob sees only the end of: MAX_SKIPPED_KEYS keys stored, older ones evicted;
    // then two keys used from the middle of the store.
    let mut burst: Vec<Sent> = (0..BURST).map(|_| send(obs, &mut texts, &mut alice, "bob", 33)).collect();
    let last = burst.pop().unwrap();
    recv(obs, &mut rng, &mut bob, "alice", &last);
    for i in [BURST - 600, BURST - 30] {
        recv(obs, &mut rng, &mut bob, "alice", &burst[i]);
    }
    drop(burst);
    let r = send(obs, &mut texts, &mut bob, "alice", 70);
    recv(obs, &mut rng, &mut alice, "bob", &r);
    // A jump on the next chain evicts the oldest stored keys.
    let mut jump: Vec<Sent> = (0..30).map(|_| send(obs, &mut texts, &mut alice, "bob", 50)).collect();
    let last = jump.pop().unwrap();
    recv(obs, &mut rng, &mut bob, "alice", &last);
    recv(obs, &mut rng, &mut bob, "alice", &jump[7]);
    drop(jump);

    // A tampered message is refused; the genuine one still decrypts.
    let m = send(obs, &mut texts, &mut alice, "bob", 90);
    let mut bad = m.message.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(bob.decrypt("alice", &bad, &mut rng).is_err());
    let mut bad = m.message.clone();
    let mid = bad.len() - 40;
    bad[mid] ^= 1;
    assert!(bob.decrypt("alice", &bad, &mut rng).is_err());
    recv(obs, &mut rng, &mut bob, "alice", &m);

    // Digests, snapshots, imports.
    let mut key_bytes = Zeroizing::new([0u8; 32]);
    texts.fill_bytes(&mut key_bytes[..]);
    obs.secret("snapshot key", &key_bytes[..]);
    let key = SnapshotKey::new(*key_bytes);
    let _ = alice.state_digest();
    let before = bob.state_digest();
    let snapshot = bob.export(&key, &mut rng).expect("export");
    for at in [snapshot.len() - 1, snapshot.len() / 2, 40] {
        let mut bad = snapshot.clone();
        bad[at] ^= 1;
        assert!(Device::import(&key, &bad).is_err());
    }
    let mut bob2 = Device::import(&key, &snapshot).unwrap();
    drop(bob);
    obs.device(&bob2);
    assert_ne!(bob2.state_digest(), before, "an import starts a new sender epoch");
    let record = alice.export_session("bob", &key, &mut rng).unwrap();
    alice.import_session("bob", &key, &record).unwrap();
    obs.device(&alice);
    let m = send(obs, &mut texts, &mut alice, "bob", 45);
    recv(obs, &mut rng, &mut bob2, "alice", &m);
    let m = send(obs, &mut texts, &mut bob2, "alice", 45);
    recv(obs, &mut rng, &mut alice, "bob", &m);

    // A retry request: a new session from Bob's retry bundle (last-resort ML-KEM prekey).
    let lost = send(obs, &mut texts, &mut alice, "bob", 60);
    let request = bob2.retry_request("alice", alice.identity(), &lost.message, NOW).unwrap();
    let digest = alice.handle_retry_request("bob", &request, NOW, &mut rng).unwrap();
    assert_eq!(digest, Device::message_digest(&lost.message));
    obs.device(&alice);
    let m = send(obs, &mut texts, &mut alice, "bob", 60);
    recv(obs, &mut rng, &mut bob2, "alice", &m);
    let m = send(obs, &mut texts, &mut bob2, "alice", 60);
    recv(obs, &mut rng, &mut alice, "bob", &m);

    let (alice, bob2) = groups_and_channels(obs, &mut rng, &mut texts, alice, bob2, &key);
    attachments(obs, &mut rng, &mut texts);

    let digests = [alice.state_digest(), bob2.state_digest()];
    drop(alice);
    drop(bob2);
    digests
}

/// Registers an attachment's key and the AES-256-GCM key derived from it (docs/protocol.md
/// 14.2; the commitment is public, in the header).
fn attachment_key(obs: &mut Observer, key: &gochat_e2ee::attachment::AttachmentKey) {
    obs.secret("attachment key", key.as_bytes());
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), key.as_bytes())
        .expand(b"GoChat-E2EE v1 attachment keys", &mut okm[..])
        .unwrap();
    obs.secret("attachment AES key", &okm[..32]);
}

/// An attachment encrypted in small and large chunks, through the `Write` adapter and
/// one-shot, decrypted streaming (with a refused tampered chunk), through the `Read`
/// adapter, and one segment alone.
fn attachments(obs: &mut Observer, rng: &mut ChaCha20Rng, texts: &mut ChaCha20Rng) {
    use gochat_e2ee::attachment::{
        decrypt, decrypt_segment, encrypt, AttachmentHeader, DecryptingReader, Decryptor, EncryptingWriter, Encryptor,
        HEADER_BYTES,
    };
    use std::io::{Read, Write};
    let plaintext = text(obs, texts, 5_000);
    let mut e = Encryptor::with_segment_size(5_000, 1_024, "audio/ogg", Some("note.ogg"), rng).unwrap();
    let mut blob = Vec::new();
    for piece in plaintext.chunks(700) {
        blob.extend_from_slice(&e.update(piece).unwrap());
    }
    let (tail, pointer) = e.finish().unwrap();
    blob.extend_from_slice(&tail);
    attachment_key(obs, pointer.key());
    obs.secret("attachment pointer", &pointer.encode());
    let mut d = Decryptor::new(&pointer);
    let mut back = Zeroizing::new(Vec::with_capacity(plaintext.len()));
    back.extend_from_slice(&d.update(&blob[..HEADER_BYTES + 1_500]).unwrap());
    let mut bad = blob[HEADER_BYTES + 1_500..].to_vec();
    bad[2_000] ^= 1;
    assert!(d.update(&bad).is_err());
    back.extend_from_slice(&d.update(&blob[HEADER_BYTES + 1_500..]).unwrap());
    d.finish().unwrap();
    assert_eq!(back[..], plaintext[..]);
    let header = AttachmentHeader::decode(&blob[..HEADER_BYTES]).unwrap();
    let r = header.segment_range(2).unwrap();
    let part = decrypt_segment(&pointer, &blob[..HEADER_BYTES], 2, &blob[r.start as usize..r.end as usize]).unwrap();
    assert_eq!(part[..], plaintext[2_048..3_072]);
    let mut reader = DecryptingReader::new(&blob[..], &pointer);
    let mut read = Zeroizing::new(Vec::with_capacity(plaintext.len()));
    reader.read_to_end(&mut read).unwrap();
    assert_eq!(read[..], plaintext[..]);

    let big = text(obs, texts, 300 * 1024);
    let e = Encryptor::new(big.len() as u64, "video/mp4", None, rng).unwrap();
    let mut w = EncryptingWriter::new(Vec::new(), e);
    w.write_all(&big).unwrap();
    let (blob, pointer) = w.finish().unwrap();
    attachment_key(obs, pointer.key());
    assert_eq!(decrypt(&pointer, &blob).unwrap()[..], big[..]);
    let (blob, pointer) = encrypt(&big[..3_000], "text/plain", None, rng).unwrap();
    attachment_key(obs, pointer.key());
    assert_eq!(decrypt(&pointer, &blob).unwrap()[..], big[..3_000]);
}

/// A group with sender-key rotations and out-of-order messages, and a restricted channel
/// with out-of-order posts, a content-key rotation and a signing-key rotation, then an
/// export and import of both devices holding them.
fn groups_and_channels(
    obs: &mut Observer,
    rng: &mut ChaCha20Rng,
    texts: &mut ChaCha20Rng,
    mut alice: Device,
    mut bob: Device,
    key: &SnapshotKey,
) -> (Device, Device) {
    let member = GroupMember { name: "bob".into(), identity: *bob.identity(), admin: false };
    let change = alice.group_create(&[member], NOW, rng).unwrap();
    let gid = change.group_id;
    obs.device(&alice);
    let joined = bob.group_join(change.welcome.as_ref().unwrap(), NOW, rng).unwrap();
    obs.device(&bob);
    for o in &change.outgoing {
        let _ = bob.group_receive("alice", &o.message, rng).unwrap();
    }
    for o in &joined.outgoing {
        let _ = alice.group_receive("bob", &o.message, rng).unwrap();
    }
    obs.device(&alice);
    obs.device(&bob);
    alice.group_set_rotation_policy(&gid, RotationPolicy { max_messages: 4, max_age_secs: u64::MAX }).unwrap();
    let mut sent = Vec::new();
    for _ in 0..10 {
        let plaintext = text(obs, texts, 48);
        let s = alice.group_encrypt(&gid, &plaintext, NOW, rng).unwrap();
        obs.device(&alice);
        for o in &s.outgoing {
            let _ = bob.group_receive("alice", &o.message, rng).unwrap();
        }
        sent.push((s.message, plaintext));
    }
    // Newest first within each generation: skipped keys stored, then used.
    for (m, plaintext) in sent.iter().rev() {
        let got = Zeroizing::new(bob.group_decrypt("alice", m).unwrap().plaintext);
        assert_eq!(got[..], plaintext[..]);
        obs.device(&bob);
    }
    let plaintext = text(obs, texts, 48);
    let s = bob.group_encrypt(&gid, &plaintext, NOW, rng).unwrap();
    let got = Zeroizing::new(alice.group_decrypt("bob", &s.message).unwrap().plaintext);
    assert_eq!(got[..], plaintext[..]);
    obs.device(&alice);
    obs.device(&bob);

    let cid = alice.channel_create(ChannelKind::Restricted, rng).unwrap();
    let channel_key = alice.channel_public_key(&cid).unwrap();
    bob.channel_subscribe(cid, channel_key, ChannelKind::Restricted).unwrap();
    obs.device(&alice);
    let subscribers = ["bob".to_owned()];
    let (out, _) = alice.channel_send_key(&cid, &subscribers).unwrap();
    for o in &out {
        let _ = bob.receive_control("alice", &o.message, rng).unwrap();
    }
    obs.device(&bob);
    let mut read_posts = |alice: &mut Device, bob: &mut Device, obs: &mut Observer, n: usize| {
        let posts: Vec<_> = (0..n)
            .map(|_| {
                let body = text(obs, texts, 60);
                let post = alice.channel_announce(&cid, ContentType::Text, &body, NOW).unwrap();
                obs.device(alice);
                (post, body)
            })
            .collect();
        for (post, body) in &posts {
            let Received::Announcement(a) = bob.channel_receive(post, NOW).unwrap() else { panic!("not a post") };
            let got = Zeroizing::new(a.body);
            assert_eq!(got[..], body[..]);
            obs.device(bob);
        }
    };
    read_posts(&mut alice, &mut bob, obs, 5);
    let rekey = alice.channel_rotate_content_key(&cid, &subscribers, rng).unwrap();
    obs.device(&alice);
    for o in &rekey.outgoing {
        let _ = bob.receive_control("alice", &o.message, rng).unwrap();
    }
    obs.device(&bob);
    read_posts(&mut alice, &mut bob, obs, 3);
    let rotation = alice.channel_rotate_signing_key(&cid, NOW, rng).unwrap();
    obs.device(&alice);
    let _ = bob.channel_receive(&rotation, NOW).unwrap();
    let (out, _) = alice.channel_send_key(&cid, &subscribers).unwrap();
    for o in &out {
        let _ = bob.receive_control("alice", &o.message, rng).unwrap();
    }
    obs.device(&bob);
    read_posts(&mut alice, &mut bob, obs, 2);

    // Both devices, with their groups and channels, through a snapshot.
    let alice_snapshot = alice.export(key, rng).unwrap();
    let bob_snapshot = bob.export(key, rng).unwrap();
    drop(alice);
    drop(bob);
    let alice = Device::import(key, &alice_snapshot).unwrap();
    let bob = Device::import(key, &bob_snapshot).unwrap();
    obs.device(&alice);
    obs.device(&bob);
    (alice, bob)
}

/// The check itself works: an unwiped copy is found, on `dealloc` and on `realloc`, and a
/// wiped one is not.
fn self_test() {
    let secret = Zeroizing::new(wipe::sample("identity seed").unwrap());
    wipe::arm();
    drop(secret.to_vec());
    let mut grown = Vec::with_capacity(SECRET_BYTES);
    grown.extend_from_slice(&secret[..]);
    grown.reserve(4 * SECRET_BYTES);
    grown.zeroize();
    drop(grown);
    wipe::disarm();
    let r = wipe::take_report();
    let found: Vec<_> = r.findings.iter().flatten().map(|f| (f.label, f.via_realloc)).collect();
    assert_eq!(found, [("identity seed", false), ("identity seed", true)]);
}

#[test]
fn no_freed_block_holds_a_secret() {
    let mut collect = Observer { phase: Phase::Collect, unregistered: 0 };
    let first = conversation(&mut collect);
    assert!(!wipe::overflowed(), "registry full");
    let registered = wipe::secret_count();
    assert!(registered > 2 * BURST, "only {registered} secrets registered");
    let _ = wipe::take_report();
    self_test();

    let mut check = Observer { phase: Phase::Check, unregistered: 0 };
    wipe::arm();
    let second = conversation(&mut check);
    wipe::disarm();
    let report = wipe::take_report();
    assert_eq!(first, second, "the two runs diverged");
    assert_eq!(check.unregistered, 0, "the check run held secrets the collect run did not register");
    assert!(report.scanned_blocks > 10_000, "scanned only {} blocks", report.scanned_blocks);

    let mut summary = String::new();
    for c in report.by_label.iter().flatten() {
        summary += &format!("\n  {}: {} (of which {} in the old block of a realloc)", c.label, c.found, c.via_realloc);
    }
    for f in report.findings.iter().flatten() {
        summary += &format!(
            "\n  - {} at offset {} of a freed {}-byte block{}",
            f.label,
            f.offset,
            f.block_size,
            if f.via_realloc { " (realloc)" } else { "" }
        );
    }
    assert!(
        report.found == 0,
        "{} secrets found in freed memory ({} secrets registered, {} blocks / {} bytes scanned):{summary}",
        report.found,
        registered,
        report.scanned_blocks,
        report.scanned_bytes
    );
    eprintln!(
        "no secret in {} freed blocks ({} bytes); {registered} secrets registered",
        report.scanned_blocks, report.scanned_bytes
    );
}
