//! The vault as the spec states it: keyslots, unlock, record sealing, and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gochat_e2ee_store::vault::{
    FormatError, KEYSLOT_PASSCODE_BYTES, KEYSLOT_PLATFORM_BYTES, MAX_PASSCODE_BYTES, MAX_RECORD_BYTES,
    RECORD_OVERHEAD_BYTES,
};
use gochat_e2ee_store::{
    Argon2Params, DataKey, Keyslot, KeyslotMethod, Passcode, PlatformKey, RecordCipher, StoreId, Unlock, VaultError,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;

/// The smallest accepted parameters, so the tests stay fast.
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn platform(b: u8) -> Unlock {
    Unlock::Key(PlatformKey::new([b; 32]))
}

fn passcode(s: &str) -> Unlock {
    Unlock::Passcode(Passcode::from_text(s).unwrap())
}

fn same(a: &DataKey, b: &DataKey) -> bool {
    bool::from(a.ct_eq(b))
}

fn setup() -> (DataKey, StoreId) {
    let mut r = rng(1);
    (DataKey::generate(&mut r), StoreId::generate(&mut r))
}

#[test]
fn platform_keyslot_round_trips_and_has_the_exact_layout() {
    let (dk, id) = setup();
    let slot = Keyslot::wrap(&dk, &platform(7), SMALL, id, &mut rng(2)).unwrap();
    let bytes = slot.encode();
    assert_eq!(bytes.len(), KEYSLOT_PLATFORM_BYTES);
    assert_eq!(bytes.len(), 79);
    assert_eq!(&bytes[..3], &[0x61, 0x01, 0x01]);
    assert_eq!(&bytes[3..19], id.as_bytes());
    assert_eq!(slot.method(), KeyslotMethod::PlatformKey);
    assert_eq!(slot.params(), None);
    assert_eq!(slot.store_id(), id);
    let decoded = Keyslot::decode(&bytes).unwrap();
    assert_eq!(decoded, slot);
    assert_eq!(decoded.encode(), bytes);
    assert!(same(&decoded.unwrap(&platform(7)).unwrap(), &dk));
}

#[test]
fn passcode_keyslot_round_trips_and_records_its_parameters() {
    let (dk, id) = setup();
    let slot = Keyslot::wrap(&dk, &passcode("correct horse"), SMALL, id, &mut rng(3)).unwrap();
    let bytes = slot.encode();
    assert_eq!(bytes.len(), KEYSLOT_PASSCODE_BYTES);
    assert_eq!(bytes.len(), 107);
    assert_eq!(&bytes[..3], &[0x61, 0x01, 0x02]);
    assert_eq!(&bytes[3..7], &(8u32 * 1024).to_be_bytes());
    assert_eq!(&bytes[7..11], &1u32.to_be_bytes());
    assert_eq!(&bytes[11..15], &1u32.to_be_bytes());
    assert_eq!(&bytes[31..47], id.as_bytes());
    assert_eq!(slot.params(), Some(SMALL));
    let decoded = Keyslot::decode(&bytes).unwrap();
    assert!(same(&decoded.unwrap(&passcode("correct horse")).unwrap(), &dk));
}

#[test]
fn wrong_passcode_is_wrong_key_and_leaves_the_slot_unchanged() {
    let (dk, id) = setup();
    let slot = Keyslot::wrap(&dk, &passcode("1234"), SMALL, id, &mut rng(4)).unwrap();
    let before = slot.encode();
    assert_eq!(slot.unwrap(&passcode("1235")).unwrap_err(), VaultError::WrongKey);
    assert_eq!(slot.encode(), before);
    assert!(same(&slot.unwrap(&passcode("1234")).unwrap(), &dk));
}

#[test]
fn wrong_platform_key_is_wrong_key_and_leaves_the_slot_unchanged() {
    let (dk, id) = setup();
    let slot = Keyslot::wrap(&dk, &platform(1), SMALL, id, &mut rng(5)).unwrap();
    let before = slot.encode();
    assert_eq!(slot.unwrap(&platform(2)).unwrap_err(), VaultError::WrongKey);
    assert_eq!(slot.encode(), before);
}

#[test]
fn an_unlock_of_the_other_method_is_a_method_mismatch() {
    let (dk, id) = setup();
    let key_slot = Keyslot::wrap(&dk, &platform(1), SMALL, id, &mut rng(6)).unwrap();
    let pass_slot = Keyslot::wrap(&dk, &passcode("pw"), SMALL, id, &mut rng(6)).unwrap();
    assert_eq!(
        key_slot.unwrap(&passcode("pw")).unwrap_err(),
        VaultError::MethodMismatch { slot: KeyslotMethod::PlatformKey }
    );
    assert_eq!(
        pass_slot.unwrap(&platform(1)).unwrap_err(),
        VaultError::MethodMismatch { slot: KeyslotMethod::Passcode }
    );
}

#[test]
fn changing_the_passcode_rewraps_the_same_data_key() {
    let (dk, id) = setup();
    let cipher = RecordCipher::new(&dk, id).unwrap();
    let h = cipher.key_hash(b"\x01alice");
    let sealed = cipher.seal(&h, b"session state", &mut rng(7)).unwrap();
    let old = Keyslot::wrap(&dk, &passcode("old"), SMALL, id, &mut rng(8)).unwrap();
    let unlocked = old.unwrap(&passcode("old")).unwrap();
    let new = Keyslot::wrap(&unlocked, &passcode("new"), SMALL, id, &mut rng(9)).unwrap();
    assert_eq!(new.unwrap(&passcode("old")).unwrap_err(), VaultError::WrongKey);
    let again = new.unwrap(&passcode("new")).unwrap();
    let reopened = RecordCipher::new(&again, id).unwrap();
    assert_eq!(&reopened.open(&h, &sealed).unwrap()[..], b"session state");
}

#[test]
fn every_truncation_of_a_keyslot_is_refused_as_truncated() {
    let (dk, id) = setup();
    for unlock in [platform(3), passcode("pw")] {
        let bytes = Keyslot::wrap(&dk, &unlock, SMALL, id, &mut rng(10)).unwrap().encode();
        for n in 0..bytes.len() {
            assert_eq!(Keyslot::decode(&bytes[..n]).unwrap_err(), VaultError::Truncated, "length {n}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Keyslot::decode(&long).unwrap_err(), VaultError::Malformed(FormatError::TrailingBytes(1)));
    }
}

#[test]
fn every_bit_flip_of_a_platform_keyslot_is_refused() {
    let (dk, id) = setup();
    let bytes = Keyslot::wrap(&dk, &platform(3), SMALL, id, &mut rng(11)).unwrap().encode();
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        let err = match Keyslot::decode(&b) {
            Err(e) => e,
            Ok(slot) => slot.unwrap(&platform(3)).unwrap_err(),
        };
        match i / 8 {
            0 => assert!(matches!(err, VaultError::Malformed(FormatError::WrongType { .. }))),
            1 => assert!(matches!(err, VaultError::Malformed(FormatError::UnsupportedVersion(_)))),
            2 => assert!(matches!(err, VaultError::Malformed(FormatError::UnknownMethod(_)))),
            _ => assert_eq!(err, VaultError::WrongKey, "bit {i}"),
        }
    }
}

#[test]
fn every_bit_flip_of_a_passcode_keyslot_is_refused() {
    let (dk, id) = setup();
    let pw = passcode("pw");
    let bytes = Keyslot::wrap(&dk, &pw, SMALL, id, &mut rng(12)).unwrap().encode();
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        // Flips of high memory bits would make (valid) slots that need up to 1 GiB; the
        // bounds refusals are covered below, the rest must fail somewhere typed.
        let err = match Keyslot::decode(&b) {
            Err(e) => e,
            Ok(slot) if slot.params().is_some_and(|p| p.memory_kib > 64 * 1024) => continue,
            Ok(slot) => slot.unwrap(&pw).unwrap_err(),
        };
        match i / 8 {
            0..=2 => assert!(matches!(err, VaultError::Malformed(_)), "bit {i}: {err:?}"),
            3..=6 => assert!(matches!(err, VaultError::Argon2Memory(_) | VaultError::WrongKey), "bit {i}: {err:?}"),
            7..=10 => {
                assert!(matches!(err, VaultError::Argon2Iterations(_) | VaultError::WrongKey), "bit {i}: {err:?}")
            }
            11..=14 => assert!(matches!(err, VaultError::Argon2Lanes(_) | VaultError::WrongKey), "bit {i}: {err:?}"),
            _ => assert_eq!(err, VaultError::WrongKey, "bit {i}"),
        }
    }
}

fn passcode_slot_with(memory_kib: u32, iterations: u32, lanes: u32) -> Vec<u8> {
    let (dk, id) = setup();
    let mut b = Keyslot::wrap(&dk, &passcode("pw"), SMALL, id, &mut rng(13)).unwrap().encode();
    b[3..7].copy_from_slice(&memory_kib.to_be_bytes());
    b[7..11].copy_from_slice(&iterations.to_be_bytes());
    b[11..15].copy_from_slice(&lanes.to_be_bytes());
    b
}

#[test]
fn hostile_argon2_parameters_are_refused_before_any_hashing() {
    let cases = [
        (8 * 1024 - 1, 1, 1, VaultError::Argon2Memory(8 * 1024 - 1)),
        (1024 * 1024 + 1, 1, 1, VaultError::Argon2Memory(1024 * 1024 + 1)),
        (u32::MAX, 1, 1, VaultError::Argon2Memory(u32::MAX)),
        (0, 1, 1, VaultError::Argon2Memory(0)),
        (8 * 1024, 0, 1, VaultError::Argon2Iterations(0)),
        (8 * 1024, 17, 1, VaultError::Argon2Iterations(17)),
        (8 * 1024, u32::MAX, 1, VaultError::Argon2Iterations(u32::MAX)),
        (8 * 1024, 1, 0, VaultError::Argon2Lanes(0)),
        (8 * 1024, 1, 9, VaultError::Argon2Lanes(9)),
        (8 * 1024, 1, u32::MAX, VaultError::Argon2Lanes(u32::MAX)),
    ];
    for (m, t, p, expected) in cases {
        let start = std::time::Instant::now();
        assert_eq!(Keyslot::decode(&passcode_slot_with(m, t, p)).unwrap_err(), expected);
        // A refusal costs no hashing: Argon2id over 1 GiB (or 17 passes) takes far longer.
        assert!(start.elapsed() < std::time::Duration::from_millis(200), "{m} {t} {p}");
        let params = Argon2Params { memory_kib: m, iterations: t, lanes: p };
        assert_eq!(params.validate().unwrap_err(), expected);
        let (dk, id) = setup();
        assert_eq!(Keyslot::wrap(&dk, &passcode("pw"), params, id, &mut rng(14)).unwrap_err(), expected);
    }
    // The bounds themselves are accepted.
    for (m, t, p) in [(8 * 1024, 1, 1), (1024 * 1024, 16, 8)] {
        Argon2Params { memory_kib: m, iterations: t, lanes: p }.validate().unwrap();
        Keyslot::decode(&passcode_slot_with(m, t, p)).unwrap();
    }
    Argon2Params::DEFAULT.validate().unwrap();
    assert_eq!(Argon2Params::DEFAULT, Argon2Params { memory_kib: 64 * 1024, iterations: 3, lanes: 1 });
}

#[test]
fn a_platform_slot_ignores_the_argon2_parameters() {
    let (dk, id) = setup();
    let hostile = Argon2Params { memory_kib: u32::MAX, iterations: 0, lanes: 0 };
    let slot = Keyslot::wrap(&dk, &platform(9), hostile, id, &mut rng(15)).unwrap();
    assert!(same(&slot.unwrap(&platform(9)).unwrap(), &dk));
}

#[test]
fn a_keyslot_is_bound_to_its_store_id() {
    let (dk, id) = setup();
    for unlock in [platform(4), passcode("pw")] {
        let mut b = Keyslot::wrap(&dk, &unlock, SMALL, id, &mut rng(16)).unwrap().encode();
        let at = if unlock.method() == KeyslotMethod::PlatformKey { 3 } else { 31 };
        b[at..at + 16].copy_from_slice(&[0xEE; 16]);
        let slot = Keyslot::decode(&b).unwrap();
        assert_eq!(slot.store_id(), StoreId::from_bytes([0xEE; 16]));
        assert_eq!(slot.unwrap(&unlock).unwrap_err(), VaultError::WrongKey);
    }
}

#[test]
fn passcodes_and_keys_are_length_checked_and_never_printed() {
    assert_eq!(Passcode::new(b"").unwrap_err(), VaultError::PasscodeLength(0));
    assert_eq!(Passcode::new(&[b'a'; MAX_PASSCODE_BYTES + 1]).unwrap_err(), VaultError::PasscodeLength(1025));
    Passcode::new(&[b'a'; MAX_PASSCODE_BYTES]).unwrap();
    assert_eq!(PlatformKey::from_slice(&[0; 31]).unwrap_err(), VaultError::InvalidKeyLength(31));
    assert_eq!(StoreId::from_slice(&[0; 17]).unwrap_err(), VaultError::InvalidStoreIdLength(17));
    let (dk, id) = setup();
    assert_eq!(format!("{dk:?}"), "DataKey(<redacted>)");
    assert_eq!(format!("{:?}", PlatformKey::new([0xAB; 32])), "PlatformKey(<redacted>)");
    assert_eq!(format!("{:?}", Passcode::from_text("hunter2").unwrap()), "Passcode(<redacted>)");
    assert_eq!(format!("{:?}", passcode("hunter2")), "Passcode(Passcode(<redacted>))");
    let c = RecordCipher::new(&dk, id).unwrap();
    assert_eq!(format!("{c:?}"), format!("RecordCipher {{ store_id: {id:?}, .. }}"));
}

// ---------------------------------------------------------------------------------
// Records.

fn cipher() -> RecordCipher {
    let (dk, id) = setup();
    RecordCipher::new(&dk, id).unwrap()
}

#[test]
fn a_record_round_trips_with_the_exact_layout() {
    let c = cipher();
    let h = c.key_hash(b"\x02group-1");
    for len in [0usize, 1, 15, 16, 17, 1000] {
        let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let v = c.seal(&h, &pt, &mut rng(20)).unwrap();
        assert_eq!(v.len(), len + RECORD_OVERHEAD_BYTES);
        assert_eq!(&v[..2], &[0x60, 0x01]);
        assert_eq!(&c.open(&h, &v).unwrap()[..], &pt[..]);
    }
}

#[test]
fn two_seals_of_one_record_differ() {
    let c = cipher();
    let h = c.key_hash(b"k");
    let mut r = rng(21);
    assert_ne!(c.seal(&h, b"same", &mut r).unwrap(), c.seal(&h, b"same", &mut r).unwrap());
}

#[test]
fn key_hashes_are_keyed_per_store_and_distinct_per_key() {
    let mut r = rng(22);
    let dk = DataKey::generate(&mut r);
    let a = RecordCipher::new(&dk, StoreId::generate(&mut r)).unwrap();
    let b = RecordCipher::new(&dk, StoreId::generate(&mut r)).unwrap();
    assert_eq!(a.key_hash(b"\x01alice"), a.key_hash(b"\x01alice"));
    assert_ne!(a.key_hash(b"\x01alice"), a.key_hash(b"\x01bob"));
    assert_ne!(a.key_hash(b"\x01alice"), b.key_hash(b"\x01alice"));
    let other = RecordCipher::new(&DataKey::generate(&mut r), a.store_id()).unwrap();
    assert_ne!(a.key_hash(b"\x01alice"), other.key_hash(b"\x01alice"));
}

#[test]
fn a_record_moved_to_another_key_hash_fails() {
    let c = cipher();
    let (alice, bob) = (c.key_hash(b"\x01alice"), c.key_hash(b"\x01bob"));
    let v = c.seal(&alice, b"alice's session", &mut rng(23)).unwrap();
    assert_eq!(c.open(&bob, &v).unwrap_err(), VaultError::Undecryptable);
}

#[test]
fn a_record_copied_into_another_store_fails() {
    let mut r = rng(24);
    let dk = DataKey::generate(&mut r);
    let a = RecordCipher::new(&dk, StoreId::generate(&mut r)).unwrap();
    // Same data key, another store id: even a store restored with the same key refuses it.
    let b = RecordCipher::new(&dk, StoreId::generate(&mut r)).unwrap();
    let h = a.key_hash(b"\x01alice");
    let v = a.seal(&h, b"state", &mut r).unwrap();
    assert_eq!(b.open(&h, &v).unwrap_err(), VaultError::Undecryptable);
    let c = RecordCipher::new(&DataKey::generate(&mut r), a.store_id()).unwrap();
    assert_eq!(c.open(&h, &v).unwrap_err(), VaultError::Undecryptable);
}

#[test]
fn every_truncation_of_a_record_is_refused_with_a_typed_error() {
    let c = cipher();
    let h = c.key_hash(b"k");
    let v = c.seal(&h, b"twenty bytes of data", &mut rng(25)).unwrap();
    for n in 0..v.len() {
        let err = c.open(&h, &v[..n]).unwrap_err();
        if n < RECORD_OVERHEAD_BYTES {
            assert_eq!(err, VaultError::Truncated, "length {n}");
        } else {
            assert_eq!(err, VaultError::Undecryptable, "length {n}");
        }
    }
}

#[test]
fn every_bit_flip_of_a_record_is_refused_with_a_typed_error() {
    let c = cipher();
    let h = c.key_hash(b"k");
    let v = c.seal(&h, b"some record state", &mut rng(26)).unwrap();
    for i in 0..v.len() * 8 {
        let mut b = v.clone();
        b[i / 8] ^= 1 << (i % 8);
        let err = c.open(&h, &b).unwrap_err();
        match i / 8 {
            0 => assert_eq!(err, VaultError::Malformed(FormatError::WrongType { expected: 0x60, found: b[0] })),
            1 => assert_eq!(err, VaultError::Malformed(FormatError::UnsupportedVersion(b[1]))),
            _ => assert_eq!(err, VaultError::Undecryptable, "bit {i}"),
        }
    }
}

#[test]
fn records_over_the_limit_are_refused_before_any_cryptography() {
    let c = cipher();
    let h = c.key_hash(b"k");
    let big = vec![0x60u8; MAX_RECORD_BYTES + 1];
    assert_eq!(c.open(&h, &big).unwrap_err(), VaultError::RecordTooLarge(MAX_RECORD_BYTES + 1));
    let pt = vec![0u8; MAX_RECORD_BYTES - RECORD_OVERHEAD_BYTES + 1];
    assert_eq!(c.seal(&h, &pt, &mut rng(27)).unwrap_err(), VaultError::RecordTooLarge(MAX_RECORD_BYTES + 1));
    // The largest record is accepted both ways.
    let pt = vec![7u8; MAX_RECORD_BYTES - RECORD_OVERHEAD_BYTES];
    let v = c.seal(&h, &pt, &mut rng(28)).unwrap();
    assert_eq!(v.len(), MAX_RECORD_BYTES);
    assert_eq!(c.open(&h, &v).unwrap().len(), pt.len());
}

/// Measures Argon2id at the default parameters on this machine (run with
/// `cargo test -p gochat-e2ee-store --release -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check: about a second of Argon2id"]
fn measure_unlock_at_default_parameters() {
    let (dk, id) = setup();
    let pw = passcode("a six-word passphrase of moderate length");
    let start = std::time::Instant::now();
    let slot = Keyslot::wrap(&dk, &pw, Argon2Params::DEFAULT, id, &mut rng(30)).unwrap();
    let wrap = start.elapsed();
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let k = slot.unwrap(&pw).unwrap();
        best = best.min(start.elapsed());
        assert!(same(&k, &dk));
    }
    let start = std::time::Instant::now();
    Keyslot::wrap(&dk, &platform(1), Argon2Params::DEFAULT, id, &mut rng(31)).unwrap().unwrap(&platform(1)).unwrap();
    let platform_time = start.elapsed();
    println!("Argon2id DEFAULT (64 MiB, t=3, p=1): wrap {wrap:?}, unlock best of 3 {best:?}; platform-key wrap+unwrap {platform_time:?}");
}
