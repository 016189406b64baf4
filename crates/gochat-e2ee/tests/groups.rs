//! Groups with Sender Keys, through the `Device` API: membership changes that really
//! revoke access, bounded and failure-atomic decryption, forks and replays refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::net::Net;
use common::{flip, reload, snapshot_key};
use gochat_e2ee::group::{CommitOp, GroupMember, RotationPolicy, WithheldReason};
use gochat_e2ee::{Device, ErrorCode};

fn net5() -> Net {
    Net::new(&["ana", "ben", "cai", "dev", "eve"], 1)
}

#[test]
fn every_member_reads_every_other_member() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", true), ("dev", false)]);
    for from in ["ana", "ben", "cai", "dev"] {
        let text = format!("hello from {from}");
        let m = net.send(from, &gid, text.as_bytes());
        for to in ["ana", "ben", "cai", "dev"].iter().filter(|t| **t != from) {
            assert_eq!(net.read(to, from, &m).unwrap(), text.as_bytes(), "{to} reading {from}");
        }
        assert_eq!(net.read("eve", from, &m), Err(ErrorCode::UnknownGroup));
    }
    let members = net.members("dev", &gid);
    assert_eq!(members, ["ana", "ben", "cai", "dev"]);
    assert_eq!(
        net.dev("ben").group(&gid).unwrap().membership_hash(),
        net.dev("cai").group(&gid).unwrap().membership_hash()
    );
}

#[test]
fn a_new_member_reads_only_what_is_sent_after_it_joined() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false)]);
    let before: Vec<_> = ["ana", "ben"].iter().map(|f| (f.to_string(), net.send(f, &gid, b"before"))).collect();
    net.add("ana", &gid, &["dev"]);
    for (from, m) in &before {
        let code = net.read("dev", from, m).unwrap_err();
        assert!(
            matches!(code, ErrorCode::MessageLost | ErrorCode::StaleEpoch | ErrorCode::MissingSenderKey),
            "{code:?}"
        );
    }
    for from in ["ana", "ben", "cai"] {
        let m = net.send(from, &gid, b"after");
        assert_eq!(net.read("dev", from, &m).unwrap(), b"after");
    }
    let m = net.send("dev", &gid, b"from the new member");
    for to in ["ana", "ben", "cai"] {
        assert_eq!(net.read(to, "dev", &m).unwrap(), b"from the new member");
    }
}

#[test]
fn a_removed_member_holding_all_old_state_reads_nothing_sent_after_its_removal() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false), ("dev", false)]);
    for f in ["ana", "ben", "cai", "dev"] {
        let m = net.send(f, &gid, b"warm up");
        let _ = net.read("dev", f, &m);
    }
    // Dev keeps a copy of everything it holds before the removal reaches it.
    let dev_copy = reload(net.dev("dev"), &mut common::rng(77));
    let log_start = net.pairwise_log.len();
    net.remove("ana", &gid, &["dev"]);
    assert!(!net.dev("dev").group(&gid).unwrap().is_active());
    assert!(net.pairwise_log[log_start..].iter().all(|(_, to)| to != "dev"), "no key is sent to the removed device");
    net.devices.insert("dev-old".into(), dev_copy);
    for from in ["ana", "ben", "cai"] {
        let m = net.send(from, &gid, b"secret after removal");
        for to in ["ana", "ben", "cai"].iter().filter(|t| **t != from) {
            assert_eq!(net.read(to, from, &m).unwrap(), b"secret after removal");
        }
        for removed in ["dev", "dev-old"] {
            let code = net.read(removed, from, &m).unwrap_err();
            assert!(
                matches!(code, ErrorCode::MissingSenderKey | ErrorCode::NotMember | ErrorCode::EpochAhead),
                "{code:?}"
            );
        }
    }
    // A message from a member that had not yet seen the removal is refused by those
    // that have: a removed device could read it.
    let _ = net;
}

#[test]
fn a_message_from_before_a_removal_is_refused_as_stale() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false), ("dev", false)]);
    let m = net.send("ben", &gid, b"warm up");
    assert!(net.read("cai", "ben", &m).is_ok());
    let late = net.send("ben", &gid, b"sent before the removal, delivered after");
    net.remove("ana", &gid, &["dev"]);
    assert_eq!(net.read("cai", "ben", &late), Err(ErrorCode::StaleEpoch));
}

#[test]
fn a_message_before_its_sender_key_is_retryable() {
    let mut net = net5();
    let members = vec![net.member("ben", false), net.member("cai", false)];
    let now = net.now;
    let mut r = net.rng.clone();
    let change = net.dev("ana").group_create(&members, now, &mut r).unwrap();
    let sent = net.dev("ana").group_encrypt(&change.group_id, b"early", now, &mut r).unwrap();
    net.rng = r;
    let w = change.welcome.clone().unwrap();
    net.deliver(&common::net::Item::Welcome { to: "ben".into(), bytes: w }).unwrap();
    let before = net.dev("ben").state_digest();
    assert_eq!(net.read("ben", "ana", &sent.message), Err(ErrorCode::MissingSenderKey));
    assert_eq!(before, net.dev("ben").state_digest());
    let to_ben = change.outgoing.iter().find(|o| o.peer == "ben").unwrap();
    let got = net.dev("ben").group_receive("ana", &to_ben.message, &mut common::rng(9)).unwrap();
    assert!(got.fresh);
    assert_eq!(net.read("ben", "ana", &sent.message).unwrap(), b"early");
    // A distribution that arrives before the welcome is refused without consuming the
    // pairwise message, and accepted once the welcome is in.
    let to_cai = change.outgoing.iter().find(|o| o.peer == "cai").unwrap();
    let before = net.dev("cai").state_digest();
    let code = net.dev("cai").group_receive("ana", &to_cai.message, &mut common::rng(9)).unwrap_err().code();
    assert_eq!(code, ErrorCode::UnknownGroup);
    assert_eq!(before, net.dev("cai").state_digest());
    let w = change.welcome.unwrap();
    let _ = net.dev("cai").group_join(&w, now, &mut common::rng(10)).unwrap();
    assert!(net.dev("cai").group_receive("ana", &to_cai.message, &mut common::rng(9)).is_ok());
    assert_eq!(
        net.dev("cai").group_receive("ana", &to_cai.message, &mut common::rng(9)).unwrap_err().code(),
        ErrorCode::Duplicate,
        "the pairwise replay is refused"
    );
}

#[test]
fn failed_group_decrypts_change_nothing() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false)]);
    let m = net.send("ana", &gid, b"original");
    let before = net.dev("ben").state_digest();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (flip(&m, 8 * 50), "ana"),
        (flip(&m, 8 * (m.len() - 70)), "ana"),
        (flip(&m, 8 * (m.len() - 1)), "ana"),
        (m[..m.len() - 1].to_vec(), "ana"),
        (m.clone(), "cai"),
        (m.clone(), "nobody"),
        (vec![], "ana"),
    ];
    for (bad, from) in &cases {
        assert!(net.read("ben", from, bad).is_err());
        assert_eq!(before, net.dev("ben").state_digest());
    }
    assert_eq!(net.read("ben", "ana", &m).unwrap(), b"original");
    let after = net.dev("ben").state_digest();
    assert_eq!(net.read("ben", "ana", &m), Err(ErrorCode::Duplicate));
    assert_eq!(after, net.dev("ben").state_digest());
}

#[test]
fn out_of_order_delivery_and_the_forward_bound() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false)]);
    net.dev("ana").group_set_rotation_policy(&gid, RotationPolicy { max_messages: 0, max_age_secs: 0 }).unwrap();
    let msgs: Vec<Vec<u8>> = (0..20).map(|i| net.send("ana", &gid, format!("m{i}").as_bytes())).collect();
    for i in [5usize, 0, 19, 3, 1, 2, 4, 18, 6] {
        assert_eq!(net.read("ben", "ana", &msgs[i]).unwrap(), format!("m{i}").as_bytes());
    }
    assert_eq!(net.read("ben", "ana", &msgs[19]), Err(ErrorCode::Duplicate));
}

#[test]
fn forged_replayed_and_unauthorised_commits_are_refused() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false)]);
    // Ben is not an admin: he may not add, but he may leave.
    let eve = net.member("eve", false);
    let now = net.now;
    assert_eq!(
        net.dev("ben").group_add(&gid, std::slice::from_ref(&eve), now, &mut common::rng(3)).unwrap_err().code(),
        ErrorCode::NotAdmin
    );
    let change = net.dev("ana").group_add(&gid, &[eve], now, &mut common::rng(4)).unwrap();
    let commit = change.commit.clone().unwrap();
    let before = net.dev("ben").state_digest();
    for bit in [8 * 3, 8 * 40, 8 * (commit.len() - 1)] {
        assert!(net.dev("ben").group_process_commit(&flip(&commit, bit), now, &mut common::rng(5)).is_err());
        assert_eq!(before, net.dev("ben").state_digest());
    }
    // A server that rewrites the previous hash (or the epoch) cannot raise a fork or an
    // epoch verdict: the signature is checked first.
    for byte in [45usize, 36] {
        let forged = flip(&commit, 8 * byte);
        let code = net.dev("ben").group_process_commit(&forged, now, &mut common::rng(5)).unwrap_err().code();
        assert_eq!(code, ErrorCode::BadSignature, "byte {byte}");
    }
    let _ = net.dev("ben").group_process_commit(&commit, now, &mut common::rng(5)).unwrap();
    assert_eq!(
        net.dev("ben").group_process_commit(&commit, now, &mut common::rng(5)).unwrap_err().code(),
        ErrorCode::Duplicate
    );
    assert_eq!(net.dev("ben").group(&gid).unwrap().epoch(), 1);
}

#[test]
fn two_histories_for_one_epoch_are_reported_as_a_fork() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", true), ("cai", false), ("dev", false)]);
    let now = net.now;
    // Two admins commit epoch 1 concurrently; the server shows each to half the group.
    let by_ana = net.dev("ana").group_remove(&gid, &["dev".to_string()], now, &mut common::rng(6)).unwrap();
    let eve = net.member("eve", false);
    let by_ben = net.dev("ben").group_add(&gid, &[eve], now, &mut common::rng(7)).unwrap();
    let _ = net.dev("cai").group_process_commit(by_ana.commit.as_ref().unwrap(), now, &mut common::rng(8)).unwrap();
    let before = net.dev("cai").state_digest();
    assert_eq!(
        net.dev("cai")
            .group_process_commit(by_ben.commit.as_ref().unwrap(), now, &mut common::rng(8))
            .unwrap_err()
            .code(),
        ErrorCode::GroupFork
    );
    assert_eq!(before, net.dev("cai").state_digest());
    // A message from Ben's side of the fork is refused by Cai, not silently read.
    let from_ben = net.dev("ben").group_encrypt(&gid, b"on the other fork", now, &mut common::rng(9)).unwrap();
    assert_eq!(net.read("cai", "ben", &from_ben.message), Err(ErrorCode::GroupFork));
}

#[test]
fn a_member_with_an_unapproved_identity_change_gets_no_key_and_the_app_is_told() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false)]);
    // Ben reinstalls: a new device under the same name starts a session with Ana.
    let mut new_ben = common::device("ben", 1, &mut common::rng(11));
    let bundle = common::bundle(net.dev("ana"));
    let _ = new_ben.initiate("ana", &bundle, &mut common::rng(12)).unwrap();
    let hello = new_ben.encrypt("ana", b"new phone").unwrap();
    let got = net.dev("ana").decrypt("ben", &hello, &mut common::rng(13)).unwrap();
    assert!(!got.identity.is_trusted());
    // Ana replaces Ben's device in the group: the new identity is not approved, so it
    // gets nothing and the app is told.
    let now = net.now;
    let change = net.dev("ana").group_replace(&gid, "ben", new_ben.identity(), now, &mut common::rng(14)).unwrap();
    assert!(change.outgoing.iter().all(|o| o.peer != "ben"));
    assert!(change.withheld.iter().any(|w| w.peer == "ben" && w.reason == WithheldReason::IdentityNotApproved));
    assert!(change.outgoing.iter().any(|o| o.peer == "cai"));
}

#[test]
fn a_restored_device_never_reuses_a_sender_key() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false)]);
    let m = net.send("ana", &gid, b"one");
    assert!(net.read("ben", "ana", &m).is_ok());
    let first_key = net.dev("ana").group(&gid).unwrap().own_key_id();
    let restored: Device = reload(net.dev("ana"), &mut common::rng(20));
    net.devices.insert("ana".into(), restored);
    let now = net.now;
    let sent = net.dev("ana").group_encrypt(&gid, b"two", now, &mut common::rng(21)).unwrap();
    assert!(sent.rotated, "the first send after an import starts a new generation");
    assert_ne!(net.dev("ana").group(&gid).unwrap().own_key_id(), first_key);
    for o in &sent.outgoing {
        let _ = net.dev(&o.peer.clone()).group_receive("ana", &o.message, &mut common::rng(22)).unwrap();
    }
    assert_eq!(net.read("ben", "ana", &sent.message).unwrap(), b"two");
    let _ = snapshot_key(1);
}

#[test]
fn the_rotation_policy_fires_by_count() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false)]);
    net.dev("ana").group_set_rotation_policy(&gid, RotationPolicy { max_messages: 3, max_age_secs: 0 }).unwrap();
    let now = net.now;
    let rotated: Vec<bool> = (0..7)
        .map(|i| net.dev("ana").group_encrypt(&gid, b"x", now, &mut common::rng(30 + i)).unwrap().rotated)
        .collect();
    assert_eq!(rotated, [false, false, false, true, false, false, true]);
    assert_eq!(RotationPolicy::default(), RotationPolicy { max_messages: 1_000, max_age_secs: 604_800 });
}

#[test]
fn chat_and_control_messages_never_cross() {
    let mut net = net5();
    let members = vec![net.member("ben", false)];
    let now = net.now;
    let change = net.dev("ana").group_create(&members, now, &mut common::rng(40)).unwrap();
    let _ = net.dev("ben").group_join(change.welcome.as_ref().unwrap(), now, &mut common::rng(41)).unwrap();
    let control = &change.outgoing[0].message;
    let before = net.dev("ben").state_digest();
    assert_eq!(
        net.dev("ben").decrypt("ana", control, &mut common::rng(42)).unwrap_err().code(),
        ErrorCode::AuthenticationFailed
    );
    assert_eq!(before, net.dev("ben").state_digest());
    let chat = net.dev("ana").encrypt("ben", b"a chat message").unwrap();
    assert_eq!(
        net.dev("ben").group_receive("ana", &chat, &mut common::rng(43)).unwrap_err().code(),
        ErrorCode::AuthenticationFailed
    );
    assert_eq!(before, net.dev("ben").state_digest());
    assert!(net.dev("ben").group_receive("ana", control, &mut common::rng(44)).is_ok());
    assert_eq!(net.dev("ben").decrypt("ana", &chat, &mut common::rng(45)).unwrap().plaintext, b"a chat message");
}

#[test]
fn a_member_may_leave_but_not_remove_others() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false)]);
    let now = net.now;
    assert_eq!(
        net.dev("ben").group_remove(&gid, &["cai".into()], now, &mut common::rng(50)).unwrap_err().code(),
        ErrorCode::NotAdmin
    );
    let old = net.members("ben", &gid);
    let change = net.dev("ben").group_remove(&gid, &["ben".into()], now, &mut common::rng(51)).unwrap();
    net.apply("ben", &gid, change, old);
    assert_eq!(net.members("ana", &gid), ["ana", "cai"]);
    let m = net.send("cai", &gid, b"after ben left");
    assert_eq!(net.read("ana", "cai", &m).unwrap(), b"after ben left");
    assert!(net.read("ben", "cai", &m).is_err());
    // The last admin cannot leave the group without an admin.
    let e = net.dev("ana").group_remove(&gid, &["ana".into()], now, &mut common::rng(52)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidMembership);
    let _ = (
        CommitOp::Remove(vec![]),
        GroupMember { name: String::new(), identity: *net.dev("ana").identity(), admin: false },
    );
}

#[test]
fn group_state_survives_export_and_import() {
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false), ("cai", false)]);
    let m = net.send("ana", &gid, b"before export");
    let restored = reload(net.dev("ben"), &mut common::rng(60));
    net.devices.insert("ben".into(), restored);
    assert_eq!(net.read("ben", "ana", &m).unwrap(), b"before export");
    assert_eq!(net.members("ben", &gid), ["ana", "ben", "cai"]);
    let m = net.send("ben", &gid, b"after import");
    assert_eq!(net.read("cai", "ben", &m).unwrap(), b"after import");
    assert_eq!(net.dev("ben").state_len() + 51, {
        let d = net.dev("ben");
        d.export(&snapshot_key(1), &mut common::rng(61)).unwrap().len()
    });
}

#[test]
fn refused_joins_adds_and_sends_change_nothing() {
    let mut net = net5();
    let members = vec![net.member("ben", false), net.member("cai", false)];
    let now = net.now;
    let change = net.dev("ana").group_create(&members, now, &mut common::rng(70)).unwrap();
    let gid = change.group_id;
    let welcome = change.welcome.unwrap();
    // Ben: a tampered welcome, and one for a device not in it (Eve), are refused.
    let before = net.dev("ben").state_digest();
    for bit in [8 * 10, 8 * (welcome.len() - 1)] {
        assert!(net.dev("ben").group_join(&flip(&welcome, bit), now, &mut common::rng(71)).is_err());
        assert_eq!(before, net.dev("ben").state_digest());
    }
    let before = net.dev("eve").state_digest();
    assert_eq!(
        net.dev("eve").group_join(&welcome, now, &mut common::rng(72)).unwrap_err().code(),
        ErrorCode::NotMember
    );
    assert_eq!(before, net.dev("eve").state_digest());
    let _ = net.dev("ben").group_join(&welcome, now, &mut common::rng(73)).unwrap();
    // A non-admin add, an add of a member, an oversized send: refused, nothing changes.
    let before = net.dev("ben").state_digest();
    let eve = net.member("eve", false);
    assert_eq!(
        net.dev("ben").group_add(&gid, std::slice::from_ref(&eve), now, &mut common::rng(74)).unwrap_err().code(),
        ErrorCode::NotAdmin
    );
    assert_eq!(before, net.dev("ben").state_digest());
    let before = net.dev("ana").state_digest();
    let cai = net.member("cai", false);
    assert_eq!(
        net.dev("ana").group_add(&gid, &[cai], now, &mut common::rng(75)).unwrap_err().code(),
        ErrorCode::InvalidMembership
    );
    let big = vec![0u8; 65_536];
    assert_eq!(
        net.dev("ana").group_encrypt(&gid, &big, now, &mut common::rng(76)).unwrap_err().code(),
        ErrorCode::PlaintextTooLarge
    );
    assert_eq!(before, net.dev("ana").state_digest());
}

#[test]
fn a_burst_past_the_skipped_key_bound_keeps_the_newest_keys_and_reports_the_rest_lost() {
    use gochat_e2ee::group::MAX_SKIPPED_KEYS;
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false)]);
    net.dev("ana").group_set_rotation_policy(&gid, RotationPolicy { max_messages: 0, max_age_secs: 0 }).unwrap();
    let n = MAX_SKIPPED_KEYS + 50;
    let msgs: Vec<Vec<u8>> = (0..=n).map(|i| net.send("ana", &gid, format!("m{i}").as_bytes())).collect();
    let before_len = net.dev("ben").state_len();
    assert_eq!(net.read("ben", "ana", &msgs[n]).unwrap(), format!("m{n}").as_bytes());
    // Exactly MAX_SKIPPED_KEYS keys were stored (the newest), 36 bytes each.
    let grown = net.dev("ben").state_len() - before_len;
    assert!((MAX_SKIPPED_KEYS * 36..MAX_SKIPPED_KEYS * 36 + 64).contains(&grown), "grew by {grown}");
    // The oldest 50 are lost for good (typed, and nothing changes); the rest read once.
    let digest = net.dev("ben").state_digest();
    for m in &msgs[..50] {
        assert_eq!(net.read("ben", "ana", m), Err(ErrorCode::MessageLost));
    }
    assert_eq!(digest, net.dev("ben").state_digest());
    for i in [50, 51, n / 2, n - 1] {
        assert_eq!(net.read("ben", "ana", &msgs[i]).unwrap(), format!("m{i}").as_bytes());
        assert_eq!(net.read("ben", "ana", &msgs[i]), Err(ErrorCode::Duplicate));
    }
}

#[test]
fn a_message_more_than_the_forward_bound_ahead_is_refused_and_changes_nothing() {
    use gochat_e2ee::group::MAX_FORWARD_JUMP;
    let mut net = net5();
    let gid = net.create("ana", &[("ben", false)]);
    net.dev("ana").group_set_rotation_policy(&gid, RotationPolicy { max_messages: 0, max_age_secs: 0 }).unwrap();
    // Ben holds the key at iteration 0: iteration MAX_FORWARD_JUMP is the farthest it
    // derives, one more is refused before any chain step.
    let mut last_two = Vec::new();
    for i in 0..=MAX_FORWARD_JUMP + 1 {
        let m = net.send("ana", &gid, b"x");
        if i >= MAX_FORWARD_JUMP {
            last_two.push(m);
        }
    }
    let digest = net.dev("ben").state_digest();
    assert_eq!(net.read("ben", "ana", &last_two[1]), Err(ErrorCode::TooFarAhead));
    assert_eq!(digest, net.dev("ben").state_digest());
    assert_eq!(net.read("ben", "ana", &last_two[0]).unwrap(), b"x");
    // Now one step behind it: the refused message reads.
    assert_eq!(net.read("ben", "ana", &last_two[1]).unwrap(), b"x");
}
