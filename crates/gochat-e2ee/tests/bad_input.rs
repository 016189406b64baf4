#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Malformed, modified, truncated, extended, oversized and misdirected inputs: each is
//! refused with a typed error, and a refused decrypt, import or retry request leaves
//! the device byte-for-byte unchanged.
//!
//! Bit-flip coverage: the small structured fields (type and version bytes, ids, flags,
//! counters) are flipped bit by bit in every build. The large opaque fields (keys,
//! signatures, the ML-KEM ciphertext and key) are flipped bit by bit in an optimized
//! build (`cargo test --release`) or with `GOCHAT_E2EE_EXHAUSTIVE=1`; an unoptimized
//! build, where each refusal costs several signature checks or an ML-KEM decapsulation
//! run without optimization, flips a deterministic sample of their bits instead.

mod common;

use std::ops::Range;

use common::*;
use gochat_e2ee::limits::{MAX_BUNDLE_BYTES, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_RETRY_REQUEST_BYTES};
use gochat_e2ee::{Device, ErrorCode, IdentityKey, PreKeyBundle, SnapshotKey};
use rand_chacha::ChaCha20Rng;

const MIB: usize = 1024 * 1024;

fn exhaustive() -> bool {
    !cfg!(debug_assertions) || std::env::var_os("GOCHAT_E2EE_EXHAUSTIVE").is_some()
}

/// The bits to flip in an input of `len` bytes: every bit of the bytes in `dense`, and
/// every bit of the other bytes too if [`exhaustive`], else one bit of every `stride`-th
/// byte (the bit rotating) plus every bit of the first and last bytes.
fn bits(len: usize, dense: &[Range<usize>], stride: usize) -> Vec<usize> {
    let all = exhaustive();
    let mut out = Vec::new();
    for byte in 0..len {
        if all || byte < 2 || byte + 1 == len || dense.iter().any(|r| r.contains(&byte)) {
            out.extend(byte * 8..byte * 8 + 8);
        } else if byte % stride == 0 {
            out.push(byte * 8 + (byte / stride) % 8);
        }
    }
    out
}

/// Bob (with no one-time prekeys: a small state, so digests are cheap) and Alice, with
/// Alice's first prekey message not yet delivered.
fn prekey_setup(seed: u64, one_time: bool) -> (Device, Device, Vec<u8>, ChaCha20Rng) {
    let mut rng = rng(seed);
    let mut alice = device("alice", 0, &mut rng);
    let mut bob = Device::new("bob", NOW, &mut rng);
    if one_time {
        bob.account_mut().generate_one_time_prekeys(1, &mut rng).unwrap();
        bob.account_mut().generate_pq_prekeys(1, NOW, &mut rng).unwrap();
    }
    let b = bundle(&mut bob);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let m = alice.encrypt("bob", b"the original").unwrap();
    (alice, bob, m, rng)
}

/// An established session between small-state devices, and a ratchet message from
/// Alice (plaintext "second") on a chain Bob has already seen.
fn ratchet_setup(seed: u64) -> (Device, Device, Vec<u8>, ChaCha20Rng) {
    let (mut alice, mut bob, m, mut rng) = prekey_setup(seed, false);
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"the original");
    let r = bob.encrypt("alice", b"reply").unwrap();
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"reply");
    let step = alice.encrypt("bob", b"on a new chain").unwrap();
    let known = alice.encrypt("bob", b"second").unwrap();
    assert_eq!(bob.decrypt("alice", &step, &mut rng).unwrap().plaintext, b"on a new chain");
    (alice, bob, known, rng)
}

/// The code of the error with which `PreKeyBundle::from_bytes` refuses `bytes`.
fn bundle_code(bytes: &[u8]) -> ErrorCode {
    gochat_e2ee::Error::from(PreKeyBundle::from_bytes(bytes).unwrap_err()).code()
}

fn check_flips(bob: &mut Device, peer: &str, m: &[u8], bits: &[usize], rng: &mut ChaCha20Rng, original: &[u8]) {
    let before = bob.state_digest();
    let mut codes = std::collections::BTreeMap::new();
    for &bit in bits {
        let f = flip(m, bit);
        let err = match bob.decrypt(peer, &f, rng) {
            Ok(pt) => panic!("flip of bit {bit} accepted: {pt:?}"),
            Err(e) => e,
        };
        assert_eq!(bob.state_digest(), before, "flip of bit {bit} changed state ({err})");
        *codes.entry(err.code().as_str()).or_insert(0usize) += 1;
    }
    assert_eq!(bob.decrypt(peer, m, rng).unwrap().plaintext, original, "the original still decrypts");
    eprintln!("{} flips refused: {codes:?}", bits.len());
}

#[test]
fn every_bit_flip_of_a_ratchet_message_is_rejected_and_keeps_state() {
    let (mut alice, mut bob, known, mut rng) = ratchet_setup(1);
    // On a chain Bob knows.
    let all: Vec<usize> = (0..known.len() * 8).collect();
    check_flips(&mut bob, "alice", &known, &all, &mut rng, b"second");
    // On a new chain (a DH ratchet step for Bob).
    let r = bob.encrypt("alice", b"r").unwrap();
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"r");
    let new_chain = alice.encrypt("bob", b"needs a step").unwrap();
    let all: Vec<usize> = (0..new_chain.len() * 8).collect();
    check_flips(&mut bob, "alice", &new_chain, &all, &mut rng, b"needs a step");
}

#[test]
fn every_bit_flip_of_a_prekey_message_is_rejected_and_keeps_state() {
    for one_time in [true, false] {
        let (_alice, mut bob, m, mut rng) = prekey_setup(3 + u64::from(one_time), one_time);
        let l = prekey_layout(&m);
        let dense = [0..l.identity + 2, l.signed_prekey_id..l.base_key, l.ratchet_header + 32..l.ciphertext];
        check_flips(&mut bob, "alice", &m, &bits(m.len(), &dense, 8), &mut rng, b"the original");
    }
}

#[test]
fn every_bit_flip_of_a_retransmitted_prekey_message_is_rejected_and_keeps_state() {
    // Bob already holds the session this prekey message belongs to.
    let (mut alice, mut bob, m, mut rng) = prekey_setup(16, true);
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"the original");
    let again = alice.encrypt("bob", b"retransmitted").unwrap();
    assert_eq!(base_key(&again), base_key(&m));
    let l = prekey_layout(&again);
    let dense = [0..l.identity + 2, l.signed_prekey_id..l.kem_ciphertext, l.ratchet_header..again.len()];
    check_flips(&mut bob, "alice", &again, &bits(again.len(), &dense, 8), &mut rng, b"retransmitted");
}

#[test]
fn every_bit_flip_of_a_bundle_is_refused() {
    let mut rng = rng(5);
    let mut bob = device("bob", 1, &mut rng);
    let with = bob.next_bundle().unwrap().to_bytes();
    let without = bob.next_bundle().unwrap().to_bytes();
    assert_eq!(with.len(), MAX_BUNDLE_BYTES);
    assert!(without.len() < MAX_BUNDLE_BYTES);
    for (bytes, stride) in [(&with, 32), (&without, 64)] {
        assert!(PreKeyBundle::from_bytes(bytes).is_ok());
        // Type and version bytes, the identity header, ids, flag, kind.
        let flag = 2 + 66 + 4 + 8 + 32 + 64;
        let pq = if bytes[flag] == 1 { flag + 1 + 100 } else { flag + 1 };
        let dense = [0..4, 68..72, flag..flag + 5, pq..pq + 5];
        let mut codes = std::collections::BTreeMap::new();
        for bit in bits(bytes.len(), &dense, stride) {
            let err = PreKeyBundle::from_bytes(&flip(bytes, bit)).expect_err("flipped bundle accepted");
            *codes.entry(gochat_e2ee::Error::from(err).code().as_str()).or_insert(0usize) += 1;
        }
        eprintln!("bundle flips refused: {codes:?}");
    }
}

#[test]
fn every_prefix_of_a_ratchet_message_is_malformed() {
    let (_alice, mut bob, known, mut rng) = ratchet_setup(6);
    let before = bob.state_digest();
    for len in 0..known.len() {
        let err = bob.decrypt("alice", &known[..len], &mut rng).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Malformed, "prefix of {len} bytes: {err}");
        assert_eq!(bob.state_digest(), before);
    }
    assert_eq!(bob.decrypt("alice", &known, &mut rng).unwrap().plaintext, b"second");
}

#[test]
fn prefixes_of_a_prekey_message_are_malformed() {
    let (_alice, mut bob, m, mut rng) = prekey_setup(7, true);
    let l = prekey_layout(&m);
    let mut lens = vec![0, 1, 2, 3, 4, 40, 67, 68, 70, 72, 73, 75, 77, 80, 81, 100, 112, 113, 114, 900];
    lens.extend([l.ratchet_header - 1, l.ratchet_header, l.ratchet_header + 20, l.ciphertext - 1, l.ciphertext]);
    lens.extend([l.ciphertext + 1, l.ciphertext + 15, l.ciphertext + 16, l.ciphertext + 64, m.len() - 16, m.len() - 1]);
    let before = bob.state_digest();
    for len in lens {
        let err = bob.decrypt("alice", &m[..len], &mut rng).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Malformed, "prefix of {len} bytes: {err}");
        assert_eq!(bob.state_digest(), before);
    }
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"the original");
}

#[test]
fn extended_inputs_are_refused() {
    let (mut alice, mut bob, m, mut rng) = prekey_setup(8, true);
    // Messages: one trailing byte breaks the ciphertext length; a whole trailing block
    // passes the length check and fails authentication.
    let mut longer = m.clone();
    longer.push(0);
    assert_refused(&mut bob, "alice", &longer, &mut rng, ErrorCode::Malformed);
    longer.extend([0; 63]);
    assert_refused(&mut bob, "alice", &longer, &mut rng, ErrorCode::AuthenticationFailed);
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"the original");
    let r = bob.encrypt("alice", b"reply").unwrap();
    let mut longer = r.clone();
    longer.push(0);
    assert_refused(&mut alice, "bob", &longer, &mut rng, ErrorCode::Malformed);
    longer.extend([0; 63]);
    assert_refused(&mut alice, "bob", &longer, &mut rng, ErrorCode::AuthenticationFailed);
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"reply");

    // Bundles: a full bundle is at the size bound; a shorter one has a trailing byte.
    let mut carol = device("carol", 1, &mut rng);
    let mut with = carol.next_bundle().unwrap().to_bytes();
    with.push(0);
    assert_eq!(bundle_code(&with), ErrorCode::TooLarge);
    let mut without = carol.next_bundle().unwrap().to_bytes();
    without.push(0);
    assert!(matches!(
        PreKeyBundle::from_bytes(&without).unwrap_err(),
        gochat_e2ee::keys::KeyError::Decode(gochat_e2ee::wire::DecodeError::TrailingBytes(1))
    ));

    // Snapshots.
    let key = snapshot_key(1);
    let mut snap = bob.export(&key, &mut rng).expect("export");
    snap.push(0);
    assert_eq!(Device::import(&key, &snap).unwrap_err().code(), ErrorCode::SnapshotUndecryptable);
    let mut rec = bob.export_session("alice", &key, &mut rng).unwrap();
    rec.push(0);
    let before = bob.state_digest();
    assert_eq!(bob.import_session("alice", &key, &rec).unwrap_err().code(), ErrorCode::SnapshotUndecryptable);
    assert_eq!(bob.state_digest(), before);

    // Retry requests: with a one-time prekey in its bundle, a request is at its bound.
    let alice_id = *alice.identity();
    bob.account_mut().generate_one_time_prekeys(1, &mut rng).unwrap();
    let sent = alice.encrypt("bob", b"x").unwrap();
    for _ in 0..2 {
        let mut req = bob.retry_request("alice", &alice_id, &sent, NOW).unwrap();
        let expected = if req.len() == MAX_RETRY_REQUEST_BYTES { ErrorCode::TooLarge } else { ErrorCode::Malformed };
        req.push(0);
        let before = alice.state_digest();
        assert_eq!(alice.handle_retry_request("bob", &req, NOW, &mut rng).unwrap_err().code(), expected);
        assert_eq!(alice.state_digest(), before);
    }
}

fn assert_retry_refused(alice: &mut Device, req: &[u8], rng: &mut ChaCha20Rng) -> ErrorCode {
    let before = alice.state_digest();
    let err = alice.handle_retry_request("bob", req, NOW, rng).unwrap_err();
    assert_eq!(alice.state_digest(), before, "{err}");
    err.code()
}

#[test]
fn empty_inputs_give_typed_errors() {
    let Pair { mut alice, mut bob, mut rng } = pair(9);
    assert_refused(&mut bob, "alice", &[], &mut rng, ErrorCode::Malformed);
    assert_refused(&mut bob, "nobody", &[], &mut rng, ErrorCode::Malformed);
    assert_eq!(bundle_code(&[]), ErrorCode::Malformed);
    let key = snapshot_key(2);
    assert_eq!(Device::import(&key, &[]).unwrap_err().code(), ErrorCode::SnapshotTruncated);
    let before = bob.state_digest();
    assert_eq!(bob.import_session("alice", &key, &[]).unwrap_err().code(), ErrorCode::SnapshotTruncated);
    assert_eq!(bob.state_digest(), before);
    assert_eq!(assert_retry_refused(&mut alice, &[], &mut rng), ErrorCode::Malformed);
    assert_eq!(
        gochat_e2ee::Error::from(SnapshotKey::from_slice(&[0; 31]).unwrap_err()).code(),
        ErrorCode::InvalidSnapshotKey
    );
    assert!(SnapshotKey::from_slice(&[0; 33]).is_err());
    assert!(SnapshotKey::from_slice(&[0; 32]).is_ok());
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
}

#[test]
fn one_mib_random_inputs_give_typed_errors() {
    let Pair { mut alice, mut bob, mut rng } = pair(10);
    let key = snapshot_key(3);
    for i in 0..4u8 {
        let mut junk = random_bytes(MIB, &mut rng);
        // Also with each input's own valid type and version bytes.
        let typed = |t: u8| {
            let mut j = junk.clone();
            if i % 2 == 1 {
                j[0] = t;
                j[1] = 1;
            }
            j
        };
        for t in [PREKEY_MESSAGE, RATCHET_MESSAGE] {
            assert_refused(&mut bob, "alice", &typed(t), &mut rng, ErrorCode::TooLarge);
        }
        assert_eq!(bundle_code(&typed(0x02)), ErrorCode::TooLarge);
        assert_eq!(assert_retry_refused(&mut alice, &typed(0x05), &mut rng), ErrorCode::TooLarge);
        // Snapshots are large; random bytes fail on the header or the tag.
        if i >= 2 {
            junk[0] = 0x10;
            junk[1] = 0x02;
            junk[2] = 0x01 + (i % 2);
        }
        let expected = match (junk[0], junk[1], junk[2]) {
            (0x10, 0x02, 0x01) => ErrorCode::SnapshotUndecryptable,
            (0x10, 0x02, _) => ErrorCode::SnapshotWrongKind,
            (0x10, _, _) => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::WrongMessageType,
        };
        assert_eq!(Device::import(&key, &junk).unwrap_err().code(), expected);
        let expected_record = match (junk[0], junk[1], junk[2]) {
            (0x10, 0x02, 0x02) => ErrorCode::SnapshotUndecryptable,
            (0x10, 0x02, _) => ErrorCode::SnapshotWrongKind,
            _ => expected,
        };
        let before = bob.state_digest();
        assert_eq!(bob.import_session("alice", &key, &junk).unwrap_err().code(), expected_record);
        assert_eq!(bob.state_digest(), before);
    }
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"fine", &mut rng);
}

#[test]
fn random_inputs_of_message_size_are_refused() {
    let Pair { mut alice, mut bob, mut rng } = pair(11);
    for len in [1usize, 2, 42, 121, 122, 1801, MAX_MESSAGE_BYTES] {
        for t in [PREKEY_MESSAGE, RATCHET_MESSAGE] {
            let mut junk = random_bytes(len, &mut rng);
            junk[0] = t;
            if len > 1 {
                junk[1] = 1;
            }
            refuse_any(&mut bob, "alice", &junk, &mut rng);
        }
    }
    let mut junk = random_bytes(MAX_MESSAGE_BYTES + 1, &mut rng);
    junk[0] = RATCHET_MESSAGE;
    assert_refused(&mut bob, "alice", &junk, &mut rng, ErrorCode::TooLarge);
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
}

#[test]
fn message_for_bob_given_to_carol_is_refused() {
    let mut rng = rng(12);
    let mut alice = device("alice", 1, &mut rng);
    let mut bob = device("bob", 1, &mut rng);
    let mut carol = device("carol", 1, &mut rng);
    let b = bundle(&mut bob);
    // Carol issued a bundle too, so the prekey ids in Alice's message exist at Carol's.
    let c = bundle(&mut carol);
    assert_eq!(b.signed_prekey().id, c.signed_prekey().id);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let p = alice.encrypt("bob", b"for bob").unwrap();
    assert_refused(&mut carol, "alice", &p, &mut rng, ErrorCode::AuthenticationFailed);
    assert_eq!(bob.decrypt("alice", &p, &mut rng).unwrap().plaintext, b"for bob");
    exchange(&mut bob, "alice", &mut alice, "bob", b"hi", &mut rng);
    let m = alice.encrypt("bob", b"for bob again").unwrap();
    assert_eq!(m[0], RATCHET_MESSAGE);
    assert_refused(&mut carol, "alice", &m, &mut rng, ErrorCode::NoSession);
    // Carol with her own session with Alice.
    let _ = alice.initiate("carol", &c, &mut rng).unwrap();
    let pc = alice.encrypt("carol", b"for carol").unwrap();
    assert_eq!(carol.decrypt("alice", &pc, &mut rng).unwrap().plaintext, b"for carol");
    assert_refused(&mut carol, "alice", &m, &mut rng, ErrorCode::AuthenticationFailed);
    assert_refused(&mut carol, "alice", &p, &mut rng, ErrorCode::OneTimePreKeyReused);
    // Bob himself under the wrong peer name.
    assert_refused(&mut bob, "carol", &m, &mut rng, ErrorCode::NoSession);
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"for bob again");
}

#[test]
fn snapshot_wrong_key_truncated_and_tampered_are_refused() {
    let Pair { mut alice, mut bob, mut rng } = pair(13);
    let key = snapshot_key(4);
    let snap = bob.export(&key, &mut rng).expect("export");
    let rec = bob.export_session("alice", &key, &mut rng).unwrap();
    assert_eq!(Device::import(&snapshot_key(5), &snap).unwrap_err().code(), ErrorCode::SnapshotUndecryptable);
    let before = bob.state_digest();
    let code = |r: Result<(), gochat_e2ee::Error>| r.unwrap_err().code();
    assert_eq!(code(bob.import_session("alice", &snapshot_key(5), &rec)), ErrorCode::SnapshotUndecryptable);
    // Shorter than header and tag: truncated; longer prefixes fail the tag.
    for len in 0..35 + 16 {
        assert_eq!(Device::import(&key, &snap[..len]).unwrap_err().code(), ErrorCode::SnapshotTruncated, "{len}");
        assert_eq!(code(bob.import_session("alice", &key, &rec[..len])), ErrorCode::SnapshotTruncated);
    }
    for len in [51, 52, 100, snap.len() / 2, snap.len() - 16, snap.len() - 1] {
        assert_eq!(Device::import(&key, &snap[..len]).unwrap_err().code(), ErrorCode::SnapshotUndecryptable);
    }
    for len in [51, rec.len() - 1] {
        assert_eq!(code(bob.import_session("alice", &key, &rec[..len])), ErrorCode::SnapshotUndecryptable);
    }
    // Any modified byte.
    // Version 4 is written; versions 2 and 3 are still read, so a flip to one of them
    // would reach the tag (the version is in the AAD) and fail there.
    let expected = |byte: usize, bit: usize| match byte {
        0 => ErrorCode::WrongMessageType,
        1 if gochat_e2ee::wire::SNAPSHOT_VERSIONS_READ_ALSO
            .contains(&(gochat_e2ee::wire::SNAPSHOT_VERSION ^ (1 << (bit % 8)))) =>
        {
            ErrorCode::SnapshotUndecryptable
        }
        1 => ErrorCode::UnsupportedVersion,
        2 => ErrorCode::SnapshotWrongKind,
        _ => ErrorCode::SnapshotUndecryptable,
    };
    for bit in bits(snap.len(), std::slice::from_ref(&(0..35)), 16) {
        let err = Device::import(&key, &flip(&snap, bit)).unwrap_err();
        assert_eq!(err.code(), expected(bit / 8, bit), "bit {bit}");
    }
    for bit in bits(rec.len(), std::slice::from_ref(&(0..35)), 8) {
        assert_eq!(code(bob.import_session("alice", &key, &flip(&rec, bit))), expected(bit / 8, bit), "bit {bit}");
    }
    assert_eq!(bob.state_digest(), before);
    let mut bob = Device::import(&key, &snap).unwrap();
    exchange(&mut alice, "bob", &mut bob, "alice", b"fine", &mut rng);
}

#[test]
fn bit_flips_of_a_retry_request_are_refused_and_keep_state() {
    let Pair { mut alice, mut bob, mut rng } = pair(14);
    let sent = alice.encrypt("bob", b"x").unwrap();
    let req = bob.retry_request("alice", alice.identity(), &sent, NOW).unwrap();
    let mut codes = std::collections::BTreeMap::new();
    let stride = if exhaustive() { 1 } else { 32 };
    let bundle_at = 2 + 66 + 66 + 32;
    for bit in bits(req.len(), &[0..4, 68..72, bundle_at..bundle_at + 6], stride) {
        let code = assert_retry_refused(&mut alice, &flip(&req, bit), &mut rng);
        assert!(
            matches!(
                code,
                ErrorCode::Malformed
                    | ErrorCode::TooLarge
                    | ErrorCode::WrongMessageType
                    | ErrorCode::UnsupportedVersion
                    | ErrorCode::BadSignature
                    | ErrorCode::InvalidKey
                    | ErrorCode::WeakKey
            ),
            "bit {bit}: {code:?}"
        );
        *codes.entry(code.as_str()).or_insert(0usize) += 1;
    }
    eprintln!("retry request flips refused: {codes:?}");
    for len in [1, 2, 100, 134, 166, 168, 500, req.len() - 64, req.len() - 1] {
        assert_eq!(assert_retry_refused(&mut alice, &req[..len], &mut rng), ErrorCode::Malformed, "{len}");
    }
    assert_eq!(alice.handle_retry_request("bob", &req, NOW, &mut rng).unwrap(), Device::message_digest(&sent));
}

/// An Ed25519 key encoding that is not a curve point.
fn invalid_signing_key() -> [u8; 32] {
    for i in 2u8..=255 {
        let mut id = [0u8; 66];
        id[0] = 1;
        id[1] = 1;
        id[2] = i;
        id[34] = 9;
        if IdentityKey::from_bytes(&id).map_err(|e| gochat_e2ee::Error::from(e).code()) == Err(ErrorCode::InvalidKey) {
            let mut k = [0u8; 32];
            k[0] = i;
            return k;
        }
    }
    panic!("no invalid point found");
}

#[test]
fn every_decrypt_error_variant_keeps_state() {
    let (alice, mut bob, p, mut rng) = prekey_setup(15, true);
    let l = prekey_layout(&p);
    let bob_id = bob.identity().to_bytes();
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = p.clone();
        f(&mut m);
        m
    };
    let cases: Vec<(ErrorCode, Vec<u8>)> = vec![
        (ErrorCode::Malformed, p[..p.len() - 1].to_vec()),
        (ErrorCode::TooLarge, vec![PREKEY_MESSAGE; MAX_MESSAGE_BYTES + 1]),
        (ErrorCode::WrongMessageType, alice.identity().to_bytes().to_vec()),
        (ErrorCode::WrongMessageType, edit(&|m| m[0] = 0x05)),
        (ErrorCode::UnsupportedVersion, edit(&|m| m[1] = 1)),
        (ErrorCode::UnsupportedVersion, edit(&|m| m[1] = 3)),
        (ErrorCode::WrongMessageType, edit(&|m| m[2] = 2)),
        (ErrorCode::UnsupportedVersion, edit(&|m| m[3] = 0)),
        (ErrorCode::Malformed, edit(&|m| m[l.one_time_flag] = 2)),
        (ErrorCode::WeakKey, edit(&|m| m[l.base_key..l.base_key + 32].fill(0))),
        (ErrorCode::WeakKey, edit(&|m| m[l.identity + 34..l.identity + 66].fill(0))),
        (ErrorCode::WeakKey, edit(&|m| m[l.identity + 2..l.identity + 34].fill(0))),
        (ErrorCode::InvalidKey, edit(&|m| m[l.identity + 2..l.identity + 34].copy_from_slice(&invalid_signing_key()))),
        (ErrorCode::NonContributory, edit(&|m| m[l.ratchet_header..l.ratchet_header + 32].fill(0))),
        (ErrorCode::UnknownSignedPreKey, edit(&|m| put_u32(m, l.signed_prekey_id, 99))),
        (ErrorCode::UnknownOneTimePreKey, edit(&|m| put_u32(m, l.one_time_prekey_id.unwrap(), 99))),
        (ErrorCode::UnknownOneTimePreKey, edit(&|m| put_u32(m, l.one_time_prekey_id.unwrap(), 0))),
        (ErrorCode::UnknownPqPreKey, edit(&|m| put_u32(m, l.pq_prekey_id, 99))),
        (ErrorCode::UnknownPqPreKey, edit(&|m| put_u32(m, l.pq_prekey_id, 0))),
        (ErrorCode::SelfSession, edit(&|m| m[l.identity..l.identity + 66].copy_from_slice(&bob_id))),
        (ErrorCode::AuthenticationFailed, edit(&|m| *m.last_mut().unwrap() ^= 1)),
        (ErrorCode::AuthenticationFailed, edit(&|m| m[l.base_key] ^= 0x40)),
        (ErrorCode::AuthenticationFailed, edit(&|m| m[l.kem_ciphertext + 100] ^= 1)),
        (ErrorCode::AuthenticationFailed, edit(&|m| m[l.ratchet_header + 39] ^= 1)),
    ];
    for (code, m) in &cases {
        assert_refused(&mut bob, "alice", m, &mut rng, *code);
    }
    let long_name = "x".repeat(MAX_NAME_BYTES + 1);
    assert_refused(&mut bob, &long_name, &p, &mut rng, ErrorCode::Malformed);
    assert_eq!(bob.decrypt("alice", &p, &mut rng).unwrap().plaintext, b"the original");
    // On the established session.
    assert_refused(&mut bob, "alice", &p, &mut rng, ErrorCode::Duplicate);
    let mut alice = alice;
    let r = bob.encrypt("alice", b"r").unwrap();
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"r");
    let m = alice.encrypt("bob", b"m").unwrap();
    let mut zero_key = m.clone();
    zero_key[2..34].fill(0);
    assert_refused(&mut bob, "alice", &zero_key, &mut rng, ErrorCode::NonContributory);
    let mut forged = m.clone();
    forged[60] ^= 0x80;
    assert_refused(&mut bob, "alice", &forged, &mut rng, ErrorCode::AuthenticationFailed);
    let mut far = m.clone();
    far[38] ^= 0x01;
    assert_refused(&mut bob, "alice", &far, &mut rng, ErrorCode::TooFarAhead);
    assert_refused(&mut bob, "carol", &m, &mut rng, ErrorCode::NoSession);
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"m");
    assert_refused(&mut bob, "alice", &m, &mut rng, ErrorCode::Duplicate);
    // TooFarAhead, OneTimePreKeyReused, PqPreKeyReused and LastResortReplay are shown to
    // keep state in conversation.rs, InvalidPadding below.
}

/// Builds, from Alice's exported session record (format in `docs/protocol.md` 8.1), the
/// ratchet message her next `encrypt` would produce, but with `padded` as the padded
/// plaintext: a validly authenticated message with invalid padding.
fn forge_with_padding(alice: &Device, bob: &Device, padded: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    let key = snapshot_key(0x77);
    let snap = alice.export_session("bob", &key, rng).unwrap();
    let mut okm = [0u8; 44];
    let mut info = b"GoChat-E2EE v1 snapshot".to_vec();
    info.push(snap[2]);
    hkdf::Hkdf::<Sha256>::new(Some(&snap[3..35]), &[0x77; 32]).expand(&info, &mut okm).unwrap();
    let k: [u8; 32] = okm[..32].try_into().unwrap();
    let n: [u8; 12] = okm[32..].try_into().unwrap();
    // AAD: the header, then the context binding the record to its owner and peer name.
    let aad = [&snap[..35], &alice.identity().to_bytes()[..], &3u32.to_be_bytes(), b"bob"].concat();
    let state = aes_gcm::Aes256Gcm::new(&k.into()).decrypt(&n.into(), Payload { msg: &snap[35..], aad: &aad }).unwrap();
    // u32 session count || remote identity (66) || root (32) || our ratchet secret (32)
    // || our ratchet public key (32) || sending flag || sending chain key (32) || Ns || PN
    // || epoch || ...
    let at = 4 + 66;
    let secret: [u8; 32] = state[at + 32..at + 64].try_into().unwrap();
    assert_eq!(state[at + 96], 1, "Alice can send");
    let ck = &state[at + 97..at + 129];
    let ns = &state[at + 129..at + 133];
    let pn = &state[at + 133..at + 137];
    let epoch = &state[at + 137..at + 141];
    let ratchet_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
    let hmac = |data: u8| -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(ck).unwrap();
        mac.update(&[data]);
        mac.finalize().into_bytes().into()
    };
    let mk = hmac(0x01);
    let mut okm = [0u8; 44];
    let info = [&b"GoChat-E2EE v2 1:1 message keys"[..], epoch].concat();
    hkdf::Hkdf::<Sha256>::new(Some(&[0u8; 32]), &mk).expand(&info, &mut okm).unwrap();
    let k: [u8; 32] = okm[..32].try_into().unwrap();
    let n: [u8; 12] = okm[32..].try_into().unwrap();
    let mut msg = vec![RATCHET_MESSAGE, 2];
    msg.extend_from_slice(ratchet_pub.as_bytes());
    msg.extend_from_slice(pn);
    msg.extend_from_slice(ns);
    msg.extend_from_slice(epoch);
    let aad = [&alice.identity().to_bytes()[..], &bob.identity().to_bytes()[..], &msg[..]].concat();
    let ct = aes_gcm_siv::Aes256GcmSiv::new(&k.into()).encrypt(&n.into(), Payload { msg: padded, aad: &aad }).unwrap();
    msg.extend_from_slice(&ct);
    msg
}

#[test]
fn authenticated_message_with_invalid_padding_is_refused_and_keeps_state() {
    let Pair { mut alice, mut bob, mut rng } = pair(17);
    // Alice initiated, so the session AD is her identity then Bob's.
    exchange(&mut alice, "bob", &mut bob, "alice", b"warm up", &mut rng);
    // The forgery method is sound: correct padding is accepted, as Alice's own message.
    let mut good = b"forged but fine".to_vec();
    good.push(0x80);
    good.resize(64, 0);
    let m = forge_with_padding(&alice, &bob, &good, &mut rng);
    assert_eq!(fork(&bob, &mut rng).decrypt("alice", &m, &mut rng).unwrap().plaintext, b"forged but fine");
    let mut too_long = vec![b'x'];
    too_long.push(0x80);
    too_long.resize(128, 0);
    let mut no_marker = vec![b'x'; 10];
    no_marker.resize(64, 0);
    for padded in [vec![0u8; 64], no_marker, too_long, [vec![0x80], vec![0; 127]].concat()] {
        let m = forge_with_padding(&alice, &bob, &padded, &mut rng);
        assert_refused(&mut bob, "alice", &m, &mut rng, ErrorCode::InvalidPadding);
    }
    // Nothing was consumed: Alice's real message with the same counter decrypts.
    exchange(&mut alice, "bob", &mut bob, "alice", b"real", &mut rng);
    exchange(&mut bob, "alice", &mut alice, "bob", b"fine", &mut rng);
}

#[test]
fn initiate_refuses_a_session_with_our_own_identity_and_keeps_state() {
    let mut rng = rng(91);
    let mut alice = device("alice", 2, &mut rng);
    let own = bundle(&mut alice);
    let before = alice.state_digest();
    assert_eq!(alice.initiate("me", &own, &mut rng).unwrap_err().code(), ErrorCode::SelfSession);
    assert_eq!(alice.state_digest(), before);
    assert!(alice.session_record("me").is_none());
}
