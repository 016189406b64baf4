#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Whole conversations between devices: ordering, loss, ratchet steps, simultaneous
//! starts, snapshots, archived sessions, healing, retry requests, prekey reuse and the
//! protocol's bounds.

mod common;

use common::*;
use gochat_e2ee::limits::{
    MAX_FORWARD_JUMP, MAX_PLAINTEXT_BYTES, MAX_RECEIVER_CHAINS, MAX_RETIRED_PREKEYS, MAX_SKIPPED_KEYS,
    PREKEY_GRACE_SECS, RETRY_WINDOW,
};
use gochat_e2ee::{ChangeReason, Device, ErrorCode, IdentityEvent};

fn text(i: usize) -> Vec<u8> {
    // Varying lengths, across padding blocks.
    let mut t = format!("message {i} ").into_bytes();
    t.resize(t.len() + (i * 37) % 150, b'x');
    t
}

#[test]
fn in_order_conversation_decrypts_every_message() {
    let Pair { mut alice, mut bob, mut rng } = pair(1);
    for round in 0..10 {
        for i in 0..round % 4 + 1 {
            exchange(&mut alice, "bob", &mut bob, "alice", &text(round * 10 + i), &mut rng);
        }
        for i in 0..round % 3 + 1 {
            exchange(&mut bob, "alice", &mut alice, "bob", &text(round * 10 + i + 5), &mut rng);
        }
    }
    exchange(&mut alice, "bob", &mut bob, "alice", b"", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", &vec![0xA5; MAX_PLAINTEXT_BYTES], &mut rng);
}

#[test]
fn shuffled_delivery_decrypts_every_message_once() {
    let Pair { mut alice, mut bob, mut rng } = pair(2);
    let mut in_flight = Vec::new();
    for chain in 0..3 {
        let batch: Vec<_> =
            (0..10).map(|i| (text(chain * 10 + i), alice.encrypt("bob", &text(chain * 10 + i)).unwrap())).collect();
        // Bob sees one message of each chain, so his reply moves Alice to a new chain.
        let (pt, m) = &batch[7];
        assert_eq!(&bob.decrypt("alice", m, &mut rng).unwrap().plaintext, pt);
        exchange(&mut bob, "alice", &mut alice, "bob", b"ack", &mut rng);
        in_flight.extend(batch.into_iter().enumerate().filter(|(i, _)| *i != 7).map(|(_, x)| x));
    }
    let keys: std::collections::BTreeSet<_> = in_flight.iter().map(|(_, m)| ratchet_key(m)).collect();
    assert_eq!(keys.len(), 3, "three sending chains");
    shuffle(&mut in_flight, &mut rng);
    for (pt, m) in &in_flight {
        assert_eq!(&bob.decrypt("alice", m, &mut rng).unwrap().plaintext, pt);
    }
    for (_, m) in &in_flight {
        assert_refused(&mut bob, "alice", m, &mut rng, ErrorCode::Duplicate);
    }
    exchange(&mut alice, "bob", &mut bob, "alice", b"still fine", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"yes", &mut rng);
}

#[test]
fn lost_messages_do_not_block_the_conversation() {
    let Pair { mut alice, mut bob, mut rng } = pair(3);
    let mut lost = Vec::new();
    for round in 0..8 {
        for i in 0..5 {
            let t = text(round * 100 + i);
            let m = alice.encrypt("bob", &t).unwrap();
            if (round + i) % 3 == 0 {
                lost.push(m);
            } else {
                assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, t);
            }
        }
        for i in 0..3 {
            let t = text(round * 100 + 50 + i);
            let m = bob.encrypt("alice", &t).unwrap();
            if (round * 2 + i) % 4 == 1 {
                lost.push(m);
            } else {
                assert_eq!(alice.decrypt("bob", &m, &mut rng).unwrap().plaintext, t);
            }
        }
    }
    assert!(lost.len() >= 10);
    exchange(&mut alice, "bob", &mut bob, "alice", b"after losses", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"ok", &mut rng);
}

#[test]
fn ping_pong_steps_the_dh_ratchet_on_every_message() {
    let Pair { mut alice, mut bob, mut rng } = pair(4);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..20 {
        let a = exchange(&mut alice, "bob", &mut bob, "alice", &text(i), &mut rng);
        let b = exchange(&mut bob, "alice", &mut alice, "bob", &text(i + 1000), &mut rng);
        assert!(seen.insert(ratchet_key(&a)), "Alice reused a ratchet key");
        assert!(seen.insert(ratchet_key(&b)), "Bob reused a ratchet key");
        // Every message starts a new chain.
        assert_eq!(header(&a).1, 0);
        assert_eq!(header(&b).1, 0);
    }
}

/// Both sides initiate from each other's bundles and send before receiving anything.
fn simultaneous_initiation(seed: u64) -> bool {
    let mut rng = rng(seed);
    let mut alice = device("alice", 2, &mut rng);
    let mut bob = device("bob", 2, &mut rng);
    let ab = bundle(&mut bob);
    let ba = bundle(&mut alice);
    let _ = alice.initiate("bob", &ab, &mut rng).unwrap();
    let _ = bob.initiate("alice", &ba, &mut rng).unwrap();
    let a1 = alice.encrypt("bob", b"a1").unwrap();
    let a2 = alice.encrypt("bob", b"a2").unwrap();
    let b1 = bob.encrypt("alice", b"b1").unwrap();
    let b2 = bob.encrypt("alice", b"b2").unwrap();
    for m in [&a1, &a2, &b1, &b2] {
        assert_eq!(m[0], PREKEY_MESSAGE);
    }
    let (ka, kb) = (base_key(&a1), base_key(&b1));
    assert_eq!(base_key(&a2), ka);
    assert_eq!(base_key(&b2), kb);
    // Crossing delivery: each side receives the other's first message.
    assert_eq!(bob.decrypt("alice", &a1, &mut rng).unwrap().plaintext, b"a1");
    assert_eq!(alice.decrypt("bob", &b1, &mut rng).unwrap().plaintext, b"b1");
    assert_eq!(alice.session_record("bob").unwrap().archived_len(), 1);
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 1);
    // Both now use the session with the lower base key: its initiator still sends
    // prekey messages on it (same base key), the other side already ratchet messages.
    let a3 = alice.encrypt("bob", b"a3").unwrap();
    let b3 = bob.encrypt("alice", b"b3").unwrap();
    let alice_lower = ka < kb;
    if alice_lower {
        assert_eq!((a3[0], b3[0]), (PREKEY_MESSAGE, RATCHET_MESSAGE));
        assert_eq!(base_key(&a3), ka);
    } else {
        assert_eq!((a3[0], b3[0]), (RATCHET_MESSAGE, PREKEY_MESSAGE));
        assert_eq!(base_key(&b3), kb);
    }
    // The rest arrives crossed and late; nothing is lost.
    assert_eq!(alice.decrypt("bob", &b3, &mut rng).unwrap().plaintext, b"b3");
    assert_eq!(bob.decrypt("alice", &a3, &mut rng).unwrap().plaintext, b"a3");
    assert_eq!(bob.decrypt("alice", &a2, &mut rng).unwrap().plaintext, b"a2");
    assert_eq!(alice.decrypt("bob", &b2, &mut rng).unwrap().plaintext, b"b2");
    for _ in 0..3 {
        let a = exchange(&mut alice, "bob", &mut bob, "alice", b"ping", &mut rng);
        let b = exchange(&mut bob, "alice", &mut alice, "bob", b"pong", &mut rng);
        assert_eq!((a[0], b[0]), (RATCHET_MESSAGE, RATCHET_MESSAGE));
    }
    // Crossing ratchet messages on the agreed session.
    let a = alice.encrypt("bob", b"x").unwrap();
    let b = bob.encrypt("alice", b"y").unwrap();
    assert_eq!(bob.decrypt("alice", &a, &mut rng).unwrap().plaintext, b"x");
    assert_eq!(alice.decrypt("bob", &b, &mut rng).unwrap().plaintext, b"y");
    assert_eq!(alice.session_record("bob").unwrap().archived_len(), 1);
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 1);
    for m in [&a1, &a2, &a3] {
        assert_refused(&mut bob, "alice", m, &mut rng, ErrorCode::Duplicate);
    }
    for m in [&b1, &b2, &b3] {
        assert_refused(&mut alice, "bob", m, &mut rng, ErrorCode::Duplicate);
    }
    alice_lower
}

#[test]
fn simultaneous_initiation_converges_on_one_session() {
    let mut orders = std::collections::BTreeSet::new();
    for seed in 10..16 {
        orders.insert(simultaneous_initiation(seed));
    }
    assert_eq!(orders.len(), 2, "both base-key orders were exercised");
}

#[test]
fn simultaneous_initiation_with_reply_before_the_crossing_message_still_converges() {
    let mut rng = rng(17);
    let mut alice = device("alice", 2, &mut rng);
    let mut bob = device("bob", 2, &mut rng);
    let ab = bundle(&mut bob);
    let ba = bundle(&mut alice);
    let _ = alice.initiate("bob", &ab, &mut rng).unwrap();
    let _ = bob.initiate("alice", &ba, &mut rng).unwrap();
    let a1 = alice.encrypt("bob", b"a1").unwrap();
    let b1 = bob.encrypt("alice", b"b1").unwrap();
    // Bob gets Alice's start first and answers before Alice sees his start.
    assert_eq!(bob.decrypt("alice", &a1, &mut rng).unwrap().plaintext, b"a1");
    let r = bob.encrypt("alice", b"reply").unwrap();
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"reply");
    assert_eq!(alice.decrypt("bob", &b1, &mut rng).unwrap().plaintext, b"b1");
    for i in 0..4 {
        let a = exchange(&mut alice, "bob", &mut bob, "alice", &text(i), &mut rng);
        let b = exchange(&mut bob, "alice", &mut alice, "bob", &text(i + 9), &mut rng);
        assert_eq!((a[0], b[0]), (RATCHET_MESSAGE, RATCHET_MESSAGE));
    }
    assert_eq!(alice.session_record("bob").unwrap().archived_len(), 1);
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 1);
}

#[test]
fn device_snapshot_mid_conversation_continues() {
    let Pair { mut alice, mut bob, mut rng } = pair(5);
    let old = exchange(&mut alice, "bob", &mut bob, "alice", b"before", &mut rng);
    let to_bob: Vec<_> = (0..4).map(|i| (text(i), alice.encrypt("bob", &text(i)).unwrap())).collect();
    let to_alice: Vec<_> = (0..3).map(|i| (text(i + 50), bob.encrypt("alice", &text(i + 50)).unwrap())).collect();
    let key = snapshot_key(7);
    let a_snap = alice.export(&key, &mut rng).expect("export");
    let b_snap = bob.export(&key, &mut rng).expect("export");
    let mut alice = Device::import(&key, &a_snap).unwrap();
    let mut bob = Device::import(&key, &b_snap).unwrap();
    assert_eq!(alice.user_id(), "alice");
    let _ = reload(&bob, &mut rng);
    for (pt, m) in to_bob.iter().rev() {
        assert_eq!(&bob.decrypt("alice", m, &mut rng).unwrap().plaintext, pt);
    }
    for (pt, m) in &to_alice {
        assert_eq!(&alice.decrypt("bob", m, &mut rng).unwrap().plaintext, pt);
    }
    assert_refused(&mut bob, "alice", &old, &mut rng, ErrorCode::Duplicate);
    for i in 0..3 {
        exchange(&mut alice, "bob", &mut bob, "alice", &text(i), &mut rng);
        exchange(&mut bob, "alice", &mut alice, "bob", &text(i), &mut rng);
    }
    // Each snapshot is freshly salted.
    assert_ne!(alice.export(&key, &mut rng).expect("export"), alice.export(&key, &mut rng).expect("export"));
}

#[test]
fn session_record_snapshot_round_trips() {
    let Pair { mut alice, mut bob, mut rng } = pair(6);
    let key = snapshot_key(9);
    let in_flight = alice.encrypt("bob", b"in flight").unwrap();
    let snap = bob.export_session("alice", &key, &mut rng).unwrap();
    let before = bob.state_digest();
    bob.import_session("alice", &key, &snap).unwrap();
    assert_ne!(bob.state_digest(), before, "a re-imported record starts a new sender epoch");
    // A clone that lost its record gets it back and continues.
    let mut bob2 = Device::from_account("bob", bob.account().clone());
    assert!(bob2.session_record("alice").is_none());
    bob2.import_session("alice", &key, &snap).unwrap();
    assert_eq!(bob2.decrypt("alice", &in_flight, &mut rng).unwrap().plaintext, b"in flight");
    exchange(&mut bob2, "alice", &mut alice, "bob", b"from the restored record", &mut rng);
    exchange(&mut alice, "bob", &mut bob2, "alice", b"ok", &mut rng);
    // Kinds are not interchangeable, and only existing records export.
    assert_eq!(Device::import(&key, &snap).unwrap_err().code(), ErrorCode::SnapshotWrongKind);
    let dev = bob.export(&key, &mut rng).expect("export");
    let before = bob.state_digest();
    assert_eq!(bob.import_session("alice", &key, &dev).unwrap_err().code(), ErrorCode::SnapshotWrongKind);
    assert_eq!(bob.state_digest(), before);
    assert_eq!(bob.export_session("carol", &key, &mut rng).unwrap_err().code(), ErrorCode::NoSession);
}

#[test]
fn message_on_archived_session_decrypts_and_becomes_current() {
    let Pair { mut alice, mut bob, mut rng } = pair(7);
    let late = alice.encrypt("bob", b"sent on the first session").unwrap();
    assert_eq!(late[0], RATCHET_MESSAGE);
    // Bob starts a second session; it is current and unanswered.
    let ab = bundle(&mut alice);
    let _ = bob.initiate("alice", &ab, &mut rng).unwrap();
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 1);
    assert_eq!(bob.encrypt("alice", b"probe").unwrap()[0], PREKEY_MESSAGE);
    // Alice's message on the archived session still decrypts, and makes it current again.
    assert_eq!(bob.decrypt("alice", &late, &mut rng).unwrap().plaintext, b"sent on the first session");
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 1);
    let m = bob.encrypt("alice", b"on the first session").unwrap();
    assert_eq!(m[0], RATCHET_MESSAGE);
    assert_eq!(alice.decrypt("bob", &m, &mut rng).unwrap().plaintext, b"on the first session");
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
}

#[test]
fn message_on_a_known_chain_of_an_archived_session_becomes_current() {
    let Pair { mut alice, mut bob, mut rng } = pair(8);
    let m1 = alice.encrypt("bob", b"m1").unwrap();
    let m2 = alice.encrypt("bob", b"m2").unwrap();
    assert_eq!(bob.decrypt("alice", &m1, &mut rng).unwrap().plaintext, b"m1");
    let ab = bundle(&mut alice);
    let _ = bob.initiate("alice", &ab, &mut rng).unwrap();
    assert_eq!(bob.encrypt("alice", b"probe").unwrap()[0], PREKEY_MESSAGE);
    assert_eq!(bob.decrypt("alice", &m2, &mut rng).unwrap().plaintext, b"m2");
    let r = bob.encrypt("alice", b"x").unwrap();
    assert_eq!(r[0], RATCHET_MESSAGE);
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"x");
}

#[test]
fn peer_with_a_new_identity_heals_with_a_new_prekey_message() {
    let Pair { mut alice, bob, mut rng } = pair(9);
    let old_identity = *bob.identity();
    drop(bob);
    let mut bob = device("bob", 2, &mut rng);
    assert_ne!(*bob.identity(), old_identity);
    let ab = bundle(&mut alice);
    let _ = bob.initiate("alice", &ab, &mut rng).unwrap();
    let m = bob.encrypt("alice", b"I lost everything").unwrap();
    assert_eq!(m[0], PREKEY_MESSAGE);
    let got = alice.decrypt("bob", &m, &mut rng).unwrap();
    assert_eq!(got.plaintext, b"I lost everything");
    assert_eq!(got.sender, *bob.identity());
    assert_eq!(
        got.identity,
        IdentityEvent::Changed { previous: old_identity, approved: false, reason: ChangeReason::AwaitingApproval }
    );
    // Not current until Alice's app approves: nothing goes to the new identity.
    let rec = alice.session_record("bob").unwrap();
    assert_eq!(rec.remote_identity(), Some(&old_identity));
    assert_eq!(alice.encrypt("bob", b"x").unwrap_err().code(), ErrorCode::IdentityChanged);
    alice.approve_identity("bob", bob.identity()).unwrap();
    let rec = alice.session_record("bob").unwrap();
    assert_eq!(rec.remote_identity(), Some(bob.identity()));
    assert_eq!(rec.archived_len(), 1);
    let r = exchange(&mut alice, "bob", &mut bob, "alice", b"welcome back", &mut rng);
    assert_eq!(r[0], RATCHET_MESSAGE);
    exchange(&mut bob, "alice", &mut alice, "bob", b"thanks", &mut rng);
}

#[test]
fn peer_restored_from_an_old_backup_heals_with_a_new_prekey_message() {
    let Pair { mut alice, mut bob, mut rng } = pair(10);
    let key = snapshot_key(3);
    let backup = bob.export(&key, &mut rng).expect("export");
    for i in 0..5 {
        exchange(&mut alice, "bob", &mut bob, "alice", &text(i), &mut rng);
        exchange(&mut bob, "alice", &mut alice, "bob", &text(i), &mut rng);
    }
    let mut bob = Device::import(&key, &backup).unwrap();
    // The restored device cannot read Alice's current chain.
    let m = alice.encrypt("bob", b"lost on the restored device").unwrap();
    let code = refuse_any(&mut bob, "alice", &m, &mut rng);
    assert_eq!(code, ErrorCode::AuthenticationFailed);
    // It starts over, with the same identity.
    let ab = bundle(&mut alice);
    let _ = bob.initiate("alice", &ab, &mut rng).unwrap();
    let p = bob.encrypt("alice", b"restored").unwrap();
    assert_eq!(p[0], PREKEY_MESSAGE);
    assert_eq!(alice.decrypt("bob", &p, &mut rng).unwrap().plaintext, b"restored");
    assert_eq!(alice.session_record("bob").unwrap().archived_len(), 1);
    let r = exchange(&mut alice, "bob", &mut bob, "alice", b"on the new session", &mut rng);
    assert_eq!(r[0], RATCHET_MESSAGE);
    exchange(&mut bob, "alice", &mut alice, "bob", b"good", &mut rng);
}

fn refuse_retry(alice: &mut Device, peer: &str, req: &[u8], code: ErrorCode, rng: &mut rand_chacha::ChaCha20Rng) {
    let before = alice.state_digest();
    assert_eq!(alice.handle_retry_request(peer, req, NOW, rng).unwrap_err().code(), code);
    assert_eq!(alice.state_digest(), before);
}

#[test]
fn retry_request_restarts_the_session_and_the_message_is_redelivered() {
    let Pair { mut alice, mut bob, mut rng } = pair(11);
    let key = snapshot_key(4);
    let backup = bob.export(&key, &mut rng).expect("export");
    for i in 0..3 {
        exchange(&mut alice, "bob", &mut bob, "alice", &text(i), &mut rng);
        exchange(&mut bob, "alice", &mut alice, "bob", &text(i), &mut rng);
    }
    let mut bob = Device::import(&key, &backup).unwrap();
    let plaintext = b"please read me".to_vec();
    let failed = alice.encrypt("bob", &plaintext).unwrap();
    let before = bob.state_digest();
    let err = bob.decrypt("alice", &failed, &mut rng).unwrap_err();
    assert_eq!(bob.state_digest(), before);
    assert!(err.retry_may_help(), "{err}");
    let alice_identity = *alice.identity();
    let request = bob.retry_request("alice", &alice_identity, &failed, NOW).unwrap();

    // Refusals first, each leaving Alice unchanged.
    let mut rng2 = rng.clone();
    let mut carol = device("carol", 1, &mut rng2);
    let forged = carol.retry_request("alice", &alice_identity, &failed, NOW).unwrap();
    refuse_retry(&mut alice, "bob", &forged, ErrorCode::UntrustedIdentity, &mut rng);
    refuse_retry(&mut alice, "carol", &request, ErrorCode::UntrustedIdentity, &mut rng);
    let misaddressed = bob.retry_request("alice", carol.identity(), &failed, NOW).unwrap();
    refuse_retry(&mut alice, "bob", &misaddressed, ErrorCode::WrongRecipient, &mut rng);
    let unknown = bob.retry_request("alice", &alice_identity, b"never sent", NOW).unwrap();
    refuse_retry(&mut alice, "bob", &unknown, ErrorCode::UnknownMessage, &mut rng);

    let digest = alice.handle_retry_request("bob", &request, NOW, &mut rng).unwrap();
    assert_eq!(digest, Device::message_digest(&failed));
    let resent = alice.encrypt("bob", &plaintext).unwrap();
    assert_eq!(resent[0], PREKEY_MESSAGE);
    assert_eq!(bob.decrypt("alice", &resent, &mut rng).unwrap().plaintext, plaintext);
    // Honoured once only.
    refuse_retry(&mut alice, "bob", &request, ErrorCode::UnknownMessage, &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"got it", &mut rng);
    exchange(&mut alice, "bob", &mut bob, "alice", b":)", &mut rng);
}

#[test]
fn retry_request_for_a_message_outside_the_window_is_refused() {
    let Pair { mut alice, mut bob, mut rng } = pair(12);
    let first = alice.encrypt("bob", b"old").unwrap();
    for _ in 0..RETRY_WINDOW {
        alice.encrypt("bob", b"newer").unwrap();
    }
    let last = alice.encrypt("bob", b"newest").unwrap();
    let alice_identity = *alice.identity();
    let old = bob.retry_request("alice", &alice_identity, &first, NOW).unwrap();
    refuse_retry(&mut alice, "bob", &old, ErrorCode::UnknownMessage, &mut rng);
    let recent = bob.retry_request("alice", &alice_identity, &last, NOW).unwrap();
    assert_eq!(alice.handle_retry_request("bob", &recent, NOW, &mut rng).unwrap(), Device::message_digest(&last));
}

#[test]
fn prekey_message_retransmission_decrypts_and_replay_is_duplicate() {
    let mut rng = rng(13);
    let mut alice = device("alice", 1, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    let b = bundle(&mut bob);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let p1 = alice.encrypt("bob", b"one").unwrap();
    let p2 = alice.encrypt("bob", b"two").unwrap();
    let p3 = alice.encrypt("bob", b"three").unwrap();
    for p in [&p1, &p2, &p3] {
        assert_eq!(p[0], PREKEY_MESSAGE);
        assert_eq!(base_key(p), base_key(&p1));
    }
    assert_eq!(bob.decrypt("alice", &p2, &mut rng).unwrap().plaintext, b"two");
    assert_eq!(bob.decrypt("alice", &p1, &mut rng).unwrap().plaintext, b"one");
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 0, "one session, not three");
    assert_refused(&mut bob, "alice", &p1, &mut rng, ErrorCode::Duplicate);
    assert_refused(&mut bob, "alice", &p2, &mut rng, ErrorCode::Duplicate);
    assert_eq!(bob.decrypt("alice", &p3, &mut rng).unwrap().plaintext, b"three");
    assert_refused(&mut bob, "alice", &p3, &mut rng, ErrorCode::Duplicate);
    exchange(&mut bob, "alice", &mut alice, "bob", b"reply", &mut rng);
    let m = exchange(&mut alice, "bob", &mut bob, "alice", b"now ratchet", &mut rng);
    assert_eq!(m[0], RATCHET_MESSAGE);
    // Still a duplicate after the session moved on.
    assert_refused(&mut bob, "alice", &p1, &mut rng, ErrorCode::Duplicate);
}

#[test]
fn another_session_start_reusing_a_consumed_one_time_prekey_is_refused() {
    let mut rng = rng(14);
    let mut alice = device("alice", 1, &mut rng);
    let mut bob = device("bob", 2, &mut rng);
    let b = bundle(&mut bob);
    assert!(b.one_time_prekey().is_some());
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let p = alice.encrypt("bob", b"first").unwrap();
    assert_eq!(bob.decrypt("alice", &p, &mut rng).unwrap().plaintext, b"first");
    // The same bundle again: a different base key, the same (consumed) one-time prekey.
    let mut mallory = device("mallory", 0, &mut rng);
    let _ = mallory.initiate("bob", &b, &mut rng).unwrap();
    let q = mallory.encrypt("bob", b"second").unwrap();
    assert_ne!(base_key(&q), base_key(&p));
    assert_refused(&mut bob, "mallory", &q, &mut rng, ErrorCode::OneTimePreKeyReused);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let q = alice.encrypt("bob", b"again").unwrap();
    assert_refused(&mut bob, "alice", &q, &mut rng, ErrorCode::OneTimePreKeyReused);
    // A replay of the consumed start under another name is refused too.
    assert_refused(&mut bob, "mallory", &p, &mut rng, ErrorCode::OneTimePreKeyReused);
}

#[test]
fn another_session_start_reusing_a_consumed_pq_prekey_is_refused() {
    let mut rng = rng(15);
    let mut alice = device("alice", 0, &mut rng);
    let mut bob = Device::new("bob", NOW, &mut rng);
    bob.account_mut().generate_pq_prekeys(1, NOW, &mut rng).unwrap();
    let b = bundle(&mut bob);
    assert!(b.one_time_prekey().is_none());
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let p = alice.encrypt("bob", b"first").unwrap();
    assert_eq!(bob.decrypt("alice", &p, &mut rng).unwrap().plaintext, b"first");
    let mut mallory = device("mallory", 0, &mut rng);
    let _ = mallory.initiate("bob", &b, &mut rng).unwrap();
    let q = mallory.encrypt("bob", b"second").unwrap();
    assert_refused(&mut bob, "mallory", &q, &mut rng, ErrorCode::PqPreKeyReused);
}

#[test]
fn last_resort_reuse_is_accepted_but_replay_is_refused() {
    let mut rng = rng(16);
    let mut alice = device("alice", 0, &mut rng);
    let mut carol = device("carol", 0, &mut rng);
    let mut bob = Device::new("bob", NOW, &mut rng);
    let b = bundle(&mut bob);
    assert!(b.one_time_prekey().is_none());
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let p = alice.encrypt("bob", b"from alice").unwrap();
    assert_eq!(bob.decrypt("alice", &p, &mut rng).unwrap().plaintext, b"from alice");
    // Many starts may use the last-resort prekey ...
    let _ = carol.initiate("bob", &b, &mut rng).unwrap();
    let q = carol.encrypt("bob", b"from carol").unwrap();
    assert_eq!(bob.decrypt("carol", &q, &mut rng).unwrap().plaintext, b"from carol");
    // ... but a replayed combination is refused wherever it is delivered.
    assert_refused(&mut bob, "mallory", &p, &mut rng, ErrorCode::LastResortReplay);
    assert_refused(&mut bob, "mallory", &q, &mut rng, ErrorCode::LastResortReplay);
    // On the session it started, a replay is just a duplicate.
    assert_refused(&mut bob, "alice", &p, &mut rng, ErrorCode::Duplicate);
    // Still refused after a snapshot round trip (the use records are kept).
    let mut bob = reload(&bob, &mut rng);
    assert_refused(&mut bob, "mallory", &p, &mut rng, ErrorCode::LastResortReplay);
    exchange(&mut bob, "alice", &mut alice, "bob", b"hi alice", &mut rng);
    exchange(&mut bob, "carol", &mut carol, "bob", b"hi carol", &mut rng);
}

#[test]
fn signed_prekey_rotation_keeps_the_old_key_for_late_starts() {
    let mut rng = rng(17);
    let mut alice = device("alice", 0, &mut rng);
    let mut bob = device("bob", 8, &mut rng);
    let old = bundle(&mut bob);
    bob.account_mut().rotate_signed_prekey(NOW + 10, &mut rng).unwrap();
    let new = bundle(&mut bob);
    assert_ne!(old.signed_prekey().id, new.signed_prekey().id);
    let _ = alice.initiate("bob", &old, &mut rng).unwrap();
    let p = alice.encrypt("bob", b"late start").unwrap();
    assert_eq!(bob.decrypt("alice", &p, &mut rng).unwrap().plaintext, b"late start");
    exchange(&mut bob, "alice", &mut alice, "bob", b"works", &mut rng);

    // After the grace period the retired key is gone.
    let stale = bundle(&mut bob);
    bob.account_mut().rotate_signed_prekey(NOW + 20, &mut rng).unwrap();
    let mut carol = device("carol", 0, &mut rng);
    let _ = carol.initiate("bob", &stale, &mut rng).unwrap();
    let q = carol.encrypt("bob", b"too late").unwrap();
    bob.account_mut().expire_prekeys(NOW + 20 + PREKEY_GRACE_SECS);
    let mut bob_in_grace = fork(&bob, &mut rng);
    assert_eq!(bob_in_grace.decrypt("carol", &q, &mut rng).unwrap().plaintext, b"too late");
    bob.account_mut().expire_prekeys(NOW + 21 + PREKEY_GRACE_SECS);
    assert_refused(&mut bob, "carol", &q, &mut rng, ErrorCode::UnknownSignedPreKey);

    // At most MAX_RETIRED_PREKEYS are kept.
    let mut dave = device("dave", 0, &mut rng);
    let first = bundle(&mut bob);
    let _ = dave.initiate("bob", &first, &mut rng).unwrap();
    let d = dave.encrypt("bob", b"d").unwrap();
    for i in 0..MAX_RETIRED_PREKEYS as u64 {
        bob.account_mut().rotate_signed_prekey(NOW + PREKEY_GRACE_SECS + 30 + i, &mut rng).unwrap();
    }
    let mut kept = fork(&bob, &mut rng);
    assert_eq!(kept.decrypt("dave", &d, &mut rng).unwrap().plaintext, b"d");
    bob.account_mut().rotate_signed_prekey(NOW + PREKEY_GRACE_SECS + 40, &mut rng).unwrap();
    assert_refused(&mut bob, "dave", &d, &mut rng, ErrorCode::UnknownSignedPreKey);
    let err = bob.decrypt("dave", &d, &mut rng).unwrap_err();
    assert!(err.retry_may_help());
}

#[test]
fn skipped_keys_are_bounded_and_the_oldest_are_evicted() {
    let Pair { mut alice, mut bob, mut rng } = pair(18);
    let extra = 100usize;
    let n = MAX_SKIPPED_KEYS + extra;
    let chain1: Vec<_> = (0..=n).map(|i| alice.encrypt("bob", &(i as u32).to_be_bytes()).unwrap()).collect();
    // Receiving the last one skips n keys; only the newest MAX_SKIPPED_KEYS are stored.
    assert_eq!(bob.decrypt("alice", &chain1[n], &mut rng).unwrap().plaintext, (n as u32).to_be_bytes());
    // Keys beyond the bound were never kept: those messages are reported lost, not duplicates.
    assert_all_refused(&mut bob, "alice", &chain1[..extra], &mut rng, ErrorCode::MessageLost);
    assert_eq!(bob.decrypt("alice", &chain1[extra], &mut rng).unwrap().plaintext, (extra as u32).to_be_bytes());
    // MAX_SKIPPED_KEYS - 1 stored now; skipping 10 more on a new chain evicts the 9 oldest.
    exchange(&mut bob, "alice", &mut alice, "bob", b"step", &mut rng);
    let chain2: Vec<_> = (0..=10u32).map(|i| alice.encrypt("bob", &i.to_be_bytes()).unwrap()).collect();
    assert_ne!(ratchet_key(&chain2[0]), ratchet_key(&chain1[0]));
    assert_eq!(bob.decrypt("alice", &chain2[10], &mut rng).unwrap().plaintext, 10u32.to_be_bytes());
    assert_all_refused(&mut bob, "alice", &chain1[extra + 1..extra + 10], &mut rng, ErrorCode::MessageLost);
    for (i, m) in chain1.iter().enumerate().take(n).skip(extra + 10) {
        assert_eq!(bob.decrypt("alice", m, &mut rng).unwrap().plaintext, (i as u32).to_be_bytes());
    }
    for (i, m) in chain2.iter().enumerate().take(10) {
        assert_eq!(bob.decrypt("alice", m, &mut rng).unwrap().plaintext, (i as u32).to_be_bytes());
    }
    let lost: Vec<_> = chain1[..extra].iter().chain(&chain1[extra + 1..extra + 10]).cloned().collect();
    assert_all_refused(&mut bob, "alice", &lost, &mut rng, ErrorCode::MessageLost);
    let received: Vec<_> = chain1[extra..=extra].iter().chain(&chain1[extra + 10..]).chain(&chain2).cloned().collect();
    assert_all_refused(&mut bob, "alice", &received, &mut rng, ErrorCode::Duplicate);
}

#[test]
fn forward_jump_is_bounded() {
    let Pair { mut alice, bob, mut rng } = pair(19);
    let jump = MAX_FORWARD_JUMP as usize;
    // A new chain for Alice (a DH step on Bob's side for its first message).
    let mut bob = bob;
    exchange(&mut bob, "alice", &mut alice, "bob", b"step", &mut rng);
    let msgs: Vec<_> = (0..=jump + 2).map(|i| alice.encrypt("bob", &(i as u32).to_be_bytes()).unwrap()).collect();
    // On a DH step: counter MAX_FORWARD_JUMP + 1 is too far, MAX_FORWARD_JUMP is fine.
    let mut b1 = fork(&bob, &mut rng);
    assert_refused(&mut b1, "alice", &msgs[jump + 1], &mut rng, ErrorCode::TooFarAhead);
    assert_eq!(b1.decrypt("alice", &msgs[jump], &mut rng).unwrap().plaintext, (jump as u32).to_be_bytes());
    // On a known chain (next counter 1): 1 + MAX_FORWARD_JUMP + 1 is too far.
    let mut b2 = bob;
    assert_eq!(b2.decrypt("alice", &msgs[0], &mut rng).unwrap().plaintext, 0u32.to_be_bytes());
    assert_refused(&mut b2, "alice", &msgs[jump + 2], &mut rng, ErrorCode::TooFarAhead);
    let err = b2.decrypt("alice", &msgs[jump + 2], &mut rng).unwrap_err();
    assert!(err.retry_may_help());
    assert_eq!(b2.decrypt("alice", &msgs[jump + 1], &mut rng).unwrap().plaintext, ((jump + 1) as u32).to_be_bytes());
    // The newest MAX_SKIPPED_KEYS of the skipped ones are still readable.
    assert_eq!(b2.decrypt("alice", &msgs[jump], &mut rng).unwrap().plaintext, (jump as u32).to_be_bytes());
    // Older ones were never kept: reported lost (never silently dropped as duplicates).
    assert_refused(&mut b2, "alice", &msgs[1], &mut rng, ErrorCode::MessageLost);
}

#[test]
fn receiver_chains_are_bounded() {
    let Pair { mut alice, mut bob, mut rng } = pair(20);
    exchange(&mut bob, "alice", &mut alice, "bob", b"step", &mut rng);
    let first: Vec<_> = (0..4).map(|i| alice.encrypt("bob", &[i]).unwrap()).collect();
    assert_eq!(bob.decrypt("alice", &first[1], &mut rng).unwrap().plaintext, [1]);
    // Bob now holds the chain of `first` plus (after each round) one newer chain.
    for i in 0..MAX_RECEIVER_CHAINS - 1 {
        exchange(&mut bob, "alice", &mut alice, "bob", b"b", &mut rng);
        exchange(&mut alice, "bob", &mut bob, "alice", &text(i), &mut rng);
    }
    // The oldest kept chain still serves late messages.
    assert_eq!(bob.decrypt("alice", &first[2], &mut rng).unwrap().plaintext, [2]);
    // One more chain drops it: a message not yet derived from it is lost ...
    exchange(&mut bob, "alice", &mut alice, "bob", b"b", &mut rng);
    exchange(&mut alice, "bob", &mut bob, "alice", b"a", &mut rng);
    assert_refused(&mut bob, "alice", &first[3], &mut rng, ErrorCode::MessageLost);
    // ... while a stored skipped key still works, once.
    assert_eq!(bob.decrypt("alice", &first[0], &mut rng).unwrap().plaintext, [0]);
    // The dropped chain's record still recognises replays, so no retry can re-send them.
    assert_refused(&mut bob, "alice", &first[0], &mut rng, ErrorCode::Duplicate);
    assert_refused(&mut bob, "alice", &first[1], &mut rng, ErrorCode::Duplicate);
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"fine", &mut rng);
}

#[test]
fn encrypt_refusals_keep_state() {
    let Pair { mut alice, mut bob, mut rng } = pair(21);
    let before = alice.state_digest();
    let err = alice.encrypt("bob", &vec![0; MAX_PLAINTEXT_BYTES + 1]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PlaintextTooLarge);
    assert_eq!(alice.encrypt("carol", b"x").unwrap_err().code(), ErrorCode::NoSession);
    assert_eq!(alice.state_digest(), before);
    // Initiating with one's own bundle is refused.
    let own = bundle(&mut alice);
    let before = alice.state_digest();
    assert_eq!(alice.initiate("me", &own, &mut rng).unwrap_err().code(), ErrorCode::SelfSession);
    assert_eq!(alice.state_digest(), before);
    exchange(&mut alice, "bob", &mut bob, "alice", b"still fine", &mut rng);
}

#[test]
fn several_peers_are_independent() {
    let mut rng = rng(22);
    let mut alice = device("alice", 2, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    let mut carol = device("carol", 1, &mut rng);
    let b = bundle(&mut bob);
    let c = bundle(&mut carol);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let _ = alice.initiate("carol", &c, &mut rng).unwrap();
    let to_bob = alice.encrypt("bob", b"for bob").unwrap();
    let to_carol = alice.encrypt("carol", b"for carol").unwrap();
    assert_eq!(bob.decrypt("alice", &to_bob, &mut rng).unwrap().plaintext, b"for bob");
    assert_eq!(carol.decrypt("alice", &to_carol, &mut rng).unwrap().plaintext, b"for carol");
    exchange(&mut bob, "alice", &mut alice, "bob", b"b", &mut rng);
    exchange(&mut carol, "alice", &mut alice, "carol", b"c", &mut rng);
    let peers: Vec<_> = alice.peers().collect();
    assert_eq!(peers, ["bob", "carol"]);
    // A message from Bob's session presented as Carol's is refused.
    let m = bob.encrypt("alice", b"b2").unwrap();
    assert_refused(&mut alice, "carol", &m, &mut rng, ErrorCode::AuthenticationFailed);
    assert_eq!(alice.decrypt("bob", &m, &mut rng).unwrap().plaintext, b"b2");
}

#[test]
fn reinstalled_peer_with_new_identity_is_not_stuck_behind_an_unanswered_session() {
    // Alice starts a session Bob never answers; Bob reinstalls (new identity) and starts
    // over himself. Whatever the base-key order, Bob's new session must become current
    // on Alice's side, so her next message reaches him.
    for seed in 40..48 {
        let mut rng = rng(seed);
        let mut alice = device("alice", 2, &mut rng);
        let mut old_bob = device("bob", 2, &mut rng);
        let b = bundle(&mut old_bob);
        let _ = alice.initiate("bob", &b, &mut rng).unwrap();
        let _unanswered = alice.encrypt("bob", b"lost").unwrap();

        let mut bob = device("bob", 2, &mut rng);
        let a = bundle(&mut alice);
        let _ = bob.initiate("alice", &a, &mut rng).unwrap();
        let hello = bob.encrypt("alice", b"I reinstalled").unwrap();
        let got = alice.decrypt("bob", &hello, &mut rng).unwrap();
        assert_eq!(got.plaintext, b"I reinstalled");
        assert_eq!(
            got.identity,
            IdentityEvent::Changed {
                previous: *old_bob.identity(),
                approved: false,
                reason: ChangeReason::AwaitingApproval
            }
        );
        alice.approve_identity("bob", bob.identity()).unwrap();
        assert_eq!(alice.session_record("bob").unwrap().remote_identity(), Some(bob.identity()));
        let reply = alice.encrypt("bob", b"welcome back").unwrap();
        assert_eq!(reply[0], RATCHET_MESSAGE);
        assert_eq!(bob.decrypt("alice", &reply, &mut rng).unwrap().plaintext, b"welcome back");
    }
}
