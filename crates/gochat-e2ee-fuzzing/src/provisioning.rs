//! The `provisioning_offer` and `provisioning_message` targets (linking a device, §15.9).
//!
//! `provisioning_offer`: [`ProvisioningOffer::from_bytes`]. Asserted: no panic; an accepted
//! offer re-encodes to exactly the input (one encoding per offer), and the phone can seal a
//! payload to it at its own `created_at`.
//!
//! `provisioning_message`: [`ProvisioningSecret::open`] with a fixed secret (the same seed
//! every run). Asserted: no panic; only the genuine message opens, and to the genuine
//! payload (then a second open is `Used`); after every failure the secret is unchanged
//! (not used, same offer) and still opens the genuine message.

use std::sync::OnceLock;

use gochat_e2ee::keys::IdentityKeyPair;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::provisioning::{seal, LinkPayload, ProvisioningError, ProvisioningOffer, ProvisioningSecret};

use crate::fixtures::Seed;

const NOW: u64 = 1_700_000_000;

struct Fixture {
    offer: Vec<u8>,
    payload: LinkPayload,
    message: Vec<u8>,
    other_offer_message: Vec<u8>,
}

fn secret(seed: u64, device: &str) -> (ProvisioningSecret, ProvisioningOffer) {
    let identity = *IdentityKeyPair::generate(&mut crate::rng(1)).public();
    ProvisioningSecret::new(&identity, DeviceId::parse(device).expect("fixture"), NOW, &mut crate::rng(seed))
}

fn payload() -> LinkPayload {
    LinkPayload {
        user: UserId::parse("aminah@mof.gov.my").expect("fixture"),
        master_public: *IdentityKeyPair::generate(&mut crate::rng(2)).public().signing_key_bytes(),
        endorsement: vec![0x56; 40],
        device_list: vec![0x55; 80],
    }
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn get() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let (_, offer) = secret(3, "web-1");
        let (_, other) = secret(4, "web-1");
        let payload = payload();
        let message = seal(&offer, &payload, NOW, &mut crate::rng(5)).expect("fixture").to_bytes();
        let other_offer_message = seal(&other, &payload, NOW, &mut crate::rng(5)).expect("fixture").to_bytes();
        Fixture { offer: offer.to_bytes(), payload, message, other_offer_message }
    })
}

/// The seeds of both targets.
pub fn seeds() -> Vec<(&'static str, Seed)> {
    let f = get();
    let mut flipped = f.message.clone();
    flipped[50] ^= 1;
    let mut low = f.message.clone();
    low[2..34].copy_from_slice(&[0; 32]);
    let mut offer_low = f.offer.clone();
    offer_low[2..34].copy_from_slice(&[0; 32]);
    vec![
        ("provisioning_offer", ("valid-offer", f.offer.clone())),
        ("provisioning_offer", ("invalid-truncated", f.offer[..f.offer.len() - 1].to_vec())),
        ("provisioning_offer", ("invalid-trailing", [&f.offer[..], &[0]].concat())),
        ("provisioning_offer", ("invalid-low-order-key", offer_low)),
        ("provisioning_offer", ("invalid-type", [&[0x58][..], &f.offer[1..]].concat())),
        ("provisioning_message", ("valid-message", f.message.clone())),
        ("provisioning_message", ("invalid-other-offer", f.other_offer_message.clone())),
        ("provisioning_message", ("invalid-flipped", flipped)),
        ("provisioning_message", ("invalid-low-order-ephemeral", low)),
        ("provisioning_message", ("invalid-truncated", f.message[..60].to_vec())),
        ("provisioning_message", ("invalid-type", [&[0x57][..], &f.message[1..]].concat())),
    ]
}

/// `provisioning_offer`: see the module documentation. Returns whether it was accepted.
pub fn provisioning_offer(data: &[u8]) -> bool {
    match ProvisioningOffer::from_bytes(data) {
        Ok(offer) => {
            assert_eq!(offer.to_bytes(), data, "an offer with two encodings");
            let sealed = seal(&offer, &get().payload, offer.created_at(), &mut crate::rng(6));
            assert!(sealed.is_ok(), "an accepted offer cannot be sealed to: {sealed:?}");
            true
        }
        Err(_) => false,
    }
}

/// `provisioning_message`: see the module documentation. Returns whether it opened.
pub fn provisioning_message(data: &[u8]) -> bool {
    let f = get();
    let (mut s, offer) = secret(3, "web-1");
    debug_assert_eq!(offer.to_bytes(), f.offer);
    match s.open(data) {
        Ok(p) => {
            assert_eq!(p, f.payload, "a message opened to another payload");
            assert!(s.is_used());
            assert_eq!(s.open(&f.message), Err(ProvisioningError::Used), "opened twice");
            true
        }
        Err(e) => {
            assert_ne!(e, ProvisioningError::Used, "a fresh secret reported Used");
            assert!(!s.is_used(), "a failed open spent the secret");
            assert_eq!(s.offer().to_bytes(), f.offer, "a failed open changed the offer");
            assert_eq!(s.open(&f.message).as_ref(), Ok(&f.payload), "the secret is no longer usable after {e}");
            false
        }
    }
}
