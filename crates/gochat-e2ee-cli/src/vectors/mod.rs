//! Deterministic test vectors: `vectors generate`, `vectors verify`, `vectors check-fresh`.
//!
//! Each vector file is produced by running a scripted scenario through the library with
//! recorded ChaCha20 randomness, then re-deriving every value with the independent
//! [`model`] (raw primitives only). Generation fails unless the library's output bytes
//! equal the model's. `verify` re-runs the model on the committed inputs and compares
//! every intermediate and output, then replays the scenarios through the library and
//! requires the regenerated files to equal the committed ones byte for byte.
//! The file format is documented in `docs/test-vectors.md`.

mod attachment_model;
mod attachments;
mod certificates;
mod device_lists;
mod device_model;
mod group_model;
mod groups;
mod model;
mod prim;
mod provisioning;
mod rng;
mod safety_numbers;
mod scripts;
mod store;
mod store_formats;

use std::path::{Path, PathBuf};

use gochat_e2ee::{Device, PreKeyBundle, SnapshotKey};
use serde_json::{json, Map, Value};

use rng::RecordingRng;

/// `now` used for every device in the vectors.
pub const NOW: u64 = 1_700_000_000;

/// The directory holding the committed vectors: `test-vectors/` at the repository root
/// (found from this crate's manifest directory at build time, else from the current
/// directory).
pub fn default_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if root.join("Cargo.toml").is_file() {
        return root.join("test-vectors");
    }
    PathBuf::from("test-vectors")
}

// ---------------------------------------------------------------------------------
// JSON helpers shared with the model.

pub(crate) fn hv(bytes: &[u8]) -> Value {
    Value::String(crate::hex::encode(bytes))
}

pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field `{name}`"))
}

pub(crate) fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    field(v, name)?.as_str().ok_or_else(|| format!("field `{name}` is not a string"))
}

pub(crate) fn u64_field(v: &Value, name: &str) -> Result<u64, String> {
    field(v, name)?.as_u64().ok_or_else(|| format!("field `{name}` is not an unsigned integer"))
}

pub(crate) fn hex_field(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    crate::hex::decode(str_field(v, name)?).ok_or_else(|| format!("field `{name}` is not hex"))
}

pub(crate) fn arr<'a>(v: &'a Value, name: &str) -> Result<&'a Vec<Value>, String> {
    field(v, name)?.as_array().ok_or_else(|| format!("field `{name}` is not an array"))
}

/// Appends to `out` the JSON paths where `actual` differs from `expected`.
fn diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => diff(&format!("{path}.{k}"), ev, av, out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{path}.{k}: unexpected field"));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{path}: expected {}, found {}", short(expected), short(actual))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}…", &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------
// Scenarios.

enum Event {
    Send {
        from: &'static str,
        plaintext: Vec<u8>,
    },
    Deliver {
        to: &'static str,
        message: usize,
    },
    /// Alice exports her device (snapshot key `00 01 .. 1f`), drawing a salt.
    Export,
    /// Alice's device is replaced by the import of her last export (a new sender epoch).
    Import,
}

struct Scenario {
    name: &'static str,
    description: &'static str,
    /// One-time X25519 prekeys and one-time ML-KEM prekeys Bob generates (0: the
    /// bundle has no one-time X25519 prekey and carries the last-resort ML-KEM key).
    one_time_prekeys: usize,
    alice: bool,
    events: Vec<Event>,
    snapshot_key: Option<[u8; 32]>,
    /// After the events: Bob builds a retry request for this (sent) message of Alice's.
    retry_message: Option<usize>,
}

fn send(from: &'static str, text: &str) -> Event {
    Event::Send { from, plaintext: text.as_bytes().to_vec() }
}

fn deliver(to: &'static str, message: usize) -> Event {
    Event::Deliver { to, message }
}

fn scenarios() -> Vec<Scenario> {
    // A first exchange, so that the padding cases are (shorter) ratchet messages.
    let mut padding = vec![send("alice", "hi"), deliver("bob", 0), send("bob", "hi"), deliver("alice", 1)];
    for (i, len) in [0usize, 1, 63, 64, 65, 127, 128, 1000].into_iter().enumerate() {
        let plaintext = (0..len).map(|j| b'a' + (j % 26) as u8).collect();
        padding.push(Event::Send { from: "alice", plaintext });
        padding.push(deliver("bob", i + 2));
    }
    vec![
        Scenario {
            name: "identity_and_bundle",
            description: "Bob's device: identity key, fingerprint, the signed prekey, one-time X25519 prekey and one-time ML-KEM-1024 prekey records (exact signed bytes and Ed25519 signatures) and the encoded bundle.",
            one_time_prekeys: 1,
            alice: false,
            events: Vec::new(),
            snapshot_key: None,
            retry_message: None,
        },
        Scenario {
            name: "pqxdh_one_time_prekey",
            description: "PQXDH with a one-time X25519 prekey (DH1..DH4) and a one-time ML-KEM-1024 prekey, then the first prekey message and its decryption by Bob.",
            one_time_prekeys: 1,
            alice: true,
            events: vec![send("alice", "Hello Bob! This is the first prekey message."), deliver("bob", 0)],
            snapshot_key: None,
            retry_message: None,
        },
        Scenario {
            name: "pqxdh_last_resort",
            description: "PQXDH without a one-time X25519 prekey (DH1..DH3 only) and with Bob's last-resort ML-KEM-1024 prekey, then the first prekey message and its decryption by Bob.",
            one_time_prekeys: 0,
            alice: true,
            events: vec![send("alice", "Hello Bob! No one-time prekey was left."), deliver("bob", 0)],
            snapshot_key: None,
            retry_message: None,
        },
        Scenario {
            name: "ratchet_conversation",
            description: "A Double Ratchet conversation: three prekey messages, out-of-order delivery on both sides (skipped keys, a late message from an old chain), concurrent sends and five DH ratchet steps.",
            one_time_prekeys: 1,
            alice: true,
            events: vec![
                send("alice", "A0: first prekey message"),
                send("alice", "A1: arrives late, from an old chain"),
                send("alice", "A2: overtakes A1"),
                deliver("bob", 0),
                deliver("bob", 2),
                send("bob", "B0: arrives after B1"),
                send("bob", "B1: first reply to reach Alice"),
                deliver("alice", 4),
                deliver("bob", 1),
                send("alice", "A3: a ratchet message on a new ratchet key"),
                deliver("alice", 3),
                deliver("bob", 5),
                send("bob", "B2: crosses A4 on the wire"),
                send("alice", "A4: sent before B2 arrived"),
                deliver("alice", 6),
                deliver("bob", 7),
                send("alice", "A5: after another DH step"),
                deliver("bob", 8),
            ],
            snapshot_key: None,
            retry_message: None,
        },
        Scenario {
            name: "padding",
            description: "ISO/IEC 7816-4 padding to 64-byte blocks: after a first exchange, ratchet messages with plaintexts of 0, 1, 63, 64, 65, 127, 128 and 1000 bytes, each sent and decrypted.",
            one_time_prekeys: 1,
            alice: true,
            events: padding,
            snapshot_key: None,
            retry_message: None,
        },
        Scenario {
            name: "snapshot",
            description: "An encrypted device snapshot of Bob after a short exchange: salt, HKDF-derived key and nonce, AAD, the serialized state and the snapshot bytes.",
            one_time_prekeys: 1,
            alice: true,
            events: vec![
                send("alice", "Hi Bob"),
                deliver("bob", 0),
                send("bob", "Hi Alice"),
                deliver("alice", 1),
            ],
            snapshot_key: Some(core::array::from_fn(|i| i as u8)),
            retry_message: None,
        },
        Scenario {
            name: "restored_sender",
            description: "A sender restored from a snapshot: Alice exports her device, sends A1 (never delivered), imports the export and sends again on the same counter. The second header carries sender epoch 1, so the message key expansion differs and no key+nonce is re-used; Bob decrypts it.",
            one_time_prekeys: 1,
            alice: true,
            events: vec![
                send("alice", "A0: first prekey message"),
                deliver("bob", 0),
                send("bob", "B0: reply"),
                deliver("alice", 1),
                Event::Export,
                send("alice", "A1: sent, then lost with the restored state"),
                Event::Import,
                send("alice", "A1': same counter, sender epoch 1"),
                deliver("bob", 3),
            ],
            snapshot_key: None,
            retry_message: None,
        },
        Scenario {
            name: "retry_request",
            description: "A signed retry request: Bob could not decrypt Alice's second message (it was never delivered) and asks her to start over. The request carries Bob's next bundle (no one-time X25519 prekey is left, so it has the last-resort ML-KEM-1024 prekey), the SHA-256 digest that names the message, and Bob's Ed25519 signature.",
            one_time_prekeys: 1,
            alice: true,
            events: vec![send("alice", "Hi Bob"), deliver("bob", 0), send("alice", "This one is lost")],
            snapshot_key: None,
            retry_message: Some(1),
        },
    ]
}

/// A vector file: a fixed two-party scenario (checked by [`model`]), a scripted one
/// (checked by [`device_model`]), a group or channel one (checked by [`group_model`]) or
/// the attachment vector (checked by [`attachment_model`]).
enum Vector {
    Classic(Scenario),
    Script(scripts::Script),
    Group(groups::GroupVector),
    /// `attachments.json` (checked by [`attachment_model`]).
    Attachments,
    /// `safety_numbers.json` (checked by [`safety_numbers::run_model`]).
    SafetyNumbers,
    /// `device_lists.json` (checked by [`device_lists::run_model`]).
    DeviceLists,
    /// `provisioning.json` (checked by [`provisioning::run_model`]).
    Provisioning,
    /// `certificates.json` (checked by [`certificates::run_model`]).
    Certificates,
    /// `store_keyslot.json` (checked by [`store::run_keyslot_model`]).
    StoreKeyslot,
    /// `store_records.json` (checked by [`store::run_records_model`]).
    StoreRecords,
    /// `store_export.json` (checked by [`store_formats::run_export_model`]).
    StoreExport,
    /// `store_inbox.json` (checked by [`store_formats::run_inbox_model`]).
    StoreInbox,
}

impl Vector {
    fn name(&self) -> &'static str {
        match self {
            Vector::Classic(s) => s.name,
            Vector::Script(s) => s.name,
            Vector::Group(s) => s.name,
            Vector::Attachments => attachments::NAME,
            Vector::SafetyNumbers => safety_numbers::NAME,
            Vector::DeviceLists => device_lists::NAME,
            Vector::Provisioning => provisioning::NAME,
            Vector::Certificates => certificates::NAME,
            Vector::StoreKeyslot => store::KEYSLOT_NAME,
            Vector::StoreRecords => store::RECORDS_NAME,
            Vector::StoreExport => store_formats::EXPORT_NAME,
            Vector::StoreInbox => store_formats::INBOX_NAME,
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Vector::Classic(s) => s.description,
            Vector::Script(s) => s.description,
            Vector::Group(s) => s.description,
            Vector::Attachments => attachments::DESCRIPTION,
            Vector::SafetyNumbers => safety_numbers::DESCRIPTION,
            Vector::DeviceLists => device_lists::DESCRIPTION,
            Vector::Provisioning => provisioning::DESCRIPTION,
            Vector::Certificates => certificates::DESCRIPTION,
            Vector::StoreKeyslot => store::KEYSLOT_DESCRIPTION,
            Vector::StoreRecords => store::RECORDS_DESCRIPTION,
            Vector::StoreExport => store_formats::EXPORT_DESCRIPTION,
            Vector::StoreInbox => store_formats::INBOX_DESCRIPTION,
        }
    }

    /// Runs the scenario through the library: the file's inputs and the library's outputs.
    fn run_library(&self) -> Result<(Value, Value), String> {
        match self {
            Vector::Classic(s) => run_library(s),
            Vector::Script(s) => scripts::run_library(s),
            Vector::Group(s) => groups::run_library(s),
            Vector::Attachments => attachments::run_library(),
            Vector::SafetyNumbers => safety_numbers::run_library(),
            Vector::DeviceLists => device_lists::run_library(),
            Vector::Provisioning => provisioning::run_library(),
            Vector::Certificates => certificates::run_library(),
            Vector::StoreKeyslot => store::run_keyslot_library(),
            Vector::StoreRecords => store::run_records_library(),
            Vector::StoreExport => store_formats::run_export_library(),
            Vector::StoreInbox => store_formats::run_inbox_library(),
        }
    }

    /// Runs the independent model on a file's inputs (and, for the fixed scenarios, the
    /// snapshot bytes among its outputs): the intermediates and the predicted outputs.
    fn run_model(&self, inputs: &Value, outputs: &Value) -> Result<(Value, Value), String> {
        match self {
            Vector::Classic(_) => {
                let out = model::run(inputs, outputs)?;
                device_model::check_fixed_snapshot(inputs, outputs)?;
                Ok(out)
            }
            Vector::Script(_) => device_model::run(inputs),
            Vector::Group(s) => group_model::run(s.kind, inputs),
            Vector::Attachments => attachment_model::run(inputs),
            Vector::SafetyNumbers => safety_numbers::run_model(inputs),
            Vector::DeviceLists => device_lists::run_model(inputs),
            Vector::Provisioning => provisioning::run_model(inputs),
            Vector::Certificates => certificates::run_model(inputs),
            Vector::StoreKeyslot => store::run_keyslot_model(inputs),
            Vector::StoreRecords => store::run_records_model(inputs),
            Vector::StoreExport => store_formats::run_export_model(inputs),
            Vector::StoreInbox => store_formats::run_inbox_model(inputs),
        }
    }
}

/// Every vector file, in generation order.
fn vectors() -> Vec<Vector> {
    let mut v: Vec<Vector> = scenarios().into_iter().map(Vector::Classic).collect();
    v.extend(scripts::scripts().into_iter().map(Vector::Script));
    v.extend(groups::vectors().into_iter().map(Vector::Group));
    v.push(Vector::Attachments);
    v.push(Vector::SafetyNumbers);
    v.push(Vector::DeviceLists);
    v.push(Vector::Provisioning);
    v.push(Vector::Certificates);
    v.push(Vector::StoreKeyslot);
    v.push(Vector::StoreRecords);
    v.push(Vector::StoreExport);
    v.push(Vector::StoreInbox);
    v
}

/// The RNG seed of `device` in scenario `name`:
/// `SHA-256("GoChat-E2EE test vectors/" || name || "/" || device)`.
fn seed(name: &str, device: &str) -> [u8; 32] {
    prim::sha256(&[b"GoChat-E2EE test vectors/", name.as_bytes(), b"/", device.as_bytes()])
}

struct Log(Vec<Value>);

impl Log {
    fn record(&mut self, device: &str, call: String, rng: &mut RecordingRng) {
        let draws = rng.take();
        if !draws.is_empty() {
            self.0.push(
                json!({"device": device, "call": call, "draws": draws.iter().map(|d| hv(d)).collect::<Vec<_>>()}),
            );
        }
    }
}

fn lib<T>(r: Result<T, gochat_e2ee::Error>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("library: {what}: {e}"))
}

/// Runs a scenario through the library; returns the inputs and the library's outputs.
fn run_library(s: &Scenario) -> Result<(Value, Value), String> {
    let mut inputs = Map::new();
    let mut outputs = Map::new();
    let mut log = Log(Vec::new());
    inputs.insert("now".into(), json!(NOW));

    let mut bob_rng = RecordingRng::from_seed(seed(s.name, "bob"));
    let mut bob = Device::new("bob", NOW, &mut bob_rng);
    log.record("bob", "Device::new".into(), &mut bob_rng);
    if s.one_time_prekeys > 0 {
        lib(
            bob.account_mut().generate_one_time_prekeys(s.one_time_prekeys, &mut bob_rng).map_err(Into::into),
            "prekeys",
        )?;
        log.record("bob", format!("Account::generate_one_time_prekeys({})", s.one_time_prekeys), &mut bob_rng);
        lib(bob.account_mut().generate_pq_prekeys(s.one_time_prekeys, NOW, &mut bob_rng).map_err(Into::into), "pq")?;
        log.record("bob", format!("Account::generate_pq_prekeys({})", s.one_time_prekeys), &mut bob_rng);
    }
    inputs.insert(
        "bob".into(),
        json!({"user": "bob", "rng_seed": hv(&seed(s.name, "bob")),
               "one_time_prekeys": s.one_time_prekeys, "pq_one_time_prekeys": s.one_time_prekeys}),
    );
    let bundle = lib(bob.next_bundle(), "next_bundle")?;
    let bundle_bytes = bundle.to_bytes();
    outputs.insert("bob_identity_key".into(), hv(&bob.identity().to_bytes()));
    outputs.insert("bob_fingerprint".into(), hv(&bob.identity().fingerprint()));
    outputs.insert("bundle".into(), hv(&bundle_bytes));

    let mut alice_after = None;
    if s.alice {
        let mut alice_rng = RecordingRng::from_seed(seed(s.name, "alice"));
        let mut alice = Device::new("alice", NOW, &mut alice_rng);
        log.record("alice", "Device::new".into(), &mut alice_rng);
        inputs.insert("alice".into(), json!({"user": "alice", "rng_seed": hv(&seed(s.name, "alice"))}));
        let fetched = lib(PreKeyBundle::from_bytes(&bundle_bytes).map_err(Into::into), "bundle decode")?;
        let trace = lib(alice.initiate_traced("bob", &fetched, &mut alice_rng), "initiate")?;
        log.record("alice", "Device::initiate_traced".into(), &mut alice_rng);
        outputs.insert(
            "key_schedule".into(),
            json!({"dh": trace.dh.iter().map(|d| hv(d)).collect::<Vec<_>>(), "kem_secret": hv(&trace.kem_secret),
                   "ikm": hv(&trace.ikm), "secret": hv(&trace.secret)}),
        );
        let mut events = Vec::new();
        let mut sent: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut plaintexts = Vec::new();
        let alice_key = SnapshotKey::new(core::array::from_fn(|i| i as u8));
        let mut alice_export: Option<Vec<u8>> = None;
        for (i, ev) in s.events.iter().enumerate() {
            match ev {
                Event::Export => {
                    alice_export = Some(lib(alice.export(&alice_key, &mut alice_rng), "export")?);
                    log.record("alice", format!("Device::export (event {i})"), &mut alice_rng);
                    events.push(json!({"op": "export", "device": "alice", "key": hv(&core::array::from_fn::<u8, 32, _>(|i| i as u8))}));
                }
                Event::Import => {
                    let snap = alice_export.as_ref().ok_or("scenario imports before an export")?;
                    alice = lib(Device::import(&alice_key, snap), "import")?;
                    events.push(json!({"op": "import", "device": "alice"}));
                }
                Event::Send { from, plaintext } => {
                    let (dev, peer) = if *from == "alice" { (&mut alice, "bob") } else { (&mut bob, "alice") };
                    let m = lib(dev.encrypt(peer, plaintext), "encrypt")?;
                    events.push(json!({"op": "send", "from": from, "to": peer, "plaintext": hv(plaintext)}));
                    sent.push((m, plaintext.clone()));
                }
                Event::Deliver { to, message } => {
                    let (dev, rng, peer) = if *to == "alice" {
                        (&mut alice, &mut alice_rng, "bob")
                    } else {
                        (&mut bob, &mut bob_rng, "alice")
                    };
                    let (m, expected) = sent.get(*message).ok_or("scenario delivers an unsent message")?;
                    let pt = lib(dev.decrypt(peer, m, rng), &format!("decrypt (event {i})"))?.plaintext;
                    if &pt != expected {
                        return Err(format!("library: event {i} decrypted to other bytes"));
                    }
                    log.record(to, format!("Device::decrypt (event {i})"), rng);
                    events.push(json!({"op": "deliver", "to": to, "message": message}));
                    plaintexts.push(hv(&pt));
                }
            }
        }
        inputs.insert("events".into(), Value::Array(events));
        alice_after = Some(alice);
        outputs.insert("messages".into(), Value::Array(sent.iter().map(|(m, _)| hv(m)).collect()));
        outputs.insert("plaintexts".into(), Value::Array(plaintexts));
    }

    if let (Some(index), Some(messages)) = (s.retry_message, outputs.get("messages").cloned()) {
        let failed = messages
            .as_array()
            .and_then(|m| m.get(index))
            .and_then(Value::as_str)
            .and_then(crate::hex::decode)
            .ok_or("scenario names an unsent message")?;
        let mut alice = alice_after.ok_or("a retry scenario needs Alice")?;
        let request = lib(bob.retry_request("alice", alice.identity(), &failed, NOW), "retry_request")?;
        // Alice must honour it (on a throwaway RNG: her new session is not part of the vector).
        let mut scratch = RecordingRng::from_seed([0; 32]);
        let digest = lib(alice.handle_retry_request("bob", &request, NOW, &mut scratch), "handle_retry_request")?;
        if digest != Device::message_digest(&failed) {
            return Err("library: the retry request names another message".into());
        }
        inputs.insert("retry".into(), json!({"requester": "bob", "recipient": "alice", "message": index}));
        outputs.insert("retry_request".into(), hv(&request));
        outputs.insert("failed_message_digest".into(), hv(&Device::message_digest(&failed)));
    }

    if let Some(key) = s.snapshot_key {
        let snapshot = lib(bob.export(&SnapshotKey::new(key), &mut bob_rng), "export")?;
        log.record("bob", "Device::export".into(), &mut bob_rng);
        let restored = lib(Device::import(&SnapshotKey::new(key), &snapshot), "import")?;
        // Import starts a new sender epoch for every session, so the restored state is
        // not byte-equal to the exported one; it must hold the same identity.
        if restored.identity().to_bytes() != bob.identity().to_bytes() {
            return Err("library: imported snapshot has another identity".into());
        }
        inputs.insert("snapshot".into(), json!({"device": "bob", "key": hv(&key)}));
        outputs.insert("snapshot".into(), hv(&snapshot));
        outputs.insert("state_digest".into(), hv(&bob.state_digest()));
    }
    inputs.insert("rng_log".into(), Value::Array(log.0));
    Ok((Value::Object(inputs), Value::Object(outputs)))
}

/// Checks a vector against the model: the file's intermediates and outputs must be
/// exactly what the model derives from the file's inputs.
fn check_with_model(v: &Vector, file: &Value) -> Vec<String> {
    let name = v.name();
    let (inputs, outputs) = match (field(file, "inputs"), field(file, "outputs")) {
        (Ok(i), Ok(o)) => (i, o),
        _ => return vec![format!("{name}: missing inputs or outputs")],
    };
    let (inter, expect) = match v.run_model(inputs, outputs) {
        Ok(v) => v,
        Err(e) => return vec![format!("{name}: model: {e}")],
    };
    let mut out = Vec::new();
    diff(&format!("{name}: intermediates"), &inter, file.get("intermediates").unwrap_or(&Value::Null), &mut out);
    diff(&format!("{name}: outputs"), &expect, outputs, &mut out);
    out
}

/// Renders one scenario's file text (library run, then model check).
fn render(s: &Vector) -> Result<String, String> {
    let (inputs, outputs) = s.run_library()?;
    let (inter, expect) = s.run_model(&inputs, &outputs).map_err(|e| format!("{}: model: {e}", s.name()))?;
    let mut problems = Vec::new();
    diff(&format!("{}: outputs (model vs library)", s.name()), &expect, &outputs, &mut problems);
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let file = json!({
        "vector": s.name(),
        "description": s.description(),
        "inputs": inputs,
        "intermediates": inter,
        "outputs": outputs,
    });
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// `vectors generate`: writes every vector file into `dir`.
pub fn generate(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for s in vectors() {
        let text = render(&s)?;
        let path = dir.join(format!("{}.json", s.name()));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Compares freshly generated files with those in `dir`; returns the problems.
fn fresh_problems(dir: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for s in vectors() {
        let path = dir.join(format!("{}.json", s.name()));
        let fresh = render(&s)?;
        match std::fs::read_to_string(&path) {
            Err(e) => problems.push(format!("{}: {e}", path.display())),
            Ok(committed) if committed == fresh => {}
            Ok(committed) => {
                let mut paths = Vec::new();
                if let (Ok(c), Ok(f)) =
                    (serde_json::from_str::<Value>(&committed), serde_json::from_str::<Value>(&fresh))
                {
                    diff(s.name(), &f, &c, &mut paths);
                }
                paths.truncate(20);
                problems.push(format!(
                    "{}: differs from a fresh generation (run `gochat-e2ee vectors generate`){}{}",
                    path.display(),
                    if paths.is_empty() { "" } else { ":\n  " },
                    paths.join("\n  ")
                ));
            }
        }
    }
    Ok(problems)
}

fn report(problems: Vec<String>, what: &str) -> Result<(), String> {
    if problems.is_empty() {
        println!("{what}: ok");
        Ok(())
    } else {
        Err(format!("{what}: {} problem(s)\n{}", problems.len(), problems.join("\n")))
    }
}

/// `vectors verify`: the model check of every committed file, then the freshness check.
pub fn verify(dir: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for s in vectors() {
        let path = dir.join(format!("{}.json", s.name()));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match serde_json::from_str::<Value>(&text) {
            Err(e) => problems.push(format!("{}: invalid JSON: {e}", path.display())),
            Ok(file) => {
                if file.get("vector").and_then(Value::as_str) != Some(s.name()) {
                    problems.push(format!("{}: `vector` is not {:?}", path.display(), s.name()));
                }
                let found = check_with_model(&s, &file);
                if found.is_empty() {
                    println!("{}: independent re-derivation ok", path.display());
                }
                problems.extend(found);
            }
        }
    }
    problems.extend(fresh_problems(dir)?);
    if problems.is_empty() {
        println!("library replay: every file regenerates byte for byte");
    }
    report(problems, "vectors verify")
}

/// `vectors check-fresh`: regenerates in memory and requires byte equality with `dir`.
pub fn check_fresh(dir: &Path) -> Result<(), String> {
    report(fresh_problems(dir)?, "vectors check-fresh")
}
