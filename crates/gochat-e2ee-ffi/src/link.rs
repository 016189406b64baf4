//! Linking a device (protocol 15.9) as `Device` methods: the phone's `link_device` on a
//! scanned offer and the new device's `complete_link` with its `ProvisioningSecret`.
//! Thin: convert, lock, call the core's `Device::link_device` / `complete_link` (both
//! failure-atomic), map errors to the flat codes.

use std::sync::Arc;

use crate::devices::DeviceListInfo;
use crate::provisioning::ProvisioningSecret;
use crate::{rng, Device, Result};

/// What the phone gets from `link_device`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkOutcome {
    /// The provisioning message (type 0x58): send it to the new device through the server.
    pub message: Vec<u8>,
    /// The own user's new device list, with the new device in it: publish its `bytes`.
    pub device_list: DeviceListInfo,
}

#[uniffi::export]
impl Device {
    /// The phone (the primary device) links the device whose offer it scanned: checks the
    /// offer fresh at `now`, endorses the device, adds it to the own list and seals the
    /// user id, master public key, endorsement and list to the offer. Refused, changing
    /// nothing: `ProvisioningExpired`, `NotPrimary`, `Duplicate`, `TooManyDevices`,
    /// `Malformed`, `InvalidKey`, ...
    pub fn link_device(&self, offer: Vec<u8>, now: u64) -> Result<LinkOutcome> {
        let out = self.with(|d| d.link_device(&offer, now, &mut rng()))?;
        Ok(LinkOutcome { message: out.message, device_list: (&out.device_list).into() })
    }

    /// The new device completes the link with the secret behind its offer: opens the
    /// phone's message, checks that the endorsement names this device (identity and the
    /// offer's device id) and the payload's user and master key, and adopts the list
    /// (returned). Only then is the secret spent. Refused, changing neither the device nor
    /// the secret: the errors of `ProvisioningSecret.open` (`ProvisioningUsed` once spent),
    /// `DeviceListMismatch`, `BadSignature`, `Malformed`, ...
    pub fn complete_link(&self, secret: Arc<ProvisioningSecret>, message: Vec<u8>) -> Result<DeviceListInfo> {
        let list = self.with(|d| d.complete_link(&mut secret.lock(), &message))?;
        Ok((&list).into())
    }
}
