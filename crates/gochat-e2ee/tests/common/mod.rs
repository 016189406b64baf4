//! Helpers shared by the integration test suites.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod net;

use gochat_e2ee::{Device, ErrorCode, PreKeyBundle, SnapshotKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A fixed "now" for every test (seconds since the Unix epoch).
pub const NOW: u64 = 1_700_000_000;
/// Type byte of a prekey message.
pub const PREKEY_MESSAGE: u8 = 0x03;
/// Type byte of a ratchet message.
pub const RATCHET_MESSAGE: u8 = 0x04;

/// A deterministic RNG.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A device with `prekeys` one-time X25519 and ML-KEM prekeys.
pub fn device(name: &str, prekeys: usize, rng: &mut ChaCha20Rng) -> Device {
    let mut d = Device::new(name, NOW, rng);
    d.account_mut().generate_one_time_prekeys(prekeys, rng).unwrap();
    d.account_mut().generate_pq_prekeys(prekeys, NOW, rng).unwrap();
    d
}

/// A fresh bundle of `d`, round-tripped through its encoding as a server would.
pub fn bundle(d: &mut Device) -> PreKeyBundle {
    let b = d.next_bundle().unwrap();
    PreKeyBundle::from_bytes(&b.to_bytes()).unwrap()
}

/// Alice (who names her peer "bob") and Bob (who names his peer "alice"), with a
/// session started by Alice and answered by Bob, so both sides send ratchet messages.
pub struct Pair {
    pub alice: Device,
    pub bob: Device,
    pub rng: ChaCha20Rng,
}

/// Sets up [`Pair`] deterministically from `seed`.
pub fn pair(seed: u64) -> Pair {
    let mut rng = rng(seed);
    let mut alice = device("alice", 2, &mut rng);
    let mut bob = device("bob", 2, &mut rng);
    let b = bundle(&mut bob);
    let _ = alice.initiate("bob", &b, &mut rng).unwrap();
    let m = alice.encrypt("bob", b"hello bob").unwrap();
    assert_eq!(m[0], PREKEY_MESSAGE);
    assert_eq!(bob.decrypt("alice", &m, &mut rng).unwrap().plaintext, b"hello bob");
    let r = bob.encrypt("alice", b"hello alice").unwrap();
    assert_eq!(r[0], RATCHET_MESSAGE);
    assert_eq!(alice.decrypt("bob", &r, &mut rng).unwrap().plaintext, b"hello alice");
    Pair { alice, bob, rng }
}

/// Sends `text` from `from` to `to` (named `to_name` by `from`, `from_name` by `to`)
/// and checks it decrypts.
pub fn exchange(
    from: &mut Device,
    to_name: &str,
    to: &mut Device,
    from_name: &str,
    text: &[u8],
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let m = from.encrypt(to_name, text).unwrap();
    assert_eq!(to.decrypt(from_name, &m, rng).unwrap().plaintext, text);
    m
}

/// Decrypting `msg` on `d` must fail with `code` and leave `d` byte-for-byte unchanged.
pub fn assert_refused(d: &mut Device, peer: &str, msg: &[u8], rng: &mut ChaCha20Rng, code: ErrorCode) {
    let before = d.state_digest();
    let err = d.decrypt(peer, msg, rng).expect_err("decrypt must fail");
    assert_eq!(err.code(), code, "unexpected error: {err}");
    assert_eq!(d.state_digest(), before, "state changed on a refused decrypt ({err})");
}

/// Decrypting `msg` on `d` must fail (with any code, returned) and leave `d` unchanged.
pub fn refuse_any(d: &mut Device, peer: &str, msg: &[u8], rng: &mut ChaCha20Rng) -> ErrorCode {
    let before = d.state_digest();
    let err = d.decrypt(peer, msg, rng).expect_err("decrypt must fail");
    assert_eq!(d.state_digest(), before, "state changed on a refused decrypt ({err})");
    err.code()
}

/// A copy of `bytes` with bit `bit` flipped.
pub fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[bit / 8] ^= 1 << (bit % 8);
    b
}

/// A snapshot key.
pub fn snapshot_key(byte: u8) -> SnapshotKey {
    SnapshotKey::new([byte; 32])
}

/// The ratchet key carried in a ratchet message's header.
pub fn ratchet_key(ratchet_message: &[u8]) -> [u8; 32] {
    assert_eq!(ratchet_message[0], RATCHET_MESSAGE);
    ratchet_message[2..34].try_into().unwrap()
}

/// Round-trips a device through an encrypted snapshot. The copy holds the same
/// identity, peers and pins; its sessions start a new sender epoch (so the state digest
/// differs), and exporting the copy again is stable up to the next epoch.
pub fn reload(d: &Device, rng: &mut ChaCha20Rng) -> Device {
    let key = snapshot_key(0x5a);
    let snap = d.export(&key, rng).expect("export");
    let back = Device::import(&key, &snap).unwrap();
    assert_eq!(back.identity(), d.identity());
    assert!(back.peers().eq(d.peers()));
    back
}

/// An explicit copy of a device for tests that explore two futures of one state
/// (`Device` is not `Clone`): an export/import round trip, so the copy is a restored
/// device with a new sender epoch.
pub fn fork(d: &Device, rng: &mut ChaCha20Rng) -> Device {
    let key = snapshot_key(0x5b);
    Device::import(&key, &d.export(&key, rng).expect("export")).unwrap()
}

/// Fisher-Yates shuffle driven by `rng`.
pub fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    use rand_core::Rng;
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// `n` random bytes.
pub fn random_bytes(n: usize, rng: &mut ChaCha20Rng) -> Vec<u8> {
    use rand_core::Rng;
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// Byte offsets of the fields of a prekey message (type 0x03).
#[derive(Debug, Clone, Copy)]
pub struct PreKeyLayout {
    pub identity: usize,
    pub signed_prekey_id: usize,
    pub one_time_flag: usize,
    pub one_time_prekey_id: Option<usize>,
    pub pq_prekey_id: usize,
    pub base_key: usize,
    pub kem_ciphertext: usize,
    pub ratchet_header: usize,
    pub ciphertext: usize,
}

/// Parses the layout of a prekey message (see `docs/protocol.md`).
pub fn prekey_layout(m: &[u8]) -> PreKeyLayout {
    assert_eq!(m[0], PREKEY_MESSAGE);
    let identity = 2;
    let signed_prekey_id = identity + 66;
    let one_time_flag = signed_prekey_id + 4;
    let (one_time_prekey_id, pq_prekey_id) = match m[one_time_flag] {
        0 => (None, one_time_flag + 1),
        1 => (Some(one_time_flag + 1), one_time_flag + 5),
        f => panic!("bad flag {f}"),
    };
    let base_key = pq_prekey_id + 4;
    let kem_ciphertext = base_key + 32;
    let ratchet_header = kem_ciphertext + 1568;
    PreKeyLayout {
        identity,
        signed_prekey_id,
        one_time_flag,
        one_time_prekey_id,
        pq_prekey_id,
        base_key,
        kem_ciphertext,
        ratchet_header,
        ciphertext: ratchet_header + 40,
    }
}

/// The base key of a prekey message.
pub fn base_key(prekey_message: &[u8]) -> [u8; 32] {
    let l = prekey_layout(prekey_message);
    prekey_message[l.base_key..l.base_key + 32].try_into().unwrap()
}

/// The ratchet header (ratchet key, counter) of any 1:1 message.
pub fn header(m: &[u8]) -> ([u8; 32], u32) {
    let off = match m[0] {
        PREKEY_MESSAGE => prekey_layout(m).ratchet_header,
        RATCHET_MESSAGE => 2,
        t => panic!("not a message: {t}"),
    };
    let key = m[off..off + 32].try_into().unwrap();
    let counter = u32::from_be_bytes(m[off + 36..off + 40].try_into().unwrap());
    (key, counter)
}

/// Writes a big-endian u32 at `off`.
pub fn put_u32(m: &mut [u8], off: usize, v: u32) {
    m[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Decrypting each of `msgs` on `d` must fail with `code`; `d` must be unchanged after
/// all of them (one digest for the batch, as digests of large states are slow in debug).
pub fn assert_all_refused(d: &mut Device, peer: &str, msgs: &[Vec<u8>], rng: &mut ChaCha20Rng, code: ErrorCode) {
    let before = d.state_digest();
    for (i, m) in msgs.iter().enumerate() {
        let err = d.decrypt(peer, m, rng).expect_err("decrypt must fail");
        assert_eq!(err.code(), code, "message {i}: unexpected error: {err}");
    }
    assert_eq!(d.state_digest(), before, "state changed on a refused decrypt");
}
