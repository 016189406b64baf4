//! Interop ops for the trust layer (`docs/interop.md`, "Trust"): `safety_number`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::trust::safety_number::{SafetyNumber, ScanResult};
use serde_json::{json, Map, Value};

use crate::interop::{b64_arg, str_arg, Failure};

/// `safety_number`: the number both sides see and this side's scannable payload; with
/// `scanned`, the comparison of a scanned payload with it.
pub fn safety_number_op(obj: &Map<String, Value>) -> Result<Value, Failure> {
    let local_id = str_arg(obj, "local_id")?;
    let local_identity = b64_arg(obj, "local_identity")?;
    let remote_id = str_arg(obj, "remote_id")?;
    let remote_identity = b64_arg(obj, "remote_identity")?;
    let scanned = match obj.get("scanned") {
        None | Some(Value::Null) => None,
        Some(_) => Some(b64_arg(obj, "scanned")?),
    };
    let sn = SafetyNumber::new(local_id, &local_identity, remote_id, &remote_identity)
        .map_err(gochat_e2ee::Error::Malformed)?;
    let mut out = json!({
        "digits": sn.digits(),
        "grouped": sn.grouped(),
        "scannable": B64.encode(sn.scannable()),
    });
    if let Some(scanned) = scanned {
        let r = sn.compare_scanned(&scanned).map_err(gochat_e2ee::Error::Malformed)?;
        out["scan"] = match r {
            ScanResult::Match => json!("Match"),
            ScanResult::Mismatch => json!("Mismatch"),
            ScanResult::VersionMismatch { theirs } => {
                out["theirs"] = json!(theirs);
                json!("VersionMismatch")
            }
        };
    }
    Ok(out)
}
