//! Multi-device users (protocol 15.8) as `Device` methods and two stateless decoders.
//! Thin like the rest: convert, lock, call the core's device-list façade (which decides,
//! checks the budget and is failure-atomic), map errors to the flat codes. User ids,
//! device ids and addresses cross as strings and are refused with `Malformed` unless
//! canonical; master keys as 32 bytes (`InvalidKey` otherwise).

use gochat_e2ee as core;
use gochat_e2ee::device::DeviceOutcome;
use gochat_e2ee::trust::address::{DeviceAddress, DeviceId, UserId};
use gochat_e2ee::trust::{DeviceEndorsement, DeviceEntry, DeviceList, DeviceListEvent, MasterPublicKey};
use gochat_e2ee::ErrorCode;

use crate::groups::{bytes32, GroupChangeRecord, OutgoingRecord};
use crate::{identity_key_arg, rng, Device, GoChatError, Result};

fn malformed(what: &str) -> GoChatError {
    GoChatError::from_code(ErrorCode::Malformed, format!("invalid {what}"), false)
}

fn user_arg(s: &str) -> Result<UserId> {
    UserId::parse(s).map_err(|_| malformed("user id"))
}

fn device_arg(s: &str) -> Result<DeviceId> {
    DeviceId::parse(s).map_err(|_| malformed("device id"))
}

fn list_arg(bytes: &[u8]) -> Result<DeviceList> {
    DeviceList::decode(bytes).map_err(|e| core::Error::from(e).into())
}

fn endorsement_arg(bytes: &[u8]) -> Result<DeviceEndorsement> {
    DeviceEndorsement::decode(bytes).map_err(|e| core::Error::from(e).into())
}

/// One device of a list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceEntryRecord {
    /// The device id.
    pub device_id: String,
    /// Its identity key (66 bytes).
    pub identity_key: Vec<u8>,
}

fn entries(d: &[DeviceEntry]) -> Vec<DeviceEntryRecord> {
    d.iter()
        .map(|e| DeviceEntryRecord {
            device_id: e.device.as_str().to_owned(),
            identity_key: e.identity.to_bytes().to_vec(),
        })
        .collect()
}

/// A decoded, signature-checked device list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceListInfo {
    /// The user.
    pub user: String,
    /// The list version.
    pub version: u64,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// The master public key that signed it (32 bytes).
    pub master_public_key: Vec<u8>,
    /// The devices, in id order.
    pub devices: Vec<DeviceEntryRecord>,
    /// The encoding (type 0x55).
    pub bytes: Vec<u8>,
}

impl From<&DeviceList> for DeviceListInfo {
    fn from(l: &DeviceList) -> Self {
        DeviceListInfo {
            user: l.user().as_str().to_owned(),
            version: l.version(),
            issued_at: l.issued_at(),
            master_public_key: l.master_public_key().to_bytes().to_vec(),
            devices: entries(l.devices()),
            bytes: l.encode(),
        }
    }
}

/// A decoded, signature-checked device endorsement.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceEndorsementInfo {
    /// The user.
    pub user: String,
    /// The endorsed device.
    pub device_id: String,
    /// Its identity key (66 bytes).
    pub identity_key: Vec<u8>,
    /// The master public key that signed it (32 bytes).
    pub master_public_key: Vec<u8>,
}

/// What `endorse_device` returns: give both to the new device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EndorsedDevice {
    /// The endorsement (type 0x56).
    pub endorsement: Vec<u8>,
    /// The new own list (type 0x55): publish it.
    pub device_list: Vec<u8>,
}

/// What processing a device list did. Show `MasterKeyChanged` to the user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceListEventRecord {
    /// The first list for the user: its master key is pinned.
    New {
        /// The listed devices.
        devices: Vec<DeviceEntryRecord>,
    },
    /// A newer list under the pinned master key.
    Updated {
        /// Newly listed devices (or identities).
        added: Vec<DeviceEntryRecord>,
        /// Devices (or identities) no longer listed.
        removed: Vec<DeviceEntryRecord>,
    },
    /// The held list again.
    Unchanged,
    /// Signed by another master key: not applied, pending `approve_master_key`.
    MasterKeyChanged {
        /// The pinned master key.
        previous: Vec<u8>,
        /// The new one.
        new: Vec<u8>,
    },
}

impl From<&DeviceListEvent> for DeviceListEventRecord {
    fn from(e: &DeviceListEvent) -> Self {
        match e {
            DeviceListEvent::New { devices } => DeviceListEventRecord::New { devices: entries(devices) },
            DeviceListEvent::Updated { added, removed } => {
                DeviceListEventRecord::Updated { added: entries(added), removed: entries(removed) }
            }
            DeviceListEvent::Unchanged => DeviceListEventRecord::Unchanged,
            DeviceListEvent::MasterKeyChanged { previous, new } => DeviceListEventRecord::MasterKeyChanged {
                previous: previous.to_bytes().to_vec(),
                new: new.to_bytes().to_vec(),
            },
        }
    }
}

/// A group that held a removed device but could not be rekeyed here.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GroupFailureRecord {
    /// The group id (32 bytes).
    pub group_id: Vec<u8>,
    /// The flat error code.
    pub error: String,
}

fn failures(f: Vec<(core::group::GroupId, ErrorCode)>) -> Vec<GroupFailureRecord> {
    f.into_iter().map(|(id, c)| GroupFailureRecord { group_id: id.0.to_vec(), error: c.as_str().to_owned() }).collect()
}

/// The result of `process_device_list` and `approve_master_key`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceListUpdateRecord {
    /// What the list did.
    pub event: DeviceListEventRecord,
    /// Group rekeys for removed devices (deliver them as for `group_remove`).
    pub group_changes: Vec<GroupChangeRecord>,
    /// Groups that could not be rekeyed here.
    pub group_failures: Vec<GroupFailureRecord>,
}

impl From<core::device::DeviceListUpdate> for DeviceListUpdateRecord {
    fn from(u: core::device::DeviceListUpdate) -> Self {
        DeviceListUpdateRecord {
            event: (&u.event).into(),
            group_changes: u.group_changes.into_iter().map(Into::into).collect(),
            group_failures: failures(u.group_failures),
        }
    }
}

/// The result of `remove_linked_device`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceRemovalRecord {
    /// The new own list: publish it.
    pub device_list: Vec<u8>,
    /// Group rekeys without the removed device.
    pub group_changes: Vec<GroupChangeRecord>,
    /// Groups that could not be rekeyed here.
    pub group_failures: Vec<GroupFailureRecord>,
}

/// A bundle for one device address (`user/device`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AddressedBundle {
    /// The device address.
    pub address: String,
    /// The bundle bytes.
    pub bundle: Vec<u8>,
}

/// One device's line in a fan-out report.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceReportRecord {
    /// The device address (`user/device`).
    pub address: String,
    /// Whether a message for it is in `messages`.
    pub sent: bool,
    /// Whether a new session was started from its bundle.
    pub new_session: bool,
    /// Why nothing was sent: `NoDeviceList`, `NoSessionOrBundle`, `IdentityMismatch`,
    /// `IdentityChanged`, `MasterKeyChanged` or an error code name.
    pub missing: Option<String>,
}

/// The result of `encrypt_for_user`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserFanOutRecord {
    /// One 1:1 message per device sent to.
    pub messages: Vec<OutgoingRecord>,
    /// One line per device considered.
    pub report: Vec<DeviceReportRecord>,
}

/// Decodes a device list and checks its signature by the master key it names.
#[uniffi::export]
pub fn decode_device_list(bytes: Vec<u8>) -> Result<DeviceListInfo> {
    Ok((&list_arg(&bytes)?).into())
}

/// Decodes a device endorsement and checks its signature by the master key it names.
#[uniffi::export]
pub fn decode_device_endorsement(bytes: Vec<u8>) -> Result<DeviceEndorsementInfo> {
    let e = endorsement_arg(&bytes)?;
    Ok(DeviceEndorsementInfo {
        user: e.user().as_str().to_owned(),
        device_id: e.device().as_str().to_owned(),
        identity_key: e.identity().to_bytes().to_vec(),
        master_public_key: e.master_public_key().to_bytes().to_vec(),
    })
}

#[uniffi::export]
impl Device {
    /// Makes this device its user's primary: a new master key and list version 1 with
    /// this device alone (publish it). Create the device with a canonical user id or its
    /// address `user/device`.
    pub fn create_master_key(&self, device_id: String, now: u64) -> Result<Vec<u8>> {
        let device = device_arg(&device_id)?;
        Ok(self.with(|d| d.create_master_key(&device, now, &mut rng()))?.encode())
    }

    /// The primary adds a device to its list (version + 1) and endorses it.
    pub fn endorse_device(&self, device_id: String, identity_key: Vec<u8>, now: u64) -> Result<EndorsedDevice> {
        let (device, identity) = (device_arg(&device_id)?, identity_key_arg(&identity_key)?);
        let (e, list) = self.with(|d| d.endorse_device(&device, &identity, now))?;
        Ok(EndorsedDevice { endorsement: e.encode(), device_list: list.encode() })
    }

    /// A linked device takes its user's list and its endorsement.
    pub fn adopt_own_device_list(&self, device_list: Vec<u8>, endorsement: Vec<u8>) -> Result<()> {
        let (list, e) = (list_arg(&device_list)?, endorsement_arg(&endorsement)?);
        self.with(|d| d.adopt_own_device_list(&list, &e))
    }

    /// The primary removes one of its other devices: new list, its sessions deleted,
    /// administered groups rekeyed without it.
    pub fn remove_linked_device(&self, device_id: String, now: u64) -> Result<DeviceRemovalRecord> {
        let device = device_arg(&device_id)?;
        let r = self.with(|d| d.remove_linked_device(&device, now, &mut rng()))?;
        Ok(DeviceRemovalRecord {
            device_list: r.device_list.encode(),
            group_changes: r.group_changes.into_iter().map(Into::into).collect(),
            group_failures: failures(r.group_failures),
        })
    }

    /// Processes a device list from the server (a peer's, or this device's own user's).
    pub fn process_device_list(&self, device_list: Vec<u8>, now: u64) -> Result<DeviceListUpdateRecord> {
        Ok(self.with(|d| d.process_device_list(&device_list, now, &mut rng()))?.into())
    }

    /// The app's decision on a master-key change: pins `master_public_key` for `user`
    /// and applies its pending list.
    pub fn approve_master_key(
        &self,
        user: String,
        master_public_key: Vec<u8>,
        now: u64,
    ) -> Result<DeviceListUpdateRecord> {
        let user = user_arg(&user)?;
        let key = bytes32(&master_public_key, "a master public key", ErrorCode::InvalidKey)?;
        let key = MasterPublicKey::from_bytes(key).map_err(core::Error::from)?;
        Ok(self.with(|d| d.approve_master_key(&user, &key, now, &mut rng()))?.into())
    }

    /// Encrypts `plaintext` for every listed device of `user` and this device's own
    /// other devices (existing sessions, or new ones from `bundles`), with a report per
    /// device.
    pub fn encrypt_for_user(
        &self,
        user: String,
        plaintext: Vec<u8>,
        bundles: Vec<AddressedBundle>,
    ) -> Result<UserFanOutRecord> {
        let user = user_arg(&user)?;
        let bundles = bundles
            .iter()
            .map(|b| {
                let a = DeviceAddress::parse(&b.address).map_err(|_| malformed("device address"))?;
                let bundle = core::PreKeyBundle::from_bytes(&b.bundle).map_err(core::Error::from)?;
                Ok((a, bundle))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self.with(|d| d.encrypt_for_user(&user, &plaintext, &bundles, &mut rng()))?;
        Ok(UserFanOutRecord {
            messages: out.messages.into_iter().map(|(peer, message)| OutgoingRecord { peer, message }).collect(),
            report: out
                .report
                .into_iter()
                .map(|r| {
                    let address = r.address.peer_name();
                    match r.outcome {
                        DeviceOutcome::Sent { new_session } => {
                            DeviceReportRecord { address, sent: true, new_session, missing: None }
                        }
                        DeviceOutcome::Missing(m) => DeviceReportRecord {
                            address,
                            sent: false,
                            new_session: false,
                            missing: Some(m.as_str().to_owned()),
                        },
                    }
                })
                .collect(),
        })
    }

    /// This device's own user's newest list.
    pub fn own_device_list(&self) -> Option<DeviceListInfo> {
        self.lock().own_device_list().map(Into::into)
    }

    /// The newest accepted list of `user`.
    pub fn device_list(&self, user: String) -> Result<Option<DeviceListInfo>> {
        let user = user_arg(&user)?;
        Ok(self.lock().device_lists().list(&user).map(Into::into))
    }

    /// The list by another master key awaiting approval for `user`.
    pub fn pending_device_list(&self, user: String) -> Result<Option<DeviceListInfo>> {
        let user = user_arg(&user)?;
        Ok(self.lock().device_lists().pending(&user).map(Into::into))
    }

    /// Whether this device holds its user's master key.
    pub fn is_primary(&self) -> bool {
        self.lock().is_primary()
    }

    /// This device's address (`user/device`), once it has a list.
    pub fn own_address(&self) -> Option<String> {
        self.lock().own_address().map(DeviceAddress::peer_name)
    }
}
