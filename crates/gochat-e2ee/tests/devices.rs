//! Multi-device users through the `Device` API: master key, signed device lists, the
//! fan-out to every listed device, and what adding and removing a device does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::net::Net;
use common::{bundle, device, reload, rng, NOW};
use gochat_e2ee::device::{DeviceOutcome, MissingReason};
use gochat_e2ee::trust::address::{DeviceAddress, DeviceId, UserId};
use gochat_e2ee::trust::{DeviceEndorsement, DeviceList, DeviceListEvent, MasterKey};
use gochat_e2ee::{Device, ErrorCode};

const ANA: &str = "ana@mof.gov.my/phone";
const BOB: &str = "bob@mof.gov.my/phone";
const BOB_LAPTOP: &str = "bob@mof.gov.my/laptop";

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn dev(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn addr(s: &str) -> DeviceAddress {
    DeviceAddress::parse(s).unwrap()
}

fn outcome(report: &[gochat_e2ee::device::DeviceReport], a: &str) -> DeviceOutcome {
    report.iter().find(|r| r.address == addr(a)).unwrap_or_else(|| panic!("{a} not in report")).outcome
}

/// Bob's phone is primary; its laptop is linked (endorsed, list adopted).
fn bob_with_laptop(net: &mut Net) -> DeviceList {
    let mut r = rng(50);
    let _v1 = net.dev(BOB).create_master_key(&dev("phone"), NOW, &mut r).unwrap();
    let laptop_identity = *net.dev(BOB_LAPTOP).identity();
    let (endorsement, v2) = net.dev(BOB).endorse_device(&dev("laptop"), &laptop_identity, NOW).unwrap();
    // What the link helper carries: bytes, decoded on the other side.
    let list = DeviceList::decode(&v2.encode()).unwrap();
    let endorsement = DeviceEndorsement::decode(&endorsement.encode()).unwrap();
    net.dev(BOB_LAPTOP).adopt_own_device_list(&list, &endorsement).unwrap();
    assert_eq!(net.dev(BOB_LAPTOP).own_device_list(), Some(&v2));
    v2
}

#[test]
fn fan_out_reaches_every_listed_device_and_own_other_devices() {
    let mut net = Net::new(&[ANA, BOB, BOB_LAPTOP], 1);
    let list = bob_with_laptop(&mut net);
    let mut r = rng(2);
    let ana = net.dev(ANA);
    let update = ana.process_device_list(list.as_bytes(), NOW, &mut r).unwrap();
    assert!(matches!(update.event, DeviceListEvent::New { ref devices } if devices.len() == 2));
    let out = ana.encrypt_for_user(&user("bob@mof.gov.my"), b"to both", &[], &mut r).unwrap();
    assert_eq!(out.report.len(), 2);
    assert_eq!(outcome(&out.report, BOB), DeviceOutcome::Sent { new_session: false });
    assert_eq!(outcome(&out.report, BOB_LAPTOP), DeviceOutcome::Sent { new_session: false });
    for (peer, m) in &out.messages {
        assert_eq!(net.dev(peer).decrypt(ANA, m, &mut r).unwrap().plaintext, b"to both");
    }
    // Bob's phone writing to Ana also writes to its own laptop.
    let ana_list = net.dev(ANA).create_master_key(&dev("phone"), NOW, &mut r).unwrap();
    let bob = net.dev(BOB);
    let _ = bob.process_device_list(ana_list.as_bytes(), NOW, &mut r).unwrap();
    let out = bob.encrypt_for_user(&user("ana@mof.gov.my"), b"sync", &[], &mut r).unwrap();
    assert_eq!(outcome(&out.report, ANA), DeviceOutcome::Sent { new_session: false });
    assert_eq!(outcome(&out.report, BOB_LAPTOP), DeviceOutcome::Sent { new_session: false });
    assert!(out.report.iter().all(|r| r.address != addr(BOB)), "never to itself");
}

#[test]
fn a_new_device_gets_no_old_message_keys() {
    let mut r = rng(3);
    let mut ana = device(ANA, 4, &mut r);
    let mut phone = device(BOB, 4, &mut r);
    let mut laptop = device(BOB_LAPTOP, 4, &mut r);
    let v1 = phone.create_master_key(&dev("phone"), NOW, &mut r).unwrap();
    let _ = ana.process_device_list(v1.as_bytes(), NOW, &mut r).unwrap();
    let bob = user("bob@mof.gov.my");
    let phone_bundle = bundle(&mut phone);
    let out = ana.encrypt_for_user(&bob, b"before the laptop", &[(addr(BOB), phone_bundle)], &mut r).unwrap();
    assert_eq!(outcome(&out.report, BOB), DeviceOutcome::Sent { new_session: true });
    let old = out.messages[0].1.clone();
    assert_eq!(phone.decrypt(ANA, &old, &mut r).unwrap().plaintext, b"before the laptop");
    // The laptop is linked.
    let (e, v2) = phone.endorse_device(&dev("laptop"), &laptop.identity().clone(), NOW).unwrap();
    laptop.adopt_own_device_list(&v2, &e).unwrap();
    let update = ana.process_device_list(v2.as_bytes(), NOW, &mut r).unwrap();
    assert!(
        matches!(update.event, DeviceListEvent::Updated { ref added, ref removed } if added.len() == 1 && removed.is_empty())
    );
    // Before it has a session it gets nothing; with its bundle, a new session.
    let out = ana.encrypt_for_user(&bob, b"x", &[], &mut r).unwrap();
    assert_eq!(outcome(&out.report, BOB_LAPTOP), DeviceOutcome::Missing(MissingReason::NoSessionOrBundle));
    let _ = phone.decrypt(ANA, &out.messages[0].1, &mut r).unwrap();
    let laptop_bundle = bundle(&mut laptop);
    let out = ana.encrypt_for_user(&bob, b"after", &[(addr(BOB_LAPTOP), laptop_bundle)], &mut r).unwrap();
    assert_eq!(outcome(&out.report, BOB_LAPTOP), DeviceOutcome::Sent { new_session: true });
    assert_eq!(outcome(&out.report, BOB), DeviceOutcome::Sent { new_session: false });
    for (peer, m) in &out.messages {
        let d = if peer == BOB { &mut phone } else { &mut laptop };
        assert_eq!(d.decrypt(ANA, m, &mut r).unwrap().plaintext, b"after");
    }
    // The message from before the laptop was linked is not readable on it, and the
    // attempt changes nothing.
    let digest = laptop.state_digest();
    assert!(laptop.decrypt(ANA, &old, &mut r).is_err());
    assert_eq!(laptop.state_digest(), digest);
}

#[test]
fn a_new_device_reads_no_group_message_from_before_it_joined() {
    let mut net = Net::new(&[ANA, BOB, BOB_LAPTOP], 4);
    let gid = net.create(ANA, &[(BOB, false)]);
    let before = net.send(ANA, &gid, b"before");
    assert_eq!(net.read(BOB, ANA, &before).unwrap(), b"before");
    let _ = bob_with_laptop(&mut net);
    net.add(ANA, &gid, &[BOB_LAPTOP]);
    let code = net.read(BOB_LAPTOP, ANA, &before).unwrap_err();
    assert!(matches!(code, ErrorCode::MessageLost | ErrorCode::StaleEpoch | ErrorCode::MissingSenderKey), "{code:?}");
    let after = net.send(ANA, &gid, b"after");
    assert_eq!(net.read(BOB_LAPTOP, ANA, &after).unwrap(), b"after");
}

#[test]
fn a_removed_device_is_sent_nothing_and_cut_out_of_groups() {
    let mut net = Net::new(&[ANA, BOB, BOB_LAPTOP], 5);
    let v2 = bob_with_laptop(&mut net);
    let mut r = rng(6);
    let _ = net.dev(ANA).process_device_list(v2.as_bytes(), NOW, &mut r).unwrap();
    // Ana administers a group with both of Bob's devices; Bob's phone one with its laptop.
    let gid = net.create(ANA, &[(BOB, false), (BOB_LAPTOP, false)]);
    let bob_gid = net.create(BOB, &[(BOB_LAPTOP, false), (ANA, false)]);
    let warm = net.send(ANA, &gid, b"warm");
    assert_eq!(net.read(BOB_LAPTOP, ANA, &warm).unwrap(), b"warm");
    let laptop_copy = reload(net.dev(BOB_LAPTOP), &mut rng(7));
    // The phone removes the laptop: new list, sessions dropped, its own group rekeyed.
    let old = net.members(BOB, &bob_gid);
    let removal = net.dev(BOB).remove_linked_device(&dev("laptop"), NOW, &mut r).unwrap();
    assert_eq!(removal.device_list.version(), 3);
    assert!(net.dev(BOB).session_record(BOB_LAPTOP).is_none());
    assert_eq!(removal.group_changes.len(), 1);
    assert!(removal.group_failures.is_empty());
    for change in removal.group_changes {
        net.apply(BOB, &bob_gid, change, old.clone());
    }
    assert!(!net.members(BOB, &bob_gid).contains(&BOB_LAPTOP.to_string()));
    // Ana processes the new list: the laptop is removed, her group rekeyed without it.
    let old = net.members(ANA, &gid);
    let update = net.dev(ANA).process_device_list(removal.device_list.as_bytes(), NOW, &mut r).unwrap();
    assert!(matches!(update.event, DeviceListEvent::Updated { ref removed, .. } if removed.len() == 1));
    assert_eq!(update.group_changes.len(), 1);
    let log_start = net.pairwise_log.len();
    for change in update.group_changes {
        net.apply(ANA, &gid, change, old.clone());
    }
    assert!(net.pairwise_log[log_start..].iter().all(|(_, to)| to != BOB_LAPTOP));
    assert!(net.dev(ANA).session_record(BOB_LAPTOP).is_none());
    // Fan-out never includes it again, even given its bundle.
    let laptop_bundle = bundle(net.dev(BOB_LAPTOP));
    let out = net
        .dev(ANA)
        .encrypt_for_user(&user("bob@mof.gov.my"), b"after", &[(addr(BOB_LAPTOP), laptop_bundle)], &mut r)
        .unwrap();
    assert!(out.report.iter().all(|d| d.address != addr(BOB_LAPTOP)));
    assert!(out.messages.iter().all(|(p, _)| p != BOB_LAPTOP));
    // After the rekey, neither the laptop nor a copy of its old state reads new messages.
    net.devices.insert("laptop-copy".into(), laptop_copy);
    for g in [&gid, &bob_gid] {
        let author = if g == &gid { ANA } else { BOB };
        let m = net.send(author, g, b"secret");
        for removed in [BOB_LAPTOP, "laptop-copy"] {
            let code = net.read(removed, author, &m).unwrap_err();
            assert!(
                matches!(code, ErrorCode::MissingSenderKey | ErrorCode::NotMember | ErrorCode::EpochAhead),
                "{code:?}"
            );
        }
    }
}

#[test]
fn bad_lists_are_refused_and_change_nothing() {
    let mut r = rng(8);
    let mut ana = device(ANA, 2, &mut r);
    let master = MasterKey::from_seed([1; 32]);
    let bob = user("bob@mof.gov.my");
    let entry = |s: u64| gochat_e2ee::trust::DeviceEntry {
        device: dev("phone"),
        identity: *Device::new("x", NOW, &mut rng(s)).identity(),
    };
    let v2 = DeviceList::sign(&master, &bob, 2, NOW, vec![entry(1)]).unwrap();
    let _ = ana.process_device_list(v2.as_bytes(), NOW, &mut r).unwrap();
    let digest = ana.state_digest();
    let v1 = DeviceList::sign(&master, &bob, 1, NOW, vec![entry(1)]).unwrap();
    let err = ana.process_device_list(v1.as_bytes(), NOW, &mut r).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StaleDeviceList);
    let other = DeviceList::sign(&master, &bob, 2, NOW, vec![entry(2)]).unwrap();
    assert_eq!(ana.process_device_list(other.as_bytes(), NOW, &mut r).unwrap_err().code(), ErrorCode::StaleDeviceList);
    let mut unsigned = v2.encode();
    let n = unsigned.len();
    unsigned[n - 10] ^= 4;
    assert_eq!(ana.process_device_list(&unsigned, NOW, &mut r).unwrap_err().code(), ErrorCode::BadSignature);
    assert_eq!(ana.process_device_list(&unsigned[..n - 64], NOW, &mut r).unwrap_err().code(), ErrorCode::Malformed);
    assert_eq!(ana.process_device_list(&[0x55, 0x02], NOW, &mut r).unwrap_err().code(), ErrorCode::UnsupportedVersion);
    assert_eq!(ana.state_digest(), digest);
    // A list signed by another master key is surfaced, not applied, and blocks the
    // fan-out until approved.
    let mallory = MasterKey::from_seed([9; 32]);
    let foreign = DeviceList::sign(&mallory, &bob, 7, NOW, vec![entry(3)]).unwrap();
    let update = ana.process_device_list(foreign.as_bytes(), NOW, &mut r).unwrap();
    assert_eq!(
        update.event,
        DeviceListEvent::MasterKeyChanged { previous: master.public_key(), new: mallory.public_key() }
    );
    assert_eq!(ana.device_lists().list(&bob), Some(&v2));
    let out = ana.encrypt_for_user(&bob, b"blocked", &[], &mut r).unwrap();
    assert!(out.messages.is_empty());
    assert_eq!(out.report[0].outcome, DeviceOutcome::Missing(MissingReason::MasterKeyChanged));
    let digest = ana.state_digest();
    let err = ana.approve_master_key(&bob, &master.public_key(), NOW, &mut r).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownMasterKey);
    assert_eq!(ana.state_digest(), digest);
    let approved = ana.approve_master_key(&bob, &mallory.public_key(), NOW, &mut r).unwrap();
    assert!(matches!(approved.event, DeviceListEvent::Updated { .. }));
    assert_eq!(ana.device_lists().list(&bob), Some(&foreign));
}

#[test]
fn identities_that_disagree_with_the_list_are_never_used() {
    let mut r = rng(9);
    let mut ana = device(ANA, 2, &mut r);
    let mut phone = device(BOB, 4, &mut r);
    let mut impostor = device(BOB, 4, &mut r);
    let v1 = phone.create_master_key(&dev("phone"), NOW, &mut r).unwrap();
    let bob = user("bob@mof.gov.my");
    // Without a list, a bundle is not used.
    let b = bundle(&mut phone);
    let out = ana.encrypt_for_user(&bob, b"x", &[(addr(BOB), b)], &mut r).unwrap();
    assert_eq!(outcome(&out.report, BOB), DeviceOutcome::Missing(MissingReason::NoDeviceList));
    let _ = ana.process_device_list(v1.as_bytes(), NOW, &mut r).unwrap();
    let digest = ana.state_digest();
    let fake = bundle(&mut impostor);
    let out = ana.encrypt_for_user(&bob, b"x", &[(addr(BOB), fake)], &mut r).unwrap();
    assert_eq!(outcome(&out.report, BOB), DeviceOutcome::Missing(MissingReason::IdentityMismatch));
    assert!(out.messages.is_empty());
    assert_eq!(ana.state_digest(), digest);
    // A session with another identity under the device's name is not used either.
    let fake = bundle(&mut impostor);
    let _ = ana.initiate(BOB, &fake, &mut r).unwrap();
    let out = ana.encrypt_for_user(&bob, b"x", &[], &mut r).unwrap();
    assert_eq!(outcome(&out.report, BOB), DeviceOutcome::Missing(MissingReason::IdentityMismatch));
}

#[test]
fn device_lists_survive_export_and_import_and_refusals() {
    let mut r = rng(10);
    let mut phone = device(BOB, 2, &mut r);
    let laptop = device(BOB_LAPTOP, 2, &mut r);
    assert_eq!(phone.endorse_device(&dev("laptop"), laptop.identity(), NOW).unwrap_err().code(), ErrorCode::NotPrimary);
    let _ = phone.create_master_key(&dev("phone"), NOW, &mut r).unwrap();
    assert_eq!(phone.create_master_key(&dev("phone"), NOW, &mut r).unwrap_err().code(), ErrorCode::Duplicate);
    let (e, v2) = phone.endorse_device(&dev("laptop"), laptop.identity(), NOW).unwrap();
    let digest = phone.state_digest();
    assert_eq!(phone.endorse_device(&dev("laptop"), laptop.identity(), NOW).unwrap_err().code(), ErrorCode::Duplicate);
    assert_eq!(phone.remove_linked_device(&dev("phone"), NOW, &mut r).unwrap_err().code(), ErrorCode::UnknownDevice);
    assert_eq!(phone.remove_linked_device(&dev("tablet"), NOW, &mut r).unwrap_err().code(), ErrorCode::UnknownDevice);
    assert_eq!(phone.state_digest(), digest);
    let restored = reload(&phone, &mut r);
    assert_eq!(restored.own_device_list(), Some(&v2));
    assert_eq!(restored.master_public_key(), phone.master_public_key());
    assert!(restored.is_primary());
    // A linked device refuses an endorsement for another identity or device.
    let mut other = device(BOB_LAPTOP, 2, &mut r);
    assert_eq!(other.adopt_own_device_list(&v2, &e).unwrap_err().code(), ErrorCode::DeviceListMismatch);
    let mut wrong_name = Device::new("bob@mof.gov.my/tablet", NOW, &mut r);
    let (e3, v3) = phone.endorse_device(&dev("tablet"), wrong_name.identity(), NOW).unwrap();
    let digest = wrong_name.state_digest();
    assert_eq!(wrong_name.adopt_own_device_list(&v2, &e3).unwrap_err().code(), ErrorCode::UnknownDevice);
    assert_eq!(wrong_name.state_digest(), digest);
    wrong_name.adopt_own_device_list(&v3, &e3).unwrap();
    let back = reload(&wrong_name, &mut r);
    assert_eq!(back.own_endorsement(), Some(&e3));
    assert!(!back.is_primary());
    // An older own list is refused once a newer one is held.
    assert_eq!(wrong_name.adopt_own_device_list(&v2, &e3).unwrap_err().code(), ErrorCode::UnknownDevice);
}
