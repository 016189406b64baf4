use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::keys::IdentityKeyPair;

const NOW: u64 = 1_750_000_000;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn identity(seed: u64) -> IdentityKey {
    *IdentityKeyPair::generate(&mut rng(seed)).public()
}

fn payload() -> LinkPayload {
    LinkPayload {
        user: UserId::parse("aminah@mof.gov.my").unwrap(),
        master_public: *identity(99).signing_key_bytes(),
        endorsement: vec![0x56; 140],
        device_list: vec![0x55; 300],
    }
}

fn offer_and_secret() -> (ProvisioningSecret, ProvisioningOffer) {
    ProvisioningSecret::new(&identity(1), DeviceId::parse("web-1").unwrap(), NOW, &mut rng(2))
}

/// Everything observable about a secret (the secret scalar itself is compared by its
/// public key through the offer, and by whether it is still held).
fn state(s: &ProvisioningSecret) -> (Vec<u8>, [u8; 32], bool, Option<[u8; 32]>) {
    (s.offer.to_bytes(), s.offer_digest, s.is_used(), s.secret.as_ref().map(|k| k.to_bytes()))
}

#[test]
fn a_device_links_once_from_its_offer() {
    let (mut secret, offer) = offer_and_secret();
    let qr = offer.to_bytes();
    assert_eq!(qr.len(), 2 + 32 + 66 + 1 + 5 + 8);
    assert!(qr.len() <= MAX_OFFER_BYTES);
    assert_eq!(&qr[..2], &[0x57, 0x01]);
    let scanned = ProvisioningOffer::from_bytes(&qr).unwrap();
    assert_eq!(scanned, offer);
    assert_eq!(scanned.device_id().as_str(), "web-1");
    assert_eq!(scanned.identity(), &identity(1));
    assert_eq!(scanned.created_at(), NOW);

    let m = seal(&scanned, &payload(), NOW + 30, &mut rng(3)).unwrap();
    let bytes = m.to_bytes();
    assert_eq!(&bytes[..2], &[0x58, 0x01]);
    assert_eq!(ProvisioningMessage::from_bytes(&bytes).unwrap(), m);
    assert!(!secret.is_used());
    assert_eq!(secret.open(&bytes).unwrap(), payload());
    assert!(secret.is_used());
    assert!(secret.secret.is_none());
    // Single use: the same message, and any other, is refused from now on.
    assert_eq!(secret.open(&bytes), Err(ProvisioningError::Used));
    let again = seal(&offer, &payload(), NOW, &mut rng(4)).unwrap().to_bytes();
    assert_eq!(secret.open(&again), Err(ProvisioningError::Used));
    assert_eq!(secret.open(&[]), Err(ProvisioningError::Used));
}

#[test]
fn failed_opens_leave_the_secret_usable() {
    let (mut secret, offer) = offer_and_secret();
    let good = seal(&offer, &payload(), NOW, &mut rng(3)).unwrap().to_bytes();
    let before = state(&secret);
    // A message for another offer (another provisioning key, and the same key with
    // another device id, identity or time).
    let (_, other) = offer_and_secret_with(identity(1), "web-1", NOW, 77);
    let mut same_key = offer.clone();
    same_key.device = DeviceId::parse("web-2").unwrap();
    let mut other_identity = offer.clone();
    other_identity.identity = identity(5);
    let mut other_time = offer.clone();
    other_time.created_at = NOW + 1;
    let mut bad: Vec<(Vec<u8>, ProvisioningError)> = Vec::new();
    for o in [other, same_key, other_identity, other_time] {
        bad.push((seal(&o, &payload(), NOW, &mut rng(3)).unwrap().to_bytes(), ProvisioningError::AuthenticationFailed));
    }
    // Every single bit flipped past the header.
    for i in 2..good.len() {
        let mut t = good.clone();
        t[i] ^= 1;
        bad.push((t, ProvisioningError::AuthenticationFailed));
    }
    // The ephemeral key's top bit: refused as non-canonical before any crypto.
    let mut top = good.clone();
    top[33] ^= 0x80;
    bad.push((top, DecodeError::InvalidValue("ephemeral key").into()));
    // A low-order ephemeral key.
    let mut low = good.clone();
    low[2..34].copy_from_slice(&[0; 32]);
    bad.push((low, ProvisioningError::NonContributory));
    let mut one = good.clone();
    one[2..34].copy_from_slice(&{
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    });
    bad.push((one, ProvisioningError::NonContributory));
    // Layout errors.
    bad.push((vec![], DecodeError::Empty.into()));
    bad.push(([&[0x57], &good[1..]].concat(), DecodeError::WrongType { expected: 0x58, found: 0x57 }.into()));
    bad.push(([&[0x58, 0x02], &good[2..]].concat(), DecodeError::UnsupportedVersion(2).into()));
    bad.push((good[..2 + 32 + 16].to_vec(), DecodeError::Truncated.into()));
    bad.push((good[..20].to_vec(), DecodeError::Truncated.into()));
    bad.push(([&good[..], &[0]].concat(), ProvisioningError::AuthenticationFailed));
    bad.push((good[..good.len() - 1].to_vec(), ProvisioningError::AuthenticationFailed));
    let huge = vec![0x58; MAX_PROVISIONING_MESSAGE_BYTES + 1];
    bad.push((
        huge,
        DecodeError::TooLarge { len: MAX_PROVISIONING_MESSAGE_BYTES + 1, max: MAX_PROVISIONING_MESSAGE_BYTES }.into(),
    ));
    for (i, (m, expected)) in bad.iter().enumerate() {
        assert_eq!(secret.open(m).as_ref(), Err(expected), "case {i}");
        assert_eq!(state(&secret), before, "case {i}");
    }
    // After all of that, the genuine message still opens.
    assert_eq!(secret.open(&good).unwrap(), payload());
}

fn offer_and_secret_with(
    id: IdentityKey,
    device: &str,
    now: u64,
    seed: u64,
) -> (ProvisioningSecret, ProvisioningOffer) {
    ProvisioningSecret::new(&id, DeviceId::parse(device).unwrap(), now, &mut rng(seed))
}

#[test]
fn the_phone_refuses_stale_and_future_offers() {
    let (_, offer) = offer_and_secret();
    let p = payload();
    assert!(seal(&offer, &p, NOW + MAX_OFFER_AGE_SECS, &mut rng(1)).is_ok());
    assert_eq!(
        seal(&offer, &p, NOW + MAX_OFFER_AGE_SECS + 1, &mut rng(1)),
        Err(ProvisioningError::OfferExpired { created_at: NOW, now: NOW + MAX_OFFER_AGE_SECS + 1 })
    );
    assert!(seal(&offer, &p, NOW - MAX_OFFER_FUTURE_SECS, &mut rng(1)).is_ok());
    assert_eq!(
        seal(&offer, &p, NOW - MAX_OFFER_FUTURE_SECS - 1, &mut rng(1)),
        Err(ProvisioningError::OfferFromFuture { created_at: NOW, now: NOW - MAX_OFFER_FUTURE_SECS - 1 })
    );
    // No overflow at the ends of time.
    let (_, late) = offer_and_secret_with(identity(1), "web-1", u64::MAX, 2);
    assert!(seal(&late, &p, u64::MAX, &mut rng(1)).is_ok());
    assert!(seal(&late, &p, 0, &mut rng(1)).is_err());
    assert_eq!(
        crate::Error::from(ProvisioningError::OfferExpired { created_at: 0, now: 0 }).code().as_str(),
        "ProvisioningExpired"
    );
    assert_eq!(
        crate::Error::from(ProvisioningError::OfferFromFuture { created_at: 0, now: 0 }).code().as_str(),
        "ProvisioningExpired"
    );
}

#[test]
fn offers_are_decoded_strictly() {
    let (_, offer) = offer_and_secret();
    let qr = offer.to_bytes();
    let dev_at = 2 + 32 + 66;
    let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = qr.clone();
        f(&mut b);
        ProvisioningOffer::from_bytes(&b)
    };
    assert_eq!(ProvisioningOffer::from_bytes(&[]), Err(DecodeError::Empty.into()));
    assert_eq!(mutate(&|b| b[0] = 0x58), Err(DecodeError::WrongType { expected: 0x57, found: 0x58 }.into()));
    assert_eq!(mutate(&|b| b[1] = 2), Err(DecodeError::UnsupportedVersion(2).into()));
    assert_eq!(mutate(&|b| b.push(0)), Err(DecodeError::TrailingBytes(1).into()));
    assert_eq!(
        mutate(&|b| {
            b.pop();
        }),
        Err(DecodeError::Truncated.into())
    );
    assert_eq!(
        ProvisioningOffer::from_bytes(&[0x57; MAX_OFFER_BYTES + 1]),
        Err(DecodeError::TooLarge { len: MAX_OFFER_BYTES + 1, max: MAX_OFFER_BYTES }.into())
    );
    // Provisioning key: low order, non-canonical.
    assert_eq!(mutate(&|b| b[2..34].copy_from_slice(&[0; 32])), Err(KeyError::WeakKey("provisioning key").into()));
    assert_eq!(mutate(&|b| b[33] |= 0x80), Err(KeyError::Decode(DecodeError::InvalidValue("provisioning key")).into()));
    // Identity: wrong type, weak agreement key.
    assert!(matches!(mutate(&|b| b[34] = 0x02), Err(ProvisioningError::Key(KeyError::Decode(_)))));
    assert!(matches!(mutate(&|b| b[68..100].copy_from_slice(&[0; 32])), Err(ProvisioningError::Key(_))));
    // Device id: bad character, empty, not UTF-8, length past the end.
    assert_eq!(mutate(&|b| b[dev_at + 1] = b'/'), Err(DecodeError::InvalidValue("device id").into()));
    assert_eq!(mutate(&|b| b[dev_at + 1] = 0xff), Err(DecodeError::InvalidValue("device id").into()));
    assert!(mutate(&|b| b[dev_at] = 0).is_err());
    assert_eq!(mutate(&|b| b[dev_at] = 200), Err(DecodeError::Truncated.into()));
    // The longest device id fits the bound exactly.
    let (_, long) = offer_and_secret_with(identity(1), &"d".repeat(64), NOW, 3);
    assert_eq!(long.to_bytes().len(), MAX_OFFER_BYTES);
    assert_eq!(ProvisioningOffer::from_bytes(&long.to_bytes()).unwrap(), long);
}

#[test]
fn payloads_are_bounded_and_checked() {
    let good = payload();
    let bytes = good.to_bytes().unwrap();
    assert_eq!(LinkPayload::from_bytes(&bytes).unwrap(), good);
    let (_, offer) = offer_and_secret();
    let refused = |p: LinkPayload| seal(&offer, &p, NOW, &mut rng(1)).unwrap_err();
    assert_eq!(
        refused(LinkPayload { endorsement: vec![], ..payload() }),
        DecodeError::InvalidValue("endorsement length").into()
    );
    assert_eq!(
        refused(LinkPayload { endorsement: vec![1; MAX_LINK_ENDORSEMENT_BYTES + 1], ..payload() }),
        DecodeError::InvalidValue("endorsement length").into()
    );
    assert_eq!(
        refused(LinkPayload { device_list: vec![], ..payload() }),
        DecodeError::InvalidValue("device list length").into()
    );
    assert_eq!(
        refused(LinkPayload { device_list: vec![1; MAX_LINK_DEVICE_LIST_BYTES + 1], ..payload() }),
        DecodeError::InvalidValue("device list length").into()
    );
    assert_eq!(refused(LinkPayload { master_public: [0; 32], ..payload() }), ProvisioningError::InvalidMasterKey);
    // The largest payload fits the message bound exactly, and opens.
    let max = LinkPayload {
        user: UserId::parse(&format!(
            "{}@{}.my",
            "a".repeat(64),
            ["b".repeat(63), "c".repeat(63), "d".repeat(58)].join(".")
        ))
        .unwrap(),
        endorsement: vec![7; MAX_LINK_ENDORSEMENT_BYTES],
        device_list: vec![8; MAX_LINK_DEVICE_LIST_BYTES],
        ..payload()
    };
    assert_eq!(max.user.as_str().len(), MAX_USER_ID_BYTES);
    assert_eq!(max.to_bytes().unwrap().len(), MAX_LINK_PAYLOAD_BYTES);
    let (mut secret, offer) = offer_and_secret();
    let m = seal(&offer, &max, NOW, &mut rng(1)).unwrap().to_bytes();
    assert_eq!(m.len(), MAX_PROVISIONING_MESSAGE_BYTES);
    assert_eq!(secret.open(&m).unwrap(), max);

    // Decoding: each field refused on its own.
    let user_len = good.user.as_str().len();
    let master_at = 2 + user_len;
    let end_at = master_at + 32;
    let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.to_vec();
        f(&mut b);
        LinkPayload::from_bytes(&b)
    };
    assert_eq!(LinkPayload::from_bytes(&[]), Err(DecodeError::Empty.into()));
    assert_eq!(mutate(&|b| b[0] = 2), Err(DecodeError::UnsupportedVersion(2).into()));
    assert_eq!(mutate(&|b| b[2] = b'A'), Err(DecodeError::InvalidValue("user id").into()));
    assert_eq!(mutate(&|b| b[2] = 0xc3), Err(DecodeError::InvalidValue("user id").into()));
    assert_eq!(mutate(&|b| b[master_at..end_at].copy_from_slice(&[0; 32])), Err(ProvisioningError::InvalidMasterKey));
    assert_eq!(
        mutate(&|b| b[end_at..end_at + 2].copy_from_slice(&[0, 0])),
        Err(DecodeError::InvalidValue("endorsement length").into())
    );
    assert_eq!(
        mutate(&|b| b[end_at..end_at + 2].copy_from_slice(&[0x04, 0x01])),
        Err(DecodeError::InvalidValue("endorsement length").into())
    );
    assert_eq!(mutate(&|b| b.push(0)), Err(DecodeError::TrailingBytes(1).into()));
    assert_eq!(
        mutate(&|b| {
            b.pop();
        }),
        Err(DecodeError::Truncated.into())
    );
    assert_eq!(
        LinkPayload::from_bytes(&vec![1; MAX_LINK_PAYLOAD_BYTES + 1]),
        Err(DecodeError::TooLarge { len: MAX_LINK_PAYLOAD_BYTES + 1, max: MAX_LINK_PAYLOAD_BYTES }.into())
    );
}

#[test]
fn a_payload_the_phone_sealed_badly_is_refused_after_authentication_and_keeps_the_secret() {
    // A phone (or a bug) that seals bytes that are not a payload: authentic, but refused.
    let (mut secret, offer) = offer_and_secret();
    let eph = crypto::random_x25519(&mut rng(9));
    let ephemeral = crypto::x25519_public(&eph);
    let shared = crypto::dh(&eph, offer.provisioning_key()).unwrap();
    let (key, aad) = keys(shared.as_bytes(), &ephemeral, &offer.digest()).unwrap();
    let ct = key.seal(&aad, &[9u8; 60]).unwrap();
    let m = ProvisioningMessage { ephemeral, ciphertext: ct }.to_bytes();
    let before = state(&secret);
    assert_eq!(secret.open(&m), Err(DecodeError::UnsupportedVersion(9).into()));
    assert_eq!(state(&secret), before);
}

#[test]
fn secrets_never_print_and_codes_are_flat() {
    let (secret, _) = offer_and_secret();
    let s = format!("{secret:?}");
    assert!(s.contains("<redacted>") && s.contains("web-1") && s.contains("used: false"), "{s}");
    let key_hex: String = secret.secret.as_ref().unwrap().to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!s.contains(&key_hex[..8]));
    let code = |e: ProvisioningError| crate::Error::from(e).code().as_str();
    assert_eq!(code(ProvisioningError::Used), "ProvisioningUsed");
    assert_eq!(code(ProvisioningError::AuthenticationFailed), "AuthenticationFailed");
    assert_eq!(code(ProvisioningError::NonContributory), "NonContributory");
    assert_eq!(code(ProvisioningError::InvalidMasterKey), "InvalidKey");
    assert_eq!(code(ProvisioningError::IdentityMismatch("x")), "DeviceListMismatch");
    assert_eq!(code(DecodeError::TooLarge { len: 2, max: 1 }.into()), "TooLarge");
    assert_eq!(code(DecodeError::Truncated.into()), "Malformed");
    assert_eq!(code(KeyError::WeakKey("k").into()), "WeakKey");
}

#[test]
fn limits_are_the_documented_values() {
    assert_eq!(
        (MAX_OFFER_AGE_SECS, MAX_OFFER_FUTURE_SECS, MAX_OFFER_BYTES, MAX_LINK_ENDORSEMENT_BYTES),
        (600, 60, 173, 484)
    );
    assert_eq!(
        (MAX_LINK_DEVICE_LIST_BYTES, MAX_LINK_PAYLOAD_BYTES, MAX_PROVISIONING_MESSAGE_BYTES),
        (2_466, 3_242, 3_292)
    );
    assert_eq!(labels::PROVISIONING, b"GoChat-E2EE v1 provisioning");
    assert_eq!((OFFER_TYPE, MESSAGE_TYPE, PROVISIONING_VERSION), (0x57, 0x58, 0x01));
}
