//! The multi-device façade of [`Device`] (`docs/protocol.md` §15.8): the primary device's
//! master key and own list, a linked device's adopted list, peers' lists, and the fan-out
//! that encrypts one message for every verified device of a user. The rules live in
//! [`crate::trust::devices`]; this file finds, checks the state budget, and commits.
//!
//! Peer names of devices are `user/device` ([`DeviceAddress::peer_name`]). For group
//! membership by device, create the [`Device`] with its address as user id
//! (`"aminah@mof.gov.my/phone"`); a plain user id (`"aminah@mof.gov.my"`) also works for
//! device lists and fan-out.

use rand_core::CryptoRng;

use super::Device;
use crate::error::{Error, ErrorCode};
use crate::group::{GroupChange, GroupId};
use crate::keys::{IdentityKey, PreKeyBundle};
use crate::trust::address::{DeviceAddress, DeviceId, UserId};
use crate::trust::devices::{
    DeviceEndorsement, DeviceEntry, DeviceList, DeviceListError, DeviceListEvent, DeviceLists, MasterKey,
    MasterPublicKey, MAX_DEVICE_LIST_STATE_BYTES,
};

/// Why a device got nothing from [`Device::encrypt_for_user`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingReason {
    /// No device list is held for the user: process one first (the bundle's device was
    /// not used: only listed devices are ever sent to).
    NoDeviceList,
    /// No session with the device and no bundle for it.
    NoSessionOrBundle,
    /// The session's, the bundle's or the pinned identity is not the one the list holds
    /// for the device: never used.
    IdentityMismatch,
    /// The device's identity changed and the change is not approved.
    IdentityChanged,
    /// A list signed by another master key awaits `approve_master_key`: nothing is sent
    /// to the user's devices until the app decides.
    MasterKeyChanged,
    /// Another error (its flat code); the device's state is as before.
    Error(ErrorCode),
}

impl MissingReason {
    /// A stable name for the bindings and the interop driver: the variant's name, or the
    /// flat error code's for [`MissingReason::Error`].
    pub fn as_str(self) -> &'static str {
        match self {
            MissingReason::NoDeviceList => "NoDeviceList",
            MissingReason::NoSessionOrBundle => "NoSessionOrBundle",
            MissingReason::IdentityMismatch => "IdentityMismatch",
            MissingReason::IdentityChanged => "IdentityChanged",
            MissingReason::MasterKeyChanged => "MasterKeyChanged",
            MissingReason::Error(code) => code.as_str(),
        }
    }
}

/// What was done for one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOutcome {
    /// A message for it is in [`FanOut::messages`].
    Sent {
        /// Whether a new session was started from its bundle (the message is a prekey
        /// message).
        new_session: bool,
    },
    /// Nothing was sent to it, and why.
    Missing(MissingReason),
}

/// One device's line in a fan-out report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// The device.
    pub address: DeviceAddress,
    /// What was done.
    pub outcome: DeviceOutcome,
}

/// The result of [`Device::encrypt_for_user`].
#[must_use = "the messages must be delivered and the missing devices handled"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    /// `(peer name, 1:1 message)` for every device sent to.
    pub messages: Vec<(String, Vec<u8>)>,
    /// One line per device considered (the user's listed devices and this device's own
    /// other devices), in list order.
    pub report: Vec<DeviceReport>,
}

/// The result of [`Device::remove_linked_device`].
#[must_use = "the device list must be published and the group changes sent"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRemoval {
    /// The new own list (publish it).
    pub device_list: DeviceList,
    /// The rekey of every group this device administers that held the removed device.
    pub group_changes: Vec<GroupChange>,
    /// Groups that held it but could not be rekeyed here (and why).
    pub group_failures: Vec<(GroupId, ErrorCode)>,
}

/// The result of [`Device::process_device_list`] and [`Device::approve_master_key`].
#[must_use = "a master key change must be shown and the group changes sent"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceListUpdate {
    /// What the list did.
    pub event: DeviceListEvent,
    /// For removed devices: the rekey of every group this device administers that held
    /// one of them.
    pub group_changes: Vec<GroupChange>,
    /// Groups that held a removed device but could not be rekeyed here (and why).
    pub group_failures: Vec<(GroupId, ErrorCode)>,
}

impl Device {
    /// Every held device list (peers' and this device's own user's).
    pub fn device_lists(&self) -> &DeviceLists {
        &self.device_lists
    }

    /// This device's address, once it has a master key or adopted a list.
    pub fn own_address(&self) -> Option<&DeviceAddress> {
        self.own.address.as_ref()
    }

    /// This device's own user's newest list.
    pub fn own_device_list(&self) -> Option<&DeviceList> {
        self.own.address.as_ref().and_then(|a| self.device_lists.list(a.user()))
    }

    /// The master key's endorsement of this device (a linked device's, from
    /// [`Self::adopt_own_device_list`]; the primary endorses itself).
    pub fn own_endorsement(&self) -> Option<&DeviceEndorsement> {
        self.own.endorsement.as_ref()
    }

    /// Whether this device holds its user's master key.
    pub fn is_primary(&self) -> bool {
        self.own.master.is_some()
    }

    /// The master public key, if this device is the primary.
    pub fn master_public_key(&self) -> Option<MasterPublicKey> {
        self.own.master.as_ref().map(MasterKey::public_key)
    }

    /// The address this device has as `device` of its user: the user id is this
    /// device's user id, or its user part if the user id is an address (which must then
    /// name `device`).
    fn address_as(&self, device: &DeviceId) -> Result<DeviceAddress, Error> {
        let bad = |_| Error::from(DeviceListError::Mismatch("user id is not a canonical user id or address"));
        if self.user_id.contains('/') {
            let a = DeviceAddress::parse(&self.user_id).map_err(bad)?;
            if a.device() != device {
                return Err(DeviceListError::Mismatch("device id").into());
            }
            return Ok(a);
        }
        Ok(DeviceAddress::new(UserId::parse(&self.user_id).map_err(bad)?, device.clone()))
    }

    /// The bytes the own-device record and the device lists take in the state encoding.
    fn devices_len(&self) -> usize {
        self.own.encoded_len() + self.device_lists.encoded_len()
    }

    /// Runs `f` on the device-list state and keeps the budget exact.
    fn with_devices<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        let before = self.devices_len();
        let out = f(self);
        self.held = self.held - before + self.devices_len();
        out
    }

    /// Makes this device its user's primary device: a new random master key and list
    /// version 1 holding this device alone (publish it). Refused if this device already
    /// has a master key or adopted a list (`Duplicate`), or if its user id is not a
    /// canonical user id (or an address naming `device`).
    pub fn create_master_key<R: CryptoRng + ?Sized>(
        &mut self,
        device: &DeviceId,
        now: u64,
        rng: &mut R,
    ) -> Result<DeviceList, Error> {
        self.create_master_key_from(device, MasterKey::generate(rng), now)
    }

    /// As [`Self::create_master_key`], with a given master key (fixed seeds: tests, vectors).
    pub fn create_master_key_from(
        &mut self,
        device: &DeviceId,
        master: MasterKey,
        now: u64,
    ) -> Result<DeviceList, Error> {
        if self.own.address.is_some() || self.own.master.is_some() {
            return Err(DeviceListError::DuplicateDevice.into());
        }
        let address = self.address_as(device)?;
        let entry = DeviceEntry { device: device.clone(), identity: *self.identity() };
        let list = DeviceList::sign(&master, address.user(), 1, now, vec![entry])?;
        let endorsement = DeviceEndorsement::sign(&master, address.user(), device, self.identity());
        self.ensure_room(2 * MAX_DEVICE_LIST_STATE_BYTES)?;
        self.with_devices(|d| {
            d.device_lists.set_own(list.clone())?;
            d.own.address = Some(address);
            d.own.master = Some(master);
            d.own.endorsement = Some(endorsement);
            Ok(list)
        })
    }

    /// The primary's step when linking a device: adds `device` with `identity` to the
    /// own list (version + 1) and endorses it. Returns the endorsement (for the new
    /// device) and the new list (publish it; the new device adopts it). Refused:
    /// `NotPrimary`, the id or identity already listed (`Duplicate`), a full list
    /// (`TooManyDevices`); nothing changes.
    pub fn endorse_device(
        &mut self,
        device: &DeviceId,
        identity: &IdentityKey,
        now: u64,
    ) -> Result<(DeviceEndorsement, DeviceList), Error> {
        let (master, address, current) = self.primary()?;
        let entry = DeviceEntry { device: device.clone(), identity: *identity };
        let list = current.with_device(master, entry, now)?;
        let endorsement = DeviceEndorsement::sign(master, address.user(), device, identity);
        self.ensure_room(MAX_DEVICE_LIST_STATE_BYTES)?;
        self.with_devices(|d| {
            d.device_lists.set_own(list.clone())?;
            Ok((endorsement, list))
        })
    }

    fn primary(&self) -> Result<(&MasterKey, &DeviceAddress, &DeviceList), Error> {
        let master = self.own.master.as_ref().ok_or(DeviceListError::NotPrimary)?;
        let address = self.own.address.as_ref().ok_or(DeviceListError::NotPrimary)?;
        let current = self.device_lists.list(address.user()).ok_or(DeviceListError::NotPrimary)?;
        Ok((master, address, current))
    }

    /// The primary removes one of its user's other devices: list version + 1 without it
    /// (publish it), every session with it deleted (it is sent nothing afterwards), and
    /// every group this device administers that holds it rekeyed without it (its
    /// `group_remove`). Refused: `NotPrimary`, an unlisted device or this device itself
    /// (`UnknownDevice`); nothing changes.
    pub fn remove_linked_device<R: CryptoRng + ?Sized>(
        &mut self,
        device: &DeviceId,
        now: u64,
        rng: &mut R,
    ) -> Result<DeviceRemoval, Error> {
        let (master, address, current) = self.primary()?;
        if address.device() == device {
            return Err(DeviceListError::UnknownDevice.into());
        }
        let identity = *current.identity_of(device).ok_or(DeviceListError::UnknownDevice)?;
        let list = current.without_device(master, device, now)?;
        let removed = DeviceEntry { device: device.clone(), identity };
        let user = address.user().clone();
        self.ensure_room(MAX_DEVICE_LIST_STATE_BYTES)?;
        self.with_devices(|d| d.device_lists.set_own(list.clone()).map_err(Error::from))?;
        let (group_changes, group_failures) = self.cut_off(&user, &[removed], now, rng);
        Ok(DeviceRemoval { device_list: list, group_changes, group_failures })
    }

    /// A linked (non-primary) device takes its user's list and the endorsement the
    /// primary gave it. Checked: the endorsement names this device's identity and user,
    /// the list is signed by the same master key and lists this device with this
    /// identity. The master key is pinned for the user. Refused (`DeviceListMismatch`,
    /// `UnknownDevice`, `StaleDeviceList` for an older list by the same key); nothing
    /// changes.
    pub fn adopt_own_device_list(&mut self, list: &DeviceList, endorsement: &DeviceEndorsement) -> Result<(), Error> {
        if self.own.master.is_some() {
            return Err(DeviceListError::Mismatch("the primary device does not adopt a list").into());
        }
        if endorsement.identity() != self.identity() {
            return Err(DeviceListError::Mismatch("identity").into());
        }
        endorsement.matches(list)?;
        let address = self.address_as(endorsement.device())?;
        if address.user() != endorsement.user() {
            return Err(DeviceListError::Mismatch("user").into());
        }
        if self.own.address.as_ref().is_some_and(|a| a != &address) {
            return Err(DeviceListError::Mismatch("device id").into());
        }
        self.ensure_room(2 * MAX_DEVICE_LIST_STATE_BYTES)?;
        self.with_devices(|d| {
            d.device_lists.set_own(list.clone())?;
            d.own.address = Some(address);
            d.own.endorsement = Some(endorsement.clone());
            Ok(())
        })
    }

    /// Processes a device list from the server: a peer's, or this device's own user's
    /// coming back (see [`DeviceLists::process`]: signature, pinned master key, version).
    /// For removed devices, their sessions are deleted and every group this device
    /// administers that holds one is rekeyed without it. On any error, nothing changes.
    pub fn process_device_list<R: CryptoRng + ?Sized>(
        &mut self,
        bytes: &[u8],
        now: u64,
        rng: &mut R,
    ) -> Result<DeviceListUpdate, Error> {
        let list = DeviceList::decode(bytes)?;
        let user = list.user().clone();
        let staged = self.device_lists.stage(list)?;
        if !matches!(staged.event(), DeviceListEvent::Unchanged) {
            self.ensure_room(MAX_DEVICE_LIST_STATE_BYTES)?;
        }
        let event = self.with_devices(|d| Ok(d.device_lists.apply(staged)))?;
        Ok(self.after_update(&user, event, now, rng))
    }

    /// The app's decision on a master-key change: pins `key` for `user` and applies the
    /// pending list it signed (removed devices are cut off as by
    /// [`Self::process_device_list`]). Refused (`UnknownMasterKey`) if no list signed by
    /// `key` is pending; nothing changes.
    pub fn approve_master_key<R: CryptoRng + ?Sized>(
        &mut self,
        user: &UserId,
        key: &MasterPublicKey,
        now: u64,
        rng: &mut R,
    ) -> Result<DeviceListUpdate, Error> {
        if self.own.master.is_some() && self.own.address.as_ref().is_some_and(|a| a.user() == user) {
            // The primary holds the key: another key for its own user is never approved.
            return Err(DeviceListError::Mismatch("the primary device holds the master key").into());
        }
        let event = self.with_devices(|d| Ok(d.device_lists.approve_master_key(user, key)?))?;
        Ok(self.after_update(user, event, now, rng))
    }

    fn after_update<R: CryptoRng + ?Sized>(
        &mut self,
        user: &UserId,
        event: DeviceListEvent,
        now: u64,
        rng: &mut R,
    ) -> DeviceListUpdate {
        let (group_changes, group_failures) = match &event {
            DeviceListEvent::Updated { removed, .. } if !removed.is_empty() => self.cut_off(user, removed, now, rng),
            _ => (Vec::new(), Vec::new()),
        };
        DeviceListUpdate { event, group_changes, group_failures }
    }

    /// Deletes the sessions with removed devices of `user` (never this device's own) and
    /// rekeys every group this device administers that holds one of them with the
    /// removed identity.
    fn cut_off<R: CryptoRng + ?Sized>(
        &mut self,
        user: &UserId,
        removed: &[DeviceEntry],
        now: u64,
        rng: &mut R,
    ) -> (Vec<GroupChange>, Vec<(GroupId, ErrorCode)>) {
        let me = self.own.address.clone();
        let names: Vec<(String, IdentityKey)> = removed
            .iter()
            .map(|e| (DeviceAddress::new(user.clone(), e.device.clone()), e.identity))
            .filter(|(a, _)| me.as_ref() != Some(a))
            .map(|(a, identity)| (a.peer_name(), identity))
            .collect();
        for (name, _) in &names {
            let _ = self.remove_sessions(name);
        }
        let ids: Vec<GroupId> = self.groups.ids().copied().collect();
        let (mut changes, mut failures) = (Vec::new(), Vec::new());
        for id in ids {
            let Some(group) = self.groups.get(&id) else { continue };
            let members: Vec<String> = names
                .iter()
                .filter(|(n, identity)| group.member_identity(n) == Some(*identity) && group.may_remove(n))
                .map(|(n, _)| n.clone())
                .collect();
            if members.is_empty() {
                continue;
            }
            match self.group_remove(&id, &members, now, rng) {
                Ok(change) => changes.push(change),
                Err(e) => failures.push((id, e.code())),
            }
        }
        (changes, failures)
    }

    /// Encrypts `plaintext` for every listed device of `user` and every other device of
    /// this device's own list, each on its session with the device, or on a new one from
    /// its bundle in `bundles` (by address). Only a device the list holds, with exactly
    /// the listed identity, is ever sent to; a session, pin or bundle with another
    /// identity is reported (`IdentityMismatch`), never used. One device failing never
    /// stops the others, and a device that got nothing has its state as before. Refused
    /// as a whole only for a plaintext over `MAX_PLAINTEXT_BYTES`.
    pub fn encrypt_for_user<R: CryptoRng + ?Sized>(
        &mut self,
        user: &UserId,
        plaintext: &[u8],
        bundles: &[(DeviceAddress, PreKeyBundle)],
        rng: &mut R,
    ) -> Result<FanOut, Error> {
        if plaintext.len() > crate::ratchet::MAX_PLAINTEXT_BYTES {
            return Err(crate::ratchet::RatchetError::PlaintextTooLarge(plaintext.len()).into());
        }
        let mut targets: Vec<(DeviceAddress, Result<IdentityKey, MissingReason>)> = Vec::new();
        let me = self.own.address.clone();
        let add_user = |lists: &DeviceLists, u: &UserId, targets: &mut Vec<_>| {
            let Some(list) = lists.list(u) else { return false };
            let pending = lists.pending(u).is_some();
            for e in list.devices() {
                let a = DeviceAddress::new(u.clone(), e.device.clone());
                if me.as_ref() == Some(&a) || targets.iter().any(|(t, _)| t == &a) {
                    continue;
                }
                targets.push((a, if pending { Err(MissingReason::MasterKeyChanged) } else { Ok(e.identity) }));
            }
            true
        };
        if !add_user(&self.device_lists, user, &mut targets) {
            for (a, _) in bundles.iter().filter(|(a, _)| a.user() == user) {
                if !targets.iter().any(|(t, _)| t == a) {
                    targets.push((a.clone(), Err(MissingReason::NoDeviceList)));
                }
            }
        }
        if let Some(own) = self.own.address.as_ref().map(|a| a.user().clone()) {
            let _ = add_user(&self.device_lists, &own, &mut targets);
        }
        let mut out = FanOut { messages: Vec::new(), report: Vec::with_capacity(targets.len()) };
        for (address, listed) in targets {
            let outcome = match listed {
                Err(reason) => DeviceOutcome::Missing(reason),
                Ok(identity) => {
                    let bundle = bundles.iter().find(|(a, _)| a == &address).map(|(_, b)| b);
                    self.send_listed(&address, &identity, plaintext, bundle, &mut out.messages, rng)
                }
            };
            out.report.push(DeviceReport { address, outcome });
        }
        Ok(out)
    }

    /// Sends to one listed device (see [`Self::encrypt_for_user`]); failure-atomic.
    fn send_listed<R: CryptoRng + ?Sized>(
        &mut self,
        address: &DeviceAddress,
        listed: &IdentityKey,
        plaintext: &[u8],
        bundle: Option<&PreKeyBundle>,
        messages: &mut Vec<(String, Vec<u8>)>,
        rng: &mut R,
    ) -> DeviceOutcome {
        let missing = DeviceOutcome::Missing;
        let peer = address.peer_name();
        if self.trust.pending(&peer).is_some() {
            return missing(MissingReason::IdentityChanged);
        }
        if self.trust.pinned(&peer).is_some_and(|p| p != listed) {
            return missing(MissingReason::IdentityMismatch);
        }
        let current = self.peers.get(&peer).and_then(|r| r.remote_identity()).copied();
        if current.as_ref() == Some(listed) {
            return match self.encrypt(&peer, plaintext) {
                Ok(m) => {
                    messages.push((peer, m));
                    DeviceOutcome::Sent { new_session: false }
                }
                Err(e) => missing(MissingReason::Error(e.code())),
            };
        }
        let Some(bundle) = bundle else {
            let reason =
                if current.is_some() { MissingReason::IdentityMismatch } else { MissingReason::NoSessionOrBundle };
            return missing(reason);
        };
        if bundle.identity() != listed {
            return missing(MissingReason::IdentityMismatch);
        }
        // Undo the new session if the encryption on it fails.
        let (saved, was_pinned, held) = (self.peers.get(&peer).cloned(), self.trust.pinned(&peer).is_some(), self.held);
        if let Err(e) = self.initiate(&peer, bundle, rng) {
            return missing(MissingReason::Error(e.code()));
        }
        match self.encrypt(&peer, plaintext) {
            Ok(m) => {
                messages.push((peer, m));
                DeviceOutcome::Sent { new_session: true }
            }
            Err(e) => {
                match saved {
                    Some(record) => {
                        self.peers.insert(peer.clone(), record);
                    }
                    None => {
                        self.peers.remove(&peer);
                    }
                }
                if !was_pinned {
                    self.trust.forget(&peer);
                }
                self.held = held;
                missing(MissingReason::Error(e.code()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
