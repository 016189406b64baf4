#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The documented limits (`gochat_e2ee::limits`, `docs/protocol.md` "Limits"): their
//! values, how they relate to the encodings, and a few of them enforced.

mod common;

use common::*;
use gochat_e2ee::error::Error;
use gochat_e2ee::handshake::HandshakeError;
use gochat_e2ee::limits::*;
use gochat_e2ee::ratchet::RatchetError;
use gochat_e2ee::{Device, ErrorCode};

#[test]
fn documented_values() {
    assert_eq!(MAX_FORWARD_JUMP, 25_000);
    assert_eq!(MAX_SKIPPED_KEYS, 2_000);
    assert_eq!(MAX_RECEIVER_CHAINS, 5);
    assert_eq!(PADDING_BLOCK, 64);
    assert_eq!(MAX_PLAINTEXT_BYTES, 65_535);
    assert_eq!(MAX_PADDED_BYTES, 65_536);
    assert_eq!(MAX_ARCHIVED_SESSIONS, 40);
    assert_eq!(RETRY_WINDOW, 64);
    assert_eq!(MAX_ONE_TIME_PREKEYS, 200);
    assert_eq!(MAX_PQ_ONE_TIME_PREKEYS, 200);
    assert_eq!(MAX_RETIRED_PREKEYS, 4);
    assert_eq!(PREKEY_GRACE_SECS, 30 * 24 * 60 * 60);
    assert_eq!(MAX_LAST_RESORT_USES, 4_096);
    assert_eq!(MAX_ISSUED_PREKEYS, 1_000);
    assert_eq!(ISSUED_PREKEY_LIFETIME_SECS, 30 * 24 * 60 * 60);
    assert_eq!(MAX_NAME_BYTES, 256);
    assert_eq!(MAX_PEERS, 1_000_000);
    assert_eq!(MAX_BUNDLE_BYTES, 1_922);
    assert_eq!(MAX_MESSAGE_BYTES, 2 + 1_679 + 44 + MAX_PADDED_BYTES + 16);
    assert_eq!(MAX_RETRY_REQUEST_BYTES, 2 + 66 + 66 + 32 + 8 + 2 + MAX_BUNDLE_BYTES + 64);
    assert_eq!(MAX_ARCHIVED_FORWARD_JUMP, 250);
    assert_eq!(MAX_DROPPED_CHAINS, 64);
    assert_eq!(MAX_EVICTED_RANGES, 32);
    assert_eq!(RETRY_MAX_AGE_SECS, 86_400);
    assert_eq!(RETRY_MAX_FUTURE_SECS, 300);
    assert_eq!(MAX_SNAPSHOT_BYTES, 256 * 1024 * 1024);
    assert_eq!(MAX_STATE_BYTES, MAX_SNAPSHOT_BYTES - 51);
    assert_eq!(MAX_ACCOUNT_STATE_BYTES, 2_977_489);
    assert_eq!(MAX_STATE_GROWTH_PER_INPUT, 142_928);
    assert_eq!(gochat_e2ee::VERSION, env!("CARGO_PKG_VERSION"));
}

#[test]
fn limits_are_consistent() {
    // The largest plaintext pads to exactly the largest padded size.
    assert_eq!(MAX_PADDED_BYTES % PADDING_BLOCK, 0);
    assert_eq!((MAX_PLAINTEXT_BYTES / PADDING_BLOCK + 1) * PADDING_BLOCK, MAX_PADDED_BYTES);
    // Skipped keys are a window into the forward jump.
    const { assert!(MAX_SKIPPED_KEYS < MAX_FORWARD_JUMP as usize) };
    const { assert!(MAX_RETRY_REQUEST_BYTES < u16::MAX as usize) };
    const { assert!(MAX_MESSAGE_BYTES < MAX_SNAPSHOT_BYTES) };
}

#[test]
fn largest_encodings_match_their_bounds() {
    let mut rng = rng(1);
    let mut alice = device("alice", 1, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    let b = bob.next_bundle().unwrap();
    assert_eq!(b.to_bytes().len(), MAX_BUNDLE_BYTES);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let big = alice.encrypt("bob", &vec![7; MAX_PLAINTEXT_BYTES]).unwrap();
    assert_eq!(big.len(), MAX_MESSAGE_BYTES);
    assert_eq!(bob.decrypt("alice", &big, &mut rng).unwrap().plaintext, vec![7; MAX_PLAINTEXT_BYTES]);
    let r = bob.encrypt("alice", &vec![8; MAX_PLAINTEXT_BYTES]).unwrap();
    assert_eq!(r.len(), 2 + 44 + MAX_PADDED_BYTES + 16);
    // Padding hides lengths within a block.
    assert_eq!(bob.encrypt("alice", b"").unwrap().len(), bob.encrypt("alice", &[1; 63]).unwrap().len());
    assert_eq!(bob.encrypt("alice", &[1; 64]).unwrap().len(), r.len() - MAX_PADDED_BYTES + 2 * PADDING_BLOCK);
    bob.account_mut().generate_one_time_prekeys(1, &mut rng).unwrap();
    // Our retry requests carry a bundle without a one-time prekey (it issues nothing);
    // the bound still admits one with a one-time prekey (100 bytes more).
    let unseen = alice.encrypt("bob", b"not yet received").unwrap();
    let req = bob.retry_request("alice", alice.identity(), &unseen, NOW).unwrap();
    assert_eq!(req.len() + 100, MAX_RETRY_REQUEST_BYTES);
}

#[test]
fn one_time_prekey_stores_are_bounded() {
    let mut rng = rng(2);
    let mut d = Device::new("d", NOW, &mut rng);
    d.account_mut().generate_one_time_prekeys(MAX_ONE_TIME_PREKEYS, &mut rng).unwrap();
    assert_eq!(d.account().unissued_prekeys(), (MAX_ONE_TIME_PREKEYS, 0));
    let before = d.state_digest();
    let err = Error::from(d.account_mut().generate_one_time_prekeys(1, &mut rng).unwrap_err());
    assert_eq!(err.code(), ErrorCode::PreKeyStoreFull);
    let err = Error::from(d.account_mut().generate_pq_prekeys(MAX_PQ_ONE_TIME_PREKEYS + 1, NOW, &mut rng).unwrap_err());
    assert_eq!(err.code(), ErrorCode::PreKeyStoreFull);
    assert_eq!(d.state_digest(), before);
    // Issuing frees no room (issued keys are held until used), but using one does.
    let mut peer = device("peer", 0, &mut rng);
    let b = d.next_bundle().unwrap();
    let _ = peer.initiate("d", &b, &mut rng).unwrap();
    let m = peer.encrypt("d", b"hi").unwrap();
    assert_eq!(d.decrypt("peer", &m, &mut rng).unwrap().plaintext, b"hi");
    d.account_mut().generate_one_time_prekeys(1, &mut rng).unwrap();
}

#[test]
fn names_are_bounded() {
    let mut rng = rng(3);
    let long = "é".repeat(200);
    let d = Device::new(&long, NOW, &mut rng);
    assert_eq!(d.user_id().len(), MAX_NAME_BYTES);
    let odd = format!("a{long}");
    let d = Device::new(&odd, NOW, &mut rng);
    assert_eq!(d.user_id().len(), MAX_NAME_BYTES - 1, "cut on a character boundary");
    let mut alice = device("alice", 0, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    let b = bundle(&mut bob);
    let ok = "p".repeat(MAX_NAME_BYTES);
    let too_long = "p".repeat(MAX_NAME_BYTES + 1);
    let before = alice.state_digest();
    assert_eq!(alice.initiate(&too_long, &b, &mut rng).unwrap_err().code(), ErrorCode::Malformed);
    assert_eq!(alice.state_digest(), before);
    let _ = alice.initiate(&ok, &b, &mut rng).unwrap();
    let m = alice.encrypt(&ok, b"x").unwrap();
    assert_refused(&mut bob, &too_long, &m, &mut rng, ErrorCode::Malformed);
    assert_eq!(bob.decrypt(&ok, &m, &mut rng).unwrap().plaintext, b"x");
    let key = snapshot_key(1);
    let snap = bob.export_session(&ok, &key, &mut rng).unwrap();
    let before = bob.state_digest();
    assert_eq!(bob.import_session(&too_long, &key, &snap).unwrap_err().code(), ErrorCode::Malformed);
    assert_eq!(bob.state_digest(), before);
    assert!(reload(&bob, &mut rng).peers().eq([ok.as_str()]));
}

#[test]
fn archived_sessions_are_bounded() {
    let mut rng = rng(4);
    let mut alice = device("alice", 0, &mut rng);
    let mut bob = Device::new("bob", NOW, &mut rng);
    let b = bundle(&mut bob);
    for i in 0..MAX_ARCHIVED_SESSIONS + 5 {
        let _ = alice.initiate("bob", &b, &mut rng).unwrap();
        let archived = alice.session_record("bob").unwrap().archived_len();
        assert_eq!(archived, i.min(MAX_ARCHIVED_SESSIONS));
    }
    let mut alice = reload(&alice, &mut rng);
    let m = alice.encrypt("bob", b"x").unwrap();
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"x");
}

#[test]
fn error_codes_are_stable_and_distinct() {
    let names: std::collections::BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), ErrorCode::ALL.len());
    for c in ErrorCode::ALL {
        assert_eq!(c.as_str(), format!("{c:?}"));
    }
    assert_eq!(ErrorCode::ALL.len(), 89);
    assert_eq!(ErrorCode::ALL[37].as_str(), "StateFull");
    assert_eq!(ErrorCode::ALL[38].as_str(), "Internal");
    // Groups and channels (issue 9) appended after the 1:1 codes, which keep their places.
    assert_eq!(ErrorCode::ALL[39].as_str(), "UnknownGroup");
    assert_eq!(ErrorCode::ALL[52].as_str(), "WrongChannel");
    // Attachments (issue 10) after them.
    assert_eq!(ErrorCode::ALL[53].as_str(), "WrongKey");
    assert_eq!(ErrorCode::ALL[59].as_str(), "StreamFinished");
    // Device lists (issue 11, part 3) after them.
    assert_eq!(ErrorCode::ALL[60].as_str(), "StaleDeviceList");
    assert_eq!(ErrorCode::ALL[65].as_str(), "UnknownMasterKey");
    // Device linking (issue 11, part 4) after them.
    assert_eq!(ErrorCode::ALL[66].as_str(), "ProvisioningExpired");
    assert_eq!(ErrorCode::ALL[67].as_str(), "ProvisioningUsed");
    // Certified identities (issue 11, part 2) after them.
    assert_eq!(ErrorCode::ALL[68].as_str(), "CertificateExpired");
    assert_eq!(ErrorCode::ALL[76].as_str(), "TrustAnchorsFull");
    // The store (issue 12): produced by gochat-e2ee-store, never by the core.
    assert_eq!(ErrorCode::ALL[77].as_str(), "AttemptLimitReached");
    assert_eq!(ErrorCode::ALL[85].as_str(), "InvalidStoreParameters");
    assert_eq!(ErrorCode::ALL[86].as_str(), "NotSupported");
    assert_eq!(ErrorCode::ALL[87].as_str(), "StoreRolledBack");
    assert_eq!(ErrorCode::ALL[88].as_str(), "InboxNotEmpty");
}

#[test]
fn retry_may_help_only_when_state_may_be_out_of_step() {
    let helps = [
        Error::NoSession,
        Error::Ratchet(RatchetError::AuthenticationFailed),
        Error::Ratchet(RatchetError::TooFarAhead { jump: 25_001, max: MAX_FORWARD_JUMP }),
        Error::Handshake(HandshakeError::UnknownSignedPreKey(1)),
        Error::Handshake(HandshakeError::UnknownOneTimePreKey(1)),
        Error::Handshake(HandshakeError::UnknownPqPreKey(1)),
        Error::Ratchet(RatchetError::MessageLost),
        Error::Ratchet(RatchetError::CounterReused),
        Error::Handshake(HandshakeError::LastResortExhausted(1)),
    ];
    for e in &helps {
        assert!(e.retry_may_help(), "{e}");
    }
    let futile = [
        Error::Ratchet(RatchetError::Duplicate),
        Error::Ratchet(RatchetError::InvalidPadding),
        Error::Ratchet(RatchetError::NonContributory),
        Error::Handshake(HandshakeError::OneTimePreKeyReused(1)),
        Error::Handshake(HandshakeError::PqPreKeyReused(1)),
        Error::Handshake(HandshakeError::LastResortReplay),
        Error::Handshake(HandshakeError::SelfSession),
        Error::Malformed(gochat_e2ee::wire::DecodeError::Truncated),
        Error::IdentityChanged,
        Error::TooManyPeers,
    ];
    for e in &futile {
        assert!(!e.retry_may_help(), "{e}");
    }
}

/// Starts a session on `bob` from `bundle` as a fresh initiator and returns the first
/// (prekey) message after `bob` accepted it under peer name `peer`.
fn start_from(bundle: &gochat_e2ee::PreKeyBundle, bob: &mut Device, peer: &str, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut alice = Device::new("alice", NOW, rng);
    let _ = alice.initiate("bob", bundle, rng).unwrap();
    let m = alice.encrypt("bob", b"hi").unwrap();
    assert_eq!(bob.decrypt(peer, &m, rng).unwrap().plaintext, b"hi");
    m
}

use rand_chacha::ChaCha20Rng;

#[test]
fn last_resort_replay_records_cannot_be_flushed() {
    let mut rng = rng(40);
    let mut bob = Device::new("bob", NOW, &mut rng);
    let bundle = bob.next_bundle().unwrap();
    let first_id = bundle.pq_prekey().id;
    let first = start_from(&bundle, &mut bob, "alice", &mut rng);
    // A flood of throwaway session starts on the same last-resort prekey.
    for _ in 1..MAX_LAST_RESORT_USES {
        start_from(&bundle, &mut bob, "alice", &mut rng);
    }
    // The use that filled the records retired the key: a new last-resort key is current.
    let next = bob.next_bundle().unwrap();
    assert_ne!(next.pq_prekey().id, first_id);
    // The first message is still refused as a replay (the old code had forgotten it).
    assert_refused(&mut bob, "replayer", &first, &mut rng, ErrorCode::LastResortReplay);
    // Further uses of the full, retired key are refused (a retry can help: new bundle).
    let mut mallory = Device::new("mallory", NOW, &mut rng);
    for _ in 0..900 {
        let _ = mallory.initiate("bob", &bundle, &mut rng).unwrap();
        let m = mallory.encrypt("bob", b"x").unwrap();
        let before = bob.state_digest();
        let err = bob.decrypt("mallory", &m, &mut rng).unwrap_err();
        assert_eq!(err, Error::Handshake(HandshakeError::LastResortExhausted(first_id)));
        assert_eq!(err.code(), ErrorCode::UnknownPqPreKey);
        assert!(err.retry_may_help());
        assert_eq!(bob.state_digest(), before);
    }
    assert_refused(&mut bob, "replayer", &first, &mut rng, ErrorCode::LastResortReplay);
    // The new key works, and the state survives a snapshot round trip.
    start_from(&next, &mut bob, "carol", &mut rng);
    let key = gochat_e2ee::SnapshotKey::new([9; 32]);
    let mut restored = Device::import(&key, &bob.export(&key, &mut rng).expect("export")).unwrap();
    // (An import bumps the sender epochs; the account part round-trips exactly.)
    assert_eq!(restored.account().unissued_prekeys(), bob.account().unissued_prekeys());
    assert_refused(&mut restored, "replayer", &first, &mut rng, ErrorCode::LastResortReplay);
    // The retired key, stamped by the next expiry call, is dropped after the grace period.
    bob.account_mut().expire_prekeys(NOW + 100);
    bob.account_mut().expire_prekeys(NOW + 100 + PREKEY_GRACE_SECS);
    assert_refused(&mut bob, "replayer", &first, &mut rng, ErrorCode::LastResortReplay);
    bob.account_mut().expire_prekeys(NOW + 101 + PREKEY_GRACE_SECS);
    // Dropped with its records; its id was issued, so it reads as used (as before).
    assert_refused(&mut bob, "replayer", &first, &mut rng, ErrorCode::PqPreKeyReused);
}

#[test]
fn issued_prekeys_do_not_exhaust_the_pools() {
    let mut rng = rng(41);
    let mut bob = Device::new("bob", NOW, &mut rng);
    // Hand out every key (as bundle fetches that are never used would).
    for _ in 0..6 {
        bob.account_mut().generate_one_time_prekeys(MAX_ONE_TIME_PREKEYS, &mut rng).unwrap();
        bob.account_mut().generate_pq_prekeys(MAX_PQ_ONE_TIME_PREKEYS, NOW, &mut rng).unwrap();
        for _ in 0..MAX_ONE_TIME_PREKEYS {
            assert!(bob.next_bundle().unwrap().one_time_prekey().is_some());
        }
        assert_eq!(bob.account().unissued_prekeys(), (0, 0));
    }
    // Issued keys do not count against the caps, and at most MAX_ISSUED_PREKEYS are held.
    assert_eq!(bob.account().issued_prekeys(), (MAX_ISSUED_PREKEYS, MAX_ISSUED_PREKEYS));
    bob.account_mut().generate_one_time_prekeys(MAX_ONE_TIME_PREKEYS, &mut rng).unwrap();
    bob.account_mut().generate_pq_prekeys(MAX_PQ_ONE_TIME_PREKEYS, NOW, &mut rng).unwrap();
    // The largest state the account can reach imports.
    let key = gochat_e2ee::SnapshotKey::new([9; 32]);
    let restored = Device::import(&key, &bob.export(&key, &mut rng).expect("export")).unwrap();
    assert_eq!(restored.state_digest(), bob.state_digest());
    // Issued keys are stamped by the next expiry call and deleted after their lifetime.
    bob.account_mut().expire_prekeys(NOW);
    bob.account_mut().expire_prekeys(NOW + ISSUED_PREKEY_LIFETIME_SECS);
    assert_eq!(bob.account().issued_prekeys(), (MAX_ISSUED_PREKEYS, MAX_ISSUED_PREKEYS));
    let b = bob.next_bundle().unwrap();
    bob.account_mut().expire_prekeys(NOW + ISSUED_PREKEY_LIFETIME_SECS + 1);
    assert_eq!(bob.account().issued_prekeys(), (1, 1));
    assert_eq!(bob.account().unissued_prekeys(), (MAX_ONE_TIME_PREKEYS - 1, MAX_PQ_ONE_TIME_PREKEYS - 1));
    start_from(&b, &mut bob, "alice", &mut rng);
    assert_eq!(bob.account().issued_prekeys(), (0, 0));
}

#[test]
fn retry_requests_issue_no_prekeys() {
    let mut rng = rng(42);
    let mut bob = device("bob", 3, &mut rng);
    let alice = Device::new("alice", NOW, &mut rng);
    for i in 0..50u8 {
        bob.retry_request("alice", alice.identity(), &[i; 100], NOW).unwrap();
    }
    assert_eq!(bob.account().unissued_prekeys(), (3, 3));
    assert_eq!(bob.account().issued_prekeys(), (0, 0));
    let b = bob.account().retry_bundle().unwrap();
    assert!(b.one_time_prekey().is_none());
    assert_eq!(b.pq_prekey().kind, gochat_e2ee::keys::PqPreKeyKind::LastResort);
}
