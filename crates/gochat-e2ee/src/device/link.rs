//! Linking a device (`docs/protocol.md` 15.9) on the `Device` façade: the phone's
//! [`Device::link_device`] (scan an offer, endorse the new device, seal the payload) and
//! the new device's [`Device::complete_link`] (open, check, adopt the list).

use rand_core::CryptoRng;

use crate::error::Error;
use crate::trust::devices::{DeviceEndorsement, DeviceList};
use crate::trust::provisioning::{self, LinkPayload, ProvisioningError, ProvisioningOffer, ProvisioningSecret};
use crate::Device;

/// What the phone gets from [`Device::link_device`].
#[derive(Debug, Clone)]
pub struct LinkOutcome {
    /// The provisioning message (type 0x58): send it to the new device through the server.
    pub message: Vec<u8>,
    /// The own user's new device list, with the new device in it: publish it.
    pub device_list: DeviceList,
}

impl Device {
    /// The phone (the primary device) links the device whose offer it scanned: the
    /// offer is decoded and checked fresh at `now` (`ProvisioningExpired`, 15.9.1), the
    /// new device is endorsed and added to the own list ([`Device::endorse_device`]:
    /// `NotPrimary`, `Duplicate`, `TooManyDevices`), and the user id, master public key,
    /// endorsement and list are sealed to the offer. Every check runs before the list
    /// changes: a refused offer changes nothing.
    pub fn link_device<R: CryptoRng + ?Sized>(
        &mut self,
        offer: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<LinkOutcome, Error> {
        let offer = ProvisioningOffer::from_bytes(offer)?;
        offer.check_fresh(now)?;
        let master = self.master_public_key().ok_or(crate::trust::devices::DeviceListError::NotPrimary)?;
        let (endorsement, device_list) = self.endorse_device(offer.device_id(), offer.identity(), now)?;
        let payload = LinkPayload {
            user: endorsement.user().clone(),
            master_public: master.to_bytes(),
            endorsement: endorsement.encode(),
            device_list: device_list.encode(),
        };
        // Cannot fail: the offer is fresh and both encodings are within their bounds.
        let message = provisioning::seal(&offer, &payload, now, rng)?.to_bytes();
        Ok(LinkOutcome { message, device_list })
    }

    /// The new device completes the link with the secret behind its offer: opens the
    /// phone's message, decodes and verifies the endorsement and the list (master-key
    /// signatures), checks that the endorsement names **this** device (its identity and
    /// the offer's device id) and the payload's user and master key, and adopts the list
    /// ([`Device::adopt_own_device_list`]). Only then is the secret spent.
    ///
    /// Refused, changing neither the device nor the secret: every error of
    /// [`ProvisioningSecret::open`] (`ProvisioningUsed` once spent), an endorsement or list
    /// that does not decode or verify (`Malformed`, `BadSignature`, ...), one that names
    /// another device, identity, user or master key (`ProvisioningMismatch`), and the
    /// refusals of `adopt_own_device_list`.
    pub fn complete_link(&mut self, secret: &mut ProvisioningSecret, message: &[u8]) -> Result<DeviceList, Error> {
        let payload = secret.peek(message)?;
        let mismatch = |what| Error::from(ProvisioningError::IdentityMismatch(what));
        let endorsement = DeviceEndorsement::decode(&payload.endorsement)?;
        let list = DeviceList::decode(&payload.device_list)?;
        if secret.offer().identity() != self.identity() || endorsement.identity() != self.identity() {
            return Err(mismatch("identity"));
        }
        if endorsement.device() != secret.offer().device_id() {
            return Err(mismatch("device id"));
        }
        if endorsement.user() != &payload.user || list.user() != &payload.user {
            return Err(mismatch("user"));
        }
        if endorsement.master_public_key().to_bytes() != payload.master_public {
            return Err(mismatch("master key"));
        }
        self.adopt_own_device_list(&list, &endorsement)?;
        secret.spend();
        Ok(list)
    }
}
