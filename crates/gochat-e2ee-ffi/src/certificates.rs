//! Agency-certified identities (protocol 15.4–15.10): issuing keys (`RootKey`,
//! `AgencyKey`), chain assembly and stateless verification, the `VerifiedDevice` proof,
//! and the device's trust anchors and certified session / identity-change calls. Thin
//! like the rest: convert, call the core's `trust::certificate`, map errors to the flat
//! codes (`CertificateExpired`, `WrongDomain`, `CertificateRevoked`, `UnknownRoot`, ...).

use std::sync::Arc;

use gochat_e2ee as core;
use gochat_e2ee::trust::address::DeviceAddress;
use gochat_e2ee::trust::certificate as cert;
use zeroize::Zeroizing;

use crate::{identity_key_arg, rng, DecryptResult, Device, GoChatError, IdentityEvent, Result};

fn err(e: impl Into<core::Error>) -> GoChatError {
    e.into().into()
}

fn key32(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| err(core::wire::DecodeError::InvalidValue("32-byte key")))
}

fn seed_arg(seed: Vec<u8>) -> Result<Zeroizing<[u8; 32]>> {
    let seed = Zeroizing::new(seed);
    Ok(Zeroizing::new(key32(&seed)?))
}

fn roots_arg(roots: &[Vec<u8>]) -> Result<Vec<[u8; 32]>> {
    roots.iter().map(|r| key32(r)).collect()
}

/// What applying a revocation list did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RevocationUpdate {
    /// The list is now the one held for its issuer.
    Applied,
    /// The very same list was already held.
    Unchanged,
}

impl From<cert::RevocationUpdate> for RevocationUpdate {
    fn from(u: cert::RevocationUpdate) -> Self {
        match u {
            cert::RevocationUpdate::Applied => RevocationUpdate::Applied,
            cert::RevocationUpdate::Unchanged => RevocationUpdate::Unchanged,
        }
    }
}

/// A revocation list to hold for a stateless verification, with the agency certificate
/// of its issuer when the issuer is an agency.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RevocationEntry {
    /// The signed list (type 0x54).
    pub list: Vec<u8>,
    /// The issuing agency's certificate (type 0x51), or none for a root's list.
    pub agency_certificate: Option<Vec<u8>>,
}

/// A device identity verified under the trust roots: what the certified calls take.
#[derive(Debug, uniffi::Object)]
pub struct VerifiedDevice {
    pub(crate) inner: cert::VerifiedDevice,
}

#[uniffi::export]
impl VerifiedDevice {
    /// The certified peer name, `user/device`.
    pub fn peer(&self) -> String {
        self.inner.address().peer_name()
    }

    /// The user id (official email).
    pub fn user_id(&self) -> String {
        self.inner.address().user().as_str().to_owned()
    }

    /// The device id.
    pub fn device_id(&self) -> String {
        self.inner.address().device().as_str().to_owned()
    }

    /// The certified identity key (66 bytes).
    pub fn identity_key(&self) -> Vec<u8> {
        self.inner.identity().to_bytes().to_vec()
    }

    /// The certifying agency's name.
    pub fn agency_name(&self) -> String {
        self.inner.agency_name().to_owned()
    }

    /// The certifying agency's public key (32 bytes).
    pub fn agency_key(&self) -> Vec<u8> {
        self.inner.agency_key().to_vec()
    }

    /// The device certificate's serial.
    pub fn serial(&self) -> u64 {
        self.inner.serial()
    }

    /// When the proof stops holding (the earlier `not_after` of both certificates).
    pub fn not_after(&self) -> u64 {
        self.inner.not_after()
    }
}

/// A root signing key (the offline trust anchor). Its seed is wiped on drop.
#[derive(Debug, uniffi::Object)]
pub struct RootKey {
    inner: cert::RootKey,
}

#[uniffi::export]
impl RootKey {
    /// The root key with this 32-byte Ed25519 seed.
    #[uniffi::constructor]
    pub fn from_seed(seed: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(RootKey { inner: cert::RootKey::from_seed(&*seed_arg(seed)?) }))
    }

    /// A fresh root key.
    #[uniffi::constructor]
    pub fn generate() -> Arc<Self> {
        Arc::new(RootKey { inner: cert::RootKey::generate(&mut rng()) })
    }

    /// The public key (32 bytes): what apps pin as a trust root.
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }

    /// An agency certificate (type 0x51) for `agency_key`, valid for `domains` from
    /// `not_before` (inclusive) to `not_after` (exclusive).
    pub fn certify_agency(
        &self,
        serial: u64,
        agency_key: Vec<u8>,
        name: String,
        domains: Vec<String>,
        not_before: u64,
        not_after: u64,
    ) -> Result<Vec<u8>> {
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        let c = self
            .inner
            .certify_agency(serial, &key32(&agency_key)?, &name, &domains, not_before, not_after)
            .map_err(err)?;
        Ok(c.to_bytes())
    }

    /// A signed revocation list (type 0x54) of agency-certificate serials.
    pub fn revocation_list(&self, seq: u64, issued_at: u64, serials: Vec<u64>) -> Result<Vec<u8>> {
        Ok(self.inner.revocation_list(seq, issued_at, &serials).map_err(err)?.to_bytes())
    }
}

/// An agency signing key. Its seed is wiped on drop.
#[derive(Debug, uniffi::Object)]
pub struct AgencyKey {
    inner: cert::AgencyKey,
}

#[uniffi::export]
impl AgencyKey {
    /// The agency key with this 32-byte Ed25519 seed.
    #[uniffi::constructor]
    pub fn from_seed(seed: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(AgencyKey { inner: cert::AgencyKey::from_seed(&*seed_arg(seed)?) }))
    }

    /// A fresh agency key.
    #[uniffi::constructor]
    pub fn generate() -> Arc<Self> {
        Arc::new(AgencyKey { inner: cert::AgencyKey::generate(&mut rng()) })
    }

    /// The public key (32 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }

    /// A device certificate (type 0x52): device `address` (`user/device`) holds
    /// `identity_key`.
    pub fn certify_device(
        &self,
        serial: u64,
        address: String,
        identity_key: Vec<u8>,
        not_before: u64,
        not_after: u64,
    ) -> Result<Vec<u8>> {
        let address = DeviceAddress::parse(&address).map_err(err)?;
        let identity = identity_key_arg(&identity_key)?;
        let c = self.inner.certify_device(serial, &address, &identity, not_before, not_after).map_err(err)?;
        Ok(c.to_bytes())
    }

    /// A signed revocation list (type 0x54) of device-certificate serials.
    pub fn revocation_list(&self, seq: u64, issued_at: u64, serials: Vec<u64>) -> Result<Vec<u8>> {
        Ok(self.inner.revocation_list(seq, issued_at, &serials).map_err(err)?.to_bytes())
    }
}

/// The chain (type 0x53) of a device certificate and its agency's certificate.
#[uniffi::export]
pub fn certificate_chain(device_certificate: Vec<u8>, agency_certificate: Vec<u8>) -> Result<Vec<u8>> {
    let d = cert::DeviceCertificate::from_bytes(&device_certificate).map_err(err)?;
    let a = cert::AgencyCertificate::from_bytes(&agency_certificate).map_err(err)?;
    Ok(cert::CertificateChain::new(d, a).to_bytes())
}

/// Verifies `chain` under `roots` with the given revocation lists at `now` (protocol
/// 15.8), without a device. Each list is applied first (and may itself be refused).
#[uniffi::export]
pub fn verify_certificate_chain(
    chain: Vec<u8>,
    roots: Vec<Vec<u8>>,
    revocation_lists: Vec<RevocationEntry>,
    now: u64,
) -> Result<Arc<VerifiedDevice>> {
    let roots = cert::TrustRoots::new(&roots_arg(&roots)?).map_err(err)?;
    let mut revocations = cert::Revocations::new();
    for e in &revocation_lists {
        let agency =
            e.agency_certificate.as_deref().map(cert::AgencyCertificate::from_bytes).transpose().map_err(err)?;
        let _ = revocations.apply(&e.list, &roots, agency.as_ref(), now).map_err(err)?;
    }
    let inner = cert::verify_device(&chain, &roots, &revocations, now).map_err(err)?;
    Ok(Arc::new(VerifiedDevice { inner }))
}

#[uniffi::export]
impl Device {
    /// Replaces the trust roots (32-byte Ed25519 public keys, at most 16).
    pub fn set_trust_roots(&self, roots: Vec<Vec<u8>>) -> Result<()> {
        let roots = roots_arg(&roots)?;
        self.with(|d| d.set_trust_roots(&roots))
    }

    /// Whether a session start needs a verified certificate (refused with
    /// `CertificateRequired` otherwise, before any key agreement).
    pub fn set_require_certificate(&self, require: bool) -> Result<()> {
        self.with(|d| {
            d.set_require_certificate(require);
            Ok(())
        })
    }

    /// Whether session starts need a verified certificate.
    pub fn require_certificate(&self) -> bool {
        self.lock().trust_anchors().require_certificate()
    }

    /// Applies a signed revocation list: issued by a held root, or by the agency of
    /// `agency_certificate` (verified under the held roots at `now`).
    pub fn apply_revocation_list(
        &self,
        list: Vec<u8>,
        agency_certificate: Option<Vec<u8>>,
        now: u64,
    ) -> Result<RevocationUpdate> {
        Ok(self.with(|d| d.apply_revocation_list(&list, agency_certificate.as_deref(), now))?.into())
    }

    /// Verifies a certificate chain with the held roots and revocation lists at `now`.
    pub fn verify_device(&self, chain: Vec<u8>, now: u64) -> Result<Arc<VerifiedDevice>> {
        let inner = self.lock().verify_device(&chain, now)?;
        Ok(Arc::new(VerifiedDevice { inner }))
    }

    /// Starts a session from a bundle whose identity `certificate` certifies for `peer`
    /// (`CertificateMismatch` otherwise). Under policy `Certified` a changed identity is
    /// approved at once.
    pub fn initiate_certified(
        &self,
        peer: String,
        bundle: Vec<u8>,
        certificate: Arc<VerifiedDevice>,
    ) -> Result<IdentityEvent> {
        let bundle = core::PreKeyBundle::from_bytes(&bundle).map_err(err)?;
        Ok(self.with(|d| d.initiate_certified(&peer, &bundle, &certificate.inner, &mut rng()))?.into())
    }

    /// Decrypts a message whose sender identity `certificate` certifies for `peer`
    /// (`CertificateMismatch` otherwise, nothing changes).
    pub fn decrypt_certified(
        &self,
        peer: String,
        message: Vec<u8>,
        certificate: Arc<VerifiedDevice>,
    ) -> Result<DecryptResult> {
        let d = self.with(|d| d.decrypt_certified(&peer, &message, &certificate.inner, &mut rng()))?;
        Ok(DecryptResult {
            plaintext: d.plaintext,
            sender_identity: d.sender.to_bytes().to_vec(),
            identity_event: d.identity.into(),
        })
    }

    /// Approves `peer`'s pending identity change that `certificate` certifies
    /// (`CertificateMismatch` otherwise, also when nothing is pending).
    pub fn approve_certified(&self, peer: String, certificate: Arc<VerifiedDevice>) -> Result<()> {
        self.with(|d| d.approve_certified(&peer, &certificate.inner))
    }
}
