//! Linking a device from the phone (protocol 15.9): the new device's one-time
//! `ProvisioningSecret` (its offer is the QR code), the phone's `provisioning_seal`, and
//! `inspect_provisioning_offer` so the phone can show what it is about to link. Thin like
//! the rest: convert, call the core's `trust::provisioning`, map errors to the flat codes.

use std::sync::{Arc, Mutex};

use gochat_e2ee as core;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::provisioning as prov;

use crate::{GoChatError, Result};

fn prov_err(e: prov::ProvisioningError) -> GoChatError {
    core::Error::Provisioning(e).into()
}

fn malformed(what: &'static str) -> GoChatError {
    core::Error::Malformed(core::wire::DecodeError::InvalidValue(what)).into()
}

/// What the phone sends a new device: the user it joins, the master public key, the
/// master key's endorsement of the device and the current device list (the last two as
/// their encodings, bounded: 1 to 484 and 1 to 2,466 bytes).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkPayload {
    /// The user id (canonical official email).
    pub user: String,
    /// The master public key (Ed25519, 32 bytes).
    pub master_public: Vec<u8>,
    /// The master key's endorsement of the new device.
    pub endorsement: Vec<u8>,
    /// The device list, with the new device in it.
    pub device_list: Vec<u8>,
}

impl From<prov::LinkPayload> for LinkPayload {
    fn from(p: prov::LinkPayload) -> Self {
        LinkPayload {
            user: p.user.as_str().to_owned(),
            master_public: p.master_public.to_vec(),
            endorsement: p.endorsement,
            device_list: p.device_list,
        }
    }
}

impl TryFrom<LinkPayload> for prov::LinkPayload {
    type Error = GoChatError;
    fn try_from(p: LinkPayload) -> Result<Self> {
        Ok(prov::LinkPayload {
            user: UserId::parse(&p.user).map_err(|_| malformed("user id"))?,
            master_public: p.master_public.try_into().map_err(|_| malformed("master public key length"))?,
            endorsement: p.endorsement,
            device_list: p.device_list,
        })
    }
}

/// What a scanned offer says: show the device id to the user before linking.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProvisioningOfferInfo {
    /// The new device's id.
    pub device_id: String,
    /// The new device's identity key (66-byte encoding), which the endorsement signs.
    pub identity: Vec<u8>,
    /// When the new device made the offer (Unix seconds).
    pub created_at: u64,
}

/// Decodes a scanned offer (type 0x57) without sealing anything. Refused: a malformed
/// offer (`Malformed`, `WrongMessageType`, `UnsupportedVersion`, `TooLarge`), an invalid
/// or weak key (`InvalidKey`, `WeakKey`).
#[uniffi::export]
pub fn inspect_provisioning_offer(offer: Vec<u8>) -> Result<ProvisioningOfferInfo> {
    let o = prov::ProvisioningOffer::from_bytes(&offer).map_err(prov_err)?;
    Ok(ProvisioningOfferInfo {
        device_id: o.device_id().as_str().to_owned(),
        identity: o.identity().to_bytes().to_vec(),
        created_at: o.created_at(),
    })
}

/// The phone's side: seals `payload` to a scanned `offer`, fresh at `now`; returns the
/// provisioning message (type 0x58) to send to the new device through the server.
/// Refused: a stale offer or one dated ahead (`ProvisioningExpired`), a malformed offer
/// or payload (`Malformed`, ...), an invalid master key (`InvalidKey`).
#[uniffi::export]
pub fn provisioning_seal(offer: Vec<u8>, payload: LinkPayload, now: u64) -> Result<Vec<u8>> {
    let o = prov::ProvisioningOffer::from_bytes(&offer).map_err(prov_err)?;
    let p = prov::LinkPayload::try_from(payload)?;
    Ok(prov::seal(&o, &p, now, &mut crate::rng()).map_err(prov_err)?.to_bytes())
}

/// The new device's one-time provisioning secret. Its `offer()` is the QR code to show.
/// It opens one provisioning message; a failed open changes nothing.
#[derive(Debug, uniffi::Object)]
pub struct ProvisioningSecret {
    inner: Mutex<prov::ProvisioningSecret>,
}

#[uniffi::export]
impl ProvisioningSecret {
    /// A fresh secret for the device with `identity` (e.g. `Device.identityKey()`) and
    /// `device_id`, dated `now`. Refused: an invalid identity (`InvalidKey`, ...), an
    /// invalid device id (`Malformed`).
    #[uniffi::constructor]
    pub fn new(identity: Vec<u8>, device_id: String, now: u64) -> Result<Arc<Self>> {
        let identity = core::IdentityKey::from_bytes(&identity).map_err(|e| GoChatError::from(core::Error::from(e)))?;
        let device = DeviceId::parse(&device_id).map_err(|_| malformed("device id"))?;
        let (secret, _) = prov::ProvisioningSecret::new(&identity, device, now, &mut crate::rng());
        Ok(Arc::new(ProvisioningSecret { inner: Mutex::new(secret) }))
    }

    /// The offer (type 0x57, at most 173 bytes): show it as a QR code.
    pub fn offer(&self) -> Vec<u8> {
        self.lock().offer().to_bytes()
    }

    /// Whether this secret already opened its message.
    pub fn is_used(&self) -> bool {
        self.lock().is_used()
    }

    /// Opens the phone's provisioning message. Refused, changing nothing: a malformed
    /// message (`Malformed`, `TooLarge`, ...), a low-order key (`NonContributory`), a
    /// message for another offer or tampered (`AuthenticationFailed`). After one success,
    /// always `ProvisioningUsed`.
    pub fn open(&self, message: Vec<u8>) -> Result<LinkPayload> {
        Ok(self.lock().open(&message).map_err(prov_err)?.into())
    }
}

impl ProvisioningSecret {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, prov::ProvisioningSecret> {
        // Every core call is failure-atomic, so state behind a poisoned lock is consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn payload() -> LinkPayload {
        let master = core::Device::new("m", 1, &mut crate::rng()).identity().signing_key_bytes().to_vec();
        LinkPayload {
            user: "aminah@mof.gov.my".into(),
            master_public: master,
            endorsement: vec![1; 10],
            device_list: vec![2; 20],
        }
    }

    #[test]
    fn links_once_through_the_ffi() {
        let web = core::Device::new("aminah@mof.gov.my/web-1", 100, &mut crate::rng());
        let s = ProvisioningSecret::new(web.identity().to_bytes().to_vec(), "web-1".into(), 100).unwrap();
        let info = inspect_provisioning_offer(s.offer()).unwrap();
        assert_eq!((info.device_id.as_str(), info.created_at), ("web-1", 100));
        assert_eq!(info.identity, web.identity().to_bytes().to_vec());
        assert_eq!(provisioning_seal(s.offer(), payload(), 10_000).unwrap_err().code(), "ProvisioningExpired");
        let p = payload();
        let m = provisioning_seal(s.offer(), p.clone(), 110).unwrap();
        assert_eq!(s.open(vec![0x58, 1, 2]).unwrap_err().code(), "Malformed");
        assert!(!s.is_used());
        assert_eq!(s.open(m.clone()).unwrap(), p);
        assert!(s.is_used());
        assert_eq!(s.open(m).unwrap_err().code(), "ProvisioningUsed");
        assert_eq!(ProvisioningSecret::new(vec![1], "web-1".into(), 1).unwrap_err().code(), "Malformed");
        assert_eq!(
            ProvisioningSecret::new(web.identity().to_bytes().to_vec(), "a/b".into(), 1).unwrap_err().code(),
            "Malformed"
        );
        let bad = LinkPayload { master_public: vec![1; 31], ..payload() };
        assert_eq!(provisioning_seal(s.offer(), bad, 110).unwrap_err().code(), "Malformed");
    }
}
