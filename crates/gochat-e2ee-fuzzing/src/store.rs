//! The `store_record` and `store_keyslot` targets (`docs/protocol.md` §16).
//!
//! `store_record`: the first byte picks the mode, the rest is the input.
//! - mode 0: `rest` is a record value for [`RecordCipher::open`] under a fixed data key,
//!   store id and key hash. Asserted: no panic; a refusal is one of the typed errors in
//!   the order of the spec (size, header, length, tag); an accepted value opens to the
//!   same plaintext every time, is refused under another key hash and another store, and
//!   re-seals to a value that opens to the same plaintext.
//! - mode 1: `rest` is a *plaintext*; the harness seals it itself (no AEAD to get past,
//!   the record has no plaintext framing) and asserts that it opens back exactly, that
//!   its layout is `0x60 || 0x01 || salt || ct || tag`, and that every truncation is refused.
//!
//! `store_keyslot`: [`Keyslot::decode`], then [`Keyslot::unwrap`] with a fixed platform
//! key. Asserted: no panic; an accepted slot re-encodes to the input byte for byte and its
//! parameters are within bounds; a passcode slot is refused as `MethodMismatch` without
//! hashing; an unwrapped data key is the harness's own (anything else is a forgery).
//! Returns whether the slot unwrapped.

use std::sync::OnceLock;

use gochat_e2ee_store::vault::{FormatError, RECORD_OVERHEAD_BYTES};
use gochat_e2ee_store::{
    Argon2Params, DataKey, Keyslot, KeyslotMethod, Passcode, PlatformKey, RecordCipher, StoreId, Unlock, VaultError,
};
use subtle::ConstantTimeEq;

use crate::fixtures::Seed;
use crate::rng;

/// The fixed data key of both targets.
pub const STORE_DATA_KEY: [u8; 32] = [0x33; 32];
/// The fixed store id of both targets.
pub const STORE_ID: [u8; 16] = [0x44; 16];
/// The platform key `store_keyslot` unwraps with.
pub const STORE_PLATFORM_KEY: [u8; 32] = [0x55; 32];
/// The record key whose hash `store_record` opens under.
pub const STORE_RECORD_KEY: &[u8] = b"\x01alice";

const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

struct Fixture {
    cipher: RecordCipher,
    other_store: RecordCipher,
    key_hash: [u8; 32],
    other_hash: [u8; 32],
    unlock: Unlock,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn get() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let dk = DataKey::from_bytes(STORE_DATA_KEY);
        let cipher = RecordCipher::new(&dk, StoreId::from_bytes(STORE_ID)).expect("fixture");
        let other_store = RecordCipher::new(&dk, StoreId::from_bytes([0x45; 16])).expect("fixture");
        let key_hash = cipher.key_hash(STORE_RECORD_KEY);
        let other_hash = cipher.key_hash(b"\x01bob");
        Fixture { cipher, other_store, key_hash, other_hash, unlock: Unlock::Key(PlatformKey::new(STORE_PLATFORM_KEY)) }
    })
}

/// The seeds of both targets.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let f = get();
    let r = &mut rng(0x5702E);
    let sealed = f.cipher.seal(&f.key_hash, b"a session record", r).expect("fixture");
    let empty = f.cipher.seal(&f.key_hash, b"", r).expect("fixture");
    let other = f.cipher.seal(&f.other_hash, b"bob's record", r).expect("fixture");
    let mut flipped = sealed.clone();
    flipped[20] ^= 1;
    let mode = |m: u8, b: &[u8]| [&[m][..], b].concat();

    let dk = DataKey::from_bytes(STORE_DATA_KEY);
    let id = StoreId::from_bytes(STORE_ID);
    let slot = Keyslot::wrap(&dk, &f.unlock, SMALL, id, r).expect("fixture").encode();
    let wrong = Keyslot::wrap(&dk, &Unlock::Key(PlatformKey::new([0x56; 32])), SMALL, id, r).expect("fixture").encode();
    let pass = Unlock::Passcode(Passcode::from_text("1234").expect("fixture"));
    let pass_slot = Keyslot::wrap(&dk, &pass, SMALL, id, r).expect("fixture").encode();
    let mut hostile = pass_slot.clone();
    hostile[3..7].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut tag = slot.clone();
    let last = tag.len() - 1;
    tag[last] ^= 0x80;
    vec![
        ("store_record", ("valid-open", mode(0, &sealed))),
        ("store_record", ("valid-open-empty", mode(0, &empty))),
        ("store_record", ("valid-seal-plaintext", mode(1, b"plaintext sealed by the harness"))),
        ("store_record", ("valid-seal-empty", mode(1, b""))),
        ("store_record", ("invalid-other-key-hash", mode(0, &other))),
        ("store_record", ("invalid-flipped", mode(0, &flipped))),
        ("store_record", ("invalid-truncated", mode(0, &sealed[..RECORD_OVERHEAD_BYTES - 1]))),
        ("store_record", ("invalid-version", mode(0, &[&[0x60, 0x02][..], &sealed[2..]].concat()))),
        ("store_keyslot", ("valid-platform-key", slot.clone())),
        ("store_keyslot", ("invalid-wrong-key", wrong)),
        ("store_keyslot", ("invalid-passcode-slot", pass_slot)),
        ("store_keyslot", ("invalid-hostile-memory", hostile)),
        ("store_keyslot", ("invalid-flipped-tag", tag)),
        ("store_keyslot", ("invalid-truncated", slot[..slot.len() - 1].to_vec())),
    ]
}

/// `store_record`: see the module documentation.
pub fn store_record(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else { return false };
    if mode % 2 == 0 {
        open_value(rest)
    } else {
        seal_plaintext(rest)
    }
}

fn open_value(value: &[u8]) -> bool {
    let f = get();
    let pt = match f.cipher.open(&f.key_hash, value) {
        Ok(pt) => pt,
        Err(e) => {
            match &e {
                VaultError::Malformed(FormatError::WrongType { found, .. }) => assert_eq!(Some(found), value.first()),
                VaultError::Malformed(FormatError::UnsupportedVersion(v)) => assert_eq!(Some(v), value.get(1)),
                VaultError::Truncated => assert!(value.len() < RECORD_OVERHEAD_BYTES),
                VaultError::Undecryptable => assert!(value.len() >= RECORD_OVERHEAD_BYTES),
                VaultError::RecordTooLarge(_) => {}
                other => panic!("unexpected refusal of a record: {other:?}"),
            }
            return false;
        }
    };
    assert_eq!(value.len(), pt.len() + RECORD_OVERHEAD_BYTES);
    assert_eq!(&f.cipher.open(&f.key_hash, value).expect("a second open failed")[..], &pt[..]);
    assert_eq!(f.cipher.open(&f.other_hash, value).unwrap_err(), VaultError::Undecryptable, "moved to another key");
    assert_eq!(f.other_store.open(&f.key_hash, value).unwrap_err(), VaultError::Undecryptable, "another store");
    let resealed = f.cipher.seal(&f.key_hash, &pt, &mut rng(7)).expect("re-seal");
    assert_eq!(&f.cipher.open(&f.key_hash, &resealed).expect("re-sealed value")[..], &pt[..]);
    true
}

fn seal_plaintext(pt: &[u8]) -> bool {
    let f = get();
    let Ok(value) = f.cipher.seal(&f.key_hash, pt, &mut rng(8)) else {
        return false;
    };
    assert_eq!(&value[..2], &[0x60, 0x01]);
    assert_eq!(value.len(), pt.len() + RECORD_OVERHEAD_BYTES);
    assert_eq!(&f.cipher.open(&f.key_hash, &value).expect("own seal refused")[..], pt);
    for cut in [0, 1, RECORD_OVERHEAD_BYTES - 1, value.len() - 1] {
        assert!(f.cipher.open(&f.key_hash, &value[..cut.min(value.len() - 1)]).is_err(), "truncated to {cut}");
    }
    true
}

/// `store_keyslot`: see the module documentation.
pub fn store_keyslot(data: &[u8]) -> bool {
    let f = get();
    let Ok(slot) = Keyslot::decode(data) else { return false };
    assert_eq!(slot.encode(), data, "an accepted keyslot does not re-encode to its input");
    match slot.method() {
        KeyslotMethod::Passcode => {
            let params = slot.params().expect("a passcode slot has parameters");
            params.validate().expect("decode accepted out-of-bounds parameters");
            assert_eq!(
                slot.unwrap(&f.unlock).unwrap_err(),
                VaultError::MethodMismatch { slot: KeyslotMethod::Passcode }
            );
            false
        }
        KeyslotMethod::PlatformKey => {
            assert_eq!(slot.params(), None);
            match slot.unwrap(&f.unlock) {
                Ok(key) => {
                    let ours: bool = key.ct_eq(&DataKey::from_bytes(STORE_DATA_KEY)).into();
                    assert!(ours, "a keyslot unwrapped to a data key the harness never wrapped");
                    assert_eq!(slot.store_id(), StoreId::from_bytes(STORE_ID), "unwrapped under another store id");
                    true
                }
                Err(e) => {
                    assert_eq!(e, VaultError::WrongKey);
                    false
                }
            }
        }
    }
}
