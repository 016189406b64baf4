//! GoChat E2EE vs vodozemac (Olm, `SessionConfig::version_2()`), side by side, plus the
//! raw primitives from which `docs/benchmarks.md` computes the "floor" of session setup.
//!
//! Run: `cargo bench -p gochat-e2ee-benches -- --warm-up-time 1 --measurement-time 3`.
//! Groups are named `<operation>/<implementation>`; the ciphertext overheads are printed
//! to stdout (they are sizes, not timings). Batched benchmarks return their state so
//! that dropping it (zeroizing a cloned device) is not timed.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gochat_e2ee::{Device, PreKeyBundle, SnapshotKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig, SessionPickle};

const NOW: u64 = 1_700_000_000;
const MSG: [u8; 100] = [0x61; 100];
const PICKLE_KEY: [u8; 32] = [7; 32];

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(42)
}

// ---------------------------------------------------------------- fixtures (ours)

/// Bob with one one-time X25519 and one ML-KEM prekey, and Alice.
fn ours_devices(r: &mut ChaCha20Rng) -> (Device, Device) {
    let alice = Device::new("alice", NOW, r);
    let mut bob = Device::new("bob", NOW, r);
    bob.account_mut().generate_one_time_prekeys(1, r).unwrap();
    bob.account_mut().generate_pq_prekeys(1, NOW, r).unwrap();
    (alice, bob)
}

/// An established session in which Bob already knows Alice's current sending chain, so
/// Alice → Bob messages need no DH step.
fn ours_established(r: &mut ChaCha20Rng) -> (Device, Device) {
    let (mut alice, mut bob) = ours_devices(r);
    let bundle = bob.next_bundle().unwrap();
    let _ = alice.initiate("bob", &bundle, r).unwrap();
    let m = alice.encrypt("bob", b"hi").unwrap();
    let _ = bob.decrypt("alice", &m, r).unwrap();
    let m = bob.encrypt("alice", b"hi").unwrap();
    let _ = alice.decrypt("bob", &m, r).unwrap();
    let m = alice.encrypt("bob", b"hi").unwrap();
    let _ = bob.decrypt("alice", &m, r).unwrap();
    (alice, bob)
}

// ---------------------------------------------------------------- fixtures (vodozemac)

fn vz_clone(s: &Session) -> Session {
    Session::from_pickle(s.pickle())
}

fn vz_otk(bob: &mut Account) -> vodozemac::Curve25519PublicKey {
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    otk
}

fn vz_prekey(m: OlmMessage) -> vodozemac::olm::PreKeyMessage {
    match m {
        OlmMessage::PreKey(p) => p,
        OlmMessage::Normal(_) => panic!("expected a prekey message"),
    }
}

fn vz_established() -> (Session, Session) {
    let alice = Account::new();
    let mut bob = Account::new();
    let otk = vz_otk(&mut bob);
    let mut a = alice.create_outbound_session(SessionConfig::version_2(), bob.curve25519_key(), otk).unwrap();
    let m = vz_prekey(a.encrypt(b"hi").unwrap());
    let mut b = bob.create_inbound_session(SessionConfig::version_2(), alice.curve25519_key(), &m).unwrap().session;
    let m = b.encrypt(b"hi").unwrap();
    a.decrypt(&m).unwrap();
    let m = a.encrypt(b"hi").unwrap();
    b.decrypt(&m).unwrap();
    (a, b)
}

// ---------------------------------------------------------------- primitives

fn primitives(c: &mut Criterion) {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
    use ml_kem::ml_kem_1024::{DecapsulationKey, EncapsulationKey};
    use ml_kem::{Decapsulate, Encapsulate, KeyExport, Seed};
    use x25519_dalek::{PublicKey, StaticSecret};

    let r = &mut rng();
    let mut g = c.benchmark_group("primitive");
    let a = StaticSecret::from([1u8; 32]);
    let b_pub = PublicKey::from(&StaticSecret::from([2u8; 32]));
    g.bench_function("x25519_dh", |bn| bn.iter(|| black_box(&a).diffie_hellman(black_box(&b_pub))));
    g.bench_function("x25519_public_from_secret", |bn| bn.iter(|| PublicKey::from(black_box(&a))));

    let sk = SigningKey::from_bytes(&[3u8; 32]);
    let vk_bytes = sk.verifying_key().to_bytes();
    let data = vec![0x55u8; 1700]; // about the size of the signed ML-KEM prekey data
    let sig = sk.sign(&data);
    g.bench_function("ed25519_sign_1700B", |bn| bn.iter(|| sk.sign(black_box(&data))));
    g.bench_function("ed25519_decompress_key", |bn| {
        bn.iter(|| VerifyingKey::from_bytes(black_box(&vk_bytes)).unwrap())
    });
    g.bench_function("ed25519_verify_strict_1700B_with_decompress", |bn| {
        bn.iter(|| {
            VerifyingKey::from_bytes(black_box(&vk_bytes)).unwrap().verify_strict(black_box(&data), &sig).unwrap()
        })
    });
    let short = [0x55u8; 150];
    let sig_short = sk.sign(&short);
    g.bench_function("ed25519_verify_strict_150B_with_decompress", |bn| {
        bn.iter(|| {
            VerifyingKey::from_bytes(black_box(&vk_bytes))
                .unwrap()
                .verify_strict(black_box(&short), &sig_short)
                .unwrap()
        })
    });

    let mut seed = [0u8; 64];
    r.fill_bytes(&mut seed);
    g.bench_function("mlkem1024_keygen_from_seed", |bn| {
        bn.iter(|| DecapsulationKey::from_seed(Seed::from(black_box(seed))))
    });
    let dk = DecapsulationKey::from_seed(Seed::from(seed));
    let ek_bytes = dk.encapsulation_key().to_bytes();
    g.bench_function("mlkem1024_ek_check", |bn| {
        bn.iter(|| {
            let arr = ml_kem::array::Array::try_from(black_box(&ek_bytes[..])).unwrap();
            EncapsulationKey::new(&arr).unwrap()
        })
    });
    let ek = EncapsulationKey::new(&ek_bytes).unwrap();
    g.bench_function("mlkem1024_encaps", |bn| bn.iter(|| ek.encapsulate_with_rng(r)));
    let (ct, _) = ek.encapsulate_with_rng(r);
    g.bench_function("mlkem1024_decaps", |bn| bn.iter(|| dk.decapsulate(black_box(&ct))));

    let ikm = [9u8; 160];
    g.bench_function("hkdf_sha256_160B_in_64B_out", |bn| {
        bn.iter(|| {
            let mut out = [0u8; 64];
            hkdf::Hkdf::<sha2::Sha256>::new(Some(&[0u8; 32]), black_box(&ikm)).expand(b"info", &mut out).unwrap();
            out
        })
    });
    let key = [4u8; 32];
    let nonce = [5u8; 12];
    let aad = [6u8; 174];
    let pt = [7u8; 128];
    let cipher = aes_gcm::Aes256Gcm::new(&key.into());
    g.bench_function("aes256gcm_seal_128B", |bn| {
        bn.iter(|| {
            aes_gcm::Aes256Gcm::new(&black_box(key).into())
                .encrypt(&nonce.into(), Payload { msg: &pt, aad: &aad })
                .unwrap()
        })
    });
    let ct = cipher.encrypt(&nonce.into(), Payload { msg: &pt, aad: &aad }).unwrap();
    g.bench_function("aes256gcm_open_128B", |bn| {
        bn.iter(|| {
            aes_gcm::Aes256Gcm::new(&black_box(key).into())
                .decrypt(&nonce.into(), Payload { msg: &ct, aad: &aad })
                .unwrap()
        })
    });
    g.bench_function("sha256_200B", |bn| {
        use sha2::Digest;
        bn.iter(|| sha2::Sha256::digest(black_box(&aad)))
    });
    g.finish();
}

// ---------------------------------------------------------------- comparisons

fn account_creation(c: &mut Criterion) {
    let mut g = c.benchmark_group("account_creation");
    let r = &mut rng();
    g.bench_function("ours/device_new", |b| b.iter(|| Device::new("alice", NOW, r)));
    g.bench_function("vodozemac/account_new", |b| b.iter(Account::new));
    let dev = Device::new("alice", NOW, r);
    g.bench_function("ours/one_time_x25519_prekey", |b| {
        b.iter_batched(
            || dev.fork_for_testing(),
            |mut d| {
                d.account_mut().generate_one_time_prekeys(1, r).unwrap();
                d
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("ours/one_time_mlkem_prekey", |b| {
        b.iter_batched(
            || dev.fork_for_testing(),
            |mut d| {
                d.account_mut().generate_pq_prekeys(1, NOW, r).unwrap();
                d
            },
            BatchSize::SmallInput,
        )
    });
    let acc = Account::new();
    g.bench_function("vodozemac/one_time_key", |b| {
        b.iter_batched(
            || Account::from_pickle(acc.pickle()),
            |mut a| {
                a.generate_one_time_keys(1);
                a
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bundles(c: &mut Criterion) {
    let mut g = c.benchmark_group("prekey_bundle");
    let r = &mut rng();
    let (_, bob) = ours_devices(r);
    g.bench_function("ours/create_next_bundle_and_encode", |b| {
        b.iter_batched(
            || bob.fork_for_testing(),
            |mut d| (d.next_bundle().unwrap().to_bytes(), d),
            BatchSize::SmallInput,
        )
    });
    let bytes = bob.fork_for_testing().next_bundle().unwrap().to_bytes();
    g.bench_function("ours/verify_from_bytes", |b| b.iter(|| PreKeyBundle::from_bytes(black_box(&bytes)).unwrap()));
    // Olm has no bundle: a Matrix client signs each one-time key with the device's
    // Ed25519 key and the peer verifies that one signature.
    let acc = Account::new();
    let otk_json = br#"{"key":"aGVsbG8gd29ybGQgdGhpcyBpcyBhIGN1cnZlMjU1MTkga2V5"}"#;
    g.bench_function("vodozemac/sign_one_time_key", |b| b.iter(|| acc.sign(black_box(otk_json))));
    let sig = acc.sign(otk_json);
    let ed = acc.ed25519_key();
    g.bench_function("vodozemac/verify_one_time_key", |b| b.iter(|| ed.verify(black_box(otk_json), &sig).unwrap()));
    g.finish();
}

/// The primitive operations session setup cannot avoid, run back to back next to the
/// real thing (so load changes on a shared machine affect both alike). `pq = false` gives
/// the X25519-only floor: no ML-KEM key check, encapsulation or decapsulation, and no
/// signature on an ML-KEM prekey.
struct Floor {
    ik_a: x25519_dalek::StaticSecret,
    ik_b: x25519_dalek::PublicKey,
    spk: x25519_dalek::PublicKey,
    opk: x25519_dalek::PublicKey,
    spk_secret: x25519_dalek::StaticSecret,
    vk: [u8; 32],
    signed: Vec<(Vec<u8>, ed25519_dalek::Signature)>,
    ek_bytes: Vec<u8>,
    dk: ml_kem::ml_kem_1024::DecapsulationKey,
    ct: ml_kem::ml_kem_1024::Ciphertext,
}

impl Floor {
    fn new(r: &mut ChaCha20Rng) -> Self {
        use ed25519_dalek::Signer;
        use ml_kem::{Encapsulate, KeyExport};
        let x = |r: &mut ChaCha20Rng| {
            let mut b = [0u8; 32];
            r.fill_bytes(&mut b);
            x25519_dalek::StaticSecret::from(b)
        };
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
        // Signed data sizes of the signed prekey, one-time prekey and ML-KEM prekey.
        let signed = [110usize, 102, 1647]
            .iter()
            .map(|n| {
                let d = vec![0x5a; *n];
                let sig = sk.sign(&d);
                (d, sig)
            })
            .collect();
        let mut seed = [0u8; 64];
        r.fill_bytes(&mut seed);
        let dk = ml_kem::ml_kem_1024::DecapsulationKey::from_seed(ml_kem::Seed::from(seed));
        let ek = dk.encapsulation_key().clone();
        let (ct, _) = ek.encapsulate_with_rng(r);
        let spk_secret = x(r);
        Floor {
            ik_a: x(r),
            ik_b: (&x(r)).into(),
            spk: (&spk_secret).into(),
            opk: (&x(r)).into(),
            spk_secret,
            vk: sk.verifying_key().to_bytes(),
            signed,
            ek_bytes: ek.to_bytes().to_vec(),
            dk,
            ct,
        }
    }

    fn kdf(ikm: &[u8], out: &mut [u8]) {
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&[0u8; 32]), ikm).expand(b"x", out).unwrap();
    }

    fn first_message(mk_chain: &[u8; 32], open: Option<&[u8]>) -> Vec<u8> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        use hmac::Mac;
        let mut m = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(mk_chain).unwrap();
        m.update(&[1]);
        let mk = m.finalize().into_bytes();
        let mut n = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(mk_chain).unwrap();
        n.update(&[2]);
        black_box(n.finalize().into_bytes());
        let mut okm = [0u8; 44];
        Self::kdf(&mk, &mut okm);
        let key: [u8; 32] = okm[..32].try_into().unwrap();
        let nonce: [u8; 12] = okm[32..].try_into().unwrap();
        let c = aes_gcm::Aes256Gcm::new(&key.into());
        match open {
            None => c.encrypt(&nonce.into(), Payload { msg: &[0u8; 128], aad: &[0u8; 174] }).unwrap(),
            Some(ct) => c.decrypt(&nonce.into(), Payload { msg: ct, aad: &[0u8; 174] }).unwrap_or_default(),
        }
    }

    fn keygen(r: &mut ChaCha20Rng) -> (x25519_dalek::StaticSecret, x25519_dalek::PublicKey) {
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        let s = x25519_dalek::StaticSecret::from(b);
        let p = (&s).into();
        (s, p)
    }

    /// Verify the bundle, PQXDH, ratchet initialisation, first encrypt.
    fn initiator(&self, pq: bool, r: &mut ChaCha20Rng) -> Vec<u8> {
        use ml_kem::Encapsulate;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.vk).unwrap();
        for (d, sig) in self.signed.iter().take(if pq { 3 } else { 2 }) {
            vk.verify_strict(d, sig).unwrap();
        }
        let mut ikm = vec![0xffu8; 32];
        let (ek, _ek_pub) = Self::keygen(r);
        ikm.extend_from_slice(self.ik_a.diffie_hellman(&self.spk).as_bytes());
        ikm.extend_from_slice(ek.diffie_hellman(&self.ik_b).as_bytes());
        ikm.extend_from_slice(ek.diffie_hellman(&self.spk).as_bytes());
        ikm.extend_from_slice(ek.diffie_hellman(&self.opk).as_bytes());
        if pq {
            let arr = ml_kem::array::Array::try_from(&self.ek_bytes[..]).unwrap();
            let ek = ml_kem::ml_kem_1024::EncapsulationKey::new(&arr).unwrap();
            let (_ct, ss) = ek.encapsulate_with_rng(r);
            ikm.extend_from_slice(ss.as_slice());
        }
        let mut sk = [0u8; 32];
        Self::kdf(&ikm, &mut sk);
        let (rk, _rk_pub) = Self::keygen(r);
        let dh = rk.diffie_hellman(&self.spk);
        let mut okm = [0u8; 64];
        Self::kdf(dh.as_bytes(), &mut okm);
        Self::first_message(&okm[32..].try_into().unwrap(), None)
    }

    /// PQXDH, DH ratchet step (receive + new sending chain), first decrypt.
    fn responder(&self, pq: bool, r: &mut ChaCha20Rng) -> Vec<u8> {
        use ml_kem::Decapsulate;
        let base: x25519_dalek::PublicKey = self.opk;
        let mut ikm = vec![0xffu8; 32];
        for _ in 0..4 {
            ikm.extend_from_slice(self.spk_secret.diffie_hellman(&base).as_bytes());
        }
        if pq {
            ikm.extend_from_slice(self.dk.decapsulate(&self.ct).as_slice());
        }
        let mut sk = [0u8; 32];
        Self::kdf(&ikm, &mut sk);
        let recv = self.spk_secret.diffie_hellman(&base);
        let mut okm = [0u8; 64];
        Self::kdf(recv.as_bytes(), &mut okm);
        let (ours, _ours_pub) = Self::keygen(r);
        let send = ours.diffie_hellman(&base);
        Self::kdf(send.as_bytes(), &mut okm);
        Self::first_message(&okm[32..].try_into().unwrap(), Some(&[0u8; 144]))
    }
}

fn session_setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_setup");
    let r = &mut rng();
    let floor = Floor::new(r);
    for pq in [true, false] {
        let name = if pq { "x25519+mlkem1024" } else { "x25519_only" };
        g.bench_function(format!("floor/initiator_{name}"), |b| b.iter(|| floor.initiator(pq, r)));
        g.bench_function(format!("floor/responder_{name}"), |b| b.iter(|| floor.responder(pq, r)));
    }
    let (alice, mut bob) = ours_devices(r);
    let bundle = bob.next_bundle().unwrap();
    let bundle_bytes = bundle.to_bytes();
    g.bench_function("ours/initiator_verify_bundle+pqxdh+first_encrypt", |b| {
        b.iter_batched(
            || alice.fork_for_testing(),
            |mut a| {
                let bundle = PreKeyBundle::from_bytes(&bundle_bytes).unwrap();
                let _ = a.initiate("bob", &bundle, r).unwrap();
                (a.encrypt("bob", &MSG).unwrap(), a)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("ours/initiator_pqxdh_only(initiate)", |b| {
        b.iter_batched(
            || alice.fork_for_testing(),
            |mut a| {
                let _ = a.initiate("bob", &bundle, r).unwrap();
                a
            },
            BatchSize::SmallInput,
        )
    });
    let mut a = alice.fork_for_testing();
    let _ = a.initiate("bob", &bundle, r).unwrap();
    let first = a.encrypt("bob", &MSG).unwrap();
    g.bench_function("ours/responder_first_decrypt", |b| {
        b.iter_batched(
            || bob.fork_for_testing(),
            |mut d| (d.decrypt("alice", &first, r).unwrap().plaintext, d),
            BatchSize::SmallInput,
        )
    });

    let va = Account::new();
    let mut vb = Account::new();
    let otk = vz_otk(&mut vb);
    let vb_key = vb.curve25519_key();
    g.bench_function("vodozemac/initiator_outbound_session+first_encrypt", |b| {
        b.iter(|| {
            let mut s = va.create_outbound_session(SessionConfig::version_2(), vb_key, otk).unwrap();
            s.encrypt(MSG).unwrap()
        })
    });
    let mut s = va.create_outbound_session(SessionConfig::version_2(), vb_key, otk).unwrap();
    let pk = vz_prekey(s.encrypt(MSG).unwrap());
    let va_key = va.curve25519_key();
    g.bench_function("vodozemac/responder_inbound_session(first_decrypt)", |b| {
        b.iter_batched(
            || Account::from_pickle(vb.pickle()),
            |mut acc| (acc.create_inbound_session(SessionConfig::version_2(), va_key, &pk).unwrap(), acc),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn steady_state(c: &mut Criterion) {
    let mut g = c.benchmark_group("steady_state_encrypt+decrypt_100B");
    let r = &mut rng();
    let (mut alice, mut bob) = ours_established(r);
    g.bench_function("ours", |b| {
        b.iter(|| {
            let m = alice.encrypt("bob", black_box(&MSG)).unwrap();
            bob.decrypt("alice", &m, r).unwrap().plaintext
        })
    });
    let (mut a, mut b2) = vz_established();
    g.bench_function("vodozemac", |b| {
        b.iter(|| {
            let m = a.encrypt(black_box(MSG)).unwrap();
            b2.decrypt(&m).unwrap()
        })
    });
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong_round_trip_100B(2_messages,2_dh_steps)");
    let r = &mut rng();
    let (mut alice, mut bob) = ours_established(r);
    g.bench_function("ours", |b| {
        b.iter(|| {
            let m = alice.encrypt("bob", &MSG).unwrap();
            let _ = bob.decrypt("alice", &m, r).unwrap();
            let m = bob.encrypt("alice", &MSG).unwrap();
            alice.decrypt("bob", &m, r).unwrap().plaintext
        })
    });
    let (mut a, mut bs) = vz_established();
    g.bench_function("vodozemac", |b| {
        b.iter(|| {
            let m = a.encrypt(MSG).unwrap();
            bs.decrypt(&m).unwrap();
            let m = bs.encrypt(MSG).unwrap();
            a.decrypt(&m).unwrap()
        })
    });
    g.finish();
}

fn skip_1000(c: &mut Criterion) {
    let mut g = c.benchmark_group("decrypt_after_skipping_1000");
    let r = &mut rng();
    let (mut alice, bob) = ours_established(r);
    for _ in 0..1000 {
        alice.encrypt("bob", &MSG).unwrap();
    }
    let last = alice.encrypt("bob", &MSG).unwrap();
    g.bench_function("ours", |b| {
        b.iter_batched(
            || bob.fork_for_testing(),
            |mut d| (d.decrypt("alice", &last, r).unwrap().plaintext, d),
            BatchSize::SmallInput,
        )
    });
    let (mut a, bs) = vz_established();
    for _ in 0..1000 {
        a.encrypt(MSG).unwrap();
    }
    let last = a.encrypt(MSG).unwrap();
    g.bench_function("vodozemac", |b| {
        b.iter_batched(|| vz_clone(&bs), |mut s| (s.decrypt(&last).unwrap(), s), BatchSize::SmallInput)
    });
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_export+import");
    let r = &mut rng();
    let (_, bob) = ours_established(r);
    let key = SnapshotKey::new([7; 32]);
    g.bench_function("ours/device(account+prekeys+session)", |b| {
        b.iter(|| Device::import(&key, &bob.export(&key, r).expect("export")).unwrap())
    });
    let mut target = bob.fork_for_testing();
    g.bench_function("ours/session_record", |b| {
        b.iter(|| {
            let s = bob.export_session("alice", &key, r).unwrap();
            target.import_session("alice", &key, &s).unwrap()
        })
    });
    let (_, bs) = vz_established();
    g.bench_function("vodozemac/session_pickle", |b| {
        b.iter(|| {
            let p = bs.pickle().encrypt(&PICKLE_KEY);
            Session::from_pickle(SessionPickle::from_encrypted(&p, &PICKLE_KEY).unwrap())
        })
    });
    let acc = Account::new();
    g.bench_function("vodozemac/account_pickle+session_pickle", |b| {
        b.iter(|| {
            let p = acc.pickle().encrypt(&PICKLE_KEY);
            let s = bs.pickle().encrypt(&PICKLE_KEY);
            let a = Account::from_pickle(vodozemac::olm::AccountPickle::from_encrypted(&p, &PICKLE_KEY).unwrap());
            (a, Session::from_pickle(SessionPickle::from_encrypted(&s, &PICKLE_KEY).unwrap()))
        })
    });
    g.finish();
}

fn overhead(_c: &mut Criterion) {
    let r = &mut rng();
    let (mut alice, mut bob) = ours_devices(r);
    let bundle = bob.next_bundle().unwrap();
    let _ = alice.initiate("bob", &bundle, r).unwrap();
    let pre = alice.encrypt("bob", &MSG).unwrap();
    let (mut alice, _) = ours_established(r);
    let norm = alice.encrypt("bob", &MSG).unwrap();

    let va = Account::new();
    let mut vb = Account::new();
    let otk = vz_otk(&mut vb);
    let mut s = va.create_outbound_session(SessionConfig::version_2(), vb.curve25519_key(), otk).unwrap();
    let vpre = s.encrypt(MSG).unwrap().to_parts().1;
    let (mut a, _) = vz_established();
    let vnorm = a.encrypt(MSG).unwrap().to_parts().1;
    println!("ciphertext overhead for a 100-byte plaintext (bytes on the wire minus 100):");
    println!("  ours      ratchet message {:5}  prekey message {:5}", norm.len() - 100, pre.len() - 100);
    println!(
        "  vodozemac normal message  {:5}  prekey message {:5}  (binary, before base64)",
        vnorm.len() - 100,
        vpre.len() - 100
    );
}

/// The two ways issue 8 allowed to make message-key re-use after a restore harmless,
/// on one 1:1 message body (100 B padded to 128 B): (a) AES-256-GCM-SIV under the
/// HKDF-expanded key (what v2 uses), (b) AES-256-GCM with a fresh 16-byte random salt in
/// the HKDF (needs an RNG in every encrypt). Both include the HKDF expansion.
fn aead_choice(c: &mut Criterion) {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use rand_core::Rng as _;
    let mut g = c.benchmark_group("message_aead_seal+open_128B");
    let mk = [7u8; 32];
    let body = [0x41u8; 128];
    let aad = [0x42u8; 132 + 46];
    let expand = |salt: &[u8]| {
        let mut okm = [0u8; 44];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &mk)
            .expand(b"GoChat-E2EE v2 1:1 message keys\0\0\0\0", &mut okm)
            .unwrap();
        okm
    };
    g.bench_function("gcm_siv_deterministic", |b| {
        b.iter(|| {
            let okm = expand(&[0u8; 32]);
            let key: [u8; 32] = okm[..32].try_into().unwrap();
            let nonce: [u8; 12] = okm[32..].try_into().unwrap();
            let c = aes_gcm_siv::Aes256GcmSiv::new(&key.into());
            let ct = c.encrypt(&nonce.into(), Payload { msg: black_box(&body), aad: &aad }).unwrap();
            c.decrypt(&nonce.into(), Payload { msg: &ct, aad: &aad }).unwrap()
        })
    });
    let r = &mut rng();
    g.bench_function("gcm_random_salt", |b| {
        b.iter(|| {
            let mut salt = [0u8; 16];
            r.fill_bytes(&mut salt);
            let okm = expand(&salt);
            let key: [u8; 32] = okm[..32].try_into().unwrap();
            let nonce: [u8; 12] = okm[32..].try_into().unwrap();
            let c = aes_gcm::Aes256Gcm::new(&key.into());
            let ct = c.encrypt(&nonce.into(), Payload { msg: black_box(&body), aad: &aad }).unwrap();
            c.decrypt(&nonce.into(), Payload { msg: &ct, aad: &aad }).unwrap()
        })
    });
    g.finish();
}

/// Issue 8, item 5: the worst-case hostile ratchet message (new ratchet key, counter at
/// `MAX_FORWARD_JUMP`, bad tag) against a record with 1 current + 40 archived sessions,
/// next to the same message against a record with one session (the target is <= 2x).
fn hostile_message(c: &mut Criterion) {
    use gochat_e2ee::limits::{MAX_ARCHIVED_SESSIONS, MAX_FORWARD_JUMP};
    let mut g = c.benchmark_group("worst_case_hostile_message");
    g.sample_size(10);
    let r = &mut rng();
    for sessions in [1usize, 1 + MAX_ARCHIVED_SESSIONS] {
        let mut alice = Device::new("alice", NOW, r);
        let mut bob = Device::new("bob", NOW, r);
        let b = bob.next_bundle().unwrap();
        for _ in 0..sessions {
            let _ = alice.initiate("bob", &b, r).unwrap();
            let m = alice.encrypt("bob", b"x").unwrap();
            let _ = bob.decrypt("alice", &m, r).unwrap();
        }
        let mut forged = bob.encrypt("alice", b"y").unwrap();
        let fresh = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([9u8; 32]));
        forged[2..34].copy_from_slice(fresh.as_bytes());
        forged[38..42].copy_from_slice(&MAX_FORWARD_JUMP.to_be_bytes());
        g.bench_function(format!("{sessions}_sessions"), |bn| {
            bn.iter(|| bob.decrypt("alice", black_box(&forged), r).unwrap_err())
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    aead_choice,
    hostile_message,
    overhead,
    primitives,
    account_creation,
    bundles,
    session_setup,
    steady_state,
    ping_pong,
    skip_1000,
    snapshots
);
criterion_main!(benches);
