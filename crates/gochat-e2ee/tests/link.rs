//! Linking a device on the `Device` façade (docs/protocol.md 15.9): the phone's
//! `link_device`, the new device's `complete_link`; every refusal changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::provisioning::{seal, LinkPayload, ProvisioningOffer, ProvisioningSecret};
use gochat_e2ee::{Device, ErrorCode};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_700_000_000;
const USER: &str = "aminah@mof.gov.my";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn phone() -> Device {
    let mut phone = Device::new(USER, NOW, &mut rng(1));
    phone.create_master_key(&id("phone"), NOW, &mut rng(2)).unwrap();
    phone
}

fn code(e: gochat_e2ee::Error) -> &'static str {
    e.code().as_str()
}

#[test]
fn a_phone_links_a_web_device_that_adopts_the_signed_list() {
    let mut phone = phone();
    let mut web = Device::new(USER, NOW, &mut rng(3));
    let (mut secret, offer) = ProvisioningSecret::new(web.identity(), id("web-1"), NOW, &mut rng(4));
    let out = phone.link_device(&offer.to_bytes(), NOW + 20, &mut rng(5)).unwrap();
    assert_eq!(out.device_list.version(), 2);
    assert_eq!(out.device_list.identity_of(&id("web-1")), Some(web.identity()));
    assert_eq!(phone.own_device_list(), Some(&out.device_list));

    let list = web.complete_link(&mut secret, &out.message).unwrap();
    assert_eq!(list, out.device_list);
    assert_eq!(web.own_device_list(), Some(&out.device_list));
    assert_eq!(web.own_address().unwrap().peer_name(), "aminah@mof.gov.my/web-1");
    assert!(!web.is_primary());
    assert_eq!(web.own_endorsement().unwrap().device(), &id("web-1"));
    assert!(secret.is_used());
    assert_eq!(code(web.complete_link(&mut secret, &out.message).unwrap_err()), "ProvisioningUsed");
}

#[test]
fn the_phone_refuses_stale_offers_and_non_primaries_without_changing_anything() {
    let mut phone = phone();
    let web = Device::new(USER, NOW, &mut rng(3));
    let (_, offer) = ProvisioningSecret::new(web.identity(), id("web-1"), NOW, &mut rng(4));
    let before = phone.state_digest();
    let e = phone.link_device(&offer.to_bytes(), NOW + 601, &mut rng(5)).unwrap_err();
    assert_eq!(code(e), "ProvisioningExpired");
    let e = phone.link_device(&offer.to_bytes()[..50], NOW, &mut rng(5)).unwrap_err();
    assert_eq!(code(e), "Malformed");
    assert_eq!(phone.state_digest(), before);
    assert_eq!(phone.own_device_list().unwrap().version(), 1);

    let mut not_primary = Device::new(USER, NOW, &mut rng(6));
    let before = not_primary.state_digest();
    assert_eq!(code(not_primary.link_device(&offer.to_bytes(), NOW, &mut rng(5)).unwrap_err()), "NotPrimary");
    assert_eq!(not_primary.state_digest(), before);

    // Linking the same device twice: the second endorsement is refused.
    phone.link_device(&offer.to_bytes(), NOW, &mut rng(5)).unwrap();
    let before = phone.state_digest();
    assert_eq!(code(phone.link_device(&offer.to_bytes(), NOW, &mut rng(5)).unwrap_err()), "Duplicate");
    assert_eq!(phone.state_digest(), before);
}

#[test]
fn the_new_device_refuses_bad_messages_and_keeps_its_secret_and_state() {
    let mut phone = phone();
    let mut web = Device::new(USER, NOW, &mut rng(3));
    let (mut secret, offer) = ProvisioningSecret::new(web.identity(), id("web-1"), NOW, &mut rng(4));
    let out = phone.link_device(&offer.to_bytes(), NOW, &mut rng(5)).unwrap();
    let before = web.state_digest();

    let mut tampered = out.message.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(code(web.complete_link(&mut secret, &tampered).unwrap_err()), "AuthenticationFailed");
    assert_eq!(code(web.complete_link(&mut secret, &[0x58, 1]).unwrap_err()), "Malformed");

    // Another device (another identity) cannot complete with this secret.
    let mut other = Device::new(USER, NOW, &mut rng(7));
    let other_before = other.state_digest();
    assert_eq!(code(other.complete_link(&mut secret, &out.message).unwrap_err()), "DeviceListMismatch");
    assert_eq!(other.state_digest(), other_before);

    // A device of another user cannot adopt the list.
    let mut stranger = Device::new("bob@mof.gov.my", NOW, &mut rng(3));
    assert!(web.identity() == stranger.identity());
    let stranger_before = stranger.state_digest();
    assert_eq!(code(stranger.complete_link(&mut secret, &out.message).unwrap_err()), "DeviceListMismatch");
    assert_eq!(stranger.state_digest(), stranger_before);

    // A message the phone sealed for another offer of the same device.
    let (_, offer2) = ProvisioningSecret::new(web.identity(), id("web-2"), NOW, &mut rng(8));
    let payload = LinkPayload {
        user: UserId::parse(USER).unwrap(),
        master_public: phone.master_public_key().unwrap().to_bytes(),
        endorsement: phone.own_endorsement().unwrap().encode(),
        device_list: out.device_list.encode(),
    };
    let other_offer = seal(&offer2, &payload, NOW, &mut rng(9)).unwrap().to_bytes();
    assert_eq!(code(web.complete_link(&mut secret, &other_offer).unwrap_err()), "AuthenticationFailed");

    assert_eq!(web.state_digest(), before);
    assert!(!secret.is_used());
    // After all that, the genuine message still links (the list is not the newest, but
    // it is the one the phone sealed, and it lists this device).
    web.complete_link(&mut secret, &out.message).unwrap();
    assert!(secret.is_used());
    assert_eq!(ProvisioningOffer::from_bytes(&offer.to_bytes()).unwrap(), offer);
    let _ = ErrorCode::ALL;
}
