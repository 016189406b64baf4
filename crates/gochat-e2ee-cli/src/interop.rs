//! The JSON-lines interop driver (`gochat-e2ee interop`), specified in `docs/interop.md`.
//!
//! One request object per input line, one response object per output line (flushed
//! after each). The process holds any number of devices, by name, in memory. A bad
//! request gets an error response; it never ends the process. EOF ends it with status 0.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gochat_e2ee::{
    limits, ChangeReason, Device, IdentityEvent, IdentityKey, IdentityPolicy, PreKeyBundle, SnapshotKey,
};
use rand_core::UnwrapErr;
use serde_json::{json, Map, Value};

/// One-time X25519 prekeys (and, separately, one-time ML-KEM-1024 prekeys) created with
/// every new device.
pub const ONE_TIME_PREKEYS_PER_DEVICE: usize = 10;

/// The snapshot key used by `export` / `import`: 32 bytes of 0x42.
///
/// TEST-DRIVER ONLY. It is fixed and public so that a state exported by one driver
/// process can be imported by another; a real app takes its key from the platform
/// keystore.
pub const DRIVER_SNAPSHOT_KEY: [u8; 32] = [0x42; 32];

pub(crate) type Rng = UnwrapErr<getrandom::SysRng>;

/// An error response: the `error` name and the `detail` text.
pub(crate) struct Failure {
    pub(crate) error: &'static str,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn unknown_device(name: &str) -> Self {
        Failure { error: "UnknownDevice", detail: format!("no device named {name:?}") }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Failure { error: "BadRequest", detail: detail.into() }
    }
}

impl From<gochat_e2ee::Error> for Failure {
    fn from(e: gochat_e2ee::Error) -> Self {
        Failure { error: e.code().as_str(), detail: e.to_string() }
    }
}

/// The driver's state: devices by name.
#[derive(Default)]
struct Driver {
    devices: HashMap<String, Device>,
    /// One-time provisioning secrets (`provisioning_offer`), by device name.
    provisioning: HashMap<String, gochat_e2ee::trust::provisioning::ProvisioningSecret>,
    /// Store-backed devices, by name (never also in `devices`, except while one of
    /// their operations runs).
    stored: HashMap<String, gochat_e2ee_store::StoredDevice>,
    /// A device swapped into a stored device while its state visits `devices`.
    spare: Option<Device>,
}

/// Runs the driver on stdin/stdout until EOF.
pub fn run() -> Result<(), String> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut driver = Driver::default();
    let mut rng: Rng = UnwrapErr(getrandom::SysRng);
    let mut input = stdin.lock();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        // Raw bytes, not `lines()`: a line that is not UTF-8 must get a BadRequest
        // response like any other bad line, not end the process.
        let n = input.read_until(b'\n', &mut raw).map_err(|e| format!("reading stdin: {e}"))?;
        if n == 0 {
            break;
        }
        let response = match std::str::from_utf8(&raw) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => driver.handle_line(line, &mut rng),
            Err(e) => error_response(Value::Null, &Failure::bad_request(format!("line is not valid UTF-8: {e}"))),
        };
        let text = serde_json::to_string(&response).map_err(|e| format!("encoding a response: {e}"))?;
        writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| format!("writing stdout: {e}"))?;
    }
    Ok(())
}

impl Driver {
    fn handle_line(&mut self, line: &str, rng: &mut Rng) -> Value {
        let request: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return error_response(Value::Null, &Failure::bad_request(format!("invalid JSON: {e}"))),
        };
        let Some(obj) = request.as_object() else {
            return error_response(Value::Null, &Failure::bad_request("request is not a JSON object"));
        };
        let id = match obj.get("id") {
            Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => v.clone(),
            _ => return error_response(Value::Null, &Failure::bad_request("missing or non-integer `id`")),
        };
        match self.dispatch(obj, rng) {
            Ok(mut results) => {
                results.insert("id".into(), id);
                results.insert("ok".into(), Value::Bool(true));
                Value::Object(results)
            }
            Err(f) => error_response(id, &f),
        }
    }

    /// `decrypt_batch`: every message as its own `decrypt` op (so a store-backed device
    /// commits each, with its inbox entry), in order; one outcome per message.
    fn decrypt_batch(&mut self, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Map<String, Value>, Failure> {
        let device = str_arg(obj, "device")?.to_owned();
        let Some(Value::Array(messages)) = obj.get("messages") else {
            return Err(Failure::bad_request("`messages` must be an array"));
        };
        gochat_e2ee_store::check_batch_len(messages.len())?;
        let mut requests = Vec::with_capacity(messages.len());
        for m in messages {
            let m = m.as_object().ok_or_else(|| Failure::bad_request("a batch message is not an object"))?;
            let mut one = Map::new();
            one.insert("op".into(), json!("decrypt"));
            one.insert("device".into(), json!(device));
            for key in ["peer", "message", "ack"] {
                if let Some(v) = m.get(key) {
                    one.insert(key.into(), v.clone());
                }
            }
            requests.push(one);
        }
        let mut results = Vec::with_capacity(requests.len());
        for one in &requests {
            results.push(match self.dispatch(one, rng) {
                Ok(mut r) => {
                    r.insert("ok".into(), json!(true));
                    Value::Object(r)
                }
                Err(f) => json!({ "ok": false, "error": f.error, "detail": f.detail }),
            });
        }
        let mut out = Map::new();
        out.insert("results".into(), Value::Array(results));
        Ok(out)
    }

    fn device(&mut self, obj: &Map<String, Value>) -> Result<&mut Device, Failure> {
        let name = str_arg(obj, "device")?;
        self.devices.get_mut(name).ok_or_else(|| Failure::unknown_device(name))
    }

    /// Runs `obj` on a store-backed device as one store transaction: the device's state
    /// visits `devices` under its name for the ordinary dispatch, then returns to the
    /// store, which commits what the operation changed before the response is written.
    fn dispatch(&mut self, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Map<String, Value>, Failure> {
        let op = str_arg(obj, "op")?;
        if op == "decrypt_batch" {
            return self.decrypt_batch(obj, rng);
        }
        let name = obj.get("device").and_then(Value::as_str).map(str::to_owned);
        let Some((name, mut store)) = name.and_then(|n| self.stored.remove(&n).map(|s| (n, s))) else {
            return self.dispatch_memory(obj, rng);
        };
        let out = match op {
            "new_device" | "open_device" | "import" => {
                // Replaces the stored device: it is simply dropped (its store stays on disk).
                return self.dispatch_memory(obj, rng);
            }
            "decrypt" => crate::interop_store::decrypt(&mut store, obj, rng),
            "group_decrypt" => crate::interop_store::group_decrypt(&mut store, obj, rng),
            "channel_receive" => crate::interop_store::channel_receive(&mut store, obj, rng),
            "ack" => crate::interop_store::ack(&mut store, obj),
            "store_generation" => Ok(json!({ "generation": store.generation() })),
            "export" => Err(Failure {
                error: "NotSupported",
                detail: "a store-backed device is not exported as a snapshot".into(),
            }),
            _ => {
                let spare = match self.spare.take() {
                    Some(d) => d,
                    None => Device::new("", 0, rng),
                };
                let mut spare = Some(spare);
                let result = store.transact(rng, |d, rng| {
                    let real = std::mem::replace(d, spare.take().unwrap_or_else(|| Device::new("", 0, rng)));
                    self.devices.insert(name.clone(), real);
                    let r = self.dispatch_memory(obj, rng);
                    if let Some(real) = self.devices.remove(&name) {
                        spare = Some(std::mem::replace(d, real));
                    }
                    Ok(r)
                });
                self.spare = spare;
                match result {
                    Ok(r) => r.map(Value::Object),
                    Err(e) => Err(e.into()),
                }
            }
        };
        self.stored.insert(name, store);
        match out? {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        }
    }

    fn dispatch_memory(&mut self, obj: &Map<String, Value>, rng: &mut Rng) -> Result<Map<String, Value>, Failure> {
        let op = str_arg(obj, "op")?;
        let out = match op {
            "info" => json!({
                "version": gochat_e2ee::VERSION,
                "limits": {
                    "max_forward_jump": limits::MAX_FORWARD_JUMP,
                    "max_skipped_keys": limits::MAX_SKIPPED_KEYS,
                    "max_message_bytes": limits::MAX_MESSAGE_BYTES,
                },
            }),
            "new_device" => {
                let name = str_arg(obj, "device")?.to_owned();
                let user = str_arg(obj, "user")?;
                let now = now_arg(obj)?;
                let mut device = Device::new(user, now, rng);
                device
                    .account_mut()
                    .generate_one_time_prekeys(ONE_TIME_PREKEYS_PER_DEVICE, rng)
                    .map_err(gochat_e2ee::Error::from)?;
                device
                    .account_mut()
                    .generate_pq_prekeys(ONE_TIME_PREKEYS_PER_DEVICE, now, rng)
                    .map_err(gochat_e2ee::Error::from)?;
                let identity_key = B64.encode(device.identity().to_bytes());
                self.stored.remove(&name);
                match obj.get("store") {
                    None => {
                        self.devices.insert(name, device);
                    }
                    Some(Value::String(path)) => {
                        let store = crate::interop_store::create(obj, path, device, rng)?;
                        self.devices.remove(&name);
                        self.stored.insert(name, store);
                    }
                    Some(_) => return Err(Failure::bad_request("`store` must be a string (a file path)")),
                }
                json!({ "identity_key": identity_key })
            }
            "open_device" => {
                let name = str_arg(obj, "device")?.to_owned();
                let store = crate::interop_store::open(obj)?;
                let identity_key = B64.encode(store.device().identity().to_bytes());
                let generation = store.generation();
                self.devices.remove(&name);
                self.stored.insert(name, store);
                json!({ "identity_key": identity_key, "generation": generation })
            }
            "ack" => {
                let name = str_arg(obj, "device")?;
                if !self.devices.contains_key(name) {
                    return Err(Failure::unknown_device(name));
                }
                if obj.get("digests").is_some() {
                    json!({ "acknowledged_count": 0 })
                } else {
                    str_arg(obj, "digest")?;
                    json!({ "acknowledged": false })
                }
            }
            "store_generation" => {
                let name = str_arg(obj, "device")?;
                if !self.devices.contains_key(name) {
                    return Err(Failure::unknown_device(name));
                }
                return Err(Failure { error: "NotSupported", detail: "an in-memory device has no store".into() });
            }
            "bundle" => {
                let bundle = self.device(obj)?.next_bundle()?;
                json!({ "bundle": B64.encode(bundle.to_bytes()) })
            }
            "init" => {
                let peer = str_arg(obj, "peer")?;
                let bundle = b64_arg(obj, "bundle")?;
                let device = self.device(obj)?;
                let bundle = PreKeyBundle::from_bytes(&bundle).map_err(gochat_e2ee::Error::from)?;
                let event = device.initiate(peer, &bundle, rng)?;
                json!({ "identity_event": identity_event_json(&event) })
            }
            "encrypt" => {
                let peer = str_arg(obj, "peer")?;
                let plaintext = b64_arg(obj, "plaintext")?;
                let message = self.device(obj)?.encrypt(peer, &plaintext)?;
                json!({ "message": B64.encode(message) })
            }
            "decrypt" => {
                let peer = str_arg(obj, "peer")?;
                let message = b64_arg(obj, "message")?;
                let d = self.device(obj)?.decrypt(peer, &message, rng)?;
                json!({
                    "plaintext": B64.encode(&d.plaintext),
                    "sender_identity": B64.encode(d.sender.to_bytes()),
                    "identity_event": identity_event_json(&d.identity),
                })
            }
            "export" => {
                let state = self.device(obj)?.export(&SnapshotKey::new(DRIVER_SNAPSHOT_KEY), rng)?;
                json!({ "state": B64.encode(state) })
            }
            "import" => {
                let name = str_arg(obj, "device")?.to_owned();
                let state = b64_arg(obj, "state")?;
                let device = Device::import(&SnapshotKey::new(DRIVER_SNAPSHOT_KEY), &state)?;
                self.stored.remove(&name);
                self.devices.insert(name, device);
                json!({})
            }
            "identity" => {
                let device = self.device(obj)?;
                json!({
                    "identity_key": B64.encode(device.identity().to_bytes()),
                    "fingerprint": device.identity().fingerprint_hex(),
                })
            }
            "retry_request" => {
                let peer = str_arg(obj, "peer")?;
                let message = b64_arg(obj, "message")?;
                let device = self.device(obj)?;
                let recipient = *device
                    .session_record(peer)
                    .and_then(|r| r.remote_identity())
                    .ok_or(gochat_e2ee::Error::NoSession)?;
                let now = now_arg(obj)?;
                let request = device.retry_request(peer, &recipient, &message, now)?;
                json!({ "request": B64.encode(request) })
            }
            "handle_retry" => {
                let peer = str_arg(obj, "peer")?;
                let request = b64_arg(obj, "request")?;
                let now = now_arg(obj)?;
                let digest = self.device(obj)?.handle_retry_request(peer, &request, now, rng)?;
                json!({ "digest": B64.encode(digest) })
            }
            "set_identity_policy" => {
                let policy = match str_arg(obj, "policy")? {
                    "require_approval" => IdentityPolicy::RequireApproval,
                    "notify" => IdentityPolicy::Notify,
                    "certified" => IdentityPolicy::Certified,
                    other => return Err(Failure::bad_request(format!("unknown policy {other:?}"))),
                };
                self.device(obj)?.set_identity_policy(policy);
                json!({})
            }
            "approve_identity" => {
                let peer = str_arg(obj, "peer")?;
                let key = b64_arg(obj, "identity_key")?;
                let key = IdentityKey::from_bytes(&key).map_err(gochat_e2ee::Error::from)?;
                self.device(obj)?.approve_identity(peer, &key)?;
                json!({})
            }
            "pinned_identity" => {
                let peer = str_arg(obj, "peer")?;
                let trust = self.device(obj)?.trust();
                let b64 = |k: Option<&IdentityKey>| k.map(|k| B64.encode(k.to_bytes()));
                json!({ "identity_key": b64(trust.pinned(peer)), "pending": b64(trust.pending(peer)) })
            }
            "remove_sessions" => {
                let peer = str_arg(obj, "peer")?;
                json!({ "removed": self.device(obj)?.remove_sessions(peer) })
            }
            "forget_identity" => {
                let peer = str_arg(obj, "peer")?;
                json!({ "forgotten": self.device(obj)?.forget_identity(peer) })
            }
            "state_len" => json!({ "state_len": self.device(obj)?.state_len() }),
            op if crate::interop_groups::is_device_op(op) => {
                crate::interop_groups::dispatch(op, self.device(obj)?, obj, rng)?
            }
            "verify_announcement" => crate::interop_groups::verify_announcement_op(obj)?,
            "safety_number" => crate::interop_trust::safety_number_op(obj)?,
            op if crate::interop_devices::is_op(op) => {
                crate::interop_devices::dispatch(op, self.device(obj)?, obj, rng)?
            }
            op if crate::interop_link::is_op(op) => {
                let device = if op == "provisioning_offer" { self.devices.get(str_arg(obj, "device")?) } else { None };
                crate::interop_link::dispatch(op, obj, device, &mut self.provisioning, rng)?
            }
            op if crate::interop_certs::is_op(op) => crate::interop_certs::dispatch(op, obj)?,
            op if crate::interop_certs::is_device_op(op) => {
                crate::interop_certs::dispatch_device(op, self.device(obj)?, obj, rng)?
            }
            op if crate::interop_attachments::is_op(op) => crate::interop_attachments::dispatch(op, obj, rng)?,
            other => return Err(Failure { error: "UnknownOp", detail: format!("unknown op {other:?}") }),
        };
        match out {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        }
    }
}

/// `{"kind": "new" | "same" | "changed", "previous": base64, "approved": bool, "reason":
/// "notify" | "certified" | "awaiting_approval" | "uncertified"}` (the last three only for
/// `changed`).
pub(crate) fn identity_event_json(e: &IdentityEvent) -> Value {
    match e {
        IdentityEvent::New => json!({ "kind": "new" }),
        IdentityEvent::Same => json!({ "kind": "same" }),
        IdentityEvent::Changed { previous, approved, reason } => {
            let reason = match reason {
                ChangeReason::Notify => "notify",
                ChangeReason::Certified => "certified",
                ChangeReason::AwaitingApproval => "awaiting_approval",
                ChangeReason::Uncertified => "uncertified",
            };
            json!({ "kind": "changed", "previous": B64.encode(previous.to_bytes()), "approved": approved, "reason": reason })
        }
    }
}

/// The optional `now` argument (Unix seconds), defaulting to the current time.
pub(crate) fn now_arg(obj: &Map<String, Value>) -> Result<u64, Failure> {
    match obj.get("now") {
        None => Ok(unix_now()),
        Some(v) => v.as_u64().ok_or_else(|| Failure::bad_request("`now` must be a non-negative integer")),
    }
}

fn error_response(id: Value, f: &Failure) -> Value {
    json!({ "id": id, "ok": false, "error": f.error, "detail": f.detail })
}

pub(crate) fn str_arg<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, Failure> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Failure::bad_request(format!("`{name}` must be a string"))),
        None => Err(Failure::bad_request(format!("missing `{name}`"))),
    }
}

pub(crate) fn b64_arg(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Failure> {
    B64.decode(str_arg(obj, name)?).map_err(|e| Failure::bad_request(format!("`{name}` is not valid base64: {e}")))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
