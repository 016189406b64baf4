//! Agency-certified identities (issue 11, part 2; `docs/protocol.md` §15.4–15.9).
//!
//! A government trust chain, so that verification does not depend on users comparing
//! numbers by hand:
//!
//! ```text
//! root key (offline trust anchor, pinned in the app)
//!   └─ AgencyCertificate (0x51): agency key, name, email domains, validity
//!        └─ DeviceCertificate (0x52): user id, device id, identity key, validity
//! CertificateChain (0x53) = device certificate || agency certificate
//! RevocationList (0x54): serials revoked by one issuer (a root or an agency)
//! ```
//! Every object is a compact versioned binary layout, signed with Ed25519 over a
//! domain-separation label followed by every byte before the signature. Decoding is
//! canonical: one certificate has exactly one encoding (domains strictly ascending,
//! revoked serials strictly ascending, names re-checked with the `address` grammar).
//!
//! [`verify_device`] runs a fixed check order (documented on the function and in the
//! spec) and returns a [`VerifiedDevice`] proof, or exactly why the chain was refused.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use super::address::{check_domain, DeviceAddress, DeviceId, UserId, MAX_DEVICE_ID_BYTES, MAX_USER_ID_BYTES};
use crate::keys::{IdentityKey, KeyError, IDENTITY_KEY_BYTES};
use crate::labels;
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Longest agency name, in bytes of UTF-8.
pub const MAX_AGENCY_NAME_BYTES: usize = 64;
/// Most email domains one agency certificate may name.
pub const MAX_AGENCY_DOMAINS: usize = 16;
/// Longest domain an agency certificate may name (the `address` grammar's bound).
const MAX_DOMAIN_BYTES: usize = 253;
/// Length of an Ed25519 signature.
const SIGNATURE_BYTES: usize = 64;
/// Largest agency certificate: header, serial, two keys, name, validity, 16 domains of
/// 253 bytes, signature.
pub const MAX_AGENCY_CERTIFICATE_BYTES: usize = 2
    + 8
    + 32
    + 32
    + 1
    + MAX_AGENCY_NAME_BYTES
    + 16
    + 1
    + MAX_AGENCY_DOMAINS * (1 + MAX_DOMAIN_BYTES)
    + SIGNATURE_BYTES;
/// Largest device certificate: header, serial, issuer key, user id, device id, identity
/// key, validity, signature.
pub const MAX_DEVICE_CERTIFICATE_BYTES: usize =
    2 + 8 + 32 + 1 + MAX_USER_ID_BYTES + 1 + MAX_DEVICE_ID_BYTES + IDENTITY_KEY_BYTES + 16 + SIGNATURE_BYTES;
/// Largest certificate chain: header and the two length-prefixed certificates.
pub const MAX_CERTIFICATE_CHAIN_BYTES: usize = 2 + 2 + MAX_DEVICE_CERTIFICATE_BYTES + 2 + MAX_AGENCY_CERTIFICATE_BYTES;
/// Most serials one revocation list may hold.
pub const MAX_REVOKED_SERIALS: usize = 4096;
/// Largest revocation list.
pub const MAX_REVOCATION_LIST_BYTES: usize = 2 + 32 + 8 + 8 + 2 + MAX_REVOKED_SERIALS * 8 + SIGNATURE_BYTES;
/// Most root keys a [`TrustRoots`] holds.
pub const MAX_TRUST_ROOTS: usize = 16;
/// Most issuers (roots and agencies) whose newest revocation list [`Revocations`] holds.
pub const MAX_REVOCATION_ISSUERS: usize = 256;

/// Which certificate of a chain a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// The agency certificate (issued by a root).
    Agency,
    /// The device certificate (issued by an agency).
    Device,
}

/// Why a certificate, chain or revocation list was refused (or could not be issued).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    /// The bytes do not follow their layout (or exceed its size bound).
    #[error("malformed certificate data: {0}")]
    Malformed(#[from] DecodeError),
    /// The agency certificate is issued by a key that is not one of the trust roots.
    #[error("the agency certificate is not issued by a trust root")]
    UnknownRoot,
    /// A revocation list's issuer is neither a trust root nor the agency of the agency
    /// certificate given with it.
    #[error("the revocation list's issuer is not a trust root or the given agency")]
    UnknownIssuer,
    /// A signature does not verify (or the device certificate names another issuer
    /// than the agency certificate's key).
    #[error("bad signature on the {0:?} certificate")]
    BadSignature(CertificateKind),
    /// A revocation list's signature does not verify.
    #[error("bad signature on the revocation list")]
    BadListSignature,
    /// `now < not_before`.
    #[error("the {kind:?} certificate is valid from {not_before}")]
    NotYetValid {
        /// The certificate.
        kind: CertificateKind,
        /// Its first valid second.
        not_before: u64,
    },
    /// `now >= not_after`.
    #[error("the {kind:?} certificate expired at {not_after}")]
    Expired {
        /// The certificate.
        kind: CertificateKind,
        /// Its first invalid second.
        not_after: u64,
    },
    /// The user id's domain is not one of the agency's domains (exact match only).
    #[error("the user's domain is not one of the agency's domains")]
    WrongDomain,
    /// The certificate's serial is on its issuer's revocation list.
    #[error("the {kind:?} certificate (serial {serial}) is revoked")]
    Revoked {
        /// The certificate.
        kind: CertificateKind,
        /// Its serial.
        serial: u64,
    },
    /// A revocation list older than (lower `seq`), or different from (same `seq`), the
    /// one held for its issuer.
    #[error("revocation list seq {seq} is stale (held: {held})")]
    StaleRevocationList {
        /// The list's sequence number.
        seq: u64,
        /// The held list's sequence number.
        held: u64,
    },
    /// More than `MAX_TRUST_ROOTS` roots, or a list from one more issuer than
    /// `MAX_REVOCATION_ISSUERS`.
    #[error("the trust anchors are full")]
    TrustAnchorsFull,
    /// A session start or change needs a verified certificate and none was given.
    #[error("a verified device certificate is required")]
    CertificateRequired,
    /// The verified certificate names another peer or identity than the bundle,
    /// message or pending change.
    #[error("the verified certificate does not match the peer or its identity")]
    CertificateMismatch,
    /// An Ed25519 public key (root, agency) is not a valid, non-weak point.
    #[error("invalid issuer key")]
    InvalidKey,
    /// Issuing refused: an input the layout cannot hold (no or too many domains, bad
    /// name, `not_after <= not_before`, too many serials, seq 0).
    #[error("invalid certificate request: {0}")]
    InvalidRequest(&'static str),
}

/// Reads a `u8 length || ASCII` field of at most `max` bytes.
fn read_short_str<'a>(r: &mut Reader<'a>, max: usize, field: &'static str) -> Result<&'a str, DecodeError> {
    let len = usize::from(r.u8()?);
    if len == 0 || len > max {
        return Err(DecodeError::InvalidValue(field));
    }
    core::str::from_utf8(r.bytes(len)?).map_err(|_| DecodeError::InvalidValue(field))
}

fn write_short_str(w: &mut Writer, s: &str) {
    // Every caller checked the length (<= 254) before.
    w.u8(s.len() as u8).bytes(s.as_bytes());
}

fn check_agency_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_AGENCY_NAME_BYTES {
        return Err("agency name length");
    }
    if name.chars().any(char::is_control) {
        return Err("agency name control character");
    }
    Ok(())
}

/// Checks a domain list: 1..=16 valid domains, strictly ascending (canonical, no
/// duplicates).
fn check_domains(domains: &[String]) -> Result<(), &'static str> {
    if domains.is_empty() || domains.len() > MAX_AGENCY_DOMAINS {
        return Err("domain count");
    }
    for d in domains {
        check_domain(d)?;
    }
    if domains.windows(2).any(|p| p[0].as_bytes() >= p[1].as_bytes()) {
        return Err("domains not strictly ascending");
    }
    Ok(())
}

fn check_validity(not_before: u64, not_after: u64) -> Result<(), &'static str> {
    if not_after <= not_before {
        return Err("not_after must be after not_before");
    }
    Ok(())
}

/// `not_before <= now < not_after`, else which bound fails.
fn check_time(kind: CertificateKind, not_before: u64, not_after: u64, now: u64) -> Result<(), CertificateError> {
    if now < not_before {
        return Err(CertificateError::NotYetValid { kind, not_before });
    }
    if now >= not_after {
        return Err(CertificateError::Expired { kind, not_after });
    }
    Ok(())
}

/// A valid, non-weak Ed25519 public key.
fn verifying_key(key: &[u8; 32]) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(key).ok().filter(|vk| !vk.is_weak())
}

/// Strict Ed25519 verification of `label || signed`.
fn verify(key: &[u8; 32], label: &[u8], signed: &[u8], signature: &[u8; 64]) -> bool {
    let Some(vk) = verifying_key(key) else { return false };
    let mut data = Vec::with_capacity(label.len() + signed.len());
    data.extend_from_slice(label);
    data.extend_from_slice(signed);
    vk.verify_strict(&data, &Signature::from_bytes(signature)).is_ok()
}

/// Splits an encoding into the signed bytes and the trailing 64-byte signature.
fn split_signature(encoded: &[u8]) -> (&[u8], [u8; 64]) {
    let at = encoded.len().saturating_sub(SIGNATURE_BYTES);
    let mut sig = [0u8; 64];
    if let Some(s) = encoded.get(at..) {
        if s.len() == SIGNATURE_BYTES {
            sig.copy_from_slice(s);
        }
    }
    (encoded.get(..at).unwrap_or(&[]), sig)
}

/// A root's certificate for an agency key: the agency may certify devices of users in
/// exactly its `domains`, from `not_before` (inclusive) to `not_after` (exclusive).
///
/// Decoding checks the layout only; [`verify_device`] checks the signature, the issuer
/// and the validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyCertificate {
    serial: u64,
    issuer: [u8; 32],
    agency_key: [u8; 32],
    name: String,
    not_before: u64,
    not_after: u64,
    domains: Vec<String>,
    encoded: Vec<u8>,
}

impl AgencyCertificate {
    /// Decodes an agency certificate (type 0x51), refusing any non-canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader::open(bytes, type_byte::AGENCY_CERTIFICATE, MAX_AGENCY_CERTIFICATE_BYTES)?;
        let serial = r.u64()?;
        let issuer = r.array()?;
        let agency_key = r.array()?;
        let name = read_short_str(&mut r, MAX_AGENCY_NAME_BYTES, "agency name")?.to_owned();
        check_agency_name(&name).map_err(DecodeError::InvalidValue)?;
        let not_before = r.u64()?;
        let not_after = r.u64()?;
        check_validity(not_before, not_after).map_err(|_| DecodeError::InvalidValue("agency validity"))?;
        let count = usize::from(r.u8()?);
        if count == 0 || count > MAX_AGENCY_DOMAINS {
            return Err(DecodeError::InvalidValue("domain count").into());
        }
        let mut domains = Vec::with_capacity(count);
        for _ in 0..count {
            domains.push(read_short_str(&mut r, MAX_DOMAIN_BYTES, "domain")?.to_owned());
        }
        check_domains(&domains).map_err(DecodeError::InvalidValue)?;
        r.bytes(SIGNATURE_BYTES)?;
        r.finish()?;
        Ok(AgencyCertificate {
            serial,
            issuer,
            agency_key,
            name,
            not_before,
            not_after,
            domains,
            encoded: bytes.to_vec(),
        })
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The serial (scoped to the issuing root).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The issuing root's public key.
    pub fn issuer(&self) -> &[u8; 32] {
        &self.issuer
    }

    /// The agency's public key.
    pub fn agency_key(&self) -> &[u8; 32] {
        &self.agency_key
    }

    /// The agency's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// First valid second.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// First second no longer valid.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// The email domains the agency may certify users of, ascending.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Checks the agency certificate alone under `roots` at `now`, in the chain's order:
    /// issuer is a root, root signature, validity. (Revocation is checked by
    /// [`verify_device`] and not here.)
    pub fn verify(&self, roots: &TrustRoots, now: u64) -> Result<(), CertificateError> {
        if !roots.contains(&self.issuer) {
            return Err(CertificateError::UnknownRoot);
        }
        let (signed, sig) = split_signature(&self.encoded);
        if !verify(&self.issuer, labels::SIG_AGENCY_CERTIFICATE, signed, &sig) {
            return Err(CertificateError::BadSignature(CertificateKind::Agency));
        }
        check_time(CertificateKind::Agency, self.not_before, self.not_after, now)
    }
}

/// An agency's certificate for one device of one user: the device `address`
/// (`user/device`) holds `identity`, from `not_before` to `not_after` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    serial: u64,
    issuer: [u8; 32],
    address: DeviceAddress,
    identity: IdentityKey,
    not_before: u64,
    not_after: u64,
    encoded: Vec<u8>,
}

impl DeviceCertificate {
    /// Decodes a device certificate (type 0x52): the ids are re-checked with
    /// [`UserId::parse`] / [`DeviceId::parse`], the identity key is fully validated.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader::open(bytes, type_byte::DEVICE_CERTIFICATE, MAX_DEVICE_CERTIFICATE_BYTES)?;
        let serial = r.u64()?;
        let issuer = r.array()?;
        let user = read_short_str(&mut r, MAX_USER_ID_BYTES, "user id")?;
        let user = UserId::parse(user).map_err(|_| DecodeError::InvalidValue("user id"))?;
        let device = read_short_str(&mut r, MAX_DEVICE_ID_BYTES, "device id")?;
        let device = DeviceId::parse(device).map_err(|_| DecodeError::InvalidValue("device id"))?;
        let identity = IdentityKey::read(&mut r).map_err(|e| match e {
            KeyError::Decode(d) => d,
            _ => DecodeError::InvalidValue("identity key"),
        })?;
        let not_before = r.u64()?;
        let not_after = r.u64()?;
        check_validity(not_before, not_after).map_err(|_| DecodeError::InvalidValue("device validity"))?;
        r.bytes(SIGNATURE_BYTES)?;
        r.finish()?;
        Ok(DeviceCertificate {
            serial,
            issuer,
            address: DeviceAddress::new(user, device),
            identity,
            not_before,
            not_after,
            encoded: bytes.to_vec(),
        })
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The serial (scoped to the issuing agency).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The issuing agency's public key.
    pub fn issuer(&self) -> &[u8; 32] {
        &self.issuer
    }

    /// The certified device.
    pub fn address(&self) -> &DeviceAddress {
        &self.address
    }

    /// The certified identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// First valid second.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// First second no longer valid.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }
}

/// What a device presents: its certificate and the certificate of the agency that
/// issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateChain {
    device: DeviceCertificate,
    agency: AgencyCertificate,
}

impl CertificateChain {
    /// Pairs a device certificate with its agency's certificate (no check: see
    /// [`verify_device`]).
    pub fn new(device: DeviceCertificate, agency: AgencyCertificate) -> Self {
        CertificateChain { device, agency }
    }

    /// Decodes a chain (type 0x53): `u16 len || device certificate || u16 len || agency
    /// certificate`, each decoded as above.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader::open(bytes, type_byte::CERTIFICATE_CHAIN, MAX_CERTIFICATE_CHAIN_BYTES)?;
        let len = usize::from(r.u16()?);
        let device = DeviceCertificate::from_bytes(r.bytes(len)?)?;
        let len = usize::from(r.u16()?);
        let agency = AgencyCertificate::from_bytes(r.bytes(len)?)?;
        r.finish()?;
        Ok(CertificateChain { device, agency })
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(
            type_byte::CERTIFICATE_CHAIN,
            6 + self.device.encoded.len() + self.agency.encoded.len(),
        );
        // Both lengths are bounded by their MAX_*_BYTES, far below u16::MAX.
        w.u16(self.device.encoded.len() as u16).bytes(&self.device.encoded);
        w.u16(self.agency.encoded.len() as u16).bytes(&self.agency.encoded);
        w.into_bytes()
    }

    /// The device certificate.
    pub fn device(&self) -> &DeviceCertificate {
        &self.device
    }

    /// The agency certificate.
    pub fn agency(&self) -> &AgencyCertificate {
        &self.agency
    }
}

/// The serials one issuer (a root: agency certificate serials; an agency: device
/// certificate serials) has revoked, with a monotonic sequence number and the time it
/// was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    issuer: [u8; 32],
    seq: u64,
    issued_at: u64,
    serials: Vec<u64>,
    encoded: Vec<u8>,
}

impl RevocationList {
    /// Decodes a revocation list (type 0x54): seq >= 1, at most `MAX_REVOKED_SERIALS`
    /// serials, strictly ascending. The signature is checked by [`Revocations::apply`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader::open(bytes, type_byte::REVOCATION_LIST, MAX_REVOCATION_LIST_BYTES)?;
        let issuer = r.array()?;
        let seq = r.u64()?;
        if seq == 0 {
            return Err(DecodeError::InvalidValue("revocation list seq").into());
        }
        let issued_at = r.u64()?;
        let count = usize::from(r.u16()?);
        if count > MAX_REVOKED_SERIALS {
            return Err(DecodeError::InvalidValue("revoked serial count").into());
        }
        let mut serials = Vec::with_capacity(count);
        for _ in 0..count {
            let s = r.u64()?;
            if serials.last().is_some_and(|last| *last >= s) {
                return Err(DecodeError::InvalidValue("revoked serials not strictly ascending").into());
            }
            serials.push(s);
        }
        r.bytes(SIGNATURE_BYTES)?;
        r.finish()?;
        Ok(RevocationList { issuer, seq, issued_at, serials, encoded: bytes.to_vec() })
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The length of the encoding.
    pub(crate) fn encoded_len(&self) -> usize {
        self.encoded.len()
    }

    /// The issuer's public key.
    pub fn issuer(&self) -> &[u8; 32] {
        &self.issuer
    }

    /// The sequence number (>= 1; a newer list has a higher one).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the issuer issued it (Unix seconds).
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// The revoked serials, ascending.
    pub fn serials(&self) -> &[u64] {
        &self.serials
    }

    /// Whether `serial` is revoked.
    pub fn revokes(&self, serial: u64) -> bool {
        self.serials.binary_search(&serial).is_ok()
    }

    fn verify_signature(&self) -> Result<(), CertificateError> {
        let (signed, sig) = split_signature(&self.encoded);
        if !verify(&self.issuer, labels::SIG_REVOCATION_LIST, signed, &sig) {
            return Err(CertificateError::BadListSignature);
        }
        Ok(())
    }
}

/// An issuing key (root or agency): an Ed25519 signing key whose seed is wiped on drop.
#[derive(Clone)]
struct IssuerKey {
    signing: SigningKey,
}

impl IssuerKey {
    fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(&seed)
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        IssuerKey { signing: SigningKey::from_bytes(seed) }
    }

    fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Appends the signature over `label || w's bytes` and returns the encoding.
    fn sign_into(&self, label: &[u8], w: Writer) -> Vec<u8> {
        let mut bytes = w.into_bytes();
        let mut data = Vec::with_capacity(label.len() + bytes.len());
        data.extend_from_slice(label);
        data.extend_from_slice(&bytes);
        bytes.extend_from_slice(&self.signing.sign(&data).to_bytes());
        bytes
    }

    fn revocation_list(&self, seq: u64, issued_at: u64, serials: &[u64]) -> Result<RevocationList, CertificateError> {
        if seq == 0 {
            return Err(CertificateError::InvalidRequest("seq must be at least 1"));
        }
        let mut sorted = serials.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() > MAX_REVOKED_SERIALS {
            return Err(CertificateError::InvalidRequest("too many serials"));
        }
        let mut w = Writer::with_header(type_byte::REVOCATION_LIST, 54 + sorted.len() * 8 + SIGNATURE_BYTES);
        w.bytes(&self.public_key()).u64(seq).u64(issued_at).u16(sorted.len() as u16);
        for s in &sorted {
            w.u64(*s);
        }
        let encoded = self.sign_into(labels::SIG_REVOCATION_LIST, w);
        Ok(RevocationList { issuer: self.public_key(), seq, issued_at, serials: sorted, encoded })
    }
}

macro_rules! issuer_common {
    ($t:ident, $what:literal) => {
        impl $t {
            #[doc = concat!("A fresh ", $what, " key from `rng`.")]
            pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                $t(IssuerKey::generate(rng))
            }

            #[doc = concat!("The ", $what, " key with this Ed25519 seed.")]
            pub fn from_seed(seed: &[u8; 32]) -> Self {
                $t(IssuerKey::from_seed(seed))
            }

            /// The Ed25519 public key.
            pub fn public_key(&self) -> [u8; 32] {
                self.0.public_key()
            }

            /// A signed revocation list of `serials` (sorted, duplicates dropped) with
            /// sequence number `seq` (>= 1) issued at `issued_at`.
            pub fn revocation_list(
                &self,
                seq: u64,
                issued_at: u64,
                serials: &[u64],
            ) -> Result<RevocationList, CertificateError> {
                self.0.revocation_list(seq, issued_at, serials)
            }
        }

        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({:02x?}.., seed: <redacted>)", stringify!($t), &self.public_key()[..4])
            }
        }
    };
}

/// A root signing key (the offline trust anchor): certifies agencies and revokes
/// their certificates. Its seed is wiped on drop and never printed.
#[derive(Clone)]
pub struct RootKey(IssuerKey);

/// An agency signing key: certifies user devices in its domains and revokes their
/// certificates. Its seed is wiped on drop and never printed.
#[derive(Clone)]
pub struct AgencyKey(IssuerKey);

issuer_common!(RootKey, "root");
issuer_common!(AgencyKey, "agency");

impl RootKey {
    /// Certifies `agency_key` under `name` for exactly `domains` (sorted here; each a
    /// valid domain, no duplicates), valid for `not_before <= now < not_after`.
    /// Refuses an invalid key, name, domain list or validity.
    pub fn certify_agency(
        &self,
        serial: u64,
        agency_key: &[u8; 32],
        name: &str,
        domains: &[&str],
        not_before: u64,
        not_after: u64,
    ) -> Result<AgencyCertificate, CertificateError> {
        if verifying_key(agency_key).is_none() {
            return Err(CertificateError::InvalidKey);
        }
        check_agency_name(name).map_err(CertificateError::InvalidRequest)?;
        let mut sorted: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
        sorted.sort_unstable();
        check_domains(&sorted).map_err(CertificateError::InvalidRequest)?;
        check_validity(not_before, not_after).map_err(CertificateError::InvalidRequest)?;
        let mut w = Writer::with_header(type_byte::AGENCY_CERTIFICATE, MAX_AGENCY_CERTIFICATE_BYTES);
        w.u64(serial).bytes(&self.public_key()).bytes(agency_key);
        write_short_str(&mut w, name);
        w.u64(not_before).u64(not_after).u8(sorted.len() as u8);
        for d in &sorted {
            write_short_str(&mut w, d);
        }
        let encoded = self.0.sign_into(labels::SIG_AGENCY_CERTIFICATE, w);
        Ok(AgencyCertificate {
            serial,
            issuer: self.public_key(),
            agency_key: *agency_key,
            name: name.to_owned(),
            not_before,
            not_after,
            domains: sorted,
            encoded,
        })
    }
}

impl AgencyKey {
    /// Certifies that device `address` holds `identity`, valid for
    /// `not_before <= now < not_after`. The agency does not check here that the user's
    /// domain is one of its own: [`verify_device`] refuses it (`WrongDomain`).
    pub fn certify_device(
        &self,
        serial: u64,
        address: &DeviceAddress,
        identity: &IdentityKey,
        not_before: u64,
        not_after: u64,
    ) -> Result<DeviceCertificate, CertificateError> {
        check_validity(not_before, not_after).map_err(CertificateError::InvalidRequest)?;
        let mut w = Writer::with_header(type_byte::DEVICE_CERTIFICATE, MAX_DEVICE_CERTIFICATE_BYTES);
        w.u64(serial).bytes(&self.public_key());
        write_short_str(&mut w, address.user().as_str());
        write_short_str(&mut w, address.device().as_str());
        identity.write(&mut w);
        w.u64(not_before).u64(not_after);
        let encoded = self.0.sign_into(labels::SIG_DEVICE_CERTIFICATE, w);
        Ok(DeviceCertificate {
            serial,
            issuer: self.public_key(),
            address: address.clone(),
            identity: *identity,
            not_before,
            not_after,
            encoded,
        })
    }
}

/// The root public keys an app trusts (pinned at build time or by the device
/// management), at most `MAX_TRUST_ROOTS`, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustRoots {
    keys: BTreeSet<[u8; 32]>,
}

impl TrustRoots {
    /// The set of `keys` (duplicates merged). Refuses an invalid or weak Ed25519 key
    /// (`InvalidKey`) and more than `MAX_TRUST_ROOTS` keys (`TrustAnchorsFull`).
    pub fn new(keys: &[[u8; 32]]) -> Result<Self, CertificateError> {
        let mut set = BTreeSet::new();
        for k in keys {
            if verifying_key(k).is_none() {
                return Err(CertificateError::InvalidKey);
            }
            set.insert(*k);
        }
        if set.len() > MAX_TRUST_ROOTS {
            return Err(CertificateError::TrustAnchorsFull);
        }
        Ok(TrustRoots { keys: set })
    }

    /// Whether `key` is a root.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    /// The roots, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.keys.iter()
    }

    /// Number of roots.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no root (then no chain verifies).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What [`Revocations::apply`] did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationUpdate {
    /// The list is now the one held for its issuer.
    Applied,
    /// The very same list was already held: nothing changed.
    Unchanged,
}

/// The newest accepted revocation list of each issuer (at most
/// `MAX_REVOCATION_ISSUERS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    lists: BTreeMap<[u8; 32], RevocationList>,
}

impl Revocations {
    /// No lists.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts a revocation list, in this order: decode (`Malformed`); the issuer is a
    /// root, or the agency key of `agency_certificate`, which must verify under `roots`
    /// at `now` (`UnknownIssuer`, or that certificate's error); the list's signature
    /// (`BadListSignature`); against the list held for the issuer: the same bytes are
    /// `Unchanged`, a lower seq or the same seq with other contents is
    /// `StaleRevocationList`; a new issuer past `MAX_REVOCATION_ISSUERS` is
    /// `TrustAnchorsFull`. On any error nothing changes.
    ///
    /// A server can withhold a newer list (the app should fetch lists from its agency
    /// and alert when `issued_at` is old) but cannot roll one back or forge one.
    pub fn apply(
        &mut self,
        list: &[u8],
        roots: &TrustRoots,
        agency_certificate: Option<&AgencyCertificate>,
        now: u64,
    ) -> Result<RevocationUpdate, CertificateError> {
        self.apply_list(RevocationList::from_bytes(list)?, roots, agency_certificate, now)
    }

    /// [`Revocations::apply`] on a decoded list.
    pub(crate) fn apply_list(
        &mut self,
        list: RevocationList,
        roots: &TrustRoots,
        agency_certificate: Option<&AgencyCertificate>,
        now: u64,
    ) -> Result<RevocationUpdate, CertificateError> {
        self.check(&list, roots, agency_certificate, now)?;
        if self.lists.get(&list.issuer).is_some_and(|held| held.encoded == list.encoded) {
            return Ok(RevocationUpdate::Unchanged);
        }
        self.lists.insert(list.issuer, list);
        Ok(RevocationUpdate::Applied)
    }

    /// Every check of [`Revocations::apply`], changing nothing.
    fn check(
        &self,
        list: &RevocationList,
        roots: &TrustRoots,
        agency_certificate: Option<&AgencyCertificate>,
        now: u64,
    ) -> Result<(), CertificateError> {
        if !roots.contains(&list.issuer) {
            let agency = agency_certificate.ok_or(CertificateError::UnknownIssuer)?;
            if agency.agency_key != list.issuer {
                return Err(CertificateError::UnknownIssuer);
            }
            agency.verify(roots, now)?;
        }
        list.verify_signature()?;
        match self.lists.get(&list.issuer) {
            Some(held) if held.encoded == list.encoded => Ok(()),
            Some(held) if list.seq <= held.seq => {
                Err(CertificateError::StaleRevocationList { seq: list.seq, held: held.seq })
            }
            None if self.lists.len() >= MAX_REVOCATION_ISSUERS => Err(CertificateError::TrustAnchorsFull),
            _ => Ok(()),
        }
    }

    /// The list held for `issuer`.
    pub fn list(&self, issuer: &[u8; 32]) -> Option<&RevocationList> {
        self.lists.get(issuer)
    }

    /// Whether `issuer`'s held list revokes `serial`.
    pub fn is_revoked(&self, issuer: &[u8; 32], serial: u64) -> bool {
        self.lists.get(issuer).is_some_and(|l| l.revokes(serial))
    }

    /// Every held list, by issuer.
    pub fn lists(&self) -> impl Iterator<Item = &RevocationList> {
        self.lists.values()
    }

    /// Drops every list.
    pub fn clear(&mut self) {
        self.lists.clear();
    }
}

/// A device identity that [`verify_device`] verified: the proof the session-start and
/// identity-change calls take. Only `verify_device` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDevice {
    address: DeviceAddress,
    identity: IdentityKey,
    agency_name: String,
    agency_key: [u8; 32],
    serial: u64,
    not_after: u64,
}

impl VerifiedDevice {
    /// The certified device (`address().peer_name()` is its peer name).
    pub fn address(&self) -> &DeviceAddress {
        &self.address
    }

    /// The certified identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// The certifying agency's name.
    pub fn agency_name(&self) -> &str {
        &self.agency_name
    }

    /// The certifying agency's key.
    pub fn agency_key(&self) -> &[u8; 32] {
        &self.agency_key
    }

    /// The device certificate's serial.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// When the proof stops holding: the earlier of both certificates' `not_after`.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Whether this proof certifies `identity` for the peer named `peer`.
    pub fn certifies(&self, peer: &str, identity: &IdentityKey) -> bool {
        self.address.peer_name() == peer && &self.identity == identity
    }
}

/// Verifies a device certificate chain under `roots` and `revocations` at `now`.
///
/// The checks run in this fixed order and the first failure is returned:
/// 1. decode the chain (`Malformed`);
/// 2. the agency certificate's issuer is a root (`UnknownRoot`);
/// 3. the root's signature on it (`BadSignature(Agency)`);
/// 4. its validity, `not_before <= now < not_after` (`NotYetValid` / `Expired`);
/// 5. its serial is not on the root's revocation list (`Revoked(Agency)`);
/// 6. the device certificate's issuer is the agency key, and the agency's signature on
///    it (`BadSignature(Device)`);
/// 7. its validity (`NotYetValid` / `Expired`);
/// 8. the user id's domain is exactly one of the agency's domains (`WrongDomain`; no
///    wildcard, no subdomain);
/// 9. its serial is not on the agency's revocation list (`Revoked(Device)`).
pub fn verify_device(
    chain: &[u8],
    roots: &TrustRoots,
    revocations: &Revocations,
    now: u64,
) -> Result<VerifiedDevice, CertificateError> {
    verify_chain(&CertificateChain::from_bytes(chain)?, roots, revocations, now)
}

/// [`verify_device`] on a decoded chain (steps 2 to 9).
pub fn verify_chain(
    chain: &CertificateChain,
    roots: &TrustRoots,
    revocations: &Revocations,
    now: u64,
) -> Result<VerifiedDevice, CertificateError> {
    let (agency, device) = (&chain.agency, &chain.device);
    agency.verify(roots, now)?;
    if revocations.is_revoked(&agency.issuer, agency.serial) {
        return Err(CertificateError::Revoked { kind: CertificateKind::Agency, serial: agency.serial });
    }
    let (signed, sig) = split_signature(&device.encoded);
    if device.issuer != agency.agency_key || !verify(&agency.agency_key, labels::SIG_DEVICE_CERTIFICATE, signed, &sig) {
        return Err(CertificateError::BadSignature(CertificateKind::Device));
    }
    check_time(CertificateKind::Device, device.not_before, device.not_after, now)?;
    let domain = device.address.user().domain();
    if !agency.domains.iter().any(|d| d == domain) {
        return Err(CertificateError::WrongDomain);
    }
    if revocations.is_revoked(&device.issuer, device.serial) {
        return Err(CertificateError::Revoked { kind: CertificateKind::Device, serial: device.serial });
    }
    Ok(VerifiedDevice {
        address: device.address.clone(),
        identity: device.identity,
        agency_name: agency.name.clone(),
        agency_key: agency.agency_key,
        serial: device.serial,
        not_after: device.not_after.min(agency.not_after),
    })
}

/// What a device holds for certified identities: the roots, the revocation lists and
/// whether a session start needs a verified certificate. Persisted in the device state
/// (the trust-anchor section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustAnchors {
    pub(crate) roots: TrustRoots,
    pub(crate) revocations: Revocations,
    pub(crate) require_certificate: bool,
}

impl TrustAnchors {
    /// The roots.
    pub fn roots(&self) -> &TrustRoots {
        &self.roots
    }

    /// The revocation lists.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Whether session starts need a verified certificate.
    pub fn require_certificate(&self) -> bool {
        self.require_certificate
    }

    /// The exact length of [`TrustAnchors::write`]'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        1 + 32 * self.roots.len() + 1 + 2 + self.revocations.lists.values().map(|l| 4 + l.encoded.len()).sum::<usize>()
    }

    /// `u8 root count || roots || flag || u16 list count || (u32 len || list)*`.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u8(self.roots.len() as u8);
        for k in self.roots.keys() {
            w.bytes(k);
        }
        w.flag(self.require_certificate);
        w.u16(self.revocations.lists.len() as u16);
        for l in self.revocations.lists.values() {
            w.var_bytes(&l.encoded);
        }
    }

    /// Reads what [`TrustAnchors::write`] wrote (authenticated state: the lists'
    /// signatures were checked when they were applied; the layouts are checked again).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = usize::from(r.u8()?);
        if n > MAX_TRUST_ROOTS {
            return Err(DecodeError::InvalidValue("trust root count"));
        }
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(r.array::<32>()?);
        }
        let roots = TrustRoots::new(&keys).map_err(|_| DecodeError::InvalidValue("trust root"))?;
        if roots.len() != n {
            return Err(DecodeError::InvalidValue("duplicate trust root"));
        }
        let require_certificate = r.flag("require certificate flag")?;
        let n = usize::from(r.u16()?);
        if n > MAX_REVOCATION_ISSUERS {
            return Err(DecodeError::InvalidValue("revocation issuer count"));
        }
        let mut lists = BTreeMap::new();
        for _ in 0..n {
            let bytes = r.var_bytes(MAX_REVOCATION_LIST_BYTES, "revocation list")?;
            let list = RevocationList::from_bytes(bytes).map_err(|_| DecodeError::InvalidValue("revocation list"))?;
            if lists.insert(list.issuer, list).is_some() {
                return Err(DecodeError::InvalidValue("duplicate revocation issuer"));
            }
        }
        Ok(TrustAnchors { roots, revocations: Revocations { lists }, require_certificate })
    }
}

#[cfg(test)]
mod tests;
