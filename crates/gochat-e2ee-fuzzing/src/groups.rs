//! The group decoder targets (`group_message`, `distribution`, `commit_welcome`) and the
//! deterministic group fixtures they (and the stateful `group` target) run against.
//!
//! Every target runs one input on a copy of a fixture device and asserts: no panic; a
//! refusal leaves [`Device::state_digest`] unchanged; an accepted input is no longer
//! than the documented maximum for its type, and repeating it is refused (as a
//! duplicate) with the state again unchanged.

use std::sync::OnceLock;

use gochat_e2ee::channel::{ChannelId, ChannelKind};
use gochat_e2ee::device::ControlReceived;
use gochat_e2ee::group::{
    GroupChange, GroupId, GroupMember, Outgoing, MAX_COMMIT_BYTES, MAX_GROUP_MESSAGE_BYTES, MAX_WELCOME_BYTES,
};
use gochat_e2ee::limits::MAX_MESSAGE_BYTES;
use gochat_e2ee::{Device, Error, ErrorCode};
use rand_chacha::ChaCha20Rng;

use crate::fixtures::{Seed, NOW};
use crate::rng;

/// The device names of the group fixtures, in index order.
pub const NAMES: [&str; 4] = ["ana", "ben", "cai", "dev"];

/// The group fixtures.
pub struct GroupFixtures {
    /// `ana`, `ben`, `cai`, `dev` with an answered pairwise session between every two,
    /// and no group (the start of the stateful `group` target).
    pub base: [Device; 4],
    /// The group all other fixtures are in: created by `ana` (admin) with `ben`
    /// (member) and `cai` (admin); `dev` is not a member.
    pub group_id: GroupId,
    /// `ben` in the group holding the keys of `ana` and `cai`; it has read `ana`'s
    /// messages 1 and 3 (so 2 is a skipped key) and none of `cai`'s.
    pub message_ben: Device,
    /// `ben` right after joining: the distributions of `ana` and `cai` not yet received;
    /// also subscribed to `ana`'s restricted channel [`Self::channel_id`], whose content
    /// key (a 0x33 control message) is not yet received either.
    pub distribution_ben: Device,
    /// The restricted channel `ana` publishes and `distribution_ben` subscribes to.
    pub channel_id: ChannelId,
    /// `ben` in the group at epoch 0 (commits go to it).
    pub commit_ben: Device,
    /// `dev`, not a member, with sessions with everyone (welcomes go to it).
    pub welcome_dev: Device,
    /// Seeds per target.
    pub seeds: Vec<(&'static str, Seed)>,
}

static FIXTURES: OnceLock<GroupFixtures> = OnceLock::new();

/// The group fixtures (built on first use).
pub fn get() -> &'static GroupFixtures {
    FIXTURES.get_or_init(build)
}

/// The seeds of the group targets (decoders and the stateful `group`).
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let mut s = get().seeds.clone();
    for (name, ops) in crate::group_world::seed_scripts() {
        s.push(("group", (name, ops)));
    }
    s
}

fn flip(mut m: Vec<u8>, at: usize) -> Vec<u8> {
    let i = at.min(m.len() - 1);
    m[i] ^= 0x01;
    m
}

fn with_byte(b: u8, bytes: &[u8]) -> Vec<u8> {
    [&[b][..], bytes].concat()
}

fn index(name: &str) -> usize {
    NAMES.iter().position(|n| *n == name).expect("fixture name")
}

/// Four devices with an answered session between every two (the earlier name starts).
pub fn connected(r: &mut ChaCha20Rng) -> [Device; 4] {
    let mut d = NAMES.map(|n| {
        let mut dev = Device::new(n, NOW, r);
        dev.account_mut().generate_one_time_prekeys(4, r).unwrap();
        dev.account_mut().generate_pq_prekeys(4, NOW, r).unwrap();
        dev
    });
    for a in 0..4 {
        for b in a + 1..4 {
            let bundle = d[b].next_bundle().unwrap();
            let (left, right) = d.split_at_mut(b);
            let (da, db) = (&mut left[a], &mut right[0]);
            let _ = da.initiate(NAMES[b], &bundle, r).unwrap();
            let m = da.encrypt(NAMES[b], b"hi").unwrap();
            let _ = db.decrypt(NAMES[a], &m, r).unwrap();
            let m = db.encrypt(NAMES[a], b"hi").unwrap();
            let _ = da.decrypt(NAMES[b], &m, r).unwrap();
        }
    }
    d
}

fn pairwise(d: &mut [Device; 4], from: &str, out: &[Outgoing], r: &mut ChaCha20Rng) {
    for o in out {
        let _ = d[index(&o.peer)].group_receive(from, &o.message, r).unwrap();
    }
}

fn outgoing_to<'a>(change: &'a GroupChange, to: &str) -> &'a [u8] {
    &change.outgoing.iter().find(|o| o.peer == to).expect("outgoing").message
}

fn build() -> GroupFixtures {
    let r = &mut rng(0x6120_u64);
    let mut seeds: Vec<(&'static str, Seed)> = Vec::new();
    let mut d = connected(r);
    let base = d.each_ref().map(Device::fork_for_testing);

    let member = |d: &[Device; 4], n: &str, admin: bool| GroupMember {
        name: n.to_owned(),
        identity: *d[index(n)].identity(),
        admin,
    };
    let others = [member(&d, "ben", false), member(&d, "cai", true)];
    let created = d[0].group_create(&others, NOW, r).unwrap();
    let gid = created.group_id;
    let create_welcome = created.welcome.clone().unwrap();
    let ben_joined = d[1].group_join(&create_welcome, NOW, r).unwrap();
    let cai_joined = d[2].group_join(&create_welcome, NOW, r).unwrap();
    pairwise(&mut d, "ben", &ben_joined.outgoing, r);
    // ana's restricted channel, ben subscribed; the content key is in flight to ben.
    let channel_id = d[0].channel_create(ChannelKind::Restricted, r).unwrap();
    let channel_key = d[0].channel_public_key(&channel_id).unwrap();
    d[1].channel_subscribe(channel_id, channel_key, ChannelKind::Restricted).unwrap();
    let content_key = d[0].channel_send_key(&channel_id, &["ben".to_owned()]).unwrap().0.remove(0).message;
    let distribution_ben = d[1].fork_for_testing();
    // Distributions to ben (peer byte first): the first two are fresh for the fixture.
    let ana_to_ben = outgoing_to(&created, "ben").to_vec();
    let cai_to_ben = outgoing_to(&cai_joined, "ben").to_vec();
    seeds.push(("distribution", ("valid-from-ana", with_byte(0, &ana_to_ben))));
    seeds.push(("distribution", ("valid-from-cai", with_byte(2, &cai_to_ben))));
    seeds.push(("distribution", ("invalid-wrong-peer", with_byte(3, &cai_to_ben))));
    seeds.push(("distribution", ("invalid-tampered", with_byte(0, &flip(ana_to_ben.clone(), 60)))));
    let chat = d[0].encrypt("ben", b"a chat message, not a control message").unwrap();
    seeds.push(("distribution", ("invalid-chat-message", with_byte(0, &chat))));
    seeds.push(("distribution", ("valid-control-sender-key", with_byte(4, &ana_to_ben))));
    seeds.push(("distribution", ("valid-control-content-key", with_byte(4, &content_key))));
    seeds.push(("distribution", ("invalid-content-key-as-sender-key", with_byte(0, &content_key))));
    seeds.push(("distribution", ("invalid-content-key-wrong-peer", with_byte(6, &content_key))));
    seeds.push(("distribution", ("invalid-control-chat-message", with_byte(4, &chat))));
    pairwise(&mut d, "ana", &created.outgoing, r);
    pairwise(&mut d, "cai", &cai_joined.outgoing, r);
    // The chat message and the content key are consumed by ben (sessions stay in step).
    let _ = d[1].decrypt("ana", &chat, r).unwrap();
    let _ = d[1].receive_control("ana", &content_key, r).unwrap();
    let commit_ben = d[1].fork_for_testing();
    let welcome_dev = d[3].fork_for_testing();

    // Group messages to ben (sender byte first).
    let m: Vec<Vec<u8>> = (1..=4u8)
        .map(|k| d[0].group_encrypt(&gid, &[k; 40], NOW, r).unwrap())
        .map(|s| {
            assert!(s.outgoing.is_empty());
            s.message
        })
        .collect();
    let c1 = d[2].group_encrypt(&gid, b"from cai", NOW, r).unwrap().message;
    d[1].group_decrypt("ana", &m[0]).unwrap();
    d[1].group_decrypt("ana", &m[2]).unwrap();
    let message_ben = d[1].fork_for_testing();
    seeds.push(("group_message", ("valid-skipped-key", with_byte(0, &m[1]))));
    seeds.push(("group_message", ("valid-next", with_byte(0, &m[3]))));
    seeds.push(("group_message", ("valid-other-sender", with_byte(2, &c1))));
    seeds.push(("group_message", ("invalid-duplicate", with_byte(0, &m[0]))));
    seeds.push(("group_message", ("invalid-wrong-sender", with_byte(2, &m[3]))));
    seeds.push(("group_message", ("invalid-tampered-ciphertext", with_byte(0, &flip(m[3].clone(), 100)))));
    seeds.push(("group_message", ("invalid-tampered-epoch", with_byte(0, &flip(m[3].clone(), 41)))));

    // Commits to ben (mode byte 0) and welcomes to dev (mode byte 1), from copies.
    let mut ana = d[0].fork_for_testing();
    let add = ana.group_add(&gid, &[member(&d, "dev", false)], NOW, r).unwrap();
    let remove_after_add = ana.group_remove(&gid, &["cai".to_owned()], NOW, r).unwrap();
    let remove = d[0].fork_for_testing().group_remove(&gid, &["cai".to_owned()], NOW, r).unwrap();
    let cai_removes_ben = d[2].fork_for_testing().group_remove(&gid, &["ben".to_owned()], NOW, r).unwrap();
    let add_commit = add.commit.clone().unwrap();
    seeds.push(("commit_welcome", ("valid-commit-add", with_byte(0, &add_commit))));
    seeds.push(("commit_welcome", ("valid-commit-remove", with_byte(0, &remove.commit.unwrap()))));
    seeds.push(("commit_welcome", ("valid-commit-remove-me", with_byte(0, &cai_removes_ben.commit.unwrap()))));
    seeds.push(("commit_welcome", ("invalid-commit-epoch-ahead", with_byte(0, &remove_after_add.commit.unwrap()))));
    seeds.push(("commit_welcome", ("invalid-commit-tampered", with_byte(0, &flip(add_commit, 50)))));
    let add_welcome = add.welcome.unwrap();
    seeds.push(("commit_welcome", ("valid-welcome-add", with_byte(1, &add_welcome))));
    seeds.push(("commit_welcome", ("invalid-welcome-not-listed", with_byte(1, &create_welcome))));
    seeds.push(("commit_welcome", ("invalid-welcome-tampered", with_byte(1, &flip(add_welcome, 90)))));

    GroupFixtures { base, group_id: gid, message_ben, distribution_ben, channel_id, commit_ben, welcome_dev, seeds }
}

/// Runs `f` on `device`; if it fails, asserts that the device's state did not change.
pub fn atomic<T>(device: &mut Device, what: &str, f: impl FnOnce(&mut Device) -> Result<T, Error>) -> Result<T, Error> {
    let before = device.state_digest();
    let out = crate::changes_checked(device, what, f);
    if let Err(e) = &out {
        assert_eq!(before, device.state_digest(), "{what} failed ({e:?}) but changed the device state");
    }
    out
}

/// Asserts that a repeat was refused, as `code` if given, leaving the state unchanged.
fn refused_again<T: std::fmt::Debug>(out: Result<T, Error>, what: &str, code: Option<ErrorCode>) {
    let e = out.expect_err(what);
    if let Some(code) = code {
        assert_eq!(e.code(), code, "{what}: {e:?}");
    }
}

/// `group_message`: sender-name byte (`NAMES[b % 4]`) + bytes for
/// [`Device::group_decrypt`] on `ben` (see [`GroupFixtures::message_ben`]). A refusal
/// leaves the state unchanged; an accepted message is at most
/// `MAX_GROUP_MESSAGE_BYTES`, names the sender and group, and is refused as a duplicate
/// the second time.
pub fn group_message(data: &[u8]) -> bool {
    let Some((&who, message)) = data.split_first() else { return false };
    let f = get();
    let sender = NAMES[usize::from(who) % 4];
    let mut ben = f.message_ben.fork_for_testing();
    let Ok(out) = atomic(&mut ben, "group_decrypt", |d| d.group_decrypt(sender, message)) else { return false };
    assert!(message.len() <= MAX_GROUP_MESSAGE_BYTES, "accepted a {}-byte group message", message.len());
    assert_eq!(out.sender, sender);
    assert!(
        ben.group(&f.group_id).unwrap().members().iter().any(|m| m.name == sender && m.identity == out.sender_identity),
        "decrypted a message from a non-member"
    );
    let again = atomic(&mut ben, "group_decrypt", |d| d.group_decrypt(sender, message));
    refused_again(again, "a group message decrypted twice", Some(ErrorCode::Duplicate));
    true
}

/// `distribution`: selector byte + a pairwise control message for `ben` (see
/// [`GroupFixtures::distribution_ben`]) from peer `NAMES[b % 4]`, through
/// [`Device::group_receive`] (0x23 only) or, if bit 2 is set, [`Device::receive_control`]
/// (0x23 sender keys and 0x33 channel content keys). A refusal (by the pairwise session,
/// the type filter, the group or the channel) leaves the state unchanged; an accepted
/// message is at most `MAX_MESSAGE_BYTES`, came from a member of a group `ben` holds (a
/// sender key) or is a key of the restricted channel `ben` subscribes to (a content
/// key), and is refused as a duplicate the second time. The 0x23 / 0x33 decoders sit
/// behind the pairwise AEAD: the fuzzer reaches them through the `valid-*` seeds, the
/// `group` target and (0x33) `announcement` mode 3.
pub fn distribution(data: &[u8]) -> bool {
    let Some((&sel, message)) = data.split_first() else { return false };
    let f = get();
    let peer = NAMES[usize::from(sel) % 4];
    let control = sel & 4 != 0;
    let mut ben = f.distribution_ben.fork_for_testing();
    let mut r = rng(0xD157);
    let run = |d: &mut Device, r: &mut ChaCha20Rng| {
        if control {
            d.receive_control(peer, message, r)
        } else {
            d.group_receive(peer, message, r).map(ControlReceived::SenderKey)
        }
    };
    let Ok(got) = atomic(&mut ben, "group_receive/receive_control", |d| run(d, &mut r)) else {
        return false;
    };
    assert!(message.len() <= MAX_MESSAGE_BYTES, "accepted a {}-byte pairwise message", message.len());
    match &got {
        ControlReceived::SenderKey(k) => {
            assert_eq!(k.sender, peer);
            let group = ben.group(&k.group_id).expect("a key for a group not held was accepted");
            assert!(group.members().iter().any(|m| m.name == peer), "a key from a non-member was accepted");
        }
        ControlReceived::ChannelKey(k) => {
            assert!(control, "group_receive accepted a channel content key");
            assert_eq!((k.sender.as_str(), k.channel_id), (peer, f.channel_id));
            let sub = ben.channels().subscription(&k.channel_id).expect("a key for a channel not subscribed to");
            assert!(sub.key_ids().contains(&k.key_id), "an accepted content key is not held");
        }
    }
    let again = atomic(&mut ben, "group_receive/receive_control", |d| run(d, &mut r));
    refused_again(again, "a control message accepted twice", Some(ErrorCode::Duplicate));
    true
}

/// `commit_welcome`: mode byte + bytes. Even mode: a commit for
/// [`Device::group_process_commit`] on `ben` (a member at epoch 0); odd: a welcome for
/// [`Device::group_join`] on `dev` (not a member). A refusal leaves the state
/// unchanged; an accepted commit or welcome is within `MAX_COMMIT_BYTES` /
/// `MAX_WELCOME_BYTES`, its pairwise messages go only to other members of the group
/// after it, and the repeat is refused as a duplicate.
pub fn commit_welcome(data: &[u8]) -> bool {
    let Some((&mode, bytes)) = data.split_first() else { return false };
    let f = get();
    let mut r = rng(0xC0117);
    let (mut device, max, what) = if mode % 2 == 0 {
        (f.commit_ben.fork_for_testing(), MAX_COMMIT_BYTES, "group_process_commit")
    } else {
        (f.welcome_dev.fork_for_testing(), MAX_WELCOME_BYTES, "group_join")
    };
    let run = |d: &mut Device, r: &mut ChaCha20Rng| {
        if mode % 2 == 0 {
            d.group_process_commit(bytes, NOW, r)
        } else {
            d.group_join(bytes, NOW, r)
        }
    };
    let Ok(change) = atomic(&mut device, what, |d| run(d, &mut r)) else { return false };
    assert!(bytes.len() <= max, "{what} accepted {} bytes", bytes.len());
    let group = device.group(&change.group_id).expect("accepted but no group");
    assert_eq!(group.epoch(), change.epoch);
    let me = device.user_id().to_owned();
    let members: Vec<String> = group.members().into_iter().map(|m| m.name).collect();
    for o in &change.outgoing {
        assert!(o.peer != me && members.contains(&o.peer), "a key sent to {} (not another member)", o.peer);
    }
    if !group.is_active() {
        assert!(change.outgoing.is_empty(), "a removed device sent keys");
    }
    let again = atomic(&mut device, what, |d| run(d, &mut r));
    refused_again(again, "a commit or welcome applied twice", Some(ErrorCode::Duplicate));
    true
}
