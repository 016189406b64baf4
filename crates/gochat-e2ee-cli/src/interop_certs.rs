//! Interop ops for agency-certified identities (`docs/interop.md`, "Certificates"):
//! issuing (`cert_public_key`, `cert_issue_agency`, `cert_issue_device`, `cert_chain`,
//! `revocation_issue`), stateless verification (`cert_verify`) and the device ops
//! (`set_trust_roots`, `apply_revocation_list`, `set_require_certificate`,
//! `verify_device`, `initiate_certified`, `decrypt_certified`, `approve_certified`).
//! Keys are base64 Ed25519 seeds (issuers) or public keys; objects are base64 bytes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::trust::address::DeviceAddress;
use gochat_e2ee::trust::certificate::{
    verify_device, AgencyCertificate, AgencyKey, CertificateChain, DeviceCertificate, RevocationUpdate, Revocations,
    RootKey, TrustRoots, VerifiedDevice,
};
use gochat_e2ee::{Device, Error, IdentityKey, PreKeyBundle};
use serde_json::{json, Map, Value};

use crate::interop::{b64_arg, identity_event_json, now_arg, str_arg, Failure, Rng};

/// Whether `op` is a stateless certificate op.
pub fn is_op(op: &str) -> bool {
    matches!(
        op,
        "cert_public_key"
            | "cert_issue_agency"
            | "cert_issue_device"
            | "cert_chain"
            | "revocation_issue"
            | "cert_verify"
    )
}

/// Whether `op` is a device certificate op.
pub fn is_device_op(op: &str) -> bool {
    matches!(
        op,
        "set_trust_roots"
            | "apply_revocation_list"
            | "set_require_certificate"
            | "verify_device"
            | "initiate_certified"
            | "decrypt_certified"
            | "approve_certified"
    )
}

fn err(e: impl Into<Error>) -> Failure {
    Failure::from(e.into())
}

fn u64_arg(obj: &Map<String, Value>, name: &str) -> Result<u64, Failure> {
    obj.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| Failure::bad_request(format!("`{name}` must be a non-negative integer")))
}

fn key_arg(obj: &Map<String, Value>, name: &str) -> Result<[u8; 32], Failure> {
    b64_arg(obj, name)?.try_into().map_err(|_| Failure::bad_request(format!("`{name}` must be 32 bytes")))
}

fn list_arg<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Vec<Value>, Failure> {
    match obj.get(name) {
        Some(Value::Array(a)) => Ok(a),
        None => Err(Failure::bad_request(format!("missing `{name}`"))),
        Some(_) => Err(Failure::bad_request(format!("`{name}` must be an array"))),
    }
}

fn keys_arg(obj: &Map<String, Value>, name: &str) -> Result<Vec<[u8; 32]>, Failure> {
    list_arg(obj, name)?
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| B64.decode(s).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| Failure::bad_request(format!("`{name}` must hold base64 32-byte keys")))
        })
        .collect()
}

fn optional_b64(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, Failure> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => b64_arg(obj, name).map(Some),
    }
}

fn verified_json(v: &VerifiedDevice) -> Value {
    json!({
        "peer": v.address().peer_name(),
        "identity_key": B64.encode(v.identity().to_bytes()),
        "agency_name": v.agency_name(),
        "agency_key": B64.encode(v.agency_key()),
        "serial": v.serial(),
        "not_after": v.not_after(),
    })
}

fn update_json(u: RevocationUpdate) -> Value {
    json!({ "update": match u { RevocationUpdate::Applied => "applied", RevocationUpdate::Unchanged => "unchanged" } })
}

/// The stateless ops.
pub fn dispatch(op: &str, obj: &Map<String, Value>) -> Result<Value, Failure> {
    Ok(match op {
        "cert_public_key" => {
            json!({ "public_key": B64.encode(RootKey::from_seed(&key_arg(obj, "seed")?).public_key()) })
        }
        "cert_issue_agency" => {
            let root = RootKey::from_seed(&key_arg(obj, "root_seed")?);
            let domains: Vec<&str> = list_arg(obj, "domains")?.iter().filter_map(Value::as_str).collect();
            let cert = root
                .certify_agency(
                    u64_arg(obj, "serial")?,
                    &key_arg(obj, "agency_key")?,
                    str_arg(obj, "name")?,
                    &domains,
                    u64_arg(obj, "not_before")?,
                    u64_arg(obj, "not_after")?,
                )
                .map_err(err)?;
            json!({ "certificate": B64.encode(cert.to_bytes()) })
        }
        "cert_issue_device" => {
            let agency = AgencyKey::from_seed(&key_arg(obj, "agency_seed")?);
            let address = DeviceAddress::parse(str_arg(obj, "address")?).map_err(err)?;
            let identity = IdentityKey::from_bytes(&b64_arg(obj, "identity_key")?).map_err(err)?;
            let cert = agency
                .certify_device(
                    u64_arg(obj, "serial")?,
                    &address,
                    &identity,
                    u64_arg(obj, "not_before")?,
                    u64_arg(obj, "not_after")?,
                )
                .map_err(err)?;
            json!({ "certificate": B64.encode(cert.to_bytes()) })
        }
        "cert_chain" => {
            let device = DeviceCertificate::from_bytes(&b64_arg(obj, "device_certificate")?).map_err(err)?;
            let agency = AgencyCertificate::from_bytes(&b64_arg(obj, "agency_certificate")?).map_err(err)?;
            json!({ "chain": B64.encode(CertificateChain::new(device, agency).to_bytes()) })
        }
        "revocation_issue" => {
            let issuer = AgencyKey::from_seed(&key_arg(obj, "seed")?);
            let serials: Vec<u64> = list_arg(obj, "serials")?.iter().filter_map(Value::as_u64).collect();
            let list =
                issuer.revocation_list(u64_arg(obj, "seq")?, u64_arg(obj, "issued_at")?, &serials).map_err(err)?;
            json!({ "list": B64.encode(list.to_bytes()) })
        }
        "cert_verify" => {
            let roots = TrustRoots::new(&keys_arg(obj, "roots")?).map_err(err)?;
            let now = now_arg(obj)?;
            let mut revocations = Revocations::new();
            if obj.contains_key("revocation_lists") {
                for entry in list_arg(obj, "revocation_lists")? {
                    let entry = entry.as_object().ok_or_else(|| Failure::bad_request("revocation list entry"))?;
                    let agency = optional_b64(entry, "agency_certificate")?
                        .map(|b| AgencyCertificate::from_bytes(&b))
                        .transpose()
                        .map_err(err)?;
                    let _ = revocations.apply(&b64_arg(entry, "list")?, &roots, agency.as_ref(), now).map_err(err)?;
                }
            }
            let v = verify_device(&b64_arg(obj, "chain")?, &roots, &revocations, now).map_err(err)?;
            verified_json(&v)
        }
        other => return Err(Failure::bad_request(format!("not a certificate op: {other}"))),
    })
}

/// The device ops. `chain` arguments are verified with the device's trust anchors at
/// `now` before use.
pub fn dispatch_device(
    op: &str,
    device: &mut Device,
    obj: &Map<String, Value>,
    rng: &mut Rng,
) -> Result<Value, Failure> {
    let proof = |device: &Device| -> Result<VerifiedDevice, Failure> {
        Ok(device.verify_device(&b64_arg(obj, "chain")?, now_arg(obj)?)?)
    };
    Ok(match op {
        "set_trust_roots" => {
            device.set_trust_roots(&keys_arg(obj, "roots")?)?;
            json!({})
        }
        "apply_revocation_list" => {
            let agency = optional_b64(obj, "agency_certificate")?;
            update_json(device.apply_revocation_list(&b64_arg(obj, "list")?, agency.as_deref(), now_arg(obj)?)?)
        }
        "set_require_certificate" => {
            let require = obj
                .get("require")
                .and_then(Value::as_bool)
                .ok_or_else(|| Failure::bad_request("`require` must be a boolean"))?;
            device.set_require_certificate(require);
            json!({})
        }
        "verify_device" => verified_json(&proof(device)?),
        "initiate_certified" => {
            let peer = str_arg(obj, "peer")?;
            let bundle = PreKeyBundle::from_bytes(&b64_arg(obj, "bundle")?).map_err(err)?;
            let p = proof(device)?;
            let event = device.initiate_certified(peer, &bundle, &p, rng)?;
            json!({ "identity_event": identity_event_json(&event) })
        }
        "decrypt_certified" => {
            let peer = str_arg(obj, "peer")?;
            let message = b64_arg(obj, "message")?;
            let p = proof(device)?;
            let d = device.decrypt_certified(peer, &message, &p, rng)?;
            json!({
                "plaintext": B64.encode(&d.plaintext),
                "sender_identity": B64.encode(d.sender.to_bytes()),
                "identity_event": identity_event_json(&d.identity),
            })
        }
        "approve_certified" => {
            let peer = str_arg(obj, "peer")?;
            let p = proof(device)?;
            device.approve_certified(peer, &p)?;
            json!({})
        }
        other => return Err(Failure::bad_request(format!("not a device certificate op: {other}"))),
    })
}
