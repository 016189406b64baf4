//! Tests of the channel layer, in the order of `docs/channels-spec.md`.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::announcement::{encode_announcement, encode_distribution, encode_rotation, restricted_header};
use super::*;
use crate::group::chain::{message_key, ChainError, SenderChain};
use crate::labels;
use crate::ratchet::pad;

const NOW: u64 = 1_700_000_000;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn subscribe(p: &Publisher) -> Subscription {
    Subscription::new(p.channel_id(), p.public_key(), p.kind()).unwrap()
}

fn state(s: &Subscription) -> Vec<u8> {
    s.to_state_bytes().to_vec()
}

fn pub_state(p: &Publisher) -> Vec<u8> {
    p.to_state_bytes().to_vec()
}

/// Receives `bytes`, expecting a refusal that leaves the subscription byte-identical.
fn refused(s: &mut Subscription, bytes: &[u8], now: u64) -> ChannelError {
    let before = state(s);
    let err = s.receive(bytes, now).expect_err("must be refused");
    assert_eq!(state(s), before, "a refused receive changed the state ({err:?})");
    err
}

fn refused_key(s: &mut Subscription, bytes: &[u8]) -> ChannelError {
    let before = state(s);
    let err = s.accept_key(bytes).expect_err("must be refused");
    assert_eq!(state(s), before, "a refused distribution changed the state ({err:?})");
    err
}

fn announcement(r: Received) -> Announcement {
    match r {
        Received::Announcement(a) => a,
        other => panic!("expected an announcement, got {other:?}"),
    }
}

fn text(p: &mut Publisher, body: &[u8]) -> Vec<u8> {
    p.announce(ContentType::Text, body, NOW).unwrap()
}

/// A signing key whose `public` field claims another key's public key.
fn impostor(claimed: [u8; 32], rng: &mut ChaCha20Rng) -> ChannelSigningKey {
    let mut k = ChannelSigningKey::generate(rng);
    k.public = claimed;
    k
}

/// The first small y that is not the encoding of a curve point.
fn off_curve_point() -> [u8; 32] {
    (2u8..100)
        .map(|y| {
            let mut k = [0u8; 32];
            k[0] = y;
            k
        })
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .unwrap()
}

fn every_bit_flip(bytes: &[u8], mut f: impl FnMut(&[u8])) {
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.to_vec();
        b[i / 8] ^= 1 << (i % 8);
        f(&b);
    }
}

// ---------------------------------------------------------------- sizes and layouts

#[test]
fn sizes_are_as_specified() {
    assert_eq!(ANNOUNCEMENT_OVERHEAD_BYTES, 151);
    assert_eq!(MAX_ANNOUNCEMENT_BYTES, 65_687);
    assert_eq!(KEY_ROTATION_BYTES, 242);
    assert_eq!(RESTRICTED_HEADER_BYTES, 42);
    assert_eq!(MAX_RESTRICTED_PADDED_BYTES, 65_728);
    assert_eq!(MAX_RESTRICTED_ANNOUNCEMENT_BYTES, 65_786);
    assert_eq!(KEY_DISTRIBUTION_BYTES, 170);
}

#[test]
fn largest_posts_have_the_maximum_sizes_and_one_byte_more_is_refused() {
    let mut r = rng(1);
    let body = vec![0x41; MAX_ANNOUNCEMENT_BODY_BYTES];
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let m = p.announce(ContentType::Json, &body, NOW).unwrap();
    assert_eq!(m.len(), MAX_ANNOUNCEMENT_BYTES);
    assert_eq!(announcement(s.receive(&m, NOW).unwrap()).body, body);

    let before = pub_state(&p);
    let too_big = vec![0; MAX_ANNOUNCEMENT_BODY_BYTES + 1];
    assert_eq!(
        p.announce(ContentType::Text, &too_big, NOW),
        Err(ChannelError::BodyTooLarge { len: MAX_ANNOUNCEMENT_BODY_BYTES + 1, max: MAX_ANNOUNCEMENT_BODY_BYTES })
    );
    assert_eq!(pub_state(&p), before, "a refused post changes nothing");

    let mut p = Publisher::new(ChannelKind::Restricted, &mut r);
    let mut s = subscribe(&p);
    s.accept_key(&p.key_distribution().unwrap()).unwrap();
    let m = p.announce(ContentType::Json, &body, NOW).unwrap();
    assert_eq!(m.len(), MAX_RESTRICTED_ANNOUNCEMENT_BYTES);
    assert_eq!(announcement(s.receive(&m, NOW).unwrap()).body, body);
    let before = pub_state(&p);
    assert!(p.announce(ContentType::Text, &too_big, NOW).is_err());
    assert_eq!(pub_state(&p), before);
}

#[test]
fn announcement_layout_is_as_specified() {
    let mut r = rng(2);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let m = p.announce(ContentType::AttachmentPointer, b"xyz", 0x0102).unwrap();
    assert_eq!(&m[..2], &[0x30, 0x01]);
    assert_eq!(&m[2..34], p.channel_id().as_bytes());
    assert_eq!(&m[34..42], &1u64.to_be_bytes());
    assert_eq!(&m[42..50], &0x0102u64.to_be_bytes());
    assert_eq!(m[50], 0x03);
    assert_eq!(&m[51..55], &3u32.to_be_bytes());
    assert_eq!(&m[55..58], b"xyz");
    assert_eq!(&m[58..90], &p.public_key());
    assert_eq!(m.len(), 90 + 64);
}

// ---------------------------------------------------------------- public channels

#[test]
fn public_announcements_round_trip_in_sequence() {
    let mut r = rng(3);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    for (i, ct) in [ContentType::Text, ContentType::Json, ContentType::AttachmentPointer].into_iter().enumerate() {
        let body = format!("notice {i}").into_bytes();
        let m = p.announce(ct, &body, NOW + i as u64).unwrap();
        let a = announcement(s.receive(&m, NOW).unwrap());
        assert_eq!(
            a,
            Announcement {
                channel_id: p.channel_id(),
                seq: i as u64 + 1,
                timestamp: NOW + i as u64,
                content_type: ct,
                body,
                signer: p.public_key(),
            }
        );
    }
    assert_eq!(s.last_seq(), 3);
    assert_eq!(p.next_seq(), 4);
}

#[test]
fn replay_with_equal_seq_and_rollback_with_lower_seq_are_refused() {
    let mut r = rng(4);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let posts: Vec<_> = (0..70).map(|i| text(&mut p, &[i])).collect();
    let _ = s.receive(&posts[0], NOW).unwrap();
    assert_eq!(refused(&mut s, &posts[0], NOW), ChannelError::StaleSequence { last: 1, got: 1 });
    let _ = s.receive(&posts[69], NOW).unwrap();
    // Withheld posts delivered late are rollbacks too, however close to the last one.
    assert_eq!(refused(&mut s, &posts[1], NOW), ChannelError::StaleSequence { last: 70, got: 2 });
    assert_eq!(refused(&mut s, &posts[68], NOW), ChannelError::StaleSequence { last: 70, got: 69 });
    assert_eq!(refused(&mut s, &posts[69], NOW), ChannelError::StaleSequence { last: 70, got: 70 });
}

#[test]
fn sequence_numbers_are_strictly_monotonic() {
    let mut r = rng(5);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let posts: Vec<_> = (0..6).map(|i| text(&mut p, &[i])).collect();
    // Delivered out of order: only the ones above the last accepted pass.
    let mut accepted = Vec::new();
    for i in [2usize, 0, 5, 1, 4, 3] {
        match s.receive(&posts[i], NOW) {
            Ok(got) => accepted.push(announcement(got).seq),
            Err(e) => assert!(matches!(e, ChannelError::StaleSequence { got, .. } if got == i as u64 + 1)),
        }
    }
    assert_eq!(accepted, [3, 6]);
    for post in &posts {
        assert!(matches!(refused(&mut s, post, NOW), ChannelError::StaleSequence { last: 6, .. }));
    }
    // Gaps are fine (withheld posts are not waited for): the next one above is taken.
    let _ = text(&mut p, b"7");
    assert_eq!(announcement(s.receive(&text(&mut p, b"8"), NOW).unwrap()).seq, 8);
}

#[test]
fn future_timestamps_are_refused_and_the_bound_is_inclusive() {
    let mut r = rng(6);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let late = p.announce(ContentType::Text, b"a", NOW + MAX_ANNOUNCEMENT_FUTURE_SECS + 1).unwrap();
    assert_eq!(
        refused(&mut s, &late, NOW),
        ChannelError::FromFuture { timestamp: NOW + MAX_ANNOUNCEMENT_FUTURE_SECS + 1, now: NOW }
    );
    // The same post once the clock has caught up.
    let _ = s.receive(&late, NOW + 1).unwrap();
    let edge = p.announce(ContentType::Text, b"b", NOW + MAX_ANNOUNCEMENT_FUTURE_SECS).unwrap();
    let _ = s.receive(&edge, NOW).unwrap();
    // Old timestamps are not refused (a subscriber may be offline for long).
    let old = p.announce(ContentType::Text, b"c", 0).unwrap();
    let _ = s.receive(&old, NOW).unwrap();
}

#[test]
fn wrong_signer_and_wrong_channel_are_refused_even_with_a_valid_signature() {
    let mut r = rng(7);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let other = ChannelSigningKey::generate(&mut r);
    // A valid signature by another key, for this channel: WrongSigner.
    let forged = encode_announcement(&other, &p.channel_id(), 1, NOW, ContentType::Text, b"fake").unwrap();
    assert!(verify_announcement(&forged, &other.public).is_ok(), "the signature itself is valid");
    assert_eq!(refused(&mut s, &forged, NOW), ChannelError::WrongSigner);
    // Claiming the channel key but signed by another: BadSignature.
    let claimed = impostor(p.public_key(), &mut r);
    let forged = encode_announcement(&claimed, &p.channel_id(), 1, NOW, ContentType::Text, b"fake").unwrap();
    assert_eq!(refused(&mut s, &forged, NOW), ChannelError::BadSignature);
    // A genuine post of another channel: WrongChannel.
    let mut q = Publisher::new(ChannelKind::Public, &mut r);
    assert_eq!(refused(&mut s, &text(&mut q, b"x"), NOW), ChannelError::WrongChannel);
    // The genuine post is still accepted afterwards.
    let _ = s.receive(&text(&mut p, b"real"), NOW).unwrap();
}

#[test]
fn checks_run_in_the_documented_order() {
    let mut r = rng(8);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let _ = s.receive(&text(&mut p, b"1"), NOW).unwrap();
    let other = ChannelSigningKey::generate(&mut r);
    // Stale and from the future and wrong signer: WrongSigner comes first.
    let m = encode_announcement(&other, &p.channel_id(), 1, u64::MAX, ContentType::Text, b"").unwrap();
    assert_eq!(refused(&mut s, &m, NOW), ChannelError::WrongSigner);
    // Other channel and wrong signer: WrongChannel first.
    let m = encode_announcement(&other, &ChannelId([0; 32]), 1, NOW, ContentType::Text, b"").unwrap();
    assert_eq!(refused(&mut s, &m, NOW), ChannelError::WrongChannel);
    // Stale and from the future: StaleSequence first.
    let mut p2 = Publisher::from_state_bytes(&pub_state(&p)).unwrap();
    let stale = p.announce(ContentType::Text, b"", u64::MAX).unwrap();
    let _ = s.receive(&p2.announce(ContentType::Text, b"", NOW).unwrap(), NOW).unwrap();
    assert!(matches!(refused(&mut s, &stale, NOW), ChannelError::StaleSequence { .. }));
}

#[test]
fn every_bit_flip_truncation_and_trailing_byte_is_refused() {
    let mut r = rng(9);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let m = text(&mut p, b"bulletin");
    every_bit_flip(&m, |b| {
        refused(&mut s, b, NOW);
        assert!(verify_announcement(b, &p.public_key()).is_err());
    });
    for len in 0..m.len() {
        refused(&mut s, &m[..len], NOW);
    }
    let mut long = m.clone();
    long.push(0);
    assert_eq!(refused(&mut s, &long, NOW), ChannelError::Decode(DecodeError::TrailingBytes(1)));
    let _ = s.receive(&m, NOW).unwrap();
}

#[test]
fn unknown_content_types_and_object_types_are_refused() {
    let mut r = rng(10);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let m = text(&mut p, b"x");
    for ct in [0x00u8, 0x04, 0xff] {
        let mut b = m.clone();
        b[50] = ct;
        assert_eq!(refused(&mut s, &b, NOW), ChannelError::Decode(DecodeError::InvalidValue("content type")));
    }
    let mut b = m.clone();
    b[0] = 0x34;
    assert_eq!(refused(&mut s, &b, NOW), ChannelError::Decode(DecodeError::WrongType { expected: 0x30, found: 0x34 }));
    assert_eq!(refused(&mut s, &[], NOW), ChannelError::Decode(DecodeError::Empty));
    let mut b = m.clone();
    b[1] = 0x02;
    assert_eq!(refused(&mut s, &b, NOW), ChannelError::Decode(DecodeError::UnsupportedVersion(2)));
}

#[test]
fn forwarded_copies_verify_with_the_agency_key_only() {
    let mut r = rng(11);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let m = p.announce(ContentType::Text, b"official", NOW).unwrap();
    let a = verify_announcement(&m, &p.public_key()).unwrap();
    assert_eq!((a.body.as_slice(), a.seq, a.signer), (&b"official"[..], 1, p.public_key()));
    let q = Publisher::new(ChannelKind::Public, &mut r);
    assert_eq!(verify_announcement(&m, &q.public_key()), Err(ChannelError::WrongSigner));
    // A copy re-signed by another key but naming the agency's key as signer is forged.
    let claimed = impostor(p.public_key(), &mut r);
    let forged = encode_announcement(&claimed, &p.channel_id(), 9, NOW, ContentType::Text, b"official").unwrap();
    assert_eq!(verify_announcement(&forged, &p.public_key()), Err(ChannelError::BadSignature));
}

#[test]
fn invalid_channel_keys_are_refused() {
    // Not on the curve; the identity point (weak); y = p + 1 (non-canonical).
    let off_curve = off_curve_point();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    for k in [off_curve, identity, non_canonical] {
        assert!(matches!(
            Subscription::new(ChannelId([1; 32]), k, ChannelKind::Public),
            Err(ChannelError::Decode(DecodeError::InvalidValue(_)))
        ));
    }
}

// ---------------------------------------------------------------- key rotation

#[test]
fn rotation_moves_trust_to_the_new_key_and_old_key_posts_are_refused() {
    let mut r = rng(12);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let old = p.public_key();
    let _ = s.receive(&text(&mut p, b"1"), NOW).unwrap();
    let held = text(&mut p, b"2 (delayed)");
    let rot = p.rotate_key(NOW, &mut r).unwrap();
    assert_eq!(rot.len(), KEY_ROTATION_BYTES);
    let new = p.public_key();
    assert_ne!(old, new);
    assert_eq!(s.receive(&rot, NOW).unwrap(), Received::KeyRotated { old, new, seq: 3 });
    assert_eq!(s.channel_key(), &new);
    // A post signed by the old key, delivered after the rotation.
    assert_eq!(refused(&mut s, &held, NOW), ChannelError::WrongSigner);
    // The rotation cannot be replayed.
    assert_eq!(refused(&mut s, &rot, NOW), ChannelError::WrongSigner);
    let a = announcement(s.receive(&text(&mut p, b"4"), NOW).unwrap());
    assert_eq!((a.seq, a.signer), (4, new));
    // Forwarded copies: the old post still verifies against the old key.
    assert!(verify_announcement(&held, &old).is_ok());
}

#[test]
fn nothing_below_a_rotation_is_accepted_afterwards() {
    let mut r = rng(13);
    let k1 = ChannelSigningKey::generate(&mut r);
    let k2 = ChannelSigningKey::generate(&mut r);
    let id = ChannelId([7; 32]);
    let mut s = Subscription::new(id, k1.public, ChannelKind::Public).unwrap();
    let post = |k: &ChannelSigningKey, seq| encode_announcement(k, &id, seq, NOW, ContentType::Text, b"").unwrap();
    let _ = s.receive(&post(&k1, 2), NOW).unwrap();
    let _ = s.receive(&encode_rotation(&k1, &k2, &id, 5, NOW), NOW).unwrap();
    // Seq 3 and 4 were never seen, but are below the rotation: even signed by the
    // new key they are refused.
    assert_eq!(refused(&mut s, &post(&k2, 4), NOW), ChannelError::StaleSequence { last: 5, got: 4 });
    assert_eq!(refused(&mut s, &post(&k1, 3), NOW), ChannelError::WrongSigner);
    let _ = s.receive(&post(&k2, 6), NOW).unwrap();
    assert_eq!(Subscription::from_state_bytes(&state(&s)).unwrap().last_seq(), 6);
}

#[test]
fn rotations_not_signed_by_the_current_key_or_without_proof_of_possession_are_refused() {
    let mut r = rng(14);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let id = p.channel_id();
    let a = ChannelSigningKey::generate(&mut r);
    let b = ChannelSigningKey::generate(&mut r);
    // Signed by a key that is not the channel key.
    assert_eq!(refused(&mut s, &encode_rotation(&a, &b, &id, 1, NOW), NOW), ChannelError::WrongSigner);
    // Claims the channel key as old key but is not signed by it.
    let claimed = impostor(p.public_key(), &mut r);
    assert_eq!(refused(&mut s, &encode_rotation(&claimed, &b, &id, 1, NOW), NOW), ChannelError::BadSignature);
    // Rotation of another channel.
    let mut q = Publisher::new(ChannelKind::Public, &mut r);
    assert_eq!(refused(&mut s, &q.rotate_key(NOW, &mut r).unwrap(), NOW), ChannelError::WrongChannel);
    // Genuine old signature, but the new key's proof of possession is missing: the
    // rotation names a key it cannot sign with.
    let mut p2 = Publisher::from_state_bytes(&pub_state(&p)).unwrap();
    let genuine = p2.rotate_key(NOW, &mut r).unwrap();
    let mut no_pop = genuine.clone();
    no_pop[KEY_ROTATION_BYTES - 1] ^= 1;
    assert_eq!(refused(&mut s, &no_pop, NOW), ChannelError::BadSignature);
    // New key equal to the old one.
    let mut same = genuine.clone();
    let (old_at, new_at) = (2 + 32 + 16, 2 + 32 + 16 + 32);
    let old_key: [u8; 32] = same[old_at..new_at].try_into().unwrap();
    same[new_at..new_at + 32].copy_from_slice(&old_key);
    assert_eq!(refused(&mut s, &same, NOW), ChannelError::Decode(DecodeError::InvalidValue("rotation new key")));
    // From the future; then accepted.
    let late = p.rotate_key(NOW + 301, &mut r).unwrap();
    assert!(matches!(refused(&mut s, &late, NOW), ChannelError::FromFuture { .. }));
    every_bit_flip(&late, |bytes| {
        refused(&mut s, bytes, NOW + 1);
    });
    for len in 0..late.len() {
        refused(&mut s, &late[..len], NOW + 1);
    }
    assert!(matches!(s.receive(&late, NOW + 1).unwrap(), Received::KeyRotated { seq: 1, .. }));
}

#[test]
fn a_rotation_must_be_above_the_highest_accepted_seq() {
    let mut r = rng(15);
    let mut p = Publisher::new(ChannelKind::Public, &mut r);
    let mut s = subscribe(&p);
    let mut fork = Publisher::from_state_bytes(&pub_state(&p)).unwrap();
    let rot = fork.rotate_key(NOW, &mut r).unwrap(); // seq 1
    let _ = s.receive(&text(&mut p, b"1"), NOW).unwrap();
    let _ = s.receive(&text(&mut p, b"2"), NOW).unwrap();
    let mut s2 = Subscription::from_state_bytes(&state(&s)).unwrap();
    assert_eq!(refused(&mut s2, &rot, NOW), ChannelError::StaleSequence { last: 2, got: 1 });
}

// ---------------------------------------------------------------- restricted channels

fn restricted(seed: u64) -> (ChaCha20Rng, Publisher, Subscription, Subscription) {
    let mut r = rng(seed);
    let p = Publisher::new(ChannelKind::Restricted, &mut r);
    let mut a = subscribe(&p);
    let mut b = subscribe(&p);
    let d = p.key_distribution().unwrap();
    assert_eq!(d.len(), KEY_DISTRIBUTION_BYTES);
    a.accept_key(&d).unwrap();
    b.accept_key(&d).unwrap();
    (r, p, a, b)
}

#[test]
fn restricted_posts_are_read_by_key_holders_in_order_once() {
    let (_r, mut p, mut a, mut b) = restricted(20);
    let posts: Vec<_> = (0..5).map(|i| text(&mut p, &[b'0' + i])).collect();
    for m in &posts {
        assert_eq!(m[0], type_byte::RESTRICTED_ANNOUNCEMENT);
        assert_eq!((m.len() - RESTRICTED_HEADER_BYTES - 16) % 64, 0);
    }
    for (i, m) in posts.iter().enumerate() {
        let got = announcement(a.receive(m, NOW).unwrap());
        assert_eq!((got.seq, got.body.as_slice()), (i as u64 + 1, &[b'0' + i as u8][..]));
    }
    for m in &posts {
        assert_eq!(refused(&mut a, m, NOW), ChannelError::Chain(ChainError::Duplicate));
    }
    // Out of order: a later post skips the chain ahead and keeps no key for the
    // skipped iterations, whose posts could only be stale.
    assert_eq!(announcement(b.receive(&posts[3], NOW).unwrap()).seq, 4);
    for m in &posts[..3] {
        assert_eq!(refused(&mut b, m, NOW), ChannelError::Chain(ChainError::MessageLost));
    }
    assert_eq!(refused(&mut b, &posts[3], NOW), ChannelError::Chain(ChainError::Duplicate));
    assert_eq!(announcement(b.receive(&posts[4], NOW).unwrap()).seq, 5);
}

#[test]
fn a_subscriber_without_the_key_gets_unknown_key_until_the_distribution_arrives() {
    let mut r = rng(21);
    let mut p = Publisher::new(ChannelKind::Restricted, &mut r);
    let mut c = subscribe(&p);
    let d = p.key_distribution().unwrap();
    let m = text(&mut p, b"for members");
    let key_id = p.content_key_id().unwrap();
    assert_eq!(refused(&mut c, &m, NOW), ChannelError::UnknownKey { key_id });
    c.accept_key(&d).unwrap();
    assert_eq!(c.key_ids(), vec![key_id]);
    // A repeated distribution keeps the existing key (and its position).
    let before = state(&c);
    c.accept_key(&d).unwrap();
    assert_eq!(state(&c), before);
    assert_eq!(announcement(c.receive(&m, NOW).unwrap()).body, b"for members");
    // A late joiner reads from the distributed position on, not earlier posts.
    let mut late = subscribe(&p);
    late.accept_key(&p.key_distribution().unwrap()).unwrap();
    assert_eq!(refused(&mut late, &m, NOW), ChannelError::Chain(ChainError::MessageLost));
    let _ = late.receive(&text(&mut p, b"next"), NOW).unwrap();
}

#[test]
fn forged_distributions_are_refused() {
    let (mut r, p, mut a, _) = restricted(22);
    let id = p.channel_id();
    let other = ChannelSigningKey::generate(&mut r);
    let forged = encode_distribution(&other, &id, 7, 0, &[1; 32]);
    assert_eq!(refused_key(&mut a, &forged), ChannelError::WrongSigner);
    let claimed = impostor(p.public_key(), &mut r);
    let forged = encode_distribution(&claimed, &id, 7, 0, &[1; 32]);
    assert_eq!(refused_key(&mut a, &forged), ChannelError::BadSignature);
    let forged = encode_distribution(&other, &ChannelId([3; 32]), 7, 0, &[1; 32]);
    assert_eq!(refused_key(&mut a, &forged), ChannelError::WrongChannel);
    let d = p.key_distribution().unwrap();
    every_bit_flip(&d, |b| {
        let mut fresh = subscribe(&p);
        let before = state(&fresh);
        assert!(fresh.accept_key(b).is_err());
        assert_eq!(state(&fresh), before);
    });
    for len in 0..d.len() {
        refused_key(&mut a, &d[..len]);
    }
    let mut long = d.to_vec();
    long.push(0);
    refused_key(&mut a, &long);
}

#[test]
fn a_removed_subscriber_cannot_read_posts_after_the_content_key_rotates() {
    let (mut r, mut p, mut stays, mut removed) = restricted(23);
    let before = text(&mut p, b"before removal");
    let old_id = p.content_key_id().unwrap();
    let new_id = p.rotate_content_key(&mut r).unwrap();
    assert_ne!(old_id, new_id);
    stays.accept_key(&p.key_distribution().unwrap()).unwrap();
    let after = text(&mut p, b"after removal");
    assert_eq!(refused(&mut removed, &after, NOW), ChannelError::UnknownKey { key_id: new_id });
    // Both still read what was posted under the old key, in sequence order.
    assert_eq!(announcement(removed.receive(&before, NOW).unwrap()).body, b"before removal");
    assert_eq!(announcement(stays.receive(&before, NOW).unwrap()).seq, 1);
    assert_eq!(announcement(stays.receive(&after, NOW).unwrap()).body, b"after removal");
    assert_eq!(stays.key_ids(), vec![old_id, new_id]);
    // A post under the old key delivered after a later one is stale, whatever its key.
    let (mut r, mut p, mut late, _) = restricted(123);
    let old = text(&mut p, b"old key");
    p.rotate_content_key(&mut r).unwrap();
    late.accept_key(&p.key_distribution().unwrap()).unwrap();
    let _ = late.receive(&text(&mut p, b"new key"), NOW).unwrap();
    assert_eq!(refused(&mut late, &old, NOW), ChannelError::StaleSequence { last: 2, got: 1 });
}

#[test]
fn at_most_four_content_keys_are_kept_oldest_dropped() {
    let (mut r, mut p, mut a, _) = restricted(24);
    let first = text(&mut p, b"k0");
    let mut ids = vec![p.content_key_id().unwrap()];
    for _ in 0..MAX_CHANNEL_KEYS {
        ids.push(p.rotate_content_key(&mut r).unwrap());
        a.accept_key(&p.key_distribution().unwrap()).unwrap();
    }
    assert_eq!(a.key_ids(), ids[1..].to_vec());
    assert_eq!(refused(&mut a, &first, NOW), ChannelError::UnknownKey { key_id: ids[0] });
    let _ = a.receive(&text(&mut p, b"k4"), NOW).unwrap();
}

#[test]
fn rotating_the_channel_key_rotates_the_content_key_and_distributions_need_the_rotation() {
    let (mut r, mut p, mut a, _) = restricted(25);
    let old_id = p.content_key_id().unwrap();
    let rot = p.rotate_key(NOW, &mut r).unwrap();
    assert_ne!(p.content_key_id().unwrap(), old_id);
    let d = p.key_distribution().unwrap();
    // Distribution before the rotation: signed by a key not yet trusted (retryable).
    assert_eq!(refused_key(&mut a, &d), ChannelError::WrongSigner);
    let post = text(&mut p, b"new key");
    assert_eq!(refused(&mut a, &post, NOW), ChannelError::UnknownKey { key_id: p.content_key_id().unwrap() });
    assert!(matches!(a.receive(&rot, NOW).unwrap(), Received::KeyRotated { seq: 1, .. }));
    a.accept_key(&d).unwrap();
    assert_eq!(announcement(a.receive(&post, NOW).unwrap()).seq, 2);
}

#[test]
fn every_bit_flip_and_truncation_of_a_restricted_post_is_refused() {
    let (_r, mut p, mut a, _) = restricted(26);
    let m = text(&mut p, b"sealed");
    every_bit_flip(&m, |b| {
        refused(&mut a, b, NOW);
    });
    for len in 0..m.len() {
        refused(&mut a, &m[..len], NOW);
    }
    let mut long = m.clone();
    long.push(0);
    assert_eq!(refused(&mut a, &long, NOW), ChannelError::Decode(DecodeError::InvalidValue("ciphertext length")));
    let mut flipped_tag = m.clone();
    *flipped_tag.last_mut().unwrap() ^= 1;
    assert_eq!(refused(&mut a, &flipped_tag, NOW), ChannelError::AuthenticationFailed);
    let _ = a.receive(&m, NOW).unwrap();
}

#[test]
fn a_restricted_post_whose_inner_checks_fail_changes_nothing_and_can_be_read_later() {
    let (_r, mut p, mut a, _) = restricted(27);
    let m = p.announce(ContentType::Text, b"early", NOW + 1_000).unwrap();
    assert!(matches!(refused(&mut a, &m, NOW), ChannelError::FromFuture { .. }));
    assert_eq!(announcement(a.receive(&m, NOW + 1_000).unwrap()).body, b"early");
}

#[test]
fn restricted_inner_announcement_goes_through_every_public_check() {
    // A content key known to the test, distributed under a test channel key.
    let mut r = rng(28);
    let key = ChannelSigningKey::generate(&mut r);
    let id = ChannelId([5; 32]);
    let mut s = Subscription::new(id, key.public, ChannelKind::Restricted).unwrap();
    s.accept_key(&encode_distribution(&key, &id, 9, 0, &[9; 32])).unwrap();
    let mut chain = SenderChain::new([9; 32], 0);
    let mut seal = |plaintext: &[u8]| {
        let (i, mk) = chain.next().unwrap();
        let mut out = restricted_header(&id, 9, i);
        let ct = message_key(&mk, labels::CHANNEL_MESSAGE_KEYS).unwrap().seal_siv(&out.clone(), plaintext).unwrap();
        out.extend_from_slice(&ct);
        out
    };
    let bad_padding = seal(&[0u8; 64]);
    assert_eq!(refused(&mut s, &bad_padding, NOW), ChannelError::InvalidPadding);
    let garbage = seal(&pad(b"not an announcement"));
    assert!(matches!(refused(&mut s, &garbage, NOW), ChannelError::Decode(_)));
    let other_channel = encode_announcement(&key, &ChannelId([6; 32]), 1, NOW, ContentType::Text, b"").unwrap();
    assert_eq!(refused(&mut s, &seal(&pad(&other_channel)), NOW), ChannelError::WrongChannel);
    let other = ChannelSigningKey::generate(&mut r);
    let wrong_signer = encode_announcement(&other, &id, 1, NOW, ContentType::Text, b"").unwrap();
    assert_eq!(refused(&mut s, &seal(&pad(&wrong_signer)), NOW), ChannelError::WrongSigner);
    let good = encode_announcement(&key, &id, 1, NOW, ContentType::Text, b"ok").unwrap();
    assert_eq!(announcement(s.receive(&seal(&pad(&good)), NOW).unwrap()).body, b"ok");
    // The same signed announcement re-encrypted at a new iteration: a replay of seq 1.
    assert_eq!(refused(&mut s, &seal(&pad(&good)), NOW), ChannelError::StaleSequence { last: 1, got: 1 });
    // A ciphertext under the wrong label (e.g. a group message key) does not open.
    let (i, mk) = SenderChain::new([9; 32], 5).next().unwrap();
    let mut out = restricted_header(&id, 9, i);
    let ct = message_key(&mk, b"some other label").unwrap().seal_siv(&out.clone(), &pad(&good)).unwrap();
    out.extend_from_slice(&ct);
    assert_eq!(refused(&mut s, &out, NOW), ChannelError::AuthenticationFailed);
}

#[test]
fn objects_of_the_wrong_kind_are_refused() {
    let mut r = rng(29);
    let mut public = Publisher::new(ChannelKind::Public, &mut r);
    let mut restricted = Publisher::new(ChannelKind::Restricted, &mut r);
    let mut ps = subscribe(&public);
    // A plain post presented to a restricted subscription with the same id and key.
    let mut rs = Subscription::new(public.channel_id(), public.public_key(), ChannelKind::Restricted).unwrap();
    assert_eq!(refused(&mut rs, &text(&mut public, b"x"), NOW), ChannelError::WrongKind);
    let rm = text(&mut restricted, b"y");
    assert_eq!(refused(&mut ps, &rm, NOW), ChannelError::WrongKind);
    let key = ChannelSigningKey::generate(&mut r);
    let mut s = Subscription::new(ChannelId([1; 32]), key.public, ChannelKind::Public).unwrap();
    let d = encode_distribution(&key, &ChannelId([1; 32]), 1, 0, &[2; 32]);
    assert_eq!(refused_key(&mut s, &d), ChannelError::WrongKind);
    assert_eq!(public.key_distribution().err(), Some(ChannelError::WrongKind));
    let before = pub_state(&public);
    assert_eq!(public.rotate_content_key(&mut r), Err(ChannelError::WrongKind));
    assert_eq!(pub_state(&public), before);
}

// ---------------------------------------------------------------- state encodings

#[test]
fn publisher_state_round_trips_and_the_restored_publisher_continues() {
    let mut r = rng(30);
    for kind in [ChannelKind::Public, ChannelKind::Restricted] {
        let mut p = Publisher::new(kind, &mut r);
        let mut s = subscribe(&p);
        if kind == ChannelKind::Restricted {
            s.accept_key(&p.key_distribution().unwrap()).unwrap();
        }
        let _ = s.receive(&text(&mut p, b"1"), NOW).unwrap();
        let bytes = pub_state(&p);
        assert_eq!(bytes.len(), p.encoded_len());
        assert_eq!(bytes.len(), if kind == ChannelKind::Public { 73 } else { 113 });
        let mut back = Publisher::from_state_bytes(&bytes).unwrap();
        assert_eq!(pub_state(&back), bytes);
        assert_eq!((back.channel_id(), back.public_key(), back.kind()), (p.channel_id(), p.public_key(), kind));
        assert_eq!(announcement(s.receive(&text(&mut back, b"2"), NOW).unwrap()).seq, 2);
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Publisher::from_state_bytes(&long).unwrap_err(), DecodeError::TrailingBytes(1));
        assert!(Publisher::from_state_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        bad[32] = 2;
        assert_eq!(Publisher::from_state_bytes(&bad).unwrap_err(), DecodeError::InvalidValue("channel kind"));
        let mut zero_seq = bytes.clone();
        zero_seq[65..73].copy_from_slice(&[0; 8]);
        assert_eq!(
            Publisher::from_state_bytes(&zero_seq).unwrap_err(),
            DecodeError::InvalidValue("publisher next_seq")
        );
    }
}

#[test]
fn subscription_state_round_trips_and_is_validated() {
    let (_r, mut p, mut a, _) = restricted(31);
    let posts: Vec<_> = (0..4).map(|i| text(&mut p, &[i])).collect();
    let _ = a.receive(&posts[1], NOW).unwrap();
    let bytes = state(&a);
    assert_eq!(bytes.len(), a.encoded_len());
    let mut back = Subscription::from_state_bytes(&bytes).unwrap();
    assert_eq!(state(&back), bytes);
    assert_eq!(back.last_seq(), 2);
    // The restored copy refuses what was read and what was skipped (no key is kept
    // for a skipped iteration), and reads what comes next.
    assert_eq!(refused(&mut back, &posts[1], NOW), ChannelError::Chain(ChainError::Duplicate));
    assert_eq!(refused(&mut back, &posts[0], NOW), ChannelError::Chain(ChainError::MessageLost));
    let _ = back.receive(&posts[3], NOW).unwrap();

    let mut bad = bytes.clone();
    bad[32] = 0; // public kind with a content key
    assert!(Subscription::from_state_bytes(&bad).is_err());
    let mut bad = bytes.clone();
    bad[33..65].copy_from_slice(&off_curve_point());
    assert!(Subscription::from_state_bytes(&bad).is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(Subscription::from_state_bytes(&long).is_err());
    for len in 0..bytes.len() {
        assert!(Subscription::from_state_bytes(&bytes[..len]).is_err());
    }
    // Two copies of one key id.
    let (mut r, mut p, mut s, _) = restricted(32);
    p.rotate_content_key(&mut r).unwrap();
    s.accept_key(&p.key_distribution().unwrap()).unwrap();
    let mut dup = state(&s);
    let keys_at = 32 + 1 + 32 + 8 + 4;
    let first_len = 4 + SenderChain::STATE_BYTES + 4 + 4;
    let first_id: [u8; 4] = dup[keys_at..keys_at + 4].try_into().unwrap();
    dup[keys_at + first_len..keys_at + first_len + 4].copy_from_slice(&first_id);
    assert_eq!(Subscription::from_state_bytes(&dup).unwrap_err(), DecodeError::InvalidValue("subscription key id"));
    // A content key with a skipped key (the last chain's count, then one entry for
    // iteration 0, behind the chain at 1).
    let _ = s.receive(&text(&mut p, b"1"), NOW).unwrap();
    let mut skipped = state(&s);
    let count_at = skipped.len() - 4;
    skipped[count_at..].copy_from_slice(&1u32.to_be_bytes());
    skipped.extend_from_slice(&[0; 4]);
    skipped.extend_from_slice(&[7; 32]);
    assert_eq!(
        Subscription::from_state_bytes(&skipped).unwrap_err(),
        DecodeError::InvalidValue("subscription skipped keys")
    );
}

#[test]
fn channels_round_trip_in_order_with_limits() {
    let mut r = rng(34);
    let mut c = Channels::new();
    let mut ids = Vec::new();
    for kind in [ChannelKind::Public, ChannelKind::Restricted, ChannelKind::Public] {
        let p = Publisher::new(kind, &mut r);
        let q = Publisher::new(kind, &mut r);
        let mut s = subscribe(&q);
        if kind == ChannelKind::Restricted {
            s.accept_key(&q.key_distribution().unwrap()).unwrap();
        }
        ids.push(p.channel_id());
        c.insert_subscription(s).unwrap();
        c.insert_publisher(p).unwrap();
    }
    let dup = Publisher::from_state_bytes(&c.publisher(&ids[0]).unwrap().to_state_bytes()).unwrap();
    assert_eq!(c.insert_publisher(dup), Err(ChannelError::AlreadyPresent));
    let bytes = c.to_state_bytes();
    assert_eq!(bytes.len(), c.encoded_len());
    let back = Channels::from_state_bytes(&bytes).unwrap();
    assert_eq!(*back.to_state_bytes(), *bytes);
    assert_eq!(back.publisher_ids().count(), 3);
    assert_eq!(back.subscription_ids().count(), 3);
    assert_eq!(c.publisher_mut(&ids[1]).unwrap().announce(ContentType::Text, b"x", NOW).unwrap()[0], 0x32);

    // Swap the first two publishers: not ascending, refused.
    let mut sorted: Vec<_> = back.publisher_ids().copied().collect();
    sorted.sort();
    let mut swapped = Vec::new();
    swapped.extend_from_slice(&bytes[..4]);
    let lens: Vec<_> = sorted.iter().map(|id| back.publisher(id).unwrap().encoded_len()).collect();
    let first = &bytes[4..4 + lens[0]];
    let second = &bytes[4 + lens[0]..4 + lens[0] + lens[1]];
    swapped.extend_from_slice(second);
    swapped.extend_from_slice(first);
    swapped.extend_from_slice(&bytes[4 + lens[0] + lens[1]..]);
    assert_eq!(Channels::from_state_bytes(&swapped).unwrap_err(), DecodeError::InvalidValue("publisher order"));

    let mut too_many = bytes.to_vec();
    too_many[..4].copy_from_slice(&(MAX_CHANNELS as u32 + 1).to_be_bytes());
    assert_eq!(Channels::from_state_bytes(&too_many).unwrap_err(), DecodeError::InvalidValue("publisher count"));

    let mut full = Channels::new();
    let key = ChannelSigningKey::generate(&mut r).public;
    for i in 0..MAX_CHANNELS as u32 {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        full.insert_subscription(Subscription::new(ChannelId(id), key, ChannelKind::Public).unwrap()).unwrap();
    }
    let extra = Subscription::new(ChannelId([0xff; 32]), key, ChannelKind::Public).unwrap();
    assert_eq!(full.insert_subscription(extra), Err(ChannelError::TooManyChannels));
    assert!(full.remove_subscription(&ChannelId([0; 32])).is_some());
}

#[test]
fn every_secret_is_listed_and_none_is_printed() {
    let (_r, mut p, mut a, _) = restricted(35);
    let posts: Vec<_> = (0..3).map(|i| text(&mut p, &[i])).collect();
    let _ = a.receive(&posts[2], NOW).unwrap();
    let mut secrets = Vec::new();
    p.for_each_secret(&mut |name, s| secrets.push((name, s.to_vec())));
    assert_eq!(
        secrets.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["channel signing key seed", "channel content chain key"]
    );
    let mut sub_secrets = Vec::new();
    a.for_each_secret(&mut |name, s| sub_secrets.push((name, s.to_vec())));
    assert_eq!(sub_secrets.len(), 1, "the chain key only: no skipped key is kept");
    let mut c = Channels::new();
    c.insert_subscription(a).unwrap();
    c.insert_publisher(p).unwrap();
    let mut n = 0;
    c.for_each_secret(&mut |_, _| n += 1);
    assert_eq!(n, 3);
    let shown = format!("{c:?}");
    for (_, s) in secrets.iter().chain(&sub_secrets) {
        let hex: String = s[..6].iter().map(|b| format!("{b:02x}")).collect();
        let list = format!("{:?}", &s[..6]);
        assert!(!shown.contains(&hex) && !shown.contains(&list[1..list.len() - 1]), "a secret is printed");
    }
}
