//! Interop ops for linking a device (`docs/interop.md`, "Linking a device"):
//! `provisioning_offer` (a device makes an offer; the driver keeps the one-time secret
//! under the device's name), `provisioning_seal` (the phone's side, stateless) and
//! `provisioning_open` (the device opens the phone's message with its secret).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::provisioning::{seal, LinkPayload, ProvisioningOffer, ProvisioningSecret};
use gochat_e2ee::wire::DecodeError;
use gochat_e2ee::{Device, Error};
use serde_json::{json, Map, Value};

use crate::interop::{b64_arg, now_arg, str_arg, Failure, Rng};

fn malformed(what: &'static str) -> Failure {
    Error::Malformed(DecodeError::InvalidValue(what)).into()
}

/// Whether `op` is one of this module's.
pub fn is_op(op: &str) -> bool {
    matches!(op, "provisioning_offer" | "provisioning_seal" | "provisioning_open")
}

/// Runs one op. `device` is the named device (for `provisioning_offer`), `secrets` the
/// provisioning secrets by device name.
pub fn dispatch(
    op: &str,
    obj: &Map<String, Value>,
    device: Option<&Device>,
    secrets: &mut HashMap<String, ProvisioningSecret>,
    rng: &mut Rng,
) -> Result<Value, Failure> {
    match op {
        "provisioning_offer" => {
            let name = str_arg(obj, "device")?.to_owned();
            let device = device.ok_or_else(|| Failure::unknown_device(&name))?;
            let id = DeviceId::parse(str_arg(obj, "device_id")?).map_err(|_| malformed("device id"))?;
            let (secret, offer) = ProvisioningSecret::new(device.identity(), id, now_arg(obj)?, rng);
            secrets.insert(name, secret);
            Ok(json!({ "offer": B64.encode(offer.to_bytes()) }))
        }
        "provisioning_seal" => {
            let offer = ProvisioningOffer::from_bytes(&b64_arg(obj, "offer")?).map_err(Error::from)?;
            let payload = LinkPayload {
                user: UserId::parse(str_arg(obj, "user")?).map_err(|_| malformed("user id"))?,
                master_public: b64_arg(obj, "master_public")?
                    .try_into()
                    .map_err(|_| malformed("master public key length"))?,
                endorsement: b64_arg(obj, "endorsement")?,
                device_list: b64_arg(obj, "device_list")?,
            };
            let m = seal(&offer, &payload, now_arg(obj)?, rng).map_err(Error::from)?;
            Ok(json!({ "message": B64.encode(m.to_bytes()) }))
        }
        _ => {
            let name = str_arg(obj, "device")?;
            let secret = secrets.get_mut(name).ok_or_else(|| Failure {
                error: "UnknownDevice",
                detail: format!("no provisioning offer made by {name:?}"),
            })?;
            let p = secret.open(&b64_arg(obj, "message")?).map_err(Error::from)?;
            Ok(json!({
                "user": p.user.as_str(),
                "master_public": B64.encode(p.master_public),
                "endorsement": B64.encode(&p.endorsement),
                "device_list": B64.encode(&p.device_list),
            }))
        }
    }
}
