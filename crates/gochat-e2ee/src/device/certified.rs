//! Certified identities on the device: the held trust anchors, and the session-start
//! and identity-change calls that take a [`VerifiedDevice`] proof. The logic is in
//! [`crate::trust::certificate`]; these are the device's delegations.

use rand_core::CryptoRng;

use super::{check_name, Device};
use crate::error::Error;
use crate::keys::{IdentityKey, PreKeyBundle};
use crate::session::{Content, Incoming};
use crate::trust::certificate::{
    self, AgencyCertificate, CertificateError, RevocationList, RevocationUpdate, TrustAnchors, TrustRoots,
    VerifiedDevice,
};
use crate::trust::IdentityEvent;
use crate::Decrypted;

impl Device {
    /// The certificate roots, revocation lists and require-certificate flag held.
    pub fn trust_anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// Replaces the trust roots (at most `MAX_TRUST_ROOTS` valid Ed25519 keys). The
    /// revocation lists held are kept. Refused without change on an invalid key, too
    /// many keys or a full state.
    pub fn set_trust_roots(&mut self, roots: &[[u8; 32]]) -> Result<(), Error> {
        let roots = TrustRoots::new(roots)?;
        self.ensure_room((32 * roots.len()).saturating_sub(32 * self.anchors.roots.len()))?;
        self.update_anchors(|a| a.roots = roots);
        Ok(())
    }

    /// Whether a session start needs a verified certificate. When on, [`Device::initiate`]
    /// and a [`Device::decrypt`] (or control message) that would start a new session
    /// are refused with `CertificateRequired` before any key agreement (no prekey is
    /// consumed); messages on existing sessions continue.
    pub fn set_require_certificate(&mut self, require: bool) {
        self.update_anchors(|a| a.require_certificate = require);
    }

    /// Applies a signed revocation list (see [`certificate::Revocations::apply`]):
    /// issued by a held root, or by the agency of `agency_certificate` (which must
    /// verify under the held roots at `now`). Refused without change on any error.
    pub fn apply_revocation_list(
        &mut self,
        list: &[u8],
        agency_certificate: Option<&[u8]>,
        now: u64,
    ) -> Result<RevocationUpdate, Error> {
        let list = RevocationList::from_bytes(list)?;
        let agency = agency_certificate.map(AgencyCertificate::from_bytes).transpose()?;
        let held = self.anchors.revocations.list(list.issuer()).map_or(0, |l| 4 + l.encoded_len());
        self.ensure_room((4 + list.encoded_len()).saturating_sub(held))?;
        let before = self.anchors.encoded_len();
        let TrustAnchors { roots, revocations, .. } = &mut *self.anchors;
        let update = revocations.apply_list(list, roots, agency.as_ref(), now)?;
        self.held = self.held - before + self.anchors.encoded_len();
        Ok(update)
    }

    /// Verifies a certificate chain under the held roots and revocation lists at `now`
    /// (see [`certificate::verify_device`] for the check order).
    pub fn verify_device(&self, chain: &[u8], now: u64) -> Result<VerifiedDevice, Error> {
        Ok(certificate::verify_device(chain, &self.anchors.roots, &self.anchors.revocations, now)?)
    }

    /// As [`Device::initiate`] with a verified certificate for the bundle's identity:
    /// `certificate` must name exactly `peer` and the bundle's identity
    /// (`CertificateMismatch`, nothing changes). Under `IdentityPolicy::Certified`, a
    /// changed identity is approved at once (reason `Certified`).
    pub fn initiate_certified<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        bundle: &PreKeyBundle,
        certificate: &VerifiedDevice,
        rng: &mut R,
    ) -> Result<IdentityEvent, Error> {
        self.initiate_inner(peer, bundle, rng, None, Some(certificate))
    }

    /// As [`Device::decrypt`] with a verified certificate for the sender: it must name
    /// exactly `peer` and the identity that sent the message (`CertificateMismatch`,
    /// nothing changes). Under `IdentityPolicy::Certified`, a changed identity is
    /// approved at once (reason `Certified`), and this is how a new session starts when
    /// certificates are required.
    pub fn decrypt_certified<R: CryptoRng + ?Sized>(
        &mut self,
        peer: &str,
        message: &[u8],
        certificate: &VerifiedDevice,
        rng: &mut R,
    ) -> Result<Decrypted, Error> {
        check_name(peer)?;
        if certificate.address().peer_name() != peer {
            return Err(CertificateError::CertificateMismatch.into());
        }
        let m = Incoming::parse(message)?;
        self.ensure_room(super::MAX_STATE_GROWTH_PER_INPUT)?;
        let before = self.peer_len(peer);
        let decrypted = self.decrypt_parsed(peer, &m, Content::Chat, &mut |_, _| Ok(()), Some(certificate), rng)?;
        self.regrown(peer, before);
        Ok(decrypted)
    }

    /// Approves `peer`'s pending identity change on a verified certificate: it must name
    /// exactly `peer` and the pending identity (`CertificateMismatch`, nothing changes;
    /// also when no change is pending). Then as [`Device::approve_identity`].
    pub fn approve_certified(&mut self, peer: &str, certificate: &VerifiedDevice) -> Result<(), Error> {
        let pending: Option<IdentityKey> = self.trust.pending(peer).copied();
        match pending {
            Some(identity) if certificate.certifies(peer, &identity) => self.approve_identity(peer, &identity),
            _ => Err(CertificateError::CertificateMismatch.into()),
        }
    }

    /// Refuses a session start with `identity` for `peer`: with a certificate that
    /// does not name both (`CertificateMismatch`), or without one when certificates are
    /// required (`CertificateRequired`).
    pub(super) fn check_certificate(
        &self,
        peer: &str,
        identity: &IdentityKey,
        certificate: Option<&VerifiedDevice>,
    ) -> Result<(), Error> {
        match certificate {
            Some(c) if !c.certifies(peer, identity) => Err(CertificateError::CertificateMismatch.into()),
            None if self.anchors.require_certificate => Err(CertificateError::CertificateRequired.into()),
            _ => Ok(()),
        }
    }

    /// Changes the trust anchors and keeps the state budget exact.
    fn update_anchors(&mut self, f: impl FnOnce(&mut TrustAnchors)) {
        let before = self.anchors.encoded_len();
        f(&mut self.anchors);
        self.held = self.held - before + self.anchors.encoded_len();
    }
}

#[cfg(test)]
mod tests;
