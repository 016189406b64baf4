use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::keys::IdentityKeyPair;

const NOW: u64 = 1_700_000_000;

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn dev(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn identity(seed: u64) -> IdentityKey {
    *IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(seed)).public()
}

fn entries(ids: &[(&str, u64)]) -> Vec<DeviceEntry> {
    ids.iter().map(|(d, s)| DeviceEntry { device: dev(d), identity: identity(*s) }).collect()
}

fn list(master: &MasterKey, version: u64, ids: &[(&str, u64)]) -> DeviceList {
    DeviceList::sign(master, &user("bob@mof.gov.my"), version, NOW, entries(ids)).unwrap()
}

#[test]
fn lists_and_endorsements_round_trip_and_refuse_every_change() {
    let master = MasterKey::from_seed([1; 32]);
    let l = list(&master, 3, &[("phone", 1), ("laptop", 2)]);
    assert_eq!(l.devices()[0].device.as_str(), "laptop", "sorted by id");
    let bytes = l.encode();
    assert!(bytes.len() <= MAX_DEVICE_LIST_BYTES);
    assert_eq!(bytes[..2], [0x55, 0x01]);
    assert_eq!(DeviceList::decode(&bytes).unwrap(), l);
    // Every single-bit flip is refused, by a typed error (layout or signature).
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(DeviceList::decode(&b).is_err(), "bit flip at {i} accepted");
    }
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(DeviceList::decode(&b), Err(DecodeError::TrailingBytes(1).into()));
    assert_eq!(DeviceList::decode(&bytes[..bytes.len() - 1]), Err(DecodeError::Truncated.into()));
    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 0x80;
    assert_eq!(DeviceList::decode(&b), Err(DeviceListError::BadSignature));
    // A signature over another label (the endorsement's) does not verify as a list's.
    let e = DeviceEndorsement::sign(&master, l.user(), &dev("phone"), &identity(1));
    let eb = e.encode();
    assert_eq!(eb[..2], [0x56, 0x01]);
    assert!(eb.len() <= MAX_DEVICE_ENDORSEMENT_BYTES);
    assert_eq!(DeviceEndorsement::decode(&eb).unwrap(), e);
    for i in 0..eb.len() {
        let mut b = eb.clone();
        b[i] ^= 0x01;
        assert!(DeviceEndorsement::decode(&b).is_err(), "bit flip at {i} accepted");
    }
    assert!(e.matches(&l).is_ok());
    let other = DeviceEndorsement::sign(&master, l.user(), &dev("phone"), &identity(9));
    assert_eq!(other.matches(&l), Err(DeviceListError::Mismatch("identity")));
    let unknown = DeviceEndorsement::sign(&master, l.user(), &dev("tablet"), &identity(1));
    assert_eq!(unknown.matches(&l), Err(DeviceListError::UnknownDevice));
    let foreign = DeviceEndorsement::sign(&MasterKey::from_seed([2; 32]), l.user(), &dev("phone"), &identity(1));
    assert_eq!(foreign.matches(&l), Err(DeviceListError::Mismatch("master key")));
}

#[test]
fn sign_refuses_bad_lists() {
    let master = MasterKey::from_seed([1; 32]);
    let u = user("bob@mof.gov.my");
    assert_eq!(DeviceList::sign(&master, &u, 1, NOW, vec![]), Err(DeviceListError::TooManyDevices));
    let many: Vec<_> =
        (0..17).map(|i| DeviceEntry { device: dev(&format!("d{i:02}")), identity: identity(i) }).collect();
    assert_eq!(DeviceList::sign(&master, &u, 1, NOW, many.clone()), Err(DeviceListError::TooManyDevices));
    let full = DeviceList::sign(&master, &u, 1, NOW, many[..16].to_vec()).unwrap();
    assert!(full.encode().len() <= MAX_DEVICE_LIST_BYTES);
    assert_eq!(
        full.with_device(&master, DeviceEntry { device: dev("x"), identity: identity(99) }, NOW),
        Err(DeviceListError::TooManyDevices)
    );
    let twice = entries(&[("a", 1), ("b", 1)]);
    assert_eq!(DeviceList::sign(&master, &u, 1, NOW, twice), Err(DeviceListError::DuplicateDevice));
    let same_id = entries(&[("a", 1), ("a", 2)]);
    assert_eq!(DeviceList::sign(&master, &u, 1, NOW, same_id), Err(DeviceListError::DuplicateDevice));
    assert!(DeviceList::sign(&master, &u, 0, NOW, entries(&[("a", 1)])).is_err());
    let l = list(&master, 1, &[("a", 1)]);
    assert_eq!(l.without_device(&master, &dev("zz"), NOW), Err(DeviceListError::UnknownDevice));
    let other = MasterKey::from_seed([3; 32]);
    assert_eq!(
        l.with_device(&other, DeviceEntry { device: dev("b"), identity: identity(2) }, NOW),
        Err(DeviceListError::Mismatch("master key"))
    );
}

#[test]
fn master_public_keys_are_checked() {
    // The identity point (small order) and a non-canonical encoding are refused.
    let mut small = [0u8; 32];
    small[0] = 1;
    assert_eq!(MasterPublicKey::from_bytes(small), Err(DeviceListError::InvalidMasterKey));
    assert_eq!(MasterPublicKey::from_bytes([0xff; 32]), Err(DeviceListError::InvalidMasterKey));
    let m = MasterKey::from_seed([4; 32]);
    assert_eq!(MasterPublicKey::from_bytes(m.public_key().to_bytes()).unwrap(), m.public_key());
    assert!(!format!("{m:?}").contains(&format!("{:?}", [4u8; 32])));
    assert!(format!("{m:?}").contains("redacted"));
}

#[test]
fn process_pins_updates_and_refuses_stale_lists_with_state_unchanged() {
    let master = MasterKey::from_seed([1; 32]);
    let mut lists = DeviceLists::default();
    let v1 = list(&master, 1, &[("phone", 1)]);
    assert_eq!(lists.process(v1.as_bytes()).unwrap(), DeviceListEvent::New { devices: entries(&[("phone", 1)]) });
    assert_eq!(lists.master_key(v1.user()), Some(master.public_key()));
    assert_eq!(lists.process(v1.as_bytes()).unwrap(), DeviceListEvent::Unchanged);
    let v2 = list(&master, 2, &[("phone", 1), ("laptop", 2)]);
    assert_eq!(
        lists.process(v2.as_bytes()).unwrap(),
        DeviceListEvent::Updated { added: entries(&[("laptop", 2)]), removed: vec![] }
    );
    let held = lists.clone();
    // Older version: refused.
    assert_eq!(lists.process(v1.as_bytes()), Err(DeviceListError::Stale { held: 2, got: 1 }));
    // Same version, other contents: refused.
    let fork = list(&master, 2, &[("phone", 1), ("tablet", 3)]);
    assert_eq!(lists.process(fork.as_bytes()), Err(DeviceListError::Stale { held: 2, got: 2 }));
    // Unsigned (bad signature): refused.
    let mut bad = v2.encode();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(lists.process(&bad), Err(DeviceListError::BadSignature));
    assert_eq!(lists, held);
    let v3 = list(&master, 3, &[("laptop", 2)]);
    assert_eq!(
        lists.process(v3.as_bytes()).unwrap(),
        DeviceListEvent::Updated { added: vec![], removed: entries(&[("phone", 1)]) }
    );
    // An identity change for a device id is a removal and an addition.
    let v4 = list(&master, 4, &[("laptop", 5)]);
    assert_eq!(
        lists.process(v4.as_bytes()).unwrap(),
        DeviceListEvent::Updated { added: entries(&[("laptop", 5)]), removed: entries(&[("laptop", 2)]) }
    );
}

#[test]
fn a_foreign_master_key_is_pending_until_approved() {
    let master = MasterKey::from_seed([1; 32]);
    let mallory = MasterKey::from_seed([6; 32]);
    let mut lists = DeviceLists::default();
    let u = user("bob@mof.gov.my");
    let _ = lists.process(list(&master, 1, &[("phone", 1)]).as_bytes()).unwrap();
    let foreign = list(&mallory, 9, &[("phone", 1), ("evil", 7)]);
    let event = lists.process(foreign.as_bytes()).unwrap();
    assert_eq!(event, DeviceListEvent::MasterKeyChanged { previous: master.public_key(), new: mallory.public_key() });
    // Not applied: the pinned key and the list are as before.
    assert_eq!(lists.master_key(&u), Some(master.public_key()));
    assert_eq!(lists.list(&u).unwrap().version(), 1);
    assert_eq!(lists.pending(&u), Some(&foreign));
    // Again: still loud, nothing more kept.
    let before = lists.clone();
    assert!(matches!(lists.process(foreign.as_bytes()).unwrap(), DeviceListEvent::MasterKeyChanged { .. }));
    assert_eq!(lists, before);
    // The pinned master still updates the list meanwhile.
    let v2 = list(&master, 2, &[("phone", 1), ("laptop", 2)]);
    assert!(matches!(lists.process(v2.as_bytes()).unwrap(), DeviceListEvent::Updated { .. }));
    assert_eq!(lists.pending(&u), Some(&foreign));
    // Approving another key is refused and changes nothing.
    let before = lists.clone();
    assert_eq!(lists.approve_master_key(&u, &master.public_key()), Err(DeviceListError::UnknownMasterKey));
    assert_eq!(
        lists.approve_master_key(&user("x@mof.gov.my"), &mallory.public_key()),
        Err(DeviceListError::UnknownMasterKey)
    );
    assert_eq!(lists, before);
    assert_eq!(
        lists.approve_master_key(&u, &mallory.public_key()).unwrap(),
        DeviceListEvent::Updated { added: entries(&[("evil", 7)]), removed: entries(&[("laptop", 2)]) }
    );
    assert_eq!(lists.master_key(&u), Some(mallory.public_key()));
    assert_eq!(lists.pending(&u), None);
    // The old master is now the foreign one.
    assert!(matches!(lists.process(v2.as_bytes()).unwrap(), DeviceListEvent::MasterKeyChanged { .. }));
}

#[test]
fn state_round_trips() {
    let master = MasterKey::from_seed([1; 32]);
    let mut lists = DeviceLists::default();
    let _ = lists.process(list(&master, 1, &[("phone", 1)]).as_bytes()).unwrap();
    let _ = lists.process(list(&MasterKey::from_seed([2; 32]), 1, &[("x", 3)]).as_bytes()).unwrap();
    let other = DeviceList::sign(&master, &user("ana@mof.gov.my"), 4, NOW, entries(&[("a", 4)])).unwrap();
    let _ = lists.process(other.as_bytes()).unwrap();
    let mut w = Writer::raw(0);
    lists.write(&mut w);
    let bytes = w.into_bytes();
    assert_eq!(bytes.len(), lists.encoded_len());
    let mut r = Reader::raw(&bytes);
    assert_eq!(DeviceLists::read(&mut r).unwrap(), lists);
    assert!(r.rest_is_empty());
    let own = OwnDevice {
        address: Some(DeviceAddress::new(user("bob@mof.gov.my"), dev("phone"))),
        master: Some(master.clone()),
        endorsement: Some(DeviceEndorsement::sign(&master, &user("bob@mof.gov.my"), &dev("phone"), &identity(1))),
    };
    let mut w = Writer::raw(0);
    own.write(&mut w);
    let bytes = w.into_bytes();
    assert_eq!(bytes.len(), own.encoded_len());
    let back = OwnDevice::read(&mut Reader::raw(&bytes)).unwrap();
    assert_eq!(back.master.unwrap().public_key(), master.public_key());
    assert_eq!(back.endorsement, own.endorsement);
}

#[test]
fn users_are_bounded() {
    let master = MasterKey::from_seed([1; 32]);
    let mut lists = DeviceLists::default();
    for i in 0..MAX_DEVICE_LIST_USERS {
        let l = DeviceList::sign(&master, &user(&format!("u{i}@mof.gov.my")), 1, NOW, entries(&[("a", 1)])).unwrap();
        lists.users.insert(l.user().clone(), UserLists { list: l, pending: None });
    }
    let l = DeviceList::sign(&master, &user("last@mof.gov.my"), 1, NOW, entries(&[("a", 1)])).unwrap();
    assert_eq!(lists.process(l.as_bytes()), Err(DeviceListError::TooManyUsers));
}
