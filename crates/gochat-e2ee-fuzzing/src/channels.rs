//! The `announcement` target: channel posts (0x30, 0x31, 0x32) and content keys (0x33)
//! on subscriptions that already accepted some posts.
//!
//! A mode byte picks the entry point; the rest of the input is the object:
//!
//! | mode % 4 | call |
//! |----------|------|
//! | 0 | [`verify_announcement`] under the public channel's key |
//! | 1 | [`Subscription::receive`] on the public channel's subscription |
//! | 2 | [`Subscription::receive`] on the restricted channel's subscription |
//! | 3 | [`Subscription::accept_key`] on the restricted channel's subscription |
//! | 4 | [`Device::channel_receive`] on a device subscribed to a public and a restricted channel (content key received through [`Device::receive_control`]) |
//!
//! Asserted: no panic; a refusal leaves the subscription's state encoding (mode 4: the
//! device's whole state digest) byte-for-byte unchanged; an accepted object is within its documented size (`MAX_ANNOUNCEMENT_BYTES`,
//! `KEY_ROTATION_BYTES`, `MAX_RESTRICTED_ANNOUNCEMENT_BYTES`, `KEY_DISTRIBUTION_BYTES`),
//! is for the subscription's channel, and is not accepted twice (a repeated post is
//! refused with the state unchanged; a repeated key changes nothing).

use std::sync::OnceLock;

use gochat_e2ee::channel::{
    verify_announcement, ChannelId, ChannelKind, ContentType, Publisher, Received, Subscription,
    KEY_DISTRIBUTION_BYTES, KEY_ROTATION_BYTES, MAX_ANNOUNCEMENT_BYTES, MAX_CHANNEL_KEYS,
    MAX_RESTRICTED_ANNOUNCEMENT_BYTES,
};

use gochat_e2ee::device::ControlReceived;
use gochat_e2ee::Device;

use crate::fixtures::{Seed, NOW};
use crate::groups::atomic;
use crate::rng;

/// The channel fixtures: subscription states (a `Subscription` is not `Clone`, so each
/// input decodes a fresh copy).
pub struct ChannelFixtures {
    /// The public channel's key at subscription time.
    pub public_key: [u8; 32],
    /// The public channel's id.
    pub public_id: ChannelId,
    /// Subscription to the public channel: posts 1 and 3 accepted (2 is now stale).
    pub public_sub: Vec<u8>,
    /// Subscription to the restricted channel: its key accepted, posts 1 and 3 read.
    pub restricted_sub: Vec<u8>,
    /// `ben` (of the group fixtures) subscribed to `ana`'s public and restricted
    /// channels, posts 1 and 3 of each read, the content key from `ana`'s pairwise
    /// control message.
    pub device_sub: Device,
    /// Seeds.
    pub seeds: Vec<(&'static str, Seed)>,
}

static FIXTURES: OnceLock<ChannelFixtures> = OnceLock::new();

/// The channel fixtures (built on first use).
pub fn get() -> &'static ChannelFixtures {
    FIXTURES.get_or_init(build)
}

fn flip(mut m: Vec<u8>, at: usize) -> Vec<u8> {
    let i = at.min(m.len() - 1);
    m[i] ^= 0x01;
    m
}

fn with_mode(b: u8, bytes: &[u8]) -> Vec<u8> {
    [&[b][..], bytes].concat()
}

fn build() -> ChannelFixtures {
    let r = &mut rng(0xC4A7);
    let mut seeds: Vec<(&'static str, Seed)> = Vec::new();

    let mut p = Publisher::new(ChannelKind::Public, r);
    let public_key = p.public_key();
    let mut sub = Subscription::new(p.channel_id(), public_key, ChannelKind::Public).unwrap();
    let a: Vec<Vec<u8>> = (1..=3u8).map(|k| p.announce(ContentType::Text, &[b'a', k], NOW).unwrap()).collect();
    let _ = sub.receive(&a[0], NOW).unwrap();
    let _ = sub.receive(&a[2], NOW).unwrap();
    let public_sub = sub.to_state_bytes().to_vec();
    let a4 = p.announce(ContentType::Json, b"{\"n\":4}", NOW).unwrap();
    let rotation = p.rotate_key(NOW, r).unwrap();
    let after_rotation = p.announce(ContentType::Text, b"signed by the new key", NOW).unwrap();
    seeds.push(("announcement", ("valid-verify", with_mode(0, &a[0]))));
    seeds.push(("announcement", ("invalid-verify-tampered", with_mode(0, &flip(a[0].clone(), 60)))));
    seeds.push(("announcement", ("invalid-verify-other-key", with_mode(0, &after_rotation))));
    seeds.push(("announcement", ("invalid-stale-skipped", with_mode(1, &a[1]))));
    seeds.push(("announcement", ("valid-next", with_mode(1, &a4))));
    seeds.push(("announcement", ("valid-rotation", with_mode(1, &rotation))));
    seeds.push(("announcement", ("invalid-duplicate", with_mode(1, &a[0]))));
    seeds.push(("announcement", ("invalid-new-key-before-rotation", with_mode(1, &after_rotation))));
    seeds.push(("announcement", ("invalid-rotation-tampered", with_mode(1, &flip(rotation.clone(), 80)))));

    let mut q = Publisher::new(ChannelKind::Restricted, r);
    let mut rsub = Subscription::new(q.channel_id(), q.public_key(), ChannelKind::Restricted).unwrap();
    let key = q.key_distribution().unwrap().to_vec();
    rsub.accept_key(&key).unwrap();
    let p1 = q.announce(ContentType::Text, b"restricted 1", NOW).unwrap();
    let p2 = q.announce(ContentType::Text, b"restricted 2", NOW).unwrap();
    let p3 = q.announce(ContentType::AttachmentPointer, &[7; 100], NOW).unwrap();
    let _ = rsub.receive(&p1, NOW).unwrap();
    let _ = rsub.receive(&p3, NOW).unwrap();
    let restricted_sub = rsub.to_state_bytes().to_vec();
    let p4 = q.announce(ContentType::Text, b"restricted 4", NOW).unwrap();
    let _ = q.rotate_content_key(r).unwrap();
    let new_key = q.key_distribution().unwrap().to_vec();
    let p5 = q.announce(ContentType::Text, b"under the new content key", NOW).unwrap();
    seeds.push(("announcement", ("invalid-restricted-skipped", with_mode(2, &p2))));
    seeds.push(("announcement", ("valid-restricted-next", with_mode(2, &p4))));
    seeds.push(("announcement", ("invalid-restricted-duplicate", with_mode(2, &p1))));
    seeds.push(("announcement", ("invalid-restricted-unknown-key", with_mode(2, &p5))));
    seeds.push(("announcement", ("invalid-restricted-tampered", with_mode(2, &flip(p4, 70)))));
    seeds.push(("announcement", ("invalid-public-post-on-restricted", with_mode(2, &a[1]))));
    seeds.push(("announcement", ("valid-key-new", with_mode(3, &new_key))));
    seeds.push(("announcement", ("valid-key-repeat", with_mode(3, &key))));
    seeds.push(("announcement", ("invalid-key-tampered", with_mode(3, &flip(new_key, 50)))));

    // The device façade: ana publishes, ben subscribes (they share a pairwise session).
    let base = &crate::groups::get().base;
    let (mut ana, mut ben) = (base[0].fork_for_testing(), base[1].fork_for_testing());
    let pid = ana.channel_create(ChannelKind::Public, r).unwrap();
    let rid = ana.channel_create(ChannelKind::Restricted, r).unwrap();
    ben.channel_subscribe(pid, ana.channel_public_key(&pid).unwrap(), ChannelKind::Public).unwrap();
    ben.channel_subscribe(rid, ana.channel_public_key(&rid).unwrap(), ChannelKind::Restricted).unwrap();
    let (out, withheld) = ana.channel_send_key(&rid, &["ben".to_owned()]).unwrap();
    assert!(withheld.is_empty() && out.len() == 1);
    let got = ben.receive_control("ana", &out[0].message, r).unwrap();
    assert!(matches!(got, ControlReceived::ChannelKey(_)));
    let post = |d: &mut Device, id, k: u8| d.channel_announce(id, ContentType::Text, &[b'p', k], NOW).unwrap();
    let pp: Vec<Vec<u8>> = (1..=4).map(|k| post(&mut ana, &pid, k)).collect();
    let rp: Vec<Vec<u8>> = (1..=4).map(|k| post(&mut ana, &rid, k)).collect();
    for m in [&pp[0], &pp[2], &rp[0], &rp[2]] {
        let _ = ben.channel_receive(m, NOW).unwrap();
    }
    let device_sub = ben.fork_for_testing();
    let rotation = ana.channel_rotate_signing_key(&pid, NOW, r).unwrap();
    // A new content key that ben never receives.
    let _ = ana.channel_rotate_content_key(&rid, &["ben".to_owned()], r).unwrap();
    let after_rekey = post(&mut ana, &rid, 9);
    seeds.push(("announcement", ("invalid-device-public-stale", with_mode(4, &pp[1]))));
    seeds.push(("announcement", ("valid-device-public-next", with_mode(4, &pp[3]))));
    seeds.push(("announcement", ("valid-device-rotation", with_mode(4, &rotation))));
    seeds.push(("announcement", ("invalid-device-restricted-skipped", with_mode(4, &rp[1]))));
    seeds.push(("announcement", ("valid-device-restricted-next", with_mode(4, &rp[3]))));
    seeds.push(("announcement", ("invalid-device-duplicate", with_mode(4, &rp[2]))));
    seeds.push(("announcement", ("invalid-device-unknown-channel", with_mode(4, &a[1]))));
    seeds.push(("announcement", ("invalid-device-key-not-received", with_mode(4, &after_rekey))));
    seeds.push(("announcement", ("invalid-device-tampered", with_mode(4, &flip(pp[3].clone(), 100)))));

    ChannelFixtures { public_key, public_id: sub.channel_id(), public_sub, restricted_sub, device_sub, seeds }
}

/// The seeds of the `announcement` target.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    get().seeds.clone()
}

fn subscription(state: &[u8]) -> Subscription {
    Subscription::from_state_bytes(state).expect("fixture subscription")
}

/// `announcement`: see the module documentation.
pub fn announcement(data: &[u8]) -> bool {
    let Some((&mode, bytes)) = data.split_first() else { return false };
    let f = get();
    match mode % 5 {
        0 => {
            let Ok(a) = verify_announcement(bytes, &f.public_key) else { return false };
            assert!(bytes.len() <= MAX_ANNOUNCEMENT_BYTES, "verified a {}-byte announcement", bytes.len());
            assert_eq!(a.signer, f.public_key, "verified under another key");
            true
        }
        1 => receive(&f.public_sub, bytes),
        2 => receive(&f.restricted_sub, bytes),
        4 => device_receive(&f.device_sub, bytes),
        _ => {
            let mut sub = subscription(&f.restricted_sub);
            let before = sub.to_state_bytes();
            if let Err(e) = sub.accept_key(bytes) {
                assert_eq!(before, sub.to_state_bytes(), "accept_key failed ({e:?}) but changed the state");
                return false;
            }
            assert_eq!(bytes.len(), KEY_DISTRIBUTION_BYTES, "accepted a {}-byte key distribution", bytes.len());
            assert!(sub.key_ids().len() <= MAX_CHANNEL_KEYS);
            let mid = sub.to_state_bytes();
            sub.accept_key(bytes).expect("a repeated key distribution was refused");
            assert_eq!(mid, sub.to_state_bytes(), "a repeated key distribution changed the state");
            true
        }
    }
}

/// The documented maximum of an accepted post of type `t`.
fn max_post(t: u8) -> usize {
    match t {
        0x30 => MAX_ANNOUNCEMENT_BYTES,
        0x31 => KEY_ROTATION_BYTES,
        _ => MAX_RESTRICTED_ANNOUNCEMENT_BYTES,
    }
}

/// Mode 4: [`Device::channel_receive`] on a copy of `fixture`.
fn device_receive(fixture: &Device, bytes: &[u8]) -> bool {
    let mut d = fixture.fork_for_testing();
    let Ok(got) = atomic(&mut d, "channel_receive", |d| d.channel_receive(bytes, NOW)) else { return false };
    assert!(bytes.len() <= max_post(bytes[0]), "accepted a {}-byte post of type {:#x}", bytes.len(), bytes[0]);
    let ids: Vec<ChannelId> = d.channels().subscription_ids().copied().collect();
    let sub = |id: &ChannelId| d.channels().subscription(id).expect("subscribed");
    match &got {
        Received::Announcement(a) => {
            assert!(ids.contains(&a.channel_id), "accepted a post for a channel not subscribed to");
            let s = sub(&a.channel_id);
            assert_eq!(&a.signer, s.channel_key(), "accepted a post not signed by the current key");
            assert!(a.seq <= s.last_seq());
            assert!(a.timestamp <= NOW + gochat_e2ee::channel::MAX_ANNOUNCEMENT_FUTURE_SECS);
            let restricted = s.kind() == ChannelKind::Restricted;
            assert_eq!(
                bytes[0] == 0x32,
                restricted,
                "a post of type {:#x} accepted on a {:?} channel",
                bytes[0],
                s.kind()
            );
        }
        Received::KeyRotated { old, new, seq } => {
            assert_eq!(bytes.len(), KEY_ROTATION_BYTES);
            assert!(ids.iter().any(|id| sub(id).channel_key() == new && sub(id).last_seq() == *seq));
            assert_ne!(old, new);
        }
    }
    let again = atomic(&mut d, "channel_receive", |d| d.channel_receive(bytes, NOW));
    assert!(again.is_err(), "a channel post was accepted twice");
    true
}

fn receive(state: &[u8], bytes: &[u8]) -> bool {
    let mut sub = subscription(state);
    let before = sub.to_state_bytes();
    let got = match sub.receive(bytes, NOW) {
        Ok(got) => got,
        Err(e) => {
            assert_eq!(before, sub.to_state_bytes(), "receive failed ({e:?}) but changed the state");
            return false;
        }
    };
    assert!(bytes.len() <= max_post(bytes[0]), "accepted a {}-byte post of type {:#x}", bytes.len(), bytes[0]);
    match &got {
        Received::Announcement(a) => {
            assert_eq!(a.channel_id, sub.channel_id(), "accepted a post for another channel");
            assert_eq!(&a.signer, sub.channel_key(), "accepted a post not signed by the current key");
            assert!(a.seq <= sub.last_seq());
            assert!(a.timestamp <= NOW + gochat_e2ee::channel::MAX_ANNOUNCEMENT_FUTURE_SECS);
        }
        Received::KeyRotated { old, new, seq } => {
            assert_eq!(bytes.len(), KEY_ROTATION_BYTES);
            assert_eq!(new, sub.channel_key());
            assert_ne!(old, new);
            assert_eq!(*seq, sub.last_seq());
        }
    }
    let mid = sub.to_state_bytes();
    if let Err(e) = sub.receive(bytes, NOW) {
        assert_eq!(mid, sub.to_state_bytes(), "refused repeat ({e:?}) changed the state");
    } else {
        panic!("a channel post was accepted twice");
    }
    true
}
