//! Agency-certified identities (`docs/protocol.md` 15.4–15.10): the `RootKey` and
//! `AgencyKey` issuing classes, `certificateChain` and `verifyCertificateChain`, the
//! `VerifiedDevice` proof, and the device's trust anchors and certified calls. Serials
//! are `bigint`; times are seconds (`number`).

use gochat_e2ee as core;
use gochat_e2ee::trust::address::DeviceAddress;
use gochat_e2ee::trust::certificate as cert;
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::Zeroizing;

use crate::{decrypted_with, identity_event, identity_key, js_error, rng, seconds, Device, JsResult};

fn err(e: impl Into<core::Error>) -> JsValue {
    js_error(e.into())
}

fn key32(b: &[u8]) -> JsResult<[u8; 32]> {
    b.try_into().map_err(|_| err(core::wire::DecodeError::InvalidValue("32-byte key")))
}

fn seed(b: Vec<u8>) -> JsResult<Zeroizing<[u8; 32]>> {
    let b = Zeroizing::new(b);
    Ok(Zeroizing::new(key32(&b)?))
}

/// An array of 32-byte `Uint8Array` keys.
fn keys(v: &[JsValue]) -> JsResult<Vec<[u8; 32]>> {
    v.iter()
        .map(|k| {
            let a = k.dyn_ref::<Uint8Array>().ok_or_else(|| err(core::wire::DecodeError::InvalidValue("root key")))?;
            key32(&a.to_vec())
        })
        .collect()
}

fn update(u: cert::RevocationUpdate) -> String {
    match u {
        cert::RevocationUpdate::Applied => "applied".into(),
        cert::RevocationUpdate::Unchanged => "unchanged".into(),
    }
}

/// A device identity verified under the trust roots: what the certified calls take.
#[wasm_bindgen]
pub struct VerifiedDevice {
    inner: cert::VerifiedDevice,
}

#[wasm_bindgen]
impl VerifiedDevice {
    /// The certified peer name, `user/device`.
    #[wasm_bindgen(getter)]
    pub fn peer(&self) -> String {
        self.inner.address().peer_name()
    }

    /// The certified identity key (66 bytes).
    #[wasm_bindgen(getter, js_name = identityKey)]
    pub fn identity_key(&self) -> Vec<u8> {
        self.inner.identity().to_bytes().to_vec()
    }

    /// The certifying agency's name.
    #[wasm_bindgen(getter, js_name = agencyName)]
    pub fn agency_name(&self) -> String {
        self.inner.agency_name().to_owned()
    }

    /// The certifying agency's public key (32 bytes).
    #[wasm_bindgen(getter, js_name = agencyKey)]
    pub fn agency_key(&self) -> Vec<u8> {
        self.inner.agency_key().to_vec()
    }

    /// The device certificate's serial.
    #[wasm_bindgen(getter)]
    pub fn serial(&self) -> u64 {
        self.inner.serial()
    }

    /// When the proof stops holding (seconds).
    #[wasm_bindgen(getter, js_name = notAfter)]
    pub fn not_after(&self) -> f64 {
        self.inner.not_after() as f64
    }
}

/// A root signing key (the offline trust anchor); its seed is wiped on drop.
#[wasm_bindgen]
pub struct RootKey {
    inner: cert::RootKey,
}

#[wasm_bindgen]
impl RootKey {
    /// The root key with this 32-byte Ed25519 seed.
    #[wasm_bindgen(js_name = fromSeed)]
    pub fn from_seed(seed_bytes: Vec<u8>) -> JsResult<RootKey> {
        Ok(RootKey { inner: cert::RootKey::from_seed(&*seed(seed_bytes)?) })
    }

    /// A fresh root key.
    pub fn generate() -> RootKey {
        RootKey { inner: cert::RootKey::generate(&mut rng()) }
    }

    /// The public key (32 bytes): what apps pin as a trust root.
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }

    /// An agency certificate (type 0x51) for `agencyKey` and `domains`, valid for
    /// `notBefore <= now < notAfter`.
    #[wasm_bindgen(js_name = certifyAgency)]
    pub fn certify_agency(
        &self,
        serial: u64,
        agency_key: &[u8],
        name: &str,
        domains: Vec<String>,
        not_before: f64,
        not_after: f64,
    ) -> JsResult<Vec<u8>> {
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        let c = self
            .inner
            .certify_agency(serial, &key32(agency_key)?, name, &domains, seconds(not_before), seconds(not_after))
            .map_err(err)?;
        Ok(c.to_bytes())
    }

    /// A signed revocation list (type 0x54) of agency-certificate serials.
    #[wasm_bindgen(js_name = revocationList)]
    pub fn revocation_list(&self, seq: u64, issued_at: f64, serials: Vec<u64>) -> JsResult<Vec<u8>> {
        Ok(self.inner.revocation_list(seq, seconds(issued_at), &serials).map_err(err)?.to_bytes())
    }
}

/// An agency signing key; its seed is wiped on drop.
#[wasm_bindgen]
pub struct AgencyKey {
    inner: cert::AgencyKey,
}

#[wasm_bindgen]
impl AgencyKey {
    /// The agency key with this 32-byte Ed25519 seed.
    #[wasm_bindgen(js_name = fromSeed)]
    pub fn from_seed(seed_bytes: Vec<u8>) -> JsResult<AgencyKey> {
        Ok(AgencyKey { inner: cert::AgencyKey::from_seed(&*seed(seed_bytes)?) })
    }

    /// A fresh agency key.
    pub fn generate() -> AgencyKey {
        AgencyKey { inner: cert::AgencyKey::generate(&mut rng()) }
    }

    /// The public key (32 bytes).
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().to_vec()
    }

    /// A device certificate (type 0x52): device `address` (`user/device`) holds
    /// `identityKey`.
    #[wasm_bindgen(js_name = certifyDevice)]
    pub fn certify_device(
        &self,
        serial: u64,
        address: &str,
        identity: &[u8],
        not_before: f64,
        not_after: f64,
    ) -> JsResult<Vec<u8>> {
        let address = DeviceAddress::parse(address).map_err(err)?;
        let identity = identity_key(identity)?;
        let c = self
            .inner
            .certify_device(serial, &address, &identity, seconds(not_before), seconds(not_after))
            .map_err(err)?;
        Ok(c.to_bytes())
    }

    /// A signed revocation list (type 0x54) of device-certificate serials.
    #[wasm_bindgen(js_name = revocationList)]
    pub fn revocation_list(&self, seq: u64, issued_at: f64, serials: Vec<u64>) -> JsResult<Vec<u8>> {
        Ok(self.inner.revocation_list(seq, seconds(issued_at), &serials).map_err(err)?.to_bytes())
    }
}

/// The chain (type 0x53) of a device certificate and its agency's certificate.
#[wasm_bindgen(js_name = certificateChain)]
pub fn certificate_chain(device_certificate: &[u8], agency_certificate: &[u8]) -> JsResult<Vec<u8>> {
    let d = cert::DeviceCertificate::from_bytes(device_certificate).map_err(err)?;
    let a = cert::AgencyCertificate::from_bytes(agency_certificate).map_err(err)?;
    Ok(cert::CertificateChain::new(d, a).to_bytes())
}

/// Verifies `chain` under `roots` (32-byte keys) with `revocationLists`
/// (`{list, agencyCertificate?}`, each applied first) at `now`, without a device.
#[wasm_bindgen(js_name = verifyCertificateChain)]
pub fn verify_certificate_chain(
    chain: &[u8],
    roots: Vec<JsValue>,
    revocation_lists: Vec<JsValue>,
    now: f64,
) -> JsResult<VerifiedDevice> {
    let roots = cert::TrustRoots::new(&keys(&roots)?).map_err(err)?;
    let now = seconds(now);
    let mut revocations = cert::Revocations::new();
    for entry in &revocation_lists {
        let get = |k: &str| js_sys::Reflect::get(entry, &k.into()).ok().and_then(|v| v.dyn_into::<Uint8Array>().ok());
        let list = get("list").ok_or_else(|| err(core::wire::DecodeError::InvalidValue("revocation list")))?;
        let agency = get("agencyCertificate")
            .map(|a| cert::AgencyCertificate::from_bytes(&a.to_vec()))
            .transpose()
            .map_err(err)?;
        let _ = revocations.apply(&list.to_vec(), &roots, agency.as_ref(), now).map_err(err)?;
    }
    let inner = cert::verify_device(chain, &roots, &revocations, now).map_err(err)?;
    Ok(VerifiedDevice { inner })
}

#[wasm_bindgen]
impl Device {
    /// Replaces the trust roots (32-byte Ed25519 public keys, at most 16).
    #[wasm_bindgen(js_name = setTrustRoots)]
    pub fn set_trust_roots(&mut self, roots: Vec<JsValue>) -> JsResult<()> {
        let roots = keys(&roots)?;
        self.with(|d| d.set_trust_roots(&roots))
    }

    /// Whether a session start needs a verified certificate.
    #[wasm_bindgen(js_name = setRequireCertificate)]
    pub fn set_require_certificate(&mut self, require: bool) -> JsResult<()> {
        self.with(|d| {
            d.set_require_certificate(require);
            Ok(())
        })
    }

    /// Whether session starts need a verified certificate.
    #[wasm_bindgen(getter, js_name = requireCertificate)]
    pub fn require_certificate(&self) -> bool {
        self.dev().trust_anchors().require_certificate()
    }

    /// Applies a signed revocation list (from a held root, or from the agency of
    /// `agencyCertificate`): `'applied'` or `'unchanged'`.
    #[wasm_bindgen(js_name = applyRevocationList)]
    pub fn apply_revocation_list(
        &mut self,
        list: &[u8],
        agency_certificate: Option<Vec<u8>>,
        now: f64,
    ) -> JsResult<String> {
        let u = self.with(|d| d.apply_revocation_list(list, agency_certificate.as_deref(), seconds(now)))?;
        Ok(update(u))
    }

    /// Verifies a certificate chain with the held roots and revocation lists at `now`.
    #[wasm_bindgen(js_name = verifyDevice)]
    pub fn verify_device(&self, chain: &[u8], now: f64) -> JsResult<VerifiedDevice> {
        let inner = self.dev().verify_device(chain, seconds(now)).map_err(js_error)?;
        Ok(VerifiedDevice { inner })
    }

    /// Starts a session from a bundle whose identity `certificate` certifies for `peer`.
    #[wasm_bindgen(js_name = initiateCertified)]
    pub fn initiate_certified(&mut self, peer: &str, bundle: &[u8], certificate: &VerifiedDevice) -> JsResult<JsValue> {
        let bundle = core::PreKeyBundle::from_bytes(bundle).map_err(err)?;
        self.with(|d| d.initiate_certified(peer, &bundle, &certificate.inner, &mut rng())).map(identity_event)
    }

    /// Decrypts a message whose sender identity `certificate` certifies for `peer`:
    /// `{plaintext, senderIdentity, identityEvent, digest, redelivered: false}`.
    #[wasm_bindgen(js_name = decryptCertified)]
    pub fn decrypt_certified(&mut self, peer: &str, message: &[u8], certificate: &VerifiedDevice) -> JsResult<JsValue> {
        let d = self.with(|d| d.decrypt_certified(peer, message, &certificate.inner, &mut rng()))?;
        // Committed with the ratchet step but not kept for redelivery (only `decrypt` is).
        Ok(decrypted_with(d, &core::Device::message_digest(message), false))
    }

    /// Approves `peer`'s pending identity change that `certificate` certifies.
    #[wasm_bindgen(js_name = approveCertified)]
    pub fn approve_certified(&mut self, peer: &str, certificate: &VerifiedDevice) -> JsResult<()> {
        self.with(|d| d.approve_certified(peer, &certificate.inner))
    }
}
