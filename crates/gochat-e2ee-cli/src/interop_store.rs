//! Store-backed devices in the interop driver (`docs/interop.md`, "Store-backed
//! devices"): `new_device` with a `store` path, `open_device`, `ack`; every other op on
//! such a device runs as one store transaction, so the device survives the driver being
//! killed and restarted.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::Device;
use gochat_e2ee_store::{
    Argon2Params, Durability, Passcode, PlatformKey, SqliteBackend, StoreError, StoredDevice, Unlock,
};
use serde_json::{json, Map, Value};

use crate::interop::{b64_arg, str_arg, Failure, Rng};

/// The platform key of driver stores without a `passcode`: 32 bytes of 0x53.
///
/// TEST-DRIVER ONLY, fixed and public so that another driver process can reopen the store.
pub const DRIVER_STORE_KEY: [u8; 32] = [0x53; 32];

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure { error: e.code().as_str(), detail: e.to_string() }
    }
}

/// The unlock of a request: its optional `passcode`, else the driver key.
fn unlock(obj: &Map<String, Value>) -> Result<Unlock, Failure> {
    match obj.get("passcode") {
        None => Ok(Unlock::Key(PlatformKey::new(DRIVER_STORE_KEY))),
        Some(Value::String(p)) => Ok(Unlock::Passcode(Passcode::from_text(p).map_err(StoreError::from)?)),
        Some(_) => Err(Failure::bad_request("`passcode` must be a string")),
    }
}

/// Driver passcodes use the smallest Argon2id cost (tests, not phones).
const DRIVER_COST: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn backend(path: &str) -> Result<Box<SqliteBackend>, Failure> {
    Ok(Box::new(SqliteBackend::open(path, Durability::Full)?))
}

/// Puts a freshly made device into a new store at the request's `store` path.
pub(crate) fn create(
    obj: &Map<String, Value>,
    path: &str,
    device: Device,
    rng: &mut Rng,
) -> Result<StoredDevice, Failure> {
    Ok(StoredDevice::create(backend(path)?, &unlock(obj)?, DRIVER_COST, device, rng)?)
}

/// `open_device`: the store at `store`.
pub(crate) fn open(obj: &Map<String, Value>) -> Result<StoredDevice, Failure> {
    let min_generation = match obj.get("min_generation") {
        None => 0,
        Some(v) => v.as_u64().ok_or_else(|| Failure::bad_request("`min_generation` must be an unsigned integer"))?,
    };
    Ok(StoredDevice::open_at_least(backend(str_arg(obj, "store")?)?, &unlock(obj)?, min_generation)?)
}

/// `decrypt` on a store-backed device: the result is committed with the ratchet step;
/// acknowledged at once unless `"ack": false`.
pub(crate) fn decrypt(s: &mut StoredDevice, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    let peer = str_arg(obj, "peer")?;
    let message = b64_arg(obj, "message")?;
    let keep = keep_arg(obj)?;
    let r = s.decrypt(peer, &message, rng)?;
    if !keep {
        let _ = s.ack(&r.digest)?;
    }
    Ok(json!({
        "plaintext": B64.encode(&r.decrypted.plaintext),
        "sender_identity": B64.encode(r.decrypted.sender.to_bytes()),
        "identity_event": crate::interop::identity_event_json(&r.decrypted.identity),
        "digest": B64.encode(r.digest),
        "redelivered": r.redelivered,
    }))
}

/// Whether the request keeps its result in the inbox (`"ack": false`; default: acknowledged
/// at once).
fn keep_arg(obj: &Map<String, Value>) -> Result<bool, Failure> {
    match obj.get("ack") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(!b),
        Some(_) => Err(Failure::bad_request("`ack` must be a boolean")),
    }
}

/// Adds the inbox fields to a result, and acknowledges it unless the request keeps it.
fn inbox_result(
    s: &mut StoredDevice,
    obj: &Map<String, Value>,
    mut v: Value,
    digest: &[u8; 32],
    redelivered: bool,
) -> Result<Value, Failure> {
    if !keep_arg(obj)? {
        let _ = s.ack(digest)?;
    }
    v["digest"] = json!(B64.encode(digest));
    v["redelivered"] = json!(redelivered);
    Ok(v)
}

/// `group_decrypt` on a store-backed device: the result is committed with the chain
/// step; acknowledged at once unless `"ack": false`.
pub(crate) fn group_decrypt(s: &mut StoredDevice, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    let peer = str_arg(obj, "peer")?;
    let message = b64_arg(obj, "message")?;
    let _ = keep_arg(obj)?;
    let g = s.group_decrypt(peer, &message, rng)?;
    let v = crate::interop_groups::group_plaintext_json(&g.plaintext);
    inbox_result(s, obj, v, &g.digest, g.redelivered)
}

/// `channel_receive` on a store-backed device: the result is committed with the
/// sequence step; acknowledged at once unless `"ack": false`.
pub(crate) fn channel_receive(s: &mut StoredDevice, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Value, Failure> {
    let post = b64_arg(obj, "post")?;
    let now = crate::interop::now_arg(obj)?;
    let _ = keep_arg(obj)?;
    let p = s.channel_receive(&post, now, rng)?;
    let v = crate::interop_groups::channel_received_json(&p.received);
    inbox_result(s, obj, v, &p.digest, p.redelivered)
}

/// `ack`: deletes the kept result of the message with `digest`.
pub(crate) fn ack(s: &mut StoredDevice, obj: &Map<String, Value>) -> Result<Value, Failure> {
    let digest = |v: &[u8]| -> Result<[u8; 32], Failure> {
        v.try_into().map_err(|_| Failure::bad_request("a digest must be 32 bytes"))
    };
    // `digests` (an array): many results acknowledged in one transaction.
    if let Some(list) = obj.get("digests") {
        let list = list.as_array().ok_or_else(|| Failure::bad_request("`digests` must be an array"))?;
        let mut all = Vec::with_capacity(list.len());
        for d in list {
            let text = d.as_str().ok_or_else(|| Failure::bad_request("a digest must be a base64 string"))?;
            let bytes = B64.decode(text).map_err(|_| Failure::bad_request("a digest must be base64"))?;
            all.push(digest(&bytes)?);
        }
        return Ok(json!({ "acknowledged_count": s.ack_many(&all)? }));
    }
    let one = digest(&b64_arg(obj, "digest")?)?;
    Ok(json!({ "acknowledged": s.ack(&one)? }))
}
