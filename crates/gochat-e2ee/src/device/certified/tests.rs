use super::*;
use crate::trust::address::DeviceAddress;
use crate::trust::certificate::{AgencyKey, CertificateChain, RootKey};
use crate::trust::{ChangeReason, IdentityPolicy};
use crate::{ErrorCode, SnapshotKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_800_000_000;
const ALICE: &str = "alice@mof.gov.my/phone";
const BOB: &str = "bob@mof.gov.my/laptop";

struct World {
    root: RootKey,
    agency: AgencyKey,
    agency_cert: Vec<u8>,
    rng: ChaCha20Rng,
    serial: u64,
}

impl World {
    fn new(seed: u64) -> Self {
        let root = RootKey::from_seed(&[1; 32]);
        let agency = AgencyKey::from_seed(&[2; 32]);
        let agency_cert = root
            .certify_agency(1, &agency.public_key(), "Ministry of Finance", &["mof.gov.my"], NOW - 1000, NOW + 1000)
            .unwrap()
            .to_bytes();
        World { root, agency, agency_cert, rng: ChaCha20Rng::seed_from_u64(seed), serial: 100 }
    }

    /// A device with prekeys that trusts the root.
    fn device(&mut self, user: &str) -> Device {
        let mut d = Device::new(user, NOW, &mut self.rng);
        d.account_mut().generate_one_time_prekeys(3, &mut self.rng).unwrap();
        d.account_mut().generate_pq_prekeys(3, NOW, &mut self.rng).unwrap();
        d.set_trust_roots(&[self.root.public_key()]).unwrap();
        d
    }

    /// The chain certifying `identity` as `peer`.
    fn chain(&mut self, peer: &str, identity: &IdentityKey) -> Vec<u8> {
        self.serial += 1;
        let address = DeviceAddress::parse(peer).unwrap();
        let device = self.agency.certify_device(self.serial, &address, identity, NOW - 100, NOW + 100).unwrap();
        let agency = AgencyCertificate::from_bytes(&self.agency_cert).unwrap();
        CertificateChain::new(device, agency).to_bytes()
    }

    /// The verified proof for `who`'s identity as `peer`, checked by `verifier`.
    fn proof(&mut self, verifier: &Device, peer: &str, who: &Device) -> VerifiedDevice {
        let chain = self.chain(peer, who.identity());
        verifier.verify_device(&chain, NOW).unwrap()
    }
}

#[test]
fn require_certificate_refuses_a_plain_initiate_and_accepts_a_certified_one() {
    let mut w = World::new(1);
    let mut alice = w.device("alice@mof.gov.my");
    let mut bob = w.device("bob@mof.gov.my");
    alice.set_require_certificate(true);
    let bundle = bob.next_bundle().unwrap();
    let digest = alice.state_digest();
    assert_eq!(alice.initiate(BOB, &bundle, &mut w.rng).unwrap_err().code(), ErrorCode::CertificateRequired);
    assert_eq!(alice.state_digest(), digest);
    // A proof for another peer name, or for another identity: mismatch, nothing changes.
    let wrong_name = w.proof(&alice, "bob@mof.gov.my/phone", &bob);
    let eve = w.device("eve@mof.gov.my");
    let wrong_key = w.proof(&alice, BOB, &eve);
    for proof in [&wrong_name, &wrong_key] {
        let e = alice.initiate_certified(BOB, &bundle, proof, &mut w.rng).unwrap_err();
        assert_eq!(e.code(), ErrorCode::CertificateMismatch);
        assert_eq!(alice.state_digest(), digest);
    }
    let proof = w.proof(&alice, BOB, &bob);
    assert_eq!(alice.initiate_certified(BOB, &bundle, &proof, &mut w.rng).unwrap(), IdentityEvent::New);
    let m = alice.encrypt(BOB, b"hello").unwrap();
    assert_eq!(bob.decrypt(ALICE, &m, &mut w.rng).unwrap().plaintext, b"hello");
}

#[test]
fn require_certificate_refuses_a_new_inbound_session_before_key_agreement() {
    let mut w = World::new(2);
    let mut alice = w.device("alice@mof.gov.my");
    let mut bob = w.device("bob@mof.gov.my");
    bob.set_require_certificate(true);
    let bundle = bob.next_bundle().unwrap();
    assert!(bundle.one_time_prekey().is_some());
    let _ = alice.initiate(BOB, &bundle, &mut w.rng).unwrap();
    let m = alice.encrypt(BOB, b"hi").unwrap();
    let digest = bob.state_digest();
    assert_eq!(bob.decrypt(ALICE, &m, &mut w.rng).unwrap_err().code(), ErrorCode::CertificateRequired);
    assert_eq!(bob.state_digest(), digest);
    // A proof of another identity, or for another peer name: refused before key agreement.
    let eve = w.device("eve@mof.gov.my");
    let wrong = w.proof(&bob, ALICE, &eve);
    assert_eq!(
        bob.decrypt_certified(ALICE, &m, &wrong, &mut w.rng).unwrap_err().code(),
        ErrorCode::CertificateMismatch
    );
    let proof = w.proof(&bob, ALICE, &alice);
    assert_eq!(
        bob.decrypt_certified("alice@mof.gov.my/other", &m, &proof, &mut w.rng).unwrap_err().code(),
        ErrorCode::CertificateMismatch
    );
    assert_eq!(bob.state_digest(), digest);
    let got = bob.decrypt_certified(ALICE, &m, &proof, &mut w.rng).unwrap();
    assert_eq!((got.plaintext.as_slice(), got.identity), (&b"hi"[..], IdentityEvent::New));
    // Messages on the existing session continue without a certificate.
    let r = bob.encrypt(ALICE, b"hello").unwrap();
    assert_eq!(alice.decrypt(BOB, &r, &mut w.rng).unwrap().plaintext, b"hello");
    let m2 = alice.encrypt(BOB, b"more").unwrap();
    assert_eq!(bob.decrypt(ALICE, &m2, &mut w.rng).unwrap().plaintext, b"more");
    // A certified decrypt with the wrong identity on an existing session is undone.
    let m3 = alice.encrypt(BOB, b"again").unwrap();
    let digest = bob.state_digest();
    assert_eq!(
        bob.decrypt_certified(ALICE, &m3, &wrong, &mut w.rng).unwrap_err().code(),
        ErrorCode::CertificateMismatch
    );
    assert_eq!(bob.state_digest(), digest);
    assert_eq!(bob.decrypt(ALICE, &m3, &mut w.rng).unwrap().plaintext, b"again");
}

/// Alice and Bob talk; then Bob reinstalls (new identity) and sends a prekey message.
fn reinstalled_bob(w: &mut World, policy: IdentityPolicy) -> (Device, Device, Vec<u8>, IdentityKey) {
    let mut alice = w.device("alice@mof.gov.my");
    alice.set_identity_policy(policy);
    let mut bob = w.device("bob@mof.gov.my");
    let bundle = bob.next_bundle().unwrap();
    let _ = alice.initiate(BOB, &bundle, &mut w.rng).unwrap();
    let m = alice.encrypt(BOB, b"hi").unwrap();
    let _ = bob.decrypt(ALICE, &m, &mut w.rng).unwrap();
    let old = *bob.identity();
    let mut bob = w.device("bob@mof.gov.my");
    let ab = alice.next_bundle().unwrap();
    let _ = bob.initiate(ALICE, &ab, &mut w.rng).unwrap();
    let m = bob.encrypt(ALICE, b"new phone").unwrap();
    (alice, bob, m, old)
}

#[test]
fn a_certified_identity_change_is_approved_under_the_certified_policy() {
    let mut w = World::new(3);
    let (mut alice, bob, m, old) = reinstalled_bob(&mut w, IdentityPolicy::Certified);
    let proof = w.proof(&alice, BOB, &bob);
    let got = alice.decrypt_certified(BOB, &m, &proof, &mut w.rng).unwrap();
    assert_eq!(got.identity, IdentityEvent::Changed { previous: old, approved: true, reason: ChangeReason::Certified });
    assert_eq!(alice.trust().pinned(BOB), Some(bob.identity()));
    assert!(alice.encrypt(BOB, b"welcome back").is_ok());
}

#[test]
fn an_uncertified_change_stays_blocked_until_a_certified_approval() {
    let mut w = World::new(4);
    let (mut alice, bob, m, old) = reinstalled_bob(&mut w, IdentityPolicy::Certified);
    let got = alice.decrypt(BOB, &m, &mut w.rng).unwrap();
    assert_eq!(
        got.identity,
        IdentityEvent::Changed { previous: old, approved: false, reason: ChangeReason::Uncertified }
    );
    assert_eq!(alice.encrypt(BOB, b"x").unwrap_err().code(), ErrorCode::IdentityChanged);
    // A proof of another identity, or another peer, does not approve it.
    let digest = alice.state_digest();
    let eve = w.device("eve@mof.gov.my");
    let wrong = w.proof(&alice, BOB, &eve);
    assert_eq!(alice.approve_certified(BOB, &wrong).unwrap_err().code(), ErrorCode::CertificateMismatch);
    let proof = w.proof(&alice, BOB, &bob);
    assert_eq!(alice.approve_certified("bob@mof.gov.my/x", &proof).unwrap_err().code(), ErrorCode::CertificateMismatch);
    assert_eq!(alice.state_digest(), digest);
    alice.approve_certified(BOB, &proof).unwrap();
    assert!(alice.encrypt(BOB, b"x").is_ok());
    // Nothing pending any more: a second approval is a mismatch.
    assert_eq!(alice.approve_certified(BOB, &proof).unwrap_err().code(), ErrorCode::CertificateMismatch);
}

#[test]
fn each_policy_reports_its_reason() {
    let mut w = World::new(5);
    let (mut alice, bob, m, old) = reinstalled_bob(&mut w, IdentityPolicy::RequireApproval);
    let proof = w.proof(&alice, BOB, &bob);
    // A certificate does not approve a change under RequireApproval.
    let got = alice.decrypt_certified(BOB, &m, &proof, &mut w.rng).unwrap();
    assert_eq!(
        got.identity,
        IdentityEvent::Changed { previous: old, approved: false, reason: ChangeReason::AwaitingApproval }
    );
    let (mut alice, _bob, m, old) = reinstalled_bob(&mut w, IdentityPolicy::Notify);
    let got = alice.decrypt(BOB, &m, &mut w.rng).unwrap();
    assert_eq!(got.identity, IdentityEvent::Changed { previous: old, approved: true, reason: ChangeReason::Notify });
}

#[test]
fn a_certified_initiate_to_a_changed_identity_is_approved_under_certified() {
    let mut w = World::new(6);
    let (mut alice, mut bob, _m, old) = reinstalled_bob(&mut w, IdentityPolicy::Certified);
    let bundle = bob.next_bundle().unwrap();
    assert_eq!(alice.initiate(BOB, &bundle, &mut w.rng).unwrap_err().code(), ErrorCode::IdentityChanged);
    let proof = w.proof(&alice, BOB, &bob);
    assert_eq!(
        alice.initiate_certified(BOB, &bundle, &proof, &mut w.rng).unwrap(),
        IdentityEvent::Changed { previous: old, approved: true, reason: ChangeReason::Certified }
    );
    assert!(alice.encrypt(BOB, b"x").is_ok());
}

#[test]
fn revocation_lists_apply_to_held_verification_and_failures_change_nothing() {
    let mut w = World::new(7);
    let mut alice = w.device("alice@mof.gov.my");
    let bob = w.device("bob@mof.gov.my");
    let chain = w.chain(BOB, bob.identity());
    let serial = w.serial;
    assert!(alice.verify_device(&chain, NOW).is_ok());
    let list = w.agency.revocation_list(1, NOW, &[serial]).unwrap().to_bytes();
    let digest = alice.state_digest();
    // Without the agency certificate the issuer is unknown.
    assert_eq!(alice.apply_revocation_list(&list, None, NOW).unwrap_err().code(), ErrorCode::UnknownRoot);
    assert_eq!(alice.state_digest(), digest);
    let cert = w.agency_cert.clone();
    assert_eq!(alice.apply_revocation_list(&list, Some(&cert), NOW).unwrap(), RevocationUpdate::Applied);
    assert_eq!(alice.held, alice.count_held());
    assert_eq!(alice.verify_device(&chain, NOW).unwrap_err().code(), ErrorCode::CertificateRevoked);
    assert_eq!(alice.apply_revocation_list(&list, Some(&cert), NOW).unwrap(), RevocationUpdate::Unchanged);
    let digest = alice.state_digest();
    let older = w.agency.revocation_list(1, NOW, &[]).unwrap().to_bytes();
    assert_eq!(
        alice.apply_revocation_list(&older, Some(&cert), NOW).unwrap_err().code(),
        ErrorCode::StaleRevocationList
    );
    assert_eq!(
        alice.apply_revocation_list(&list[1..], Some(&cert), NOW).unwrap_err().code(),
        ErrorCode::WrongMessageType
    );
    let mut weak = [0u8; 32];
    weak[0] = 1;
    assert_eq!(alice.set_trust_roots(&[weak]).unwrap_err().code(), ErrorCode::InvalidKey);
    assert_eq!(alice.state_digest(), digest);
    // Without the root, nothing verifies.
    alice.set_trust_roots(&[]).unwrap();
    assert_eq!(alice.verify_device(&chain, NOW).unwrap_err().code(), ErrorCode::UnknownRoot);
    assert_eq!(alice.held, alice.count_held());
}

#[test]
fn trust_anchors_survive_export_and_older_states_import_without_them() {
    let mut w = World::new(8);
    let mut alice = w.device("alice@mof.gov.my");
    alice.set_require_certificate(true);
    alice.set_identity_policy(IdentityPolicy::Certified);
    let list = w.root.revocation_list(4, NOW, &[9]).unwrap().to_bytes();
    assert_eq!(alice.apply_revocation_list(&list, None, NOW).unwrap(), RevocationUpdate::Applied);
    assert_eq!(alice.encode_state().len(), alice.state_len());
    let key = SnapshotKey::new([3; 32]);
    let snap = alice.export(&key, &mut w.rng).unwrap();
    assert_eq!(snap[1], 0x04);
    let restored = Device::import(&key, &snap).unwrap();
    assert_eq!(restored.trust_anchors(), alice.trust_anchors());
    assert_eq!(restored.trust().policy(), IdentityPolicy::Certified);
    assert_eq!(restored.state_len(), alice.state_len());
    // A version-3 state: the same encoding without the trust-anchor and device-list
    // sections (the last two), sealed as version 3.
    let state = alice.encode_state();
    let tail = alice.anchors.encoded_len() + alice.own.encoded_len() + alice.device_lists.encoded_len();
    let v3 = state[..state.len() - tail].to_vec();
    let snap = crate::snapshot::seal_version(
        &key,
        crate::snapshot::SnapshotKind::Device,
        zeroize::Zeroizing::new(v3),
        0x03,
        &mut w.rng,
    )
    .unwrap();
    let old = Device::import(&key, &snap).unwrap();
    assert_eq!(old.trust_anchors(), &TrustAnchors::default());
    assert_eq!(old.held, old.count_held());
}
