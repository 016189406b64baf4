//! Multi-device users (`docs/protocol.md` 15.8) and device linking (15.9) as `Device`
//! methods, plus two stateless decoders. Mirrors the uniffi `devices.rs`: convert, call
//! the core's device-list façade (which decides, checks the budget and is
//! failure-atomic), map errors. User ids, device ids and addresses cross as strings and
//! are refused with `Malformed` unless canonical; master keys as 32 bytes (`InvalidKey`
//! otherwise).

use gochat_e2ee as core;
use gochat_e2ee::device::{DeviceListUpdate, DeviceOutcome};
use gochat_e2ee::trust::address::{DeviceAddress, DeviceId, UserId};
use gochat_e2ee::trust::devices::DeviceListError;
use gochat_e2ee::trust::{DeviceEndorsement, DeviceEntry, DeviceList, DeviceListEvent, MasterPublicKey};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::Zeroizing;

use crate::provisioning::ProvisioningSecret;
use crate::{
    bytes, field, group_change, identity_key, js_error, malformed, outgoing, rng, seconds, Device, JsResult, Obj,
};

fn user_arg(s: &str) -> JsResult<UserId> {
    UserId::parse(s).map_err(|_| malformed("user id"))
}

fn device_arg(s: &str) -> JsResult<DeviceId> {
    DeviceId::parse(s).map_err(|_| malformed("device id"))
}

fn list_arg(b: &[u8]) -> JsResult<DeviceList> {
    DeviceList::decode(b).map_err(|e| js_error(e.into()))
}

fn endorsement_arg(b: &[u8]) -> JsResult<DeviceEndorsement> {
    DeviceEndorsement::decode(b).map_err(|e| js_error(e.into()))
}

/// `[{deviceId, identityKey}]`.
fn entries(d: &[DeviceEntry]) -> Array {
    d.iter()
        .map(|e| Obj::new().set("deviceId", e.device.as_str()).set("identityKey", bytes(&e.identity.to_bytes())).done())
        .collect()
}

/// `{user, version, issuedAt, masterPublicKey, devices, bytes}`.
fn list_obj(l: &DeviceList) -> JsValue {
    Obj::new()
        .set("user", l.user().as_str())
        .set("version", l.version() as f64)
        .set("issuedAt", l.issued_at() as f64)
        .set("masterPublicKey", bytes(&l.master_public_key().to_bytes()))
        .set("devices", entries(l.devices()))
        .set("bytes", bytes(&l.encode()))
        .done()
}

fn opt_list(l: Option<&DeviceList>) -> JsValue {
    l.map_or(JsValue::UNDEFINED, list_obj)
}

/// `{kind: "new", devices} | {kind: "updated", added, removed} | {kind: "unchanged"} |
/// {kind: "masterKeyChanged", previous, new}`.
fn event_obj(e: &DeviceListEvent) -> JsValue {
    match e {
        DeviceListEvent::New { devices } => Obj::new().set("kind", "new").set("devices", entries(devices)).done(),
        DeviceListEvent::Updated { added, removed } => {
            Obj::new().set("kind", "updated").set("added", entries(added)).set("removed", entries(removed)).done()
        }
        DeviceListEvent::Unchanged => Obj::new().set("kind", "unchanged").done(),
        DeviceListEvent::MasterKeyChanged { previous, new } => Obj::new()
            .set("kind", "masterKeyChanged")
            .set("previous", bytes(&previous.to_bytes()))
            .set("new", bytes(&new.to_bytes()))
            .done(),
    }
}

/// `[{groupId, error}]`: groups that could not be rekeyed here.
fn failures(f: &[(core::group::GroupId, core::ErrorCode)]) -> Array {
    f.iter().map(|(id, c)| Obj::new().set("groupId", bytes(&id.0)).set("error", c.as_str()).done()).collect()
}

/// `{event, groupChanges, groupFailures}`.
fn update_obj(u: DeviceListUpdate) -> JsValue {
    Obj::new()
        .set("event", event_obj(&u.event))
        .set("groupFailures", failures(&u.group_failures))
        .set("groupChanges", u.group_changes.into_iter().map(group_change).collect::<Array>())
        .done()
}

/// `[{address, bundle}]` into parsed pairs (`Malformed` for a non-canonical address).
fn bundles_arg(list: &[JsValue]) -> JsResult<Vec<(DeviceAddress, core::PreKeyBundle)>> {
    list.iter()
        .map(|b| {
            let a = field(b, "address", "addressed bundle")?.as_string().ok_or_else(|| malformed("bundle address"))?;
            let a = DeviceAddress::parse(&a).map_err(|_| malformed("device address"))?;
            let bundle = field(b, "bundle", "addressed bundle")?
                .dyn_into::<Uint8Array>()
                .map_err(|_| malformed("bundle bytes"))?
                .to_vec();
            let bundle = core::PreKeyBundle::from_bytes(&bundle).map_err(|e| js_error(e.into()))?;
            Ok((a, bundle))
        })
        .collect()
}

/// Decodes a device list (type 0x55) and checks its signature by the master key it
/// names: `{user, version, issuedAt, masterPublicKey, devices, bytes}`.
#[wasm_bindgen(js_name = decodeDeviceList)]
pub fn decode_device_list(b: &[u8]) -> JsResult<JsValue> {
    Ok(list_obj(&list_arg(b)?))
}

/// Decodes a device endorsement (type 0x56) and checks its signature by the master key
/// it names: `{user, deviceId, identityKey, masterPublicKey}`.
#[wasm_bindgen(js_name = decodeDeviceEndorsement)]
pub fn decode_device_endorsement(b: &[u8]) -> JsResult<JsValue> {
    let e = endorsement_arg(b)?;
    Ok(Obj::new()
        .set("user", e.user().as_str())
        .set("deviceId", e.device().as_str())
        .set("identityKey", bytes(&e.identity().to_bytes()))
        .set("masterPublicKey", bytes(&e.master_public_key().to_bytes()))
        .done())
}

#[wasm_bindgen]
impl Device {
    /// Makes this device its user's primary: a new master key and list version 1 with
    /// this device alone (publish the returned list bytes). `Duplicate` if it already has
    /// a master key or adopted a list; `Malformed` for a non-canonical device id or user.
    #[wasm_bindgen(js_name = createMasterKey)]
    pub fn create_master_key(&mut self, device_id: &str, now: f64) -> JsResult<Vec<u8>> {
        let device = device_arg(device_id)?;
        self.with(|d| d.create_master_key(&device, seconds(now), &mut rng())).map(|l| l.encode())
    }

    /// The primary adds a device to its list (version + 1) and endorses it:
    /// `{endorsement, deviceList}` (give both to the new device, publish the list).
    /// `NotPrimary`, `Duplicate`, `TooManyDevices`; nothing changes on error.
    #[wasm_bindgen(js_name = endorseDevice)]
    pub fn endorse_device(&mut self, device_id: &str, identity: &[u8], now: f64) -> JsResult<JsValue> {
        let (device, identity) = (device_arg(device_id)?, identity_key(identity)?);
        let (e, list) = self.with(|d| d.endorse_device(&device, &identity, seconds(now)))?;
        Ok(Obj::new().set("endorsement", bytes(&e.encode())).set("deviceList", bytes(&list.encode())).done())
    }

    /// A linked device takes its user's list and its endorsement (both checked against
    /// this device's identity and each other).
    #[wasm_bindgen(js_name = adoptOwnDeviceList)]
    pub fn adopt_own_device_list(&mut self, device_list: &[u8], endorsement: &[u8]) -> JsResult<()> {
        let (list, e) = (list_arg(device_list)?, endorsement_arg(endorsement)?);
        self.with(|d| d.adopt_own_device_list(&list, &e))
    }

    /// The primary removes one of its other devices: `{deviceList, groupChanges,
    /// groupFailures}`. `NotPrimary`, `UnknownDevice` (unlisted, or this device).
    #[wasm_bindgen(js_name = removeLinkedDevice)]
    pub fn remove_linked_device(&mut self, device_id: &str, now: f64) -> JsResult<JsValue> {
        let device = device_arg(device_id)?;
        let r = self.with(|d| d.remove_linked_device(&device, seconds(now), &mut rng()))?;
        Ok(Obj::new()
            .set("deviceList", bytes(&r.device_list.encode()))
            .set("groupFailures", failures(&r.group_failures))
            .set("groupChanges", r.group_changes.into_iter().map(group_change).collect::<Array>())
            .done())
    }

    /// Processes a device list from the server (a peer's or this user's own):
    /// `{event, groupChanges, groupFailures}`. Show `masterKeyChanged` to the user. A
    /// refused list changes nothing.
    #[wasm_bindgen(js_name = processDeviceList)]
    pub fn process_device_list(&mut self, device_list: &[u8], now: f64) -> JsResult<JsValue> {
        self.with(|d| d.process_device_list(device_list, seconds(now), &mut rng())).map(update_obj)
    }

    /// The app's decision on a master-key change: pins `masterPublicKey` (32 bytes) for
    /// `user` and applies its pending list. `UnknownMasterKey` if none is pending.
    #[wasm_bindgen(js_name = approveMasterKey)]
    pub fn approve_master_key(&mut self, user: &str, master_public_key: &[u8], now: f64) -> JsResult<JsValue> {
        let user = user_arg(user)?;
        let key =
            <[u8; 32]>::try_from(master_public_key).map_err(|_| js_error(DeviceListError::InvalidMasterKey.into()))?;
        let key = MasterPublicKey::from_bytes(key).map_err(|e| js_error(e.into()))?;
        self.with(|d| d.approve_master_key(&user, &key, seconds(now), &mut rng())).map(update_obj)
    }

    /// Encrypts `plaintext` for every listed device of `user` and this device's own other
    /// devices (existing sessions, or new ones from `bundles`, `[{address, bundle}]`):
    /// `{messages: [{peer, message}], report: [{address, sent, newSession, missing?}]}`.
    #[wasm_bindgen(js_name = encryptForUser)]
    pub fn encrypt_for_user(&mut self, user: &str, plaintext: Vec<u8>, bundles: Vec<JsValue>) -> JsResult<JsValue> {
        let plaintext = Zeroizing::new(plaintext);
        let (user, bundles) = (user_arg(user)?, bundles_arg(&bundles)?);
        let out = self.with(|d| d.encrypt_for_user(&user, &plaintext, &bundles, &mut rng()))?;
        let messages: Vec<core::group::Outgoing> =
            out.messages.into_iter().map(|(peer, message)| core::group::Outgoing { peer, message }).collect();
        let report: Array = out
            .report
            .into_iter()
            .map(|r| {
                let o = Obj::new().set("address", r.address.peer_name());
                match r.outcome {
                    DeviceOutcome::Sent { new_session } => {
                        o.set("sent", true).set("newSession", new_session).set("missing", JsValue::NULL).done()
                    }
                    DeviceOutcome::Missing(m) => {
                        o.set("sent", false).set("newSession", false).set("missing", m.as_str()).done()
                    }
                }
            })
            .collect();
        Ok(Obj::new().set("messages", outgoing(&messages)).set("report", report).done())
    }

    /// This device's own user's newest list, or `undefined`.
    #[wasm_bindgen(js_name = ownDeviceList)]
    pub fn own_device_list(&self) -> JsValue {
        opt_list(self.dev().own_device_list())
    }

    /// The newest accepted list of `user`, or `undefined`.
    #[wasm_bindgen(js_name = deviceList)]
    pub fn device_list(&self, user: &str) -> JsResult<JsValue> {
        Ok(opt_list(self.dev().device_lists().list(&user_arg(user)?)))
    }

    /// The list by another master key awaiting approval for `user`, or `undefined`.
    #[wasm_bindgen(js_name = pendingDeviceList)]
    pub fn pending_device_list(&self, user: &str) -> JsResult<JsValue> {
        Ok(opt_list(self.dev().device_lists().pending(&user_arg(user)?)))
    }

    /// Whether this device holds its user's master key.
    #[wasm_bindgen(getter, js_name = isPrimary)]
    pub fn is_primary(&self) -> bool {
        self.dev().is_primary()
    }

    /// This device's address (`user/device`) once it has a list, else `undefined`.
    #[wasm_bindgen(getter, js_name = ownAddress)]
    pub fn own_address(&self) -> Option<String> {
        self.dev().own_address().map(DeviceAddress::peer_name)
    }

    /// The phone (primary) links the device whose offer it scanned (15.9): endorses it,
    /// adds it to the own list and seals the payload to the offer: `{message, deviceList}`
    /// (send `message` to the new device, publish `deviceList`). `ProvisioningExpired`,
    /// `NotPrimary`, `Duplicate`, `TooManyDevices`, `Malformed`; nothing changes on error.
    #[wasm_bindgen(js_name = linkDevice)]
    pub fn link_device(&mut self, offer: &[u8], now: f64) -> JsResult<JsValue> {
        let out = self.with(|d| d.link_device(offer, seconds(now), &mut rng()))?;
        Ok(Obj::new().set("message", bytes(&out.message)).set("deviceList", list_obj(&out.device_list)).done())
    }

    /// The new device completes the link with the secret behind its offer: opens the
    /// phone's message, verifies it names this device and adopts the list (returned as
    /// `{user, version, ...}`). Refused, changing neither the device nor the secret:
    /// the errors of `ProvisioningSecret.open` (`ProvisioningUsed` once spent),
    /// `DeviceListMismatch` (names another device, identity, user or master key), and those of
    /// `adoptOwnDeviceList`.
    #[wasm_bindgen(js_name = completeLink)]
    pub fn complete_link(&mut self, secret: &mut ProvisioningSecret, message: &[u8]) -> JsResult<JsValue> {
        Ok(list_obj(&self.with(|d| d.complete_link(&mut secret.inner, message))?))
    }
}
