//! Standard test vectors for the primitives, called the way the library calls them:
//! RFC 7748 (X25519 via `StaticSecret`), RFC 8032 (Ed25519, verified with
//! `verify_strict`), RFC 5869 (HKDF-SHA256 with an explicit salt), and the Wycheproof
//! suites for X25519, Ed25519, AES-256-GCM (96-bit nonce, 128-bit tag) and HKDF-SHA256.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha256;
use wycheproof::TestResult;
use x25519_dalek::{PublicKey, StaticSecret};

fn h(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

fn x25519(k: [u8; 32], u: [u8; 32]) -> [u8; 32] {
    StaticSecret::from(k).diffie_hellman(&PublicKey::from(u)).to_bytes()
}

#[test]
fn rfc7748_section_5_2_x25519() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (k, u, out) in cases {
        assert_eq!(x25519(h32(k), h32(u)), h32(out));
    }
    // The iterated test, 1 and 1000 iterations (k = u = 9 initially).
    let mut k = [0u8; 32];
    k[0] = 9;
    let mut u = k;
    for i in 1..=1000 {
        let next = x25519(k, u);
        u = k;
        k = next;
        if i == 1 {
            assert_eq!(k, h32("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"));
        }
    }
    assert_eq!(k, h32("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"));
}

#[test]
fn rfc7748_section_6_1_diffie_hellman() {
    let a = h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let b = h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let a_pub = PublicKey::from(&StaticSecret::from(a)).to_bytes();
    let b_pub = PublicKey::from(&StaticSecret::from(b)).to_bytes();
    assert_eq!(a_pub, h32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    assert_eq!(b_pub, h32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    let k = h32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(x25519(a, b_pub), k);
    assert_eq!(x25519(b, a_pub), k);
}

#[test]
fn rfc8032_ed25519_tests_1_to_3() {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (sk, pk, msg, sig) in cases {
        let signing = SigningKey::from_bytes(&h32(sk));
        assert_eq!(signing.verifying_key().to_bytes(), h32(pk));
        let msg = h(msg);
        let s = signing.sign(&msg);
        assert_eq!(s.to_bytes().to_vec(), h(sig));
        let vk = VerifyingKey::from_bytes(&h32(pk)).unwrap();
        assert!(vk.verify_strict(&msg, &s).is_ok());
        let mut wrong = msg.clone();
        wrong.push(0);
        assert!(vk.verify_strict(&wrong, &s).is_err());
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out).ok()?;
    Some(out)
}

#[test]
fn rfc5869_hkdf_sha256_cases_1_to_3() {
    let range = |a: u8, b: u8| (a..=b).collect::<Vec<u8>>();
    // Case 1.
    let (prk, _) = Hkdf::<Sha256>::extract(Some(&range(0x00, 0x0c)), &[0x0b; 22]);
    assert_eq!(prk.to_vec(), h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"));
    assert_eq!(
        hkdf(&range(0x00, 0x0c), &[0x0b; 22], &range(0xf0, 0xf9), 42).unwrap(),
        h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    );
    // Case 2.
    assert_eq!(
        hkdf(&range(0x60, 0xaf), &range(0x00, 0x4f), &range(0xb0, 0xff), 82).unwrap(),
        h("b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87")
    );
    // Case 3: empty salt and info.
    assert_eq!(
        hkdf(&[], &[0x0b; 22], &[], 42).unwrap(),
        h("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    );
}

#[test]
fn wycheproof_x25519_including_low_order_inputs() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let (mut checked, mut refused) = (0, 0);
    // A valid Ed25519 key to build identity encodings around each X25519 public key.
    let ed = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    for group in &set.test_groups {
        for t in &group.tests {
            let (Ok(k), Ok(u)) = (<[u8; 32]>::try_from(&t.private_key[..]), <[u8; 32]>::try_from(&t.public_key[..]))
            else {
                assert_ne!(t.result, TestResult::Valid, "tc {}", t.tc_id);
                continue;
            };
            let shared = StaticSecret::from(k).diffie_hellman(&PublicKey::from(u));
            if t.shared_secret.iter().all(|b| *b == 0) {
                // The library's check: an all-zero output is non-contributory and refused,
                // and such a public key is refused as an identity agreement key (as a
                // non-canonical encoding first when bit 255 is set).
                assert!(!shared.was_contributory(), "tc {}", t.tc_id);
                let encoding = [&[1u8, 1][..], &ed, &u].concat();
                let expected = if u[31] & 0x80 != 0 {
                    gochat_e2ee::keys::KeyError::InvalidIdentityKey
                } else {
                    gochat_e2ee::keys::KeyError::WeakKey("identity agreement key")
                };
                assert_eq!(gochat_e2ee::IdentityKey::from_bytes(&encoding).unwrap_err(), expected, "tc {}", t.tc_id);
                refused += 1;
            } else {
                assert_ne!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                assert!(shared.was_contributory(), "tc {}", t.tc_id);
                assert_eq!(&shared.to_bytes()[..], &t.shared_secret[..], "tc {}", t.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked > 400 && refused > 5, "{checked} checked, {refused} low-order refused");
}

#[test]
fn wycheproof_ed25519_verify_strict() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        let pk: [u8; 32] = group.key.pk[..].try_into().unwrap();
        let vk = VerifyingKey::from_bytes(&pk);
        for t in &group.tests {
            let ok = match (&vk, <[u8; 64]>::try_from(&t.sig[..])) {
                (Ok(vk), Ok(sig)) => vk.verify_strict(&t.msg, &Signature::from_bytes(&sig)).is_ok(),
                _ => false,
            };
            match t.result {
                TestResult::Valid => assert!(ok, "tc {} should verify", t.tc_id),
                // Malleable (non-canonical S), truncated, garbage: all refused.
                TestResult::Invalid => assert!(!ok, "tc {} ({:?}) should be refused", t.tc_id, t.flags),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn wycheproof_aes_256_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups.iter().filter(|g| g.key_size == 256 && g.nonce_size == 96 && g.tag_size == 128) {
        for t in &group.tests {
            let key: [u8; 32] = t.key[..].try_into().unwrap();
            let nonce: [u8; 12] = t.nonce[..].try_into().unwrap();
            let cipher = Aes256Gcm::new(&key.into());
            let ct_tag = [&t.ct[..], &t.tag[..]].concat();
            let opened = cipher.decrypt(&nonce.into(), Payload { msg: &ct_tag, aad: &t.aad });
            match t.result {
                TestResult::Valid => {
                    assert_eq!(opened.unwrap(), t.pt.to_vec(), "tc {}", t.tc_id);
                    let sealed = cipher.encrypt(&nonce.into(), Payload { msg: &t.pt, aad: &t.aad }).unwrap();
                    assert_eq!(sealed, ct_tag, "tc {}", t.tc_id);
                }
                TestResult::Invalid => assert!(opened.is_err(), "tc {}", t.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked}");
}

#[test]
fn wycheproof_hkdf_sha256() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let out = hkdf(&t.salt, &t.ikm, &t.info, t.size);
            match t.result {
                TestResult::Valid => assert_eq!(out.unwrap(), t.okm.to_vec(), "tc {}", t.tc_id),
                TestResult::Invalid => assert!(out.is_none(), "tc {}", t.tc_id),
                TestResult::Acceptable => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

/// FIPS 203 known answers for ML-KEM-1024 (Wycheproof): key generation from the 64-byte
/// seed (the form in which the library stores decapsulation keys), decapsulation
/// (including malleable and implicitly rejected ciphertexts), and encapsulation,
/// including encapsulation keys that fail the modulus check and must be refused.
#[test]
fn wycheproof_ml_kem_1024_keygen_encaps_decaps() {
    use ml_kem::ml_kem_1024::{Ciphertext, DecapsulationKey, EncapsulationKey};
    use ml_kem::{Decapsulate, KeyExport, Seed};

    let keygen = wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem1024KeyGenSeed).unwrap();
    let mut n = 0;
    for t in keygen.test_groups.iter().flat_map(|g| &g.tests) {
        let seed: [u8; 64] = t.seed.as_ref().unwrap()[..].try_into().unwrap();
        let dk = DecapsulationKey::from_seed(Seed::from(seed));
        assert_eq!(dk.encapsulation_key().to_bytes().as_slice(), &t.encaps_key.as_ref().unwrap()[..], "tc {}", t.tc_id);
        n += 1;
    }
    assert_eq!(n, 100);

    let decaps = wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem1024).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for t in decaps.test_groups.iter().flat_map(|g| &g.tests) {
        let seed = <[u8; 64]>::try_from(&t.seed.as_ref().unwrap()[..]);
        let ct = <[u8; 1568]>::try_from(&t.ct.as_ref().unwrap()[..]);
        match (seed, ct) {
            (Ok(seed), Ok(ct)) => {
                assert_eq!(t.result, TestResult::Valid, "tc {}", t.tc_id);
                let dk = DecapsulationKey::from_seed(Seed::from(seed));
                assert_eq!(dk.encapsulation_key().to_bytes().as_slice(), &t.encaps_key.as_ref().unwrap()[..]);
                let k = dk.decapsulate(&Ciphertext::from(ct));
                assert_eq!(k.as_slice(), &t.shared_secret.as_ref().unwrap()[..], "tc {}", t.tc_id);
                valid += 1;
            }
            // Wrong-length seeds or ciphertexts cannot be expressed in the wire format:
            // every layout carries exactly 64 / 1568 bytes.
            _ => {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                invalid += 1;
            }
        }
    }
    assert!(valid >= 150 && invalid > 0, "{valid} valid, {invalid} invalid");

    let encaps = wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem1024Encaps).unwrap();
    let (mut valid, mut refused) = (0, 0);
    for t in encaps.test_groups.iter().flat_map(|g| &g.tests) {
        let ek_bytes = &t.encaps_key.as_ref().unwrap()[..];
        let ek = ml_kem::array::Array::try_from(ek_bytes).ok().and_then(|a| EncapsulationKey::new(&a).ok());
        match ek {
            Some(ek) => {
                assert_eq!(t.result, TestResult::Valid, "tc {}", t.tc_id);
                let m: [u8; 32] = t.msg.as_ref().unwrap()[..].try_into().unwrap();
                let (c, k) = ek.encapsulate_deterministic(&m.into());
                assert_eq!(c.as_slice(), &t.ct.as_ref().unwrap()[..], "tc {}", t.tc_id);
                assert_eq!(k.as_slice(), &t.shared_secret.as_ref().unwrap()[..], "tc {}", t.tc_id);
                valid += 1;
            }
            None => {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                refused += 1;
            }
        }
    }
    assert!(valid >= 130 && refused >= 16, "{valid} valid, {refused} refused");
}
