//! The device as a set of records (what the store commits): every operation reports
//! every record it changed, the records rebuild the device exactly, and a record
//! that is not what the device wrote is refused without any change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{bundle, exchange, pair, rng, snapshot_key, NOW};
use gochat_e2ee::records::{RecordKey, RecordKind};
use gochat_e2ee::{Device, ErrorCode, IdentityPolicy};
use zeroize::Zeroizing;

type Records = BTreeMap<RecordKey, Vec<u8>>;

fn all_records(d: &Device) -> Records {
    d.records().into_iter().map(|(k, v)| (k, v.to_vec())).collect()
}

/// A store's view of one device, kept only from `take_changes`.
struct Mirror(Records);

impl Mirror {
    fn new(d: &mut Device) -> Mirror {
        let _ = d.take_changes();
        Mirror(all_records(d))
    }

    /// Commits what `d` reports and checks that it is everything that changed.
    fn sync(&mut self, d: &mut Device, what: &str) {
        for k in d.take_changes() {
            match d.encode_record(&k) {
                Some(v) => self.0.insert(k, v.to_vec()),
                None => self.0.remove(&k),
            };
        }
        assert!(self.0 == all_records(d), "{what}: a changed record was not reported");
        let rebuilt = rebuild(&self.0).unwrap();
        assert_eq!(rebuilt.state_digest(), d.state_digest(), "{what}: the records do not rebuild the device");
    }
}

fn rebuild(records: &Records) -> Result<Device, gochat_e2ee::Error> {
    Device::from_records(records.iter().map(|(k, v)| (k.clone(), Zeroizing::new(v.clone()))))
}

#[test]
fn a_new_device_lists_every_record_and_a_rebuilt_one_lists_none() {
    let mut d = Device::new("ana", NOW, &mut rng(1));
    let keys = d.take_changes();
    assert_eq!(keys, vec![RecordKey::ACCOUNT, RecordKey::SETTINGS]);
    assert!(d.take_changes().is_empty());
    let mut rebuilt = rebuild(&all_records(&d)).unwrap();
    assert!(rebuilt.take_changes().is_empty(), "a device read from its store has nothing unsaved");
    assert_eq!(rebuilt.state_digest(), d.state_digest());
}

#[test]
fn every_one_to_one_and_trust_operation_reports_what_it_changed() {
    let mut p = pair(7);
    let (mut ma, mut mb) = (Mirror::new(&mut p.alice), Mirror::new(&mut p.bob));
    let r = &mut p.rng;
    // Encrypt touches exactly the peer's record.
    let bob_key = RecordKey::decode(&[&[0x03][..], b"bob"].concat()).unwrap();
    let m = p.alice.encrypt("bob", b"one").unwrap();
    assert_eq!(p.alice.take_changes(), vec![bob_key.clone()]);
    ma.0.insert(bob_key.clone(), p.alice.encode_record(&bob_key).unwrap().to_vec());
    ma.sync(&mut p.alice, "encrypt");
    let _ = p.bob.decrypt("alice", &m, r).unwrap();
    mb.sync(&mut p.bob, "decrypt");
    // A failed decrypt changes nothing (and whatever it lists is unchanged).
    assert!(p.bob.decrypt("alice", &m, r).is_err());
    mb.sync(&mut p.bob, "duplicate");
    exchange(&mut p.bob, "alice", &mut p.alice, "bob", b"two", r);
    ma.sync(&mut p.alice, "exchange a");
    mb.sync(&mut p.bob, "exchange b");
    // Prekeys: the account record.
    p.bob.account_mut().generate_one_time_prekeys(3, r).unwrap();
    mb.sync(&mut p.bob, "generate prekeys");
    // A new peer from a bundle, and its prekey message consuming a one-time prekey.
    let mut cai = common::device("cai", 2, r);
    let mut mc = Mirror::new(&mut cai);
    let b = bundle(&mut cai);
    mc.sync(&mut cai, "next_bundle");
    let _ = p.alice.initiate("cai", &b, r).unwrap();
    ma.sync(&mut p.alice, "initiate");
    let m = p.alice.encrypt("cai", b"hi cai").unwrap();
    let _ = cai.decrypt("alice", &m, r).unwrap();
    mc.sync(&mut cai, "prekey message");
    // Policy, approval, forgetting.
    p.alice.set_identity_policy(IdentityPolicy::Notify);
    ma.sync(&mut p.alice, "set policy");
    let bob_id = *p.bob.identity();
    p.alice.approve_identity("bob", &bob_id).unwrap();
    ma.sync(&mut p.alice, "approve");
    assert!(p.alice.remove_sessions("cai"));
    ma.sync(&mut p.alice, "remove sessions");
    assert!(p.alice.forget_identity("cai"));
    ma.sync(&mut p.alice, "forget identity");
    assert!(p.alice.encode_record(&RecordKey::decode(&[&[0x03][..], b"cai"].concat()).unwrap()).is_none());
    // Trust anchors.
    p.alice.set_trust_roots(&[[9; 32]]).unwrap_or(());
    ma.sync(&mut p.alice, "set roots");
    p.alice.set_require_certificate(true);
    ma.sync(&mut p.alice, "require certificate");
    // Session export / import.
    let key = snapshot_key(3);
    let s = p.alice.export_session("bob", &key, r).unwrap();
    p.alice.import_session("bob", &key, &s).unwrap();
    ma.sync(&mut p.alice, "import session");
    // Retry requests (the receiver asks, the sender answers).
    let lost = p.alice.encrypt("bob", b"lost").unwrap();
    ma.sync(&mut p.alice, "encrypt lost");
    let alice_id = *p.alice.identity();
    let req = p.bob.retry_request("alice", &alice_id, &lost, NOW);
    mb.sync(&mut p.bob, "retry request");
    if let Ok(req) = req {
        let _ = p.alice.handle_retry_request("bob", &req, NOW, r);
        ma.sync(&mut p.alice, "handle retry");
    }
    // Groups.
    let members = [gochat_e2ee::group::GroupMember { name: "bob".into(), identity: bob_id, admin: false }];
    let change = p.alice.group_create(&members, NOW, r).unwrap();
    ma.sync(&mut p.alice, "group create");
    let _ = p.alice.group_encrypt(&change.group_id, b"g", NOW, r).unwrap();
    ma.sync(&mut p.alice, "group encrypt");
    assert!(p.alice.group_forget(&change.group_id));
    ma.sync(&mut p.alice, "group forget");
    // Channels.
    let id = p.alice.channel_create(gochat_e2ee::channel::ChannelKind::Public, r).unwrap();
    ma.sync(&mut p.alice, "channel create");
    let post = p.alice.channel_announce(&id, gochat_e2ee::channel::ContentType::Text, b"notice", NOW).unwrap();
    ma.sync(&mut p.alice, "announce");
    let key = p.alice.channel_public_key(&id).unwrap();
    p.bob.channel_subscribe(id, key, gochat_e2ee::channel::ChannelKind::Public).unwrap();
    mb.sync(&mut p.bob, "subscribe");
    let _ = p.bob.channel_receive(&post, NOW).unwrap();
    mb.sync(&mut p.bob, "channel receive");
    assert!(p.alice.channel_forget(&id));
    ma.sync(&mut p.alice, "channel forget");
    // A whole-device import lists everything again.
    let snap = p.alice.export(&key_of(4), r).unwrap();
    let mut imported = Device::import(&key_of(4), &snap).unwrap();
    let listed = imported.take_changes();
    assert_eq!(listed, imported.record_keys());
}

fn key_of(b: u8) -> gochat_e2ee::SnapshotKey {
    snapshot_key(b)
}

#[test]
fn a_record_that_is_not_what_the_device_wrote_is_refused_and_changes_nothing() {
    let mut p = pair(8);
    let records = all_records(&p.alice);
    let peer = RecordKey::decode(&[&[0x03][..], b"bob"].concat()).unwrap();
    let good = records[&peer].clone();
    let before = p.alice.state_digest();
    let invalid = |e: gochat_e2ee::Error| e.code();
    // Wrong version byte, truncation, trailing bytes, an empty peer record.
    let mut wrong_version = good.clone();
    wrong_version[0] = 0x02;
    for bad in [wrong_version, good[..good.len() - 1].to_vec(), [&good[..], &[0]].concat(), vec![0x01, 0, 0]] {
        assert_eq!(p.alice.apply_record(&peer, Some(&bad)).map_err(invalid), Err(ErrorCode::SnapshotUndecryptable));
        assert_eq!(p.alice.state_digest(), before);
    }
    // A group record under another group's id.
    let members = [gochat_e2ee::group::GroupMember { name: "bob".into(), identity: *p.bob.identity(), admin: false }];
    let change = p.alice.group_create(&members, NOW, &mut p.rng).unwrap();
    let gkey = p.alice.record_keys().into_iter().find(|k| k.kind() == RecordKind::Group).unwrap();
    let gval = p.alice.encode_record(&gkey).unwrap();
    let other = RecordKey::decode(&[&[0x04][..], &[0xAB; 32][..]].concat()).unwrap();
    let before = p.alice.state_digest();
    assert_eq!(p.alice.apply_record(&other, Some(&gval)).map_err(invalid), Err(ErrorCode::SnapshotUndecryptable));
    assert_eq!(p.alice.state_digest(), before);
    let _ = change;
    // No account record: nothing to rebuild.
    let mut no_account = all_records(&p.alice);
    no_account.remove(&RecordKey::ACCOUNT);
    assert_eq!(rebuild(&no_account).map_err(invalid).err(), Some(ErrorCode::SnapshotUndecryptable));
    // Applying another handle's commit moves this one to it.
    let mut other_handle = rebuild(&all_records(&p.alice)).unwrap();
    let m = p.alice.encrypt("bob", b"from the main app").unwrap();
    for k in p.alice.take_changes() {
        other_handle.apply_record(&k, p.alice.encode_record(&k).as_deref().map(|v| &v[..])).unwrap();
    }
    assert_eq!(other_handle.state_digest(), p.alice.state_digest());
    assert!(other_handle.take_changes().is_empty());
    let _ = p.bob.decrypt("alice", &m, &mut p.rng).unwrap();
}
