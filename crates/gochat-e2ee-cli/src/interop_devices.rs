//! Interop ops for multi-device users (`docs/interop.md`, "Device lists"):
//! `create_master_key`, `endorse_device`, `adopt_own_device_list`,
//! `remove_linked_device`, `process_device_list`, `approve_master_key`,
//! `encrypt_for_user`, `device_list_info`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::device::{DeviceListUpdate, DeviceOutcome, FanOut, MissingReason};
use gochat_e2ee::group::GroupId;
use gochat_e2ee::trust::address::{DeviceAddress, DeviceId, UserId};
use gochat_e2ee::trust::{DeviceEndorsement, DeviceEntry, DeviceList, DeviceListEvent, MasterPublicKey};
use gochat_e2ee::{Device, ErrorCode, PreKeyBundle};
use serde_json::{json, Map, Value};

use crate::interop::{b64_arg, now_arg, str_arg, Failure, Rng};
use crate::interop_groups::{array_arg, change_json, identity_arg, key32_arg};

const OPS: &[&str] = &[
    "create_master_key",
    "endorse_device",
    "adopt_own_device_list",
    "remove_linked_device",
    "process_device_list",
    "approve_master_key",
    "encrypt_for_user",
    "device_list_info",
];

/// Whether `op` is one of the device-list ops.
pub fn is_op(op: &str) -> bool {
    OPS.contains(&op)
}

fn malformed(what: &str) -> Failure {
    Failure { error: ErrorCode::Malformed.as_str(), detail: format!("invalid {what}") }
}

fn device_id_arg(obj: &Map<String, Value>) -> Result<DeviceId, Failure> {
    DeviceId::parse(str_arg(obj, "device_id")?).map_err(|_| malformed("device id"))
}

fn user_arg(obj: &Map<String, Value>) -> Result<UserId, Failure> {
    UserId::parse(str_arg(obj, "user")?).map_err(|_| malformed("user id"))
}

fn list_arg(obj: &Map<String, Value>) -> Result<DeviceList, Failure> {
    Ok(DeviceList::decode(&b64_arg(obj, "device_list")?).map_err(gochat_e2ee::Error::from)?)
}

fn entries_json(d: &[DeviceEntry]) -> Value {
    d.iter()
        .map(|e| json!({"device_id": e.device.as_str(), "identity_key": B64.encode(e.identity.to_bytes())}))
        .collect()
}

fn list_json(l: &DeviceList) -> Value {
    json!({
        "user": l.user().as_str(),
        "version": l.version(),
        "issued_at": l.issued_at(),
        "master_public_key": B64.encode(l.master_public_key().to_bytes()),
        "devices": entries_json(l.devices()),
        "bytes": B64.encode(l.as_bytes()),
    })
}

fn event_json(e: &DeviceListEvent) -> Value {
    match e {
        DeviceListEvent::New { devices } => json!({"kind": "new", "devices": entries_json(devices)}),
        DeviceListEvent::Updated { added, removed } => {
            json!({"kind": "updated", "added": entries_json(added), "removed": entries_json(removed)})
        }
        DeviceListEvent::Unchanged => json!({"kind": "unchanged"}),
        DeviceListEvent::MasterKeyChanged { previous, new } => json!({
            "kind": "master_key_changed",
            "previous": B64.encode(previous.to_bytes()),
            "new": B64.encode(new.to_bytes()),
        }),
    }
}

fn failures_json(f: &[(GroupId, ErrorCode)]) -> Value {
    f.iter().map(|(id, code)| json!({"group_id": B64.encode(id.0), "error": code.as_str()})).collect()
}

fn update_json(u: &DeviceListUpdate) -> Value {
    json!({
        "event": event_json(&u.event),
        "group_changes": u.group_changes.iter().map(change_json).collect::<Vec<_>>(),
        "group_failures": failures_json(&u.group_failures),
    })
}

fn fan_out_json(f: &FanOut) -> Value {
    let report: Vec<Value> = f
        .report
        .iter()
        .map(|r| match r.outcome {
            DeviceOutcome::Sent { new_session } => {
                json!({"address": r.address.peer_name(), "outcome": "sent", "new_session": new_session})
            }
            DeviceOutcome::Missing(reason) => {
                json!({"address": r.address.peer_name(), "outcome": "missing", "reason": MissingReason::as_str(reason)})
            }
        })
        .collect();
    json!({
        "messages": f.messages.iter().map(|(p, m)| json!({"peer": p, "message": B64.encode(m)})).collect::<Vec<_>>(),
        "report": report,
    })
}

/// Runs a device-list op (one listed in `OPS`) on `device`.
pub fn dispatch(op: &str, device: &mut Device, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    Ok(match op {
        "create_master_key" => {
            let list = device.create_master_key(&device_id_arg(obj)?, now_arg(obj)?, rng)?;
            json!({
                "device_list": B64.encode(list.as_bytes()),
                "master_public_key": B64.encode(list.master_public_key().to_bytes()),
            })
        }
        "endorse_device" => {
            let identity = identity_arg(obj, "identity_key")?;
            let (e, list) = device.endorse_device(&device_id_arg(obj)?, &identity, now_arg(obj)?)?;
            json!({"endorsement": B64.encode(e.encode()), "device_list": B64.encode(list.as_bytes())})
        }
        "adopt_own_device_list" => {
            let list = list_arg(obj)?;
            let e = DeviceEndorsement::decode(&b64_arg(obj, "endorsement")?).map_err(gochat_e2ee::Error::from)?;
            device.adopt_own_device_list(&list, &e)?;
            json!({})
        }
        "remove_linked_device" => {
            let r = device.remove_linked_device(&device_id_arg(obj)?, now_arg(obj)?, rng)?;
            json!({
                "device_list": B64.encode(r.device_list.as_bytes()),
                "group_changes": r.group_changes.iter().map(change_json).collect::<Vec<_>>(),
                "group_failures": failures_json(&r.group_failures),
            })
        }
        "process_device_list" => {
            let bytes = b64_arg(obj, "device_list")?;
            update_json(&device.process_device_list(&bytes, now_arg(obj)?, rng)?)
        }
        "approve_master_key" => {
            let key =
                MasterPublicKey::from_bytes(key32_arg(obj, "master_public_key")?).map_err(gochat_e2ee::Error::from)?;
            update_json(&device.approve_master_key(&user_arg(obj)?, &key, now_arg(obj)?, rng)?)
        }
        "encrypt_for_user" => {
            let user = user_arg(obj)?;
            let plaintext = b64_arg(obj, "plaintext")?;
            let mut bundles = Vec::new();
            if obj.contains_key("bundles") {
                for b in array_arg(obj, "bundles")? {
                    let b = b.as_object().ok_or_else(|| Failure::bad_request("`bundles` items must be objects"))?;
                    let address =
                        DeviceAddress::parse(str_arg(b, "address")?).map_err(|_| malformed("device address"))?;
                    let bundle = PreKeyBundle::from_bytes(&b64_arg(b, "bundle")?).map_err(gochat_e2ee::Error::from)?;
                    bundles.push((address, bundle));
                }
            }
            fan_out_json(&device.encrypt_for_user(&user, &plaintext, &bundles, rng)?)
        }
        "device_list_info" => {
            let user = match obj.get("user") {
                None | Some(Value::Null) => device.own_address().map(|a| a.user().clone()),
                Some(_) => Some(user_arg(obj)?),
            };
            let lists = device.device_lists();
            let list = user.as_ref().and_then(|u| lists.list(u)).map(list_json);
            let pending = user.as_ref().and_then(|u| lists.pending(u)).map(list_json);
            json!({
                "own_address": device.own_address().map(DeviceAddress::peer_name),
                "primary": device.is_primary(),
                "master_public_key": device.master_public_key().map(|k| B64.encode(k.to_bytes())),
                "list": list,
                "pending": pending,
            })
        }
        other => return Err(Failure::bad_request(format!("not a device-list op: {other}"))),
    })
}
