//! Official broadcast channels through the `Device` API: public posts anyone can verify
//! but only the agency can make, restricted posts only current subscribers can read,
//! content keys that travel only over approved pairwise sessions, replays and rollbacks
//! refused, and failures that change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::net::Net;
use common::{flip, reload, rng};
use gochat_e2ee::channel::{
    verify_announcement, ChannelId, ChannelKind, ContentType, Received, MAX_ANNOUNCEMENT_BODY_BYTES, RESTORE_SEQ_GAP,
};
use gochat_e2ee::device::ControlReceived;
use gochat_e2ee::group::{Outgoing, WithheldReason};
use gochat_e2ee::{ErrorCode, IdentityEvent};

const AGENCY: &str = "agency";
const NOW: u64 = common::NOW;

/// The agency and three subscriber devices, all with pairwise sessions.
fn net() -> Net {
    Net::new(&[AGENCY, "ana", "ben", "cai"], 7)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The agency creates a channel of `kind`; each of `subscribers` subscribes with the
/// key from the directory.
fn channel(net: &mut Net, kind: ChannelKind, subscribers: &[&str]) -> (ChannelId, [u8; 32]) {
    let mut r = net.rng.clone();
    let id = net.dev(AGENCY).channel_create(kind, &mut r).unwrap();
    net.rng = r;
    let key = net.dev(AGENCY).channel_public_key(&id).unwrap();
    for s in subscribers {
        net.dev(s).channel_subscribe(id, key, kind).unwrap();
    }
    (id, key)
}

/// Delivers pairwise content keys; each must be accepted as a fresh channel key.
fn deliver_keys(net: &mut Net, outgoing: &[Outgoing]) {
    for o in outgoing {
        let got = net.dev(&o.peer.clone()).receive_control(AGENCY, &o.message, &mut rng(71)).unwrap();
        match got {
            ControlReceived::ChannelKey(k) => {
                assert_eq!(k.sender, AGENCY);
                assert_eq!(k.identity, IdentityEvent::Same);
            }
            other => panic!("expected a channel key, got {other:?}"),
        }
    }
}

fn post(net: &mut Net, id: &ChannelId, body: &[u8]) -> Vec<u8> {
    let now = net.now;
    net.dev(AGENCY).channel_announce(id, ContentType::Text, body, now).unwrap()
}

fn read(net: &mut Net, who: &str, post: &[u8]) -> Result<Vec<u8>, ErrorCode> {
    let now = net.now;
    match net.dev(who).channel_receive(post, now).map_err(|e| e.code())? {
        Received::Announcement(a) => Ok(a.body),
        other => panic!("expected an announcement, got {other:?}"),
    }
}

#[test]
fn a_public_post_is_verified_by_anyone_with_the_directory_key() {
    let mut net = net();
    let (id, key) = channel(&mut net, ChannelKind::Public, &["ana", "ben"]);
    let p = post(&mut net, &id, b"office closed on friday");
    assert_eq!(read(&mut net, "ana", &p).unwrap(), b"office closed on friday");
    assert_eq!(read(&mut net, "ben", &p).unwrap(), b"office closed on friday");
    // A backend with only the key validates it too.
    let a = verify_announcement(&p, &key).unwrap();
    assert_eq!((a.seq, a.channel_id), (1, id));
    // Not subscribed: typed, and nothing changes.
    assert_eq!(read(&mut net, "cai", &p), Err(ErrorCode::UnknownGroup));
    // Replayed: refused, state unchanged.
    let before = net.dev("ana").state_digest();
    assert_eq!(read(&mut net, "ana", &p), Err(ErrorCode::StaleSequence));
    assert_eq!(before, net.dev("ana").state_digest());
}

#[test]
fn only_the_channel_key_can_post() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Public, &["ana"]);
    // Another device's channel with the same id is not trusted by ana.
    let mut r = rng(72);
    let other = net.dev("ben").channel_create(ChannelKind::Public, &mut r).unwrap();
    let forged = net.dev("ben").channel_announce(&other, ContentType::Text, b"x", NOW).unwrap();
    let mut forged = forged;
    forged[2..34].copy_from_slice(&id.0);
    let p = post(&mut net, &id, b"real");
    let before = net.dev("ana").state_digest();
    for bad in [forged, flip(&p, 8 * 60), flip(&p, 8 * (p.len() - 1)), p[..p.len() - 1].to_vec(), vec![]] {
        assert!(read(&mut net, "ana", &bad).is_err());
        assert_eq!(before, net.dev("ana").state_digest());
    }
    assert_eq!(read(&mut net, "ana", &p).unwrap(), b"real");
}

#[test]
fn a_restricted_channel_is_read_only_by_subscribers_given_the_key() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana", "ben", "cai"]);
    let (out, withheld) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana", "ben"])).unwrap();
    assert!(withheld.is_empty());
    deliver_keys(&mut net, &out);
    let p = post(&mut net, &id, b"restricted notice");
    assert_eq!(read(&mut net, "ana", &p).unwrap(), b"restricted notice");
    assert_eq!(read(&mut net, "ben", &p).unwrap(), b"restricted notice");
    // cai is subscribed but was never sent the key: retryable, nothing changes.
    let before = net.dev("cai").state_digest();
    assert_eq!(read(&mut net, "cai", &p), Err(ErrorCode::MissingSenderKey));
    assert_eq!(before, net.dev("cai").state_digest());
    // Once it gets the key, it reads what is posted from then on, not before.
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["cai"])).unwrap();
    deliver_keys(&mut net, &out);
    let q = post(&mut net, &id, b"second");
    assert_eq!(read(&mut net, "cai", &q).unwrap(), b"second");
    assert!(read(&mut net, "cai", &p).is_err());
}

#[test]
fn a_removed_subscriber_reads_nothing_after_the_rotation() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana", "ben"]);
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana", "ben"])).unwrap();
    deliver_keys(&mut net, &out);
    let old = post(&mut net, &id, b"before");
    let rekey = net.dev(AGENCY).channel_rotate_content_key(&id, &names(&["ana"]), &mut rng(73)).unwrap();
    assert_eq!(rekey.outgoing.len(), 1);
    assert_eq!(rekey.outgoing[0].peer, "ana");
    deliver_keys(&mut net, &rekey.outgoing);
    let new = post(&mut net, &id, b"after");
    assert_eq!(read(&mut net, "ana", &new).unwrap(), b"after");
    // ben keeps what it had, and is refused everything under the new key.
    assert_eq!(read(&mut net, "ben", &old).unwrap(), b"before");
    let before = net.dev("ben").state_digest();
    assert_eq!(read(&mut net, "ben", &new), Err(ErrorCode::MissingSenderKey));
    assert_eq!(before, net.dev("ben").state_digest());
    // And ana's copy of the key is useless to ben: it is bound to ana's session.
    assert!(net.dev("ben").receive_control(AGENCY, &rekey.outgoing[0].message, &mut rng(74)).is_err());
    assert_eq!(before, net.dev("ben").state_digest());
}

#[test]
fn a_content_key_relayed_by_anyone_must_still_be_signed_by_the_channel_key() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana"]);
    // ben runs its own restricted channel with the same id and sends ana its key.
    let mut r = rng(75);
    let fake = net.dev("ben").channel_create(ChannelKind::Restricted, &mut r).unwrap();
    let (out, _) = net.dev("ben").channel_send_key(&fake, &names(&["ana"])).unwrap();
    // Not subscribed to ben's channel: refused before the session commits.
    let before = net.dev("ana").state_digest();
    let err = net.dev("ana").receive_control("ben", &out[0].message, &mut r).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownGroup);
    assert_eq!(before, net.dev("ana").state_digest());
    // The same message, retried once ana subscribes to ben's channel, is accepted: the
    // pairwise session was left as it was.
    let key = net.dev("ben").channel_public_key(&fake).unwrap();
    net.dev("ana").channel_subscribe(fake, key, ChannelKind::Restricted).unwrap();
    let got = net.dev("ana").receive_control("ben", &out[0].message, &mut r).unwrap();
    assert!(matches!(got, ControlReceived::ChannelKey(k) if k.channel_id == fake));
    // ana's own subscription to the agency's channel still holds no key.
    assert!(net.dev("ana").channels().subscription(&id).unwrap().key_ids().is_empty());
}

#[test]
fn a_group_receive_refuses_a_channel_key_and_leaves_the_session_intact() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana"]);
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana"])).unwrap();
    let before = net.dev("ana").state_digest();
    let err = net.dev("ana").group_receive(AGENCY, &out[0].message, &mut rng(76)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMessageType);
    assert_eq!(before, net.dev("ana").state_digest());
    deliver_keys(&mut net, &out);
    // A replayed content key is refused by the pairwise session (already received).
    let before = net.dev("ana").state_digest();
    assert!(net.dev("ana").receive_control(AGENCY, &out[0].message, &mut rng(77)).is_err());
    assert_eq!(before, net.dev("ana").state_digest());
}

#[test]
fn a_subscriber_with_an_unapproved_identity_change_gets_no_key() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana", "ben"]);
    // ben reinstalls: a new device under the same name starts a session with the
    // agency, whose app has not approved the new identity.
    let mut new_ben = common::device("ben", 1, &mut rng(78));
    let bundle = common::bundle(net.dev(AGENCY));
    let _ = new_ben.initiate(AGENCY, &bundle, &mut rng(79)).unwrap();
    let hello = new_ben.encrypt(AGENCY, b"new phone").unwrap();
    let got = net.dev(AGENCY).decrypt("ben", &hello, &mut rng(80)).unwrap();
    assert!(!got.identity.is_trusted());
    let (out, withheld) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana", "ben", "nobody"])).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peer, "ana");
    assert_eq!(withheld.len(), 2);
    assert!(withheld
        .iter()
        .all(|w| matches!(w.reason, WithheldReason::NoSession | WithheldReason::IdentityNotApproved)));
}

#[test]
fn a_signing_key_rotation_moves_every_subscriber_to_the_new_key() {
    let mut net = net();
    let (id, old_key) = channel(&mut net, ChannelKind::Restricted, &["ana", "ben"]);
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana", "ben"])).unwrap();
    deliver_keys(&mut net, &out);
    let now = net.now;
    let rotation = net.dev(AGENCY).channel_rotate_signing_key(&id, now, &mut rng(79)).unwrap();
    let new_key = net.dev(AGENCY).channel_public_key(&id).unwrap();
    assert_ne!(new_key, old_key);
    // The new content key is signed by the new channel key: before the rotation it is
    // refused (retryable, nothing changes).
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana", "ben"])).unwrap();
    let before = net.dev("ana").state_digest();
    let err = net.dev("ana").receive_control(AGENCY, &out[0].message, &mut rng(80)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongSigner);
    assert_eq!(before, net.dev("ana").state_digest());
    for who in ["ana", "ben"] {
        let got = net.dev(who).channel_receive(&rotation, now).unwrap();
        assert_eq!(got, Received::KeyRotated { old: old_key, new: new_key, seq: 1 });
    }
    deliver_keys(&mut net, &out);
    let p = post(&mut net, &id, b"under the new key");
    assert_eq!(read(&mut net, "ana", &p).unwrap(), b"under the new key");
    assert_eq!(read(&mut net, "ben", &p).unwrap(), b"under the new key");
    assert_eq!(net.dev("ana").channels().subscription(&id).unwrap().channel_key(), &new_key);
}

#[test]
fn a_restored_publisher_never_reissues_a_sequence_number_or_a_content_position() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana"]);
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana"])).unwrap();
    deliver_keys(&mut net, &out);
    let backup = reload(net.dev(AGENCY), &mut rng(81));
    let p = post(&mut net, &id, b"posted after the backup");
    assert_eq!(read(&mut net, "ana", &p).unwrap(), b"posted after the backup");
    // The agency restores the older backup.
    net.devices.insert(AGENCY.into(), backup);
    let publisher = net.dev(AGENCY).channels().publisher(&id).unwrap();
    assert_eq!(publisher.next_seq(), 1 + RESTORE_SEQ_GAP);
    assert!(publisher.content_key_retired());
    // The content chain position may have been used: nothing is posted or sent on it.
    let now = net.now;
    let before = net.dev(AGENCY).state_digest();
    let err = net.dev(AGENCY).channel_announce(&id, ContentType::Text, b"x", now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ChainExhausted);
    assert_eq!(net.dev(AGENCY).channel_send_key(&id, &names(&["ana"])).unwrap_err().code(), ErrorCode::ChainExhausted);
    assert_eq!(before, net.dev(AGENCY).state_digest());
    let rekey = net.dev(AGENCY).channel_rotate_content_key(&id, &names(&["ana"]), &mut rng(82)).unwrap();
    deliver_keys(&mut net, &rekey.outgoing);
    let q = post(&mut net, &id, b"after the restore");
    assert_eq!(read(&mut net, "ana", &q).unwrap(), b"after the restore");
    // Its sequence number is past everything issued before the restore.
    let got = net.dev("ana").channels().subscription(&id).unwrap().last_seq();
    assert_eq!(got, 1 + RESTORE_SEQ_GAP);
}

#[test]
fn a_public_restored_publisher_skips_ahead() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Public, &["ana"]);
    let backup = reload(net.dev(AGENCY), &mut rng(83));
    let p = post(&mut net, &id, b"one");
    assert!(read(&mut net, "ana", &p).is_ok());
    net.devices.insert(AGENCY.into(), backup);
    let q = post(&mut net, &id, b"two");
    assert_eq!(read(&mut net, "ana", &q).unwrap(), b"two");
}

#[test]
fn refused_channel_operations_change_nothing() {
    let mut net = net();
    let (public, _) = channel(&mut net, ChannelKind::Public, &["ana"]);
    let (restricted, key) = channel(&mut net, ChannelKind::Restricted, &["ana"]);
    let unknown = ChannelId([9; 32]);
    let before = net.dev(AGENCY).state_digest();
    let now = net.now;
    let agency = net.dev(AGENCY);
    let big = vec![0u8; MAX_ANNOUNCEMENT_BODY_BYTES + 1];
    assert_eq!(
        agency.channel_announce(&public, ContentType::Text, &big, now).unwrap_err().code(),
        ErrorCode::PlaintextTooLarge
    );
    assert_eq!(
        agency.channel_announce(&unknown, ContentType::Text, b"x", now).unwrap_err().code(),
        ErrorCode::UnknownGroup
    );
    assert_eq!(agency.channel_public_key(&unknown).unwrap_err().code(), ErrorCode::UnknownGroup);
    assert_eq!(agency.channel_send_key(&public, &names(&["ana"])).unwrap_err().code(), ErrorCode::WrongChannel);
    assert_eq!(
        agency.channel_rotate_content_key(&public, &names(&["ana"]), &mut rng(84)).unwrap_err().code(),
        ErrorCode::WrongChannel
    );
    let long = "x".repeat(gochat_e2ee::limits::MAX_NAME_BYTES + 1);
    assert_eq!(agency.channel_send_key(&restricted, &[long]).unwrap_err().code(), ErrorCode::Malformed);
    assert_eq!(before, net.dev(AGENCY).state_digest());
    let ana = net.dev("ana");
    let before = ana.state_digest();
    assert_eq!(
        ana.channel_subscribe(restricted, key, ChannelKind::Restricted).unwrap_err().code(),
        ErrorCode::Duplicate
    );
    assert!(ana.channel_subscribe(ChannelId([1; 32]), [0; 32], ChannelKind::Public).is_err());
    assert!(ana.receive_control(AGENCY, b"\x03\x01garbage", &mut rng(85)).is_err());
    assert_eq!(before, ana.state_digest());
    // Forgetting wipes the state and reports whether anything was held.
    assert!(ana.channel_forget(&restricted));
    assert!(!ana.channel_forget(&restricted));
    let p = post(&mut net, &public, b"still here");
    assert_eq!(read(&mut net, "ana", &p).unwrap(), b"still here");
}

#[test]
fn channel_state_survives_export_and_import() {
    let mut net = net();
    let (id, _) = channel(&mut net, ChannelKind::Restricted, &["ana"]);
    let (out, _) = net.dev(AGENCY).channel_send_key(&id, &names(&["ana"])).unwrap();
    deliver_keys(&mut net, &out);
    let p1 = post(&mut net, &id, b"one");
    let p2 = post(&mut net, &id, b"two");
    assert_eq!(read(&mut net, "ana", &p1).unwrap(), b"one");
    let restored = reload(net.dev("ana"), &mut rng(86));
    net.devices.insert("ana".into(), restored);
    // The subscriber's chain position and last sequence number survive: p2 is read
    // once, p1 not again.
    assert_eq!(read(&mut net, "ana", &p2).unwrap(), b"two");
    let before = net.dev("ana").state_digest();
    assert_eq!(read(&mut net, "ana", &p2), Err(ErrorCode::Duplicate));
    assert_eq!(read(&mut net, "ana", &p1), Err(ErrorCode::Duplicate));
    assert_eq!(before, net.dev("ana").state_digest());
}
