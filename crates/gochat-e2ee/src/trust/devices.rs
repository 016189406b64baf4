//! Multi-device users: a master signing key per user, the signed device list it issues,
//! and the endorsement each device holds (`docs/protocol.md` §15.8).
//!
//! Each user has one [`MasterKey`] (Ed25519), held by the primary device (the phone). It
//! signs the user's [`DeviceList`]: the user id, a monotonic version, and every device id
//! with its full identity key. Each device also holds a [`DeviceEndorsement`]: the master
//! key's signature over that one device's user, device id and identity.
//!
//! [`DeviceLists`] is what a device remembers of other users' (and its own user's) lists:
//! per user the pinned master public key, the newest accepted list, and at most one
//! pending list signed by another master key. Its rules, which a malicious server cannot
//! get around:
//! - a list must be signed by the master key it names (`BadSignature` otherwise);
//! - the first list seen for a user pins its master key (trust on first use);
//! - a list signed by another master key never applies by itself: it is kept as pending
//!   and reported as [`DeviceListEvent::MasterKeyChanged`], which the app must show, as a
//!   safety-number change; [`DeviceLists::approve_master_key`] pins it;
//! - under the pinned master, only a higher version applies; the same bytes again are
//!   `Unchanged`; a lower version, or the same version with other contents, is refused
//!   (`StaleDeviceList`), so an old list cannot be replayed to bring back a removed device.
//!
//! Every refusal leaves the state exactly as it was.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::keys::{IdentityKey, IDENTITY_KEY_BYTES};
use crate::labels;
use crate::trust::address::{
    read_device_id, read_user_id, DeviceAddress, DeviceId, UserId, MAX_DEVICE_ID_BYTES, MAX_USER_ID_BYTES,
};
use crate::wire::{type_byte, DecodeError, Reader, Writer};

/// Most devices one user's list may hold.
pub const MAX_DEVICES_PER_USER: usize = 16;
/// Most users whose device lists a device holds.
pub const MAX_DEVICE_LIST_USERS: usize = 4_096;
/// Length of an Ed25519 signature.
const SIGNATURE_BYTES: usize = 64;
/// Length of a master public key.
pub const MASTER_PUBLIC_KEY_BYTES: usize = 32;
/// One list entry at its largest: `u8 len || device id || identity key`.
const MAX_ENTRY_BYTES: usize = 1 + MAX_DEVICE_ID_BYTES + IDENTITY_KEY_BYTES;
/// Largest encoded device list (type 0x55): header, user id, master key, version,
/// issued_at, count, `MAX_DEVICES_PER_USER` entries at their largest, signature.
pub const MAX_DEVICE_LIST_BYTES: usize = 2
    + 1
    + MAX_USER_ID_BYTES
    + MASTER_PUBLIC_KEY_BYTES
    + 8
    + 8
    + 1
    + MAX_DEVICES_PER_USER * MAX_ENTRY_BYTES
    + SIGNATURE_BYTES;
/// Largest encoded device endorsement (type 0x56): header, user id, device id, identity
/// key, master key, signature.
pub const MAX_DEVICE_ENDORSEMENT_BYTES: usize = 2
    + 1
    + MAX_USER_ID_BYTES
    + 1
    + MAX_DEVICE_ID_BYTES
    + IDENTITY_KEY_BYTES
    + MASTER_PUBLIC_KEY_BYTES
    + SIGNATURE_BYTES;
/// The most one user's entry takes in the state encoding (name framing, a list and a
/// pending list at their largest): what one processed list can add.
pub const MAX_DEVICE_LIST_STATE_BYTES: usize =
    1 + MAX_USER_ID_BYTES + 2 + MAX_DEVICE_LIST_BYTES + 1 + 2 + MAX_DEVICE_LIST_BYTES;

/// Why a device list, an endorsement or a device-list operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceListError {
    /// The bytes do not follow the layout (a name, an order, a count, a length).
    #[error("malformed device list: {0}")]
    Decode(#[from] DecodeError),
    /// The master public key is not a valid, non-weak Ed25519 key.
    #[error("invalid master public key")]
    InvalidMasterKey,
    /// An identity key in the list is not a valid identity.
    #[error("invalid identity key in device list")]
    InvalidIdentity,
    /// The signature does not verify under the master key the object names.
    #[error("bad device list signature")]
    BadSignature,
    /// A list older than (or, at the same version, different from) the one held.
    #[error("stale device list: version {got}, held {held}")]
    Stale {
        /// The version held.
        held: u64,
        /// The version received.
        got: u64,
    },
    /// This device holds no master key (it is not its user's primary device).
    #[error("this device is not the primary device (no master key)")]
    NotPrimary,
    /// The device is not in the list (or is this device itself, which cannot be removed).
    #[error("unknown device")]
    UnknownDevice,
    /// A list would hold more than `MAX_DEVICES_PER_USER` devices, or is empty.
    #[error("too many devices")]
    TooManyDevices,
    /// The device id or the identity is already in the list.
    #[error("device already listed")]
    DuplicateDevice,
    /// A list, an endorsement and this device do not agree (another user, device id,
    /// identity or master key).
    #[error("device list does not match: {0}")]
    Mismatch(&'static str),
    /// No list signed by this master key is pending for the user.
    #[error("no pending master key change to this key")]
    UnknownMasterKey,
    /// `MAX_DEVICE_LIST_USERS` users already have a list.
    #[error("too many users with device lists")]
    TooManyUsers,
    /// The list version would overflow.
    #[error("device list version exhausted")]
    VersionExhausted,
}

/// A user's master signing key (Ed25519 seed). Wiped on drop, never printed.
pub struct MasterKey {
    seed: Zeroizing<[u8; 32]>,
    public: MasterPublicKey,
}

impl core::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MasterKey(<redacted>, public {:?})", self.public)
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        MasterKey { seed: Zeroizing::new(*self.seed), public: self.public }
    }
}

impl MasterKey {
    /// A fresh random master key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(*seed)
    }

    /// The master key with this 32-byte Ed25519 seed (fixed seeds for tests and vectors).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let signing = SigningKey::from_bytes(&seed);
        let public = MasterPublicKey(signing.verifying_key().to_bytes());
        MasterKey { seed, public }
    }

    /// The public key every device pins.
    pub fn public_key(&self) -> MasterPublicKey {
        self.public
    }

    pub(crate) fn seed_bytes(&self) -> &[u8; 32] {
        &self.seed
    }

    fn sign(&self, label: &[u8], message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        let signing = SigningKey::from_bytes(&self.seed);
        let mut data = Vec::with_capacity(label.len() + message.len());
        data.extend_from_slice(label);
        data.extend_from_slice(message);
        signing.sign(&data).to_bytes()
    }
}

/// A master public key: the canonical encoding of a valid, non-weak Ed25519 point.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MasterPublicKey([u8; MASTER_PUBLIC_KEY_BYTES]);

impl core::fmt::Debug for MasterPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MasterPublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl MasterPublicKey {
    /// Checks a 32-byte key: canonical, decompresses, not of small order.
    pub fn from_bytes(bytes: [u8; MASTER_PUBLIC_KEY_BYTES]) -> Result<Self, DeviceListError> {
        if crate::keys::is_non_canonical_field(&bytes) {
            return Err(DeviceListError::InvalidMasterKey);
        }
        let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| DeviceListError::InvalidMasterKey)?;
        if vk.is_weak() {
            return Err(DeviceListError::InvalidMasterKey);
        }
        Ok(MasterPublicKey(bytes))
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; MASTER_PUBLIC_KEY_BYTES] {
        self.0
    }

    fn verify(&self, label: &[u8], message: &[u8], signature: &[u8; SIGNATURE_BYTES]) -> bool {
        let mut data = Vec::with_capacity(label.len() + message.len());
        data.extend_from_slice(label);
        data.extend_from_slice(message);
        match VerifyingKey::from_bytes(&self.0) {
            Ok(vk) => vk.verify_strict(&data, &Signature::from_bytes(signature)).is_ok(),
            Err(_) => false,
        }
    }
}

/// One device of a list: its id and full identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The device id.
    pub device: DeviceId,
    /// The device's identity key.
    pub identity: IdentityKey,
}

fn write_short(w: &mut Writer, s: &str) {
    // User ids and device ids are at most 254 bytes (checked by their parse functions).
    w.u8(s.len() as u8).bytes(s.as_bytes());
}

fn read_identity(r: &mut Reader<'_>) -> Result<IdentityKey, DeviceListError> {
    IdentityKey::read(r).map_err(|e| match e {
        crate::keys::KeyError::Decode(d) => DeviceListError::Decode(d),
        _ => DeviceListError::InvalidIdentity,
    })
}

fn read_master(r: &mut Reader<'_>) -> Result<MasterPublicKey, DeviceListError> {
    MasterPublicKey::from_bytes(r.array()?)
}

/// A user's device list (type 0x55), signed by the user's master key. Holding a value
/// means its layout and its signature (by the master key it names) were checked; whether
/// that master key is the user's is [`DeviceLists::process`]'s decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    user: UserId,
    master: MasterPublicKey,
    version: u64,
    issued_at: u64,
    devices: Vec<DeviceEntry>,
    bytes: Vec<u8>,
}

impl DeviceList {
    /// Signs a list (the devices are sorted by id). Refused: no device or more than
    /// `MAX_DEVICES_PER_USER`, a device id or an identity twice, version 0.
    pub fn sign(
        master: &MasterKey,
        user: &UserId,
        version: u64,
        issued_at: u64,
        mut devices: Vec<DeviceEntry>,
    ) -> Result<Self, DeviceListError> {
        if devices.is_empty() || devices.len() > MAX_DEVICES_PER_USER {
            return Err(DeviceListError::TooManyDevices);
        }
        if version == 0 {
            return Err(DecodeError::InvalidValue("device list version").into());
        }
        devices.sort_by(|a, b| a.device.cmp(&b.device));
        check_entries(&devices).map_err(|_| DeviceListError::DuplicateDevice)?;
        let mut w = Writer::with_header(type_byte::DEVICE_LIST, MAX_DEVICE_LIST_BYTES);
        write_short(&mut w, user.as_str());
        w.bytes(&master.public.0).u64(version).u64(issued_at).u8(devices.len() as u8);
        for d in &devices {
            write_short(&mut w, d.device.as_str());
            d.identity.write(&mut w);
        }
        let mut bytes = w.into_bytes();
        let signature = master.sign(labels::SIG_DEVICE_LIST, &bytes);
        bytes.extend_from_slice(&signature);
        Ok(DeviceList { user: user.clone(), master: master.public, version, issued_at, devices, bytes })
    }

    /// Decodes a list and checks its signature by the master key it names. Refused, in
    /// order: size, type, version, the user id, an invalid master key, version 0, a count
    /// of 0 or over `MAX_DEVICES_PER_USER`, a bad device id, ids not strictly ascending, an
    /// invalid identity or one listed twice, trailing bytes, then the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DeviceListError> {
        let mut r = Reader::open(bytes, type_byte::DEVICE_LIST, MAX_DEVICE_LIST_BYTES)?;
        let user = read_user_id(&mut r)?;
        let master = read_master(&mut r)?;
        let version = r.u64()?;
        if version == 0 {
            return Err(DecodeError::InvalidValue("device list version").into());
        }
        let issued_at = r.u64()?;
        let n = r.u8()? as usize;
        if n == 0 || n > MAX_DEVICES_PER_USER {
            return Err(DecodeError::InvalidValue("device count").into());
        }
        let mut devices = Vec::with_capacity(n);
        for _ in 0..n {
            let device = read_device_id(&mut r)?;
            let identity = read_identity(&mut r)?;
            devices.push(DeviceEntry { device, identity });
        }
        check_entries(&devices)?;
        let signed = r.position();
        let signature: [u8; SIGNATURE_BYTES] = r.array()?;
        r.finish()?;
        let body = bytes.get(..signed).ok_or(DecodeError::Truncated)?;
        if !master.verify(labels::SIG_DEVICE_LIST, body, &signature) {
            return Err(DeviceListError::BadSignature);
        }
        Ok(DeviceList { user, master, version, issued_at, devices, bytes: bytes.to_vec() })
    }

    /// The encoding (what the server stores and delivers).
    pub fn encode(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The master public key that signed it.
    pub fn master_public_key(&self) -> MasterPublicKey {
        self.master
    }

    /// The list version (monotonic, from 1).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the primary device issued it (Unix seconds, informational).
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// The devices, in ascending id order.
    pub fn devices(&self) -> &[DeviceEntry] {
        &self.devices
    }

    /// The listed identity of `device`.
    pub fn identity_of(&self, device: &DeviceId) -> Option<&IdentityKey> {
        self.devices.iter().find(|d| &d.device == device).map(|d| &d.identity)
    }

    /// The address of every listed device.
    pub fn addresses(&self) -> Vec<DeviceAddress> {
        self.devices.iter().map(|d| DeviceAddress::new(self.user.clone(), d.device.clone())).collect()
    }

    /// The list with `entry` added, `version + 1`, signed by `master` (which must be the
    /// list's master key).
    pub(crate) fn with_device(
        &self,
        master: &MasterKey,
        entry: DeviceEntry,
        now: u64,
    ) -> Result<DeviceList, DeviceListError> {
        if self.devices.iter().any(|d| d.device == entry.device || d.identity == entry.identity) {
            return Err(DeviceListError::DuplicateDevice);
        }
        if self.devices.len() >= MAX_DEVICES_PER_USER {
            return Err(DeviceListError::TooManyDevices);
        }
        let mut devices = self.devices.clone();
        devices.push(entry);
        self.next(master, devices, now)
    }

    /// The list without `device`, `version + 1`, signed by `master`.
    pub(crate) fn without_device(
        &self,
        master: &MasterKey,
        device: &DeviceId,
        now: u64,
    ) -> Result<DeviceList, DeviceListError> {
        if self.identity_of(device).is_none() {
            return Err(DeviceListError::UnknownDevice);
        }
        let devices = self.devices.iter().filter(|d| &d.device != device).cloned().collect();
        self.next(master, devices, now)
    }

    fn next(&self, master: &MasterKey, devices: Vec<DeviceEntry>, now: u64) -> Result<DeviceList, DeviceListError> {
        if master.public != self.master {
            return Err(DeviceListError::Mismatch("master key"));
        }
        let version = self.version.checked_add(1).ok_or(DeviceListError::VersionExhausted)?;
        DeviceList::sign(master, &self.user, version, now, devices)
    }
}

/// Entries strictly ascending by device id, no identity twice.
fn check_entries(devices: &[DeviceEntry]) -> Result<(), DecodeError> {
    for (i, d) in devices.iter().enumerate() {
        if i > 0 && devices[i - 1].device >= d.device {
            return Err(DecodeError::InvalidValue("device order"));
        }
        if devices[..i].iter().any(|e| e.identity == d.identity) {
            return Err(DecodeError::InvalidValue("duplicate device identity"));
        }
    }
    Ok(())
}

/// The master key's statement that one device belongs to the user (type 0x56): what
/// each device holds and can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEndorsement {
    user: UserId,
    device: DeviceId,
    identity: IdentityKey,
    master: MasterPublicKey,
    bytes: Vec<u8>,
}

impl DeviceEndorsement {
    /// Signs an endorsement of `device` (with `identity`) of `user`.
    pub fn sign(master: &MasterKey, user: &UserId, device: &DeviceId, identity: &IdentityKey) -> Self {
        let mut w = Writer::with_header(type_byte::DEVICE_ENDORSEMENT, MAX_DEVICE_ENDORSEMENT_BYTES);
        write_short(&mut w, user.as_str());
        write_short(&mut w, device.as_str());
        identity.write(&mut w);
        w.bytes(&master.public.0);
        let mut bytes = w.into_bytes();
        let signature = master.sign(labels::SIG_DEVICE_ENDORSEMENT, &bytes);
        bytes.extend_from_slice(&signature);
        DeviceEndorsement {
            user: user.clone(),
            device: device.clone(),
            identity: *identity,
            master: master.public,
            bytes,
        }
    }

    /// Decodes an endorsement and checks its signature by the master key it names.
    /// Refused, in order: size, type, version, user id, device id, identity, master key,
    /// trailing bytes, signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DeviceListError> {
        let mut r = Reader::open(bytes, type_byte::DEVICE_ENDORSEMENT, MAX_DEVICE_ENDORSEMENT_BYTES)?;
        let user = read_user_id(&mut r)?;
        let device = read_device_id(&mut r)?;
        let identity = read_identity(&mut r)?;
        let master = read_master(&mut r)?;
        let signed = r.position();
        let signature: [u8; SIGNATURE_BYTES] = r.array()?;
        r.finish()?;
        let body = bytes.get(..signed).ok_or(DecodeError::Truncated)?;
        if !master.verify(labels::SIG_DEVICE_ENDORSEMENT, body, &signature) {
            return Err(DeviceListError::BadSignature);
        }
        Ok(DeviceEndorsement { user, device, identity, master, bytes: bytes.to_vec() })
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The endorsed device.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The endorsed identity.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }

    /// The master key that signed it.
    pub fn master_public_key(&self) -> MasterPublicKey {
        self.master
    }

    /// Checks that `list` is signed by the same master key, for the same user, and lists
    /// the endorsed device with the endorsed identity.
    pub fn matches(&self, list: &DeviceList) -> Result<(), DeviceListError> {
        if list.master != self.master {
            return Err(DeviceListError::Mismatch("master key"));
        }
        if list.user != self.user {
            return Err(DeviceListError::Mismatch("user"));
        }
        match list.identity_of(&self.device) {
            Some(identity) if identity == &self.identity => Ok(()),
            Some(_) => Err(DeviceListError::Mismatch("identity")),
            None => Err(DeviceListError::UnknownDevice),
        }
    }
}

/// What processing a device list did. An app must show `MasterKeyChanged` to the user.
#[must_use = "a master key change must be shown to the user"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceListEvent {
    /// The first list for this user: its master key is now pinned (trust on first use).
    New {
        /// The listed devices.
        devices: Vec<DeviceEntry>,
    },
    /// A newer list under the pinned master key. An entry whose identity changed is in
    /// both `removed` (old identity) and `added` (new identity).
    Updated {
        /// Devices (or identities) now listed that were not.
        added: Vec<DeviceEntry>,
        /// Devices (or identities) no longer listed.
        removed: Vec<DeviceEntry>,
    },
    /// The list held, again.
    Unchanged,
    /// Signed by another master key than the pinned one: NOT applied, kept as pending
    /// until [`DeviceLists::approve_master_key`]. A loud event, like a safety-number
    /// change: the server, or someone holding the user's account, may be adding devices.
    MasterKeyChanged {
        /// The pinned master key.
        previous: MasterPublicKey,
        /// The key that signed the pending list.
        new: MasterPublicKey,
    },
}

/// What a device knows of one user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UserLists {
    /// The newest accepted list; its master key is the pinned one.
    list: DeviceList,
    /// The newest list signed by another master key, awaiting approval.
    pending: Option<DeviceList>,
}

impl UserLists {
    fn encoded_len(&self) -> usize {
        1 + self.list.user.as_str().len()
            + 2
            + self.list.bytes.len()
            + 1
            + self.pending.as_ref().map_or(0, |p| 2 + p.bytes.len())
    }
}

/// Every user's pinned master key, newest list and pending master-key change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLists {
    users: BTreeMap<UserId, UserLists>,
}

/// The difference between two lists: (added, removed).
fn diff(old: &DeviceList, new: &DeviceList) -> (Vec<DeviceEntry>, Vec<DeviceEntry>) {
    let added = new.devices.iter().filter(|d| !old.devices.contains(d)).cloned().collect();
    let removed = old.devices.iter().filter(|d| !new.devices.contains(d)).cloned().collect();
    (added, removed)
}

/// A checked change to [`DeviceLists`], applied by [`DeviceLists::apply`].
#[derive(Debug)]
pub(crate) struct Staged {
    user: UserId,
    entry: Option<UserLists>,
    event: DeviceListEvent,
}

impl Staged {
    /// What applying it reports.
    pub(crate) fn event(&self) -> &DeviceListEvent {
        &self.event
    }
}

impl DeviceLists {
    /// The newest accepted list of `user`.
    pub fn list(&self, user: &UserId) -> Option<&DeviceList> {
        self.users.get(user).map(|u| &u.list)
    }

    /// The pinned master key of `user`.
    pub fn master_key(&self, user: &UserId) -> Option<MasterPublicKey> {
        self.users.get(user).map(|u| u.list.master)
    }

    /// The list signed by another master key that awaits approval, if any.
    pub fn pending(&self, user: &UserId) -> Option<&DeviceList> {
        self.users.get(user).and_then(|u| u.pending.as_ref())
    }

    /// Users with a list.
    pub fn users(&self) -> impl Iterator<Item = &UserId> {
        self.users.keys()
    }

    /// Decodes and processes a list (see the module documentation). On any error,
    /// nothing changes.
    pub fn process(&mut self, bytes: &[u8]) -> Result<DeviceListEvent, DeviceListError> {
        let list = DeviceList::decode(bytes)?;
        let staged = self.stage(list)?;
        Ok(self.apply(staged))
    }

    /// Decides what `list` (already decoded and signature-checked) does, changing nothing.
    pub(crate) fn stage(&self, list: DeviceList) -> Result<Staged, DeviceListError> {
        let user = list.user.clone();
        let Some(held) = self.users.get(&user) else {
            if self.users.len() >= MAX_DEVICE_LIST_USERS {
                return Err(DeviceListError::TooManyUsers);
            }
            let event = DeviceListEvent::New { devices: list.devices.clone() };
            return Ok(Staged { user, entry: Some(UserLists { list, pending: None }), event });
        };
        if list.master == held.list.master {
            let event = match compare(&held.list, &list)? {
                true => DeviceListEvent::Unchanged,
                false => {
                    let (added, removed) = diff(&held.list, &list);
                    DeviceListEvent::Updated { added, removed }
                }
            };
            let entry = match event {
                DeviceListEvent::Unchanged => None,
                _ => Some(UserLists { list, pending: held.pending.clone() }),
            };
            return Ok(Staged { user, entry, event });
        }
        let event = DeviceListEvent::MasterKeyChanged { previous: held.list.master, new: list.master };
        let entry = match &held.pending {
            // The same pending list again, or an older one by the same new key: nothing to keep.
            Some(p) if p.master == list.master && !newer(p, &list)? => None,
            _ => Some(UserLists { list: held.list.clone(), pending: Some(list) }),
        };
        Ok(Staged { user, entry, event })
    }

    /// Applies a staged change; returns its event.
    pub(crate) fn apply(&mut self, staged: Staged) -> DeviceListEvent {
        if let Some(entry) = staged.entry {
            self.users.insert(staged.user, entry);
        }
        staged.event
    }

    /// The app's decision: pins `key`, the master key of the pending list of `user`, and
    /// applies that list. Refused (`UnknownMasterKey`, nothing changes) if no list signed
    /// by `key` is pending. Returns what changed against the list held before.
    pub fn approve_master_key(
        &mut self,
        user: &UserId,
        key: &MasterPublicKey,
    ) -> Result<DeviceListEvent, DeviceListError> {
        let held = self.users.get_mut(user).ok_or(DeviceListError::UnknownMasterKey)?;
        match held.pending.take() {
            Some(p) if &p.master == key => {
                let (added, removed) = diff(&held.list, &p);
                held.list = p;
                Ok(DeviceListEvent::Updated { added, removed })
            }
            other => {
                held.pending = other;
                Err(DeviceListError::UnknownMasterKey)
            }
        }
    }

    /// Stores a list this device made or adopted as its own user's, pinning its master key
    /// (the caller has checked it: signed by this device's master key, or matching this
    /// device's endorsement). Any pending change is dropped.
    pub(crate) fn set_own(&mut self, list: DeviceList) -> Result<(), DeviceListError> {
        if !self.users.contains_key(&list.user) && self.users.len() >= MAX_DEVICE_LIST_USERS {
            return Err(DeviceListError::TooManyUsers);
        }
        if let Some(held) = self.users.get(&list.user) {
            if held.list.master == list.master && !newer(&held.list, &list)? && held.list != list {
                return Err(DeviceListError::Stale { held: held.list.version, got: list.version });
            }
        }
        self.users.insert(list.user.clone(), UserLists { list, pending: None });
        Ok(())
    }

    /// The bytes [`Self::write`] writes.
    pub(crate) fn encoded_len(&self) -> usize {
        4 + self.users.values().map(UserLists::encoded_len).sum::<usize>()
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.users.len() as u32);
        for (user, u) in &self.users {
            write_short(w, user.as_str());
            w.u16(u.list.bytes.len() as u16).bytes(&u.list.bytes);
            w.flag(u.pending.is_some());
            if let Some(p) = &u.pending {
                w.u16(p.bytes.len() as u16).bytes(&p.bytes);
            }
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count(MAX_DEVICE_LIST_USERS, "device list users")?;
        let mut users = BTreeMap::new();
        let list = |r: &mut Reader<'_>| -> Result<DeviceList, DecodeError> {
            let len = r.u16()? as usize;
            DeviceList::decode(r.bytes(len)?).map_err(|_| DecodeError::InvalidValue("held device list"))
        };
        for _ in 0..n {
            let user = read_user_id(r)?;
            let held = list(r)?;
            let pending = if r.flag("pending device list flag")? { Some(list(r)?) } else { None };
            let consistent =
                held.user == user && pending.as_ref().is_none_or(|p| p.user == user && p.master != held.master);
            if !consistent || users.insert(user, UserLists { list: held, pending }).is_some() {
                return Err(DecodeError::InvalidValue("held device lists"));
            }
        }
        Ok(DeviceLists { users })
    }
}

/// Same master key: `Ok(true)` if `new` is `held` again, `Ok(false)` if newer, `Stale`
/// if older or another list at the same version.
fn compare(held: &DeviceList, new: &DeviceList) -> Result<bool, DeviceListError> {
    if new.bytes == held.bytes {
        return Ok(true);
    }
    if new.version > held.version {
        return Ok(false);
    }
    Err(DeviceListError::Stale { held: held.version, got: new.version })
}

/// Whether `new` is a newer version than `held` (an identical list is not newer; a
/// different list at the same version or older is `Stale`).
fn newer(held: &DeviceList, new: &DeviceList) -> Result<bool, DeviceListError> {
    Ok(!compare(held, new)?)
}

/// What this device knows of itself as one of its user's devices: its device id, the
/// master key if it is the primary, and the endorsement the primary gave it.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnDevice {
    pub(crate) address: Option<DeviceAddress>,
    pub(crate) master: Option<MasterKey>,
    pub(crate) endorsement: Option<DeviceEndorsement>,
}

impl OwnDevice {
    pub(crate) fn encoded_len(&self) -> usize {
        1 + self.address.as_ref().map_or(0, |a| 1 + a.user().as_str().len() + 1 + a.device().as_str().len())
            + 1
            + self.master.as_ref().map_or(0, |_| 32)
            + 1
            + self.endorsement.as_ref().map_or(0, |e| 2 + e.bytes.len())
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.flag(self.address.is_some());
        if let Some(a) = &self.address {
            write_short(w, a.user().as_str());
            write_short(w, a.device().as_str());
        }
        w.flag(self.master.is_some());
        if let Some(m) = &self.master {
            w.bytes(m.seed_bytes());
        }
        w.flag(self.endorsement.is_some());
        if let Some(e) = &self.endorsement {
            w.u16(e.bytes.len() as u16).bytes(&e.bytes);
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let address = if r.flag("own address flag")? {
            Some(DeviceAddress::new(read_user_id(r)?, read_device_id(r)?))
        } else {
            None
        };
        let master = if r.flag("master key flag")? {
            let seed = Zeroizing::new(r.array::<32>()?);
            Some(MasterKey::from_seed(*seed))
        } else {
            None
        };
        let endorsement = if r.flag("endorsement flag")? {
            let len = r.u16()? as usize;
            Some(DeviceEndorsement::decode(r.bytes(len)?).map_err(|_| DecodeError::InvalidValue("endorsement"))?)
        } else {
            None
        };
        Ok(OwnDevice { address, master, endorsement })
    }
}

#[cfg(test)]
mod tests;
