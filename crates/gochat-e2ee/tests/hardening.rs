#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Regression tests for the attacks found in the external review (issue 8): each one
//! failed on the code before the hardening and passes now.
//! - a new identity never silently takes over a peer;
//! - a replay never delivers a plaintext twice, directly or through a retry;
//! - restoring older state never re-uses a message key and nonce, and the receiver gets
//!   a typed error rather than silently dropping the honest message;
//! - one hostile message costs bounded work across every session of a record.

mod common;

use std::collections::HashSet;

use common::*;
use gochat_e2ee::limits::{MAX_ARCHIVED_FORWARD_JUMP, MAX_ARCHIVED_SESSIONS, MAX_FORWARD_JUMP, RETRY_MAX_AGE_SECS};
use gochat_e2ee::{ChangeReason, Device, ErrorCode, IdentityEvent, IdentityPolicy};

/// Mallory (the server, with an identity of her own) sends a prekey message as "alice".
fn mallory_writes_as_alice(bob: &mut Device, rng: &mut rand_chacha::ChaCha20Rng) -> (Device, Vec<u8>) {
    let mut mallory = device("mallory", 1, rng);
    let b = bundle(bob);
    assert_eq!(mallory.initiate("bob", &b, rng).unwrap(), IdentityEvent::New);
    let m = mallory.encrypt("bob", b"it's me, alice, new phone").unwrap();
    (mallory, m)
}

#[test]
fn a_new_identity_is_reported_and_never_becomes_current_without_approval() {
    let Pair { mut alice, mut bob, mut rng } = pair(100);
    let real_alice = *alice.identity();
    let to_alice = bob.encrypt("alice", b"secret for the real alice").unwrap();
    assert_eq!(alice.decrypt("bob", &to_alice, &mut rng).unwrap().plaintext, b"secret for the real alice");
    let (mut mallory, m) = mallory_writes_as_alice(&mut bob, &mut rng);

    // Bob is told, in the decrypt result itself.
    let got = bob.decrypt("alice", &m, &mut rng).unwrap();
    assert_eq!(got.sender, *mallory.identity());
    assert_eq!(
        got.identity,
        IdentityEvent::Changed { previous: real_alice, approved: false, reason: ChangeReason::AwaitingApproval }
    );
    assert_eq!(bob.trust().pinned("alice"), Some(&real_alice));
    assert_eq!(bob.trust().pending("alice"), Some(mallory.identity()));
    // Bob's next encrypt does not go to Mallory: it is refused, loudly, without state change.
    assert_eq!(bob.session_record("alice").unwrap().remote_identity(), Some(&real_alice));
    let before = bob.state_digest();
    assert_eq!(bob.encrypt("alice", b"x").unwrap_err().code(), ErrorCode::IdentityChanged);
    assert_eq!(bob.state_digest(), before);

    // Mallory's retry requests name messages Bob sent to the real Alice: refused.
    let req = mallory.retry_request("bob", bob.identity(), &to_alice, NOW).unwrap();
    let before = bob.state_digest();
    assert_eq!(
        bob.handle_retry_request("alice", &req, NOW, &mut rng).unwrap_err().code(),
        ErrorCode::UntrustedIdentity
    );
    assert_eq!(bob.state_digest(), before);

    // The user keeps the real Alice; the real Alice talks again; then a message on
    // Mallory's stored session arrives: it never makes her current again.
    bob.approve_identity("alice", &real_alice).unwrap();
    assert_eq!(bob.trust().pending("alice"), None);
    exchange(&mut alice, "bob", &mut bob, "alice", b"still me", &mut rng);
    let r = bob.encrypt("alice", b"hi").unwrap();
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"hi");
    let _ = mallory.decrypt("bob", &bob.encrypt("alice", b"x").unwrap(), &mut rng).unwrap_err();
    let m2 = mallory.encrypt("bob", b"again").unwrap();
    let got = bob.decrypt("alice", &m2, &mut rng).unwrap();
    assert_eq!(
        got.identity,
        IdentityEvent::Changed { previous: real_alice, approved: false, reason: ChangeReason::AwaitingApproval }
    );
    assert_eq!(bob.session_record("alice").unwrap().remote_identity(), Some(&real_alice));
    assert_eq!(bob.encrypt("alice", b"x").unwrap_err().code(), ErrorCode::IdentityChanged);
}

#[test]
fn approving_a_changed_identity_makes_its_session_current() {
    let Pair { mut alice, mut bob, mut rng } = pair(101);
    let (mut mallory, m) = mallory_writes_as_alice(&mut bob, &mut rng);
    let _ = bob.decrypt("alice", &m, &mut rng).unwrap();
    bob.approve_identity("alice", mallory.identity()).unwrap();
    let r = bob.encrypt("alice", b"to the approved identity").unwrap();
    assert_eq!(mallory.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"to the approved identity");
    // And now the old identity is the changed one.
    let old = alice.encrypt("bob", b"old").unwrap();
    let got = bob.decrypt("alice", &old, &mut rng).unwrap();
    assert_eq!(
        got.identity,
        IdentityEvent::Changed {
            previous: *mallory.identity(),
            approved: false,
            reason: ChangeReason::AwaitingApproval
        }
    );
}

#[test]
fn notify_policy_accepts_a_change_and_still_reports_it() {
    let Pair { alice, mut bob, mut rng } = pair(102);
    bob.set_identity_policy(IdentityPolicy::Notify);
    let real_alice = *alice.identity();
    let (mut mallory, m) = mallory_writes_as_alice(&mut bob, &mut rng);
    let got = bob.decrypt("alice", &m, &mut rng).unwrap();
    assert_eq!(
        got.identity,
        IdentityEvent::Changed { previous: real_alice, approved: true, reason: ChangeReason::Notify }
    );
    let r = bob.encrypt("alice", b"to the new identity").unwrap();
    assert_eq!(mallory.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"to the new identity");
    // The policy survives a snapshot.
    let bob2 = reload(&bob, &mut rng);
    assert_eq!(bob2.trust().policy(), IdentityPolicy::Notify);
    let _ = alice;
}

#[test]
fn initiate_with_a_substituted_bundle_is_refused_under_require_approval() {
    let Pair { mut alice, bob, mut rng } = pair(103);
    let mut mallory = device("mallory", 1, &mut rng);
    let fake = bundle(&mut mallory);
    let before = alice.state_digest();
    assert_eq!(alice.initiate("bob", &fake, &mut rng).unwrap_err().code(), ErrorCode::IdentityChanged);
    assert_eq!(alice.state_digest(), before);
    // The app may pin an identity verified out of band before any session.
    let mut carol = device("carol", 1, &mut rng);
    alice.approve_identity("carol", carol.identity()).unwrap();
    let cb = bundle(&mut carol);
    assert_eq!(alice.initiate("carol", &cb, &mut rng).unwrap(), IdentityEvent::Same);
    assert_eq!(alice.initiate("mallory-as-carol", &fake, &mut rng).unwrap(), IdentityEvent::New);
    let _ = bob;
}

#[test]
fn at_most_one_unapproved_session_is_kept_so_the_archive_cannot_be_flushed() {
    let Pair { mut alice, mut bob, mut rng } = pair(104);
    for _ in 0..MAX_ARCHIVED_SESSIONS + 5 {
        let (_m, msg) = mallory_writes_as_alice(&mut bob, &mut rng);
        let _ = bob.decrypt("alice", &msg, &mut rng).unwrap();
    }
    // The real session is still current and still the only trusted one; one aside.
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), 1);
    bob.approve_identity("alice", alice.identity()).unwrap();
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"fine", &mut rng);
}

/// Alice and Bob talk for `rounds` ping-pong rounds (a DH step each way per round),
/// with an export/import of both in the middle and two session restarts (Alice's at a
/// third, Bob's at two thirds: the earlier sessions become archived on both sides);
/// returns every ciphertext and plaintext.
fn long_conversation(p: &mut Pair, rounds: usize) -> Vec<(bool, Vec<u8>)> {
    let mut all = Vec::new();
    for i in 0..rounds {
        if i == rounds / 2 {
            p.alice = reload(&p.alice, &mut p.rng);
            p.bob = reload(&p.bob, &mut p.rng);
        }
        if i == rounds / 3 {
            let bundle = p.bob.next_bundle().unwrap();
            assert_eq!(p.alice.initiate("bob", &bundle, &mut p.rng).unwrap(), IdentityEvent::Same);
        }
        if i == 2 * rounds / 3 {
            let bundle = p.alice.next_bundle().unwrap();
            assert_eq!(p.bob.initiate("alice", &bundle, &mut p.rng).unwrap(), IdentityEvent::Same);
        }
        let m = exchange(&mut p.alice, "bob", &mut p.bob, "alice", format!("round {i}").as_bytes(), &mut p.rng);
        all.push((true, m));
        let r = exchange(&mut p.bob, "alice", &mut p.alice, "bob", format!("reply {i}").as_bytes(), &mut p.rng);
        all.push((false, r));
    }
    all
}

#[test]
fn replaying_a_long_conversation_never_delivers_a_plaintext_twice_nor_opens_a_retry() {
    let mut p = pair(105);
    let all = long_conversation(&mut p, 30);
    let mut delivered = HashSet::new();
    for (to_bob, m) in &all {
        let (receiver, sender, rname, sname) = if *to_bob {
            (&mut p.bob, &mut p.alice, "alice", "bob")
        } else {
            (&mut p.alice, &mut p.bob, "bob", "alice")
        };
        let before = receiver.state_digest();
        match receiver.decrypt(rname, m, &mut p.rng) {
            Ok(d) => assert!(delivered.insert(d.plaintext), "a replay delivered a plaintext again"),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::Duplicate, "replay must be recognised: {e}");
                assert!(!e.retry_may_help());
            }
        }
        assert_eq!(receiver.state_digest(), before);
        // Even an app that asks for a retry anyway cannot turn the replay into a re-send.
        let sender_identity = *sender.identity();
        let err = receiver.retry_request(rname, &sender_identity, m, NOW).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Duplicate);
        let _ = sname;
    }
    assert!(delivered.is_empty(), "every message of the conversation was already delivered");
    assert!(p.bob.session_record("alice").unwrap().archived_len() >= 2, "replays reached archived sessions");
}

#[test]
fn a_retry_request_is_bound_to_a_time_window() {
    let Pair { mut alice, mut bob, mut rng } = pair(106);
    let key = snapshot_key(8);
    let backup = bob.export(&key, &mut rng).expect("export");
    exchange(&mut alice, "bob", &mut bob, "alice", b"a", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"b", &mut rng);
    let mut bob = Device::import(&key, &backup).unwrap();
    let failed = alice.encrypt("bob", b"lost").unwrap();
    assert!(bob.decrypt("alice", &failed, &mut rng).unwrap_err().retry_may_help());
    let req = bob.retry_request("alice", alice.identity(), &failed, NOW).unwrap();
    for now in [NOW + RETRY_MAX_AGE_SECS + 1, NOW - 301] {
        let before = alice.state_digest();
        assert_eq!(alice.handle_retry_request("bob", &req, now, &mut rng).unwrap_err().code(), ErrorCode::RetryExpired);
        assert_eq!(alice.state_digest(), before);
    }
    assert_eq!(
        alice.handle_retry_request("bob", &req, NOW + RETRY_MAX_AGE_SECS, &mut rng).unwrap(),
        Device::message_digest(&failed)
    );
}

#[test]
fn restoring_a_sender_never_reuses_key_and_nonce_and_the_receiver_is_told() {
    let Pair { mut alice, mut bob, mut rng } = pair(107);
    let key = snapshot_key(9);
    let snap = alice.export(&key, &mut rng).expect("export");
    let first = alice.encrypt("bob", b"first, before the crash").unwrap();
    let mut alice = Device::import(&key, &snap).unwrap();
    let second = alice.encrypt("bob", b"second, after the restore").unwrap();
    // Same chain, same counter, but a new sender epoch: a different message key
    // expansion, and AES-GCM-SIV even if the epoch repeated.
    let (k1, c1) = header(&first);
    let (k2, c2) = header(&second);
    assert_eq!((k1, c1), (k2, c2));
    assert_eq!(&first[42..46], &0u32.to_be_bytes());
    assert_eq!(&second[42..46], &1u32.to_be_bytes());
    assert_ne!(first[46..], second[46..]);
    assert_eq!(bob.decrypt("alice", &first, &mut rng).unwrap().plaintext, b"first, before the crash");
    // The honest second message is not silently dropped as a duplicate.
    let before = bob.state_digest();
    let err = bob.decrypt("alice", &second, &mut rng).unwrap_err();
    assert_eq!(err.code(), ErrorCode::CounterReused);
    assert!(err.retry_may_help());
    assert_eq!(bob.state_digest(), before);
    // ... and the retry gets it through.
    let req = bob.retry_request("alice", alice.identity(), &second, NOW).unwrap();
    assert_eq!(alice.handle_retry_request("bob", &req, NOW, &mut rng).unwrap(), Device::message_digest(&second));
    let resent = alice.encrypt("bob", b"second, after the restore").unwrap();
    assert_eq!(bob.decrypt("alice", &resent, &mut rng).unwrap().plaintext, b"second, after the restore");
    // A replay of the first is still a duplicate.
    assert_refused(&mut bob, "alice", &first, &mut rng, ErrorCode::Duplicate);
}

#[test]
fn the_next_message_after_a_restore_on_an_unused_counter_decrypts() {
    let Pair { mut alice, mut bob, mut rng } = pair(108);
    let key = snapshot_key(10);
    let snap = alice.export(&key, &mut rng).expect("export");
    let _lost = alice.encrypt("bob", b"never delivered").unwrap();
    let mut alice = Device::import(&key, &snap).unwrap();
    let m = alice.encrypt("bob", b"after restore").unwrap();
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"after restore");
}

#[test]
fn a_hostile_message_is_tried_on_archived_sessions_only_within_their_small_budget() {
    let mut rng = rng(109);
    let mut alice = device("alice", 0, &mut rng);
    let mut bob = Device::new("bob", NOW, &mut rng);
    let b = bundle(&mut bob);
    for _ in 0..=MAX_ARCHIVED_SESSIONS {
        let _ = alice.initiate("bob", &b, &mut rng).unwrap();
        let m = alice.encrypt("bob", b"x").unwrap();
        let _ = bob.decrypt("alice", &m, &mut rng).unwrap();
    }
    assert_eq!(bob.session_record("alice").unwrap().archived_len(), MAX_ARCHIVED_SESSIONS);
    // A forged ratchet message: new ratchet key, counter at the current session's bound.
    let mut forged = bob.encrypt("alice", b"y").unwrap();
    let fresh = gochat_e2ee::IdentityKey::from_bytes(&device("z", 0, &mut rng).identity().to_bytes()).unwrap();
    forged[2..34].copy_from_slice(fresh.agreement_key_bytes());
    put_u32(&mut forged, 38, MAX_FORWARD_JUMP);
    const { assert!(MAX_FORWARD_JUMP > MAX_ARCHIVED_FORWARD_JUMP) };
    assert_refused(&mut bob, "alice", &forged, &mut rng, ErrorCode::AuthenticationFailed);
    // Above the archived bound only the current session does the work.
    put_u32(&mut forged, 38, MAX_FORWARD_JUMP + 1);
    assert_refused(&mut bob, "alice", &forged, &mut rng, ErrorCode::TooFarAhead);
}

#[test]
fn the_retry_window_is_exactly_retry_window_messages() {
    use gochat_e2ee::limits::RETRY_WINDOW;
    let Pair { mut alice, mut bob, mut rng } = pair(110);
    let sent: Vec<_> = (0..=RETRY_WINDOW).map(|i| alice.encrypt("bob", &[i as u8]).unwrap()).collect();
    let alice_id = *alice.identity();
    let req =
        |bob: &mut Device, back: usize| bob.retry_request("alice", &alice_id, &sent[sent.len() - back], NOW).unwrap();
    // 65 back (RETRY_WINDOW + 1): forgotten.
    let r65 = req(&mut bob, RETRY_WINDOW + 1);
    let before = alice.state_digest();
    assert_eq!(alice.handle_retry_request("bob", &r65, NOW, &mut rng).unwrap_err().code(), ErrorCode::UnknownMessage);
    assert_eq!(alice.state_digest(), before);
    // 64 and 63 back: still held.
    for back in [RETRY_WINDOW, RETRY_WINDOW - 1] {
        let r = req(&mut bob, back);
        assert_eq!(
            alice.handle_retry_request("bob", &r, NOW, &mut rng).unwrap(),
            Device::message_digest(&sent[sent.len() - back])
        );
    }
}

#[test]
fn a_session_snapshot_is_bound_to_its_owner_and_peer_name() {
    let Pair { mut alice, mut bob, mut rng } = pair(111);
    let key = snapshot_key(12);
    let snap = bob.export_session("alice", &key, &mut rng).unwrap();
    // Moved to another peer name: refused, nothing changes.
    let before = bob.state_digest();
    assert_eq!(bob.import_session("carol", &key, &snap).unwrap_err().code(), ErrorCode::SnapshotUndecryptable);
    assert_eq!(bob.state_digest(), before);
    // Into another device: refused.
    let mut carol = device("carol", 1, &mut rng);
    assert_eq!(carol.import_session("alice", &key, &snap).unwrap_err().code(), ErrorCode::SnapshotUndecryptable);
    // Where it belongs: accepted.
    bob.import_session("alice", &key, &snap).unwrap();
    exchange(&mut alice, "bob", &mut bob, "alice", b"still fine", &mut rng);
}

#[test]
fn a_burst_of_retry_requests_adds_one_session_not_one_each() {
    let Pair { mut alice, mut bob, mut rng } = pair(112);
    let key = snapshot_key(13);
    let backup = bob.export(&key, &mut rng).expect("export");
    exchange(&mut alice, "bob", &mut bob, "alice", b"a", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"b", &mut rng);
    // Bob restores an old backup: Alice's next messages are on a chain he never saw.
    let mut bob = Device::import(&key, &backup).unwrap();
    let failed: Vec<_> = (0..8u8).map(|i| alice.encrypt("bob", &[i]).unwrap()).collect();
    let archived = alice.session_record("bob").unwrap().archived_len();
    let mut resent = Vec::new();
    for (i, m) in failed.iter().enumerate() {
        assert!(bob.decrypt("alice", m, &mut rng).unwrap_err().retry_may_help());
        let req = bob.retry_request("alice", alice.identity(), m, NOW).unwrap();
        assert_eq!(alice.handle_retry_request("bob", &req, NOW, &mut rng).unwrap(), Device::message_digest(m));
        resent.push(alice.encrypt("bob", &[i as u8]).unwrap());
    }
    // Eight requests, one new session: the archive is not churned.
    assert_eq!(alice.session_record("bob").unwrap().archived_len(), archived + 1);
    for (i, m) in resent.iter().enumerate() {
        assert_eq!(bob.decrypt("alice", m, &mut rng).unwrap().plaintext, [i as u8]);
    }
}
