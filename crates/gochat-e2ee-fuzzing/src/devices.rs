//! The `device_list` and `device_endorsement` targets (`docs/protocol.md` §15.8).
//!
//! `device_list`: [`DeviceLists::process`] on a fixed store that holds version 2 of one
//! user's list (and a pending list by another master key). Asserted: no panic; a
//! refusal leaves the store exactly as it was; an accepted list re-encodes to the input
//! byte for byte; `New` only for another user, `Updated` only for a higher version under
//! the pinned key, `Unchanged` only for the held (or pending) bytes, and
//! `MasterKeyChanged` never changes the pinned key or the held list.
//!
//! `device_endorsement`: [`DeviceEndorsement::decode`], then `matches` against the held
//! list. Asserted: no panic; an accepted endorsement re-encodes to the input; a match
//! names a listed device with its listed identity and the list's master key.

use std::sync::OnceLock;

use gochat_e2ee::keys::IdentityKeyPair;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::{DeviceEndorsement, DeviceEntry, DeviceList, DeviceListEvent, DeviceLists, MasterKey};

use crate::fixtures::Seed;

struct Fixture {
    store: DeviceLists,
    user: UserId,
    held: DeviceList,
    next: DeviceList,
    stale: DeviceList,
    foreign: DeviceList,
    other_user: DeviceList,
    endorsement: DeviceEndorsement,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn entry(id: &str, seed: u64) -> DeviceEntry {
    let identity = *IdentityKeyPair::generate(&mut crate::rng(seed)).public();
    DeviceEntry { device: DeviceId::parse(id).expect("fixture"), identity }
}

fn get() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let master = MasterKey::from_seed([1; 32]);
        let mallory = MasterKey::from_seed([9; 32]);
        let user = UserId::parse("aminah@mof.gov.my").expect("fixture");
        let sign = |m: &MasterKey, u: &UserId, v: u64, d: Vec<DeviceEntry>| {
            DeviceList::sign(m, u, v, 1_700_000_000, d).expect("fixture")
        };
        let stale = sign(&master, &user, 1, vec![entry("phone", 1)]);
        let held = sign(&master, &user, 2, vec![entry("phone", 1), entry("laptop", 2)]);
        let next = sign(&master, &user, 3, vec![entry("laptop", 2)]);
        let foreign = sign(&mallory, &user, 5, vec![entry("evil", 3)]);
        let other = UserId::parse("bob@mof.gov.my").expect("fixture");
        let other_user = sign(&master, &other, 1, vec![entry("phone", 4)]);
        let mut store = DeviceLists::default();
        let _ = store.process(held.as_bytes()).expect("fixture");
        let _ = store.process(foreign.as_bytes()).expect("fixture");
        let laptop = entry("laptop", 2);
        let endorsement = DeviceEndorsement::sign(&master, &user, &laptop.device, &laptop.identity);
        Fixture { store, user, held, next, stale, foreign, other_user, endorsement }
    })
}

/// The seeds of both targets.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let f = get();
    let mut bad = f.next.encode();
    if let Some(b) = bad.last_mut() {
        *b ^= 1;
    }
    let e = f.endorsement.encode();
    let mut bad_e = e.clone();
    if let Some(b) = bad_e.last_mut() {
        *b ^= 1;
    }
    vec![
        ("device_list", ("valid-held", f.held.encode())),
        ("device_list", ("valid-next", f.next.encode())),
        ("device_list", ("invalid-stale", f.stale.encode())),
        ("device_list", ("valid-foreign-master", f.foreign.encode())),
        ("device_list", ("valid-other-user", f.other_user.encode())),
        ("device_list", ("invalid-signature", bad)),
        ("device_list", ("invalid-truncated", f.next.as_bytes()[..40].to_vec())),
        ("device_endorsement", ("valid-laptop", e.clone())),
        ("device_endorsement", ("invalid-signature", bad_e)),
        ("device_endorsement", ("invalid-trailing", [&e[..], &[0]].concat())),
    ]
}

/// `device_list`: see the module documentation. Returns whether the list was accepted.
pub fn device_list(data: &[u8]) -> bool {
    let f = get();
    let mut store = f.store.clone();
    match store.process(data) {
        Err(_) => {
            assert_eq!(store, f.store, "a refused list changed the store");
            false
        }
        Ok(event) => {
            let list = DeviceList::decode(data).expect("an accepted list decodes");
            assert_eq!(list.as_bytes(), data, "an accepted list is canonical");
            match event {
                DeviceListEvent::New { .. } => assert_ne!(list.user(), &f.user),
                DeviceListEvent::Updated { .. } => {
                    assert_eq!(list.master_public_key(), f.held.master_public_key());
                    assert!(list.version() > f.held.version());
                    assert_eq!(store.list(&f.user), Some(&list));
                }
                DeviceListEvent::Unchanged => assert_eq!(store, f.store),
                DeviceListEvent::MasterKeyChanged { previous, .. } => {
                    assert_eq!(previous, f.held.master_public_key());
                    assert_eq!(store.list(&f.user), Some(&f.held), "a foreign master key was applied");
                }
            }
            true
        }
    }
}

/// `device_endorsement`: see the module documentation. Returns whether it decoded.
pub fn device_endorsement(data: &[u8]) -> bool {
    let f = get();
    let Ok(e) = DeviceEndorsement::decode(data) else { return false };
    assert_eq!(e.encode(), data, "an accepted endorsement is canonical");
    if e.matches(&f.held).is_ok() {
        assert_eq!(e.master_public_key(), f.held.master_public_key());
        assert_eq!(f.held.identity_of(e.device()), Some(e.identity()));
    }
    true
}
