//! Linking a device from the phone (`docs/protocol.md` 15.9): the new device's one-time
//! `ProvisioningSecret` (its `offer` is the QR code), the phone's `provisioningSeal`, and
//! `inspectProvisioningOffer`. Thin: convert, call `trust::provisioning`, map errors.

use gochat_e2ee as core;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::provisioning as prov;
use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{bytes, field, identity_key, js_error, malformed, rng, seconds, JsResult, Obj};

fn prov_err(e: prov::ProvisioningError) -> JsValue {
    js_error(core::Error::Provisioning(e))
}

fn byte_field(o: &JsValue, key: &str, what: &'static str) -> JsResult<Vec<u8>> {
    Ok(field(o, key, what)?.dyn_into::<Uint8Array>().map_err(|_| malformed(what))?.to_vec())
}

/// `{user, masterPublic, endorsement, deviceList}` into a payload (`Malformed` otherwise).
fn link_payload(o: &JsValue) -> JsResult<prov::LinkPayload> {
    let user = field(o, "user", "link payload")?.as_string().ok_or_else(|| malformed("link payload user"))?;
    let master = byte_field(o, "masterPublic", "link payload masterPublic")?;
    Ok(prov::LinkPayload {
        user: UserId::parse(&user).map_err(|_| malformed("user id"))?,
        master_public: master.try_into().map_err(|_| malformed("master public key length"))?,
        endorsement: byte_field(o, "endorsement", "link payload endorsement")?,
        device_list: byte_field(o, "deviceList", "link payload deviceList")?,
    })
}

fn payload_obj(p: &prov::LinkPayload) -> JsValue {
    Obj::new()
        .set("user", p.user.as_str())
        .set("masterPublic", bytes(&p.master_public))
        .set("endorsement", bytes(&p.endorsement))
        .set("deviceList", bytes(&p.device_list))
        .done()
}

/// Decodes a scanned offer: `{deviceId, identity, createdAt}` (show the device id before
/// linking). Throws `Malformed`, `WrongMessageType`, `UnsupportedVersion`, `TooLarge`,
/// `InvalidKey`, `WeakKey`.
#[wasm_bindgen(js_name = inspectProvisioningOffer)]
pub fn inspect_provisioning_offer(offer: &[u8]) -> JsResult<JsValue> {
    let o = prov::ProvisioningOffer::from_bytes(offer).map_err(prov_err)?;
    Ok(Obj::new()
        .set("deviceId", o.device_id().as_str())
        .set("identity", bytes(&o.identity().to_bytes()))
        .set("createdAt", o.created_at() as f64)
        .done())
}

/// The phone's side: seals `payload` (`{user, masterPublic, endorsement, deviceList}`) to
/// a scanned `offer`, fresh at `now`; returns the provisioning message. Throws
/// `ProvisioningExpired` (stale or future offer), `Malformed`, `InvalidKey`, ...
#[wasm_bindgen(js_name = provisioningSeal)]
pub fn provisioning_seal(offer: &[u8], payload: JsValue, now: f64) -> JsResult<JsValue> {
    let o = prov::ProvisioningOffer::from_bytes(offer).map_err(prov_err)?;
    let p = link_payload(&payload)?;
    Ok(bytes(&prov::seal(&o, &p, seconds(now), &mut rng()).map_err(prov_err)?.to_bytes()))
}

/// The new device's one-time provisioning secret: show `offer` as a QR code, then `open`
/// the phone's message. A failed open changes nothing; after one success, every open
/// throws `ProvisioningUsed`. Call `free()` when done (the secret is wiped on drop).
#[wasm_bindgen]
pub struct ProvisioningSecret {
    pub(crate) inner: prov::ProvisioningSecret,
}

#[wasm_bindgen]
impl ProvisioningSecret {
    /// A fresh secret for the device with `identity` (e.g. `device.identityKey`) and
    /// `deviceId`, dated `now`. Throws `Malformed` (device id), `InvalidKey`, ...
    #[wasm_bindgen(constructor)]
    pub fn new(identity: &[u8], device_id: &str, now: f64) -> JsResult<ProvisioningSecret> {
        let identity = identity_key(identity)?;
        let device = DeviceId::parse(device_id).map_err(|_| malformed("device id"))?;
        let (inner, _) = prov::ProvisioningSecret::new(&identity, device, seconds(now), &mut rng());
        Ok(ProvisioningSecret { inner })
    }

    /// The offer (at most 173 bytes): show it as a QR code.
    #[wasm_bindgen(getter)]
    pub fn offer(&self) -> JsValue {
        bytes(&self.inner.offer().to_bytes())
    }

    /// Whether this secret already opened its message.
    #[wasm_bindgen(getter, js_name = isUsed)]
    pub fn is_used(&self) -> bool {
        self.inner.is_used()
    }

    /// Opens the phone's message: `{user, masterPublic, endorsement, deviceList}`.
    /// Throws, changing nothing: `Malformed`, `TooLarge`, `NonContributory`,
    /// `AuthenticationFailed`; after one success, `ProvisioningUsed`.
    pub fn open(&mut self, message: &[u8]) -> JsResult<JsValue> {
        Ok(payload_obj(&self.inner.open(message).map_err(prov_err)?))
    }
}
