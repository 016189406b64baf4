//! The `store_export` and `store_inbox` targets (`docs/protocol.md` §16.6, §16.7).
//!
//! `store_export`: [`decode_container`] on the input. Asserted: no panic; an accepted
//! container re-frames to the input byte for byte (keyslot re-encoded, snapshot as is).
//! A passcode slot has bounded Argon2id parameters and is never hashed here (the cost is
//! the slot's); a platform-key slot (which the library's `import` refuses as
//! `MethodMismatch`, but which reaches the snapshot decoder under a real key) is unwrapped
//! with a fixed key, and an unwrapped key must be the harness's own; the snapshot is then
//! imported as a device (accepted or a typed error, never a panic). Returns whether a
//! device was imported.
//!
//! `store_inbox`: [`InboxEntry::decode`] on the input. Asserted: no panic; an accepted
//! version-0x02 entry re-encodes to the input byte for byte, a version-0x01 (first
//! release, 1:1) entry re-encodes as `0x02 || 0x01 || rest`; the re-encoding decodes to
//! the same entry. Returns whether the entry decoded.

use std::sync::OnceLock;

use gochat_e2ee::{Device, SnapshotKey};
use gochat_e2ee_store::export::{decode_container, encode_container};
use gochat_e2ee_store::inbox::{InboxEntry, INBOX_VERSION, INBOX_VERSION_DIRECT_V1};
use gochat_e2ee_store::{Argon2Params, DataKey, Keyslot, KeyslotMethod, Passcode, PlatformKey, StoreId, Unlock};
use subtle::ConstantTimeEq;

use crate::fixtures::Seed;
use crate::rng;

/// The export key the harness's platform-key containers wrap.
pub const EXPORT_KEY: [u8; 32] = [0x62; 32];
/// The platform key `store_export` unwraps with.
pub const EXPORT_PLATFORM_KEY: [u8; 32] = [0x66; 32];

const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn unlock() -> &'static Unlock {
    static U: OnceLock<Unlock> = OnceLock::new();
    U.get_or_init(|| Unlock::Key(PlatformKey::new(EXPORT_PLATFORM_KEY)))
}

/// The seeds of both targets.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let r = &mut rng(0x1B0C5);
    let mut device = Device::new("mover", 1_700_000_000, r);
    device.account_mut().generate_one_time_prekeys(1, r).expect("fixture");
    let snapshot = device.export(&SnapshotKey::new(EXPORT_KEY), r).expect("fixture");
    let dk = DataKey::from_bytes(EXPORT_KEY);
    let id = StoreId::from_bytes([0x67; 16]);
    let slot = Keyslot::wrap(&dk, unlock(), SMALL, id, r).expect("fixture").encode();
    let pass = Unlock::Passcode(Passcode::from_text("transfer").expect("fixture"));
    let pass_slot = Keyslot::wrap(&dk, &pass, SMALL, id, r).expect("fixture").encode();
    let valid = encode_container(&slot, &snapshot);
    let mut flipped = valid.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut long_len = valid.clone();
    long_len[2..6].copy_from_slice(&u32::MAX.to_be_bytes());

    let mut seeds: Vec<(&'static str, Seed)> = vec![
        ("store_export", ("valid-platform-slot", valid.clone())),
        ("store_export", ("unhashed-passcode-slot", encode_container(&pass_slot, &snapshot))),
        ("store_export", ("invalid-flipped-snapshot", flipped)),
        ("store_export", ("invalid-keyslot-length", long_len)),
        ("store_export", ("invalid-version", [&[0x62, 0x02][..], &valid[2..]].concat())),
        ("store_export", ("invalid-truncated", valid[..40].to_vec())),
    ];
    for (name, entry) in inbox_entries() {
        seeds.push(("store_inbox", (name, entry)));
    }
    seeds
}

fn inbox_entries() -> Vec<(&'static str, Vec<u8>)> {
    let r = &mut rng(0x1B0C6);
    let ik = Device::new("sender", 0, r).identity().to_bytes();
    let var = |b: &[u8]| [&(b.len() as u32).to_be_bytes()[..], b].concat();
    let direct_body = [var(b"bob"), var(b"hello"), ik.to_vec(), vec![1]].concat();
    let group = [
        vec![0x02, 0x02],
        var(b"ben"),
        ik.to_vec(),
        2u32.to_be_bytes().to_vec(),
        7u32.to_be_bytes().to_vec(),
        var(b"hi"),
    ]
    .concat();
    let announcement = [
        vec![0x02, 0x03],
        vec![0x33; 32],
        vec![0x01],
        vec![0x33; 32],
        5u64.to_be_bytes().to_vec(),
        9u64.to_be_bytes().to_vec(),
        vec![0x01],
        vec![0x44; 32],
        var(b"notice"),
    ]
    .concat();
    let rotation =
        [vec![0x02, 0x03], vec![0x33; 32], vec![0x02], vec![0x44; 32], vec![0x45; 32], 6u64.to_be_bytes().to_vec()]
            .concat();
    vec![
        ("valid-direct", [&[0x02, 0x01][..], &direct_body].concat()),
        ("valid-direct-v1", [&[0x01][..], &direct_body].concat()),
        ("valid-group", group.clone()),
        ("valid-announcement", announcement),
        ("valid-key-rotation", rotation),
        ("invalid-kind", [&[0x02, 0x09][..], &direct_body].concat()),
        ("invalid-trailing", [&group[..], &[0]].concat()),
        ("invalid-truncated", group[..group.len() - 1].to_vec()),
    ]
}

/// `store_export`: see the module documentation.
pub fn store_export(data: &[u8]) -> bool {
    let Ok((slot, snapshot)) = decode_container(data) else { return false };
    assert_eq!(encode_container(&slot.encode(), snapshot), data, "an accepted container does not re-frame");
    match slot.method() {
        KeyslotMethod::Passcode => {
            slot.params().expect("a passcode slot has parameters").validate().expect("unbounded parameters accepted");
            false
        }
        KeyslotMethod::PlatformKey => {
            let Ok(key) = slot.unwrap(unlock()) else { return false };
            let ours: bool = key.ct_eq(&DataKey::from_bytes(EXPORT_KEY)).into();
            assert!(ours, "a container's keyslot unwrapped to a key the harness never wrapped");
            Device::import(&SnapshotKey::new(EXPORT_KEY), snapshot).is_ok()
        }
    }
}

/// `store_inbox`: see the module documentation.
pub fn store_inbox(data: &[u8]) -> bool {
    let Ok(entry) = InboxEntry::decode(data) else { return false };
    let encoded = entry.encode();
    match data.first() {
        Some(&INBOX_VERSION) => assert_eq!(&encoded[..], data, "an accepted entry does not re-encode"),
        Some(&INBOX_VERSION_DIRECT_V1) => {
            assert_eq!(&encoded[..2], &[INBOX_VERSION, 0x01]);
            assert_eq!(&encoded[2..], &data[1..], "a v1 entry re-encodes to another body");
        }
        other => panic!("an entry of version {other:?} was accepted"),
    }
    assert_eq!(InboxEntry::decode(&encoded).expect("own encoding refused"), entry);
    true
}
