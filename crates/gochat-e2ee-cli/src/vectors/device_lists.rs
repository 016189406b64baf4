//! `device_lists.json`: a user's device lists and an endorsement (`docs/protocol.md`
//! §15.8) made by the library from fixed master-key seeds, and what a peer's
//! `DeviceLists` does with a sequence of them; [`run_model`] re-derives every byte and
//! every result with ed25519-dalek and the spec alone (never the library's trust code).

use ed25519_dalek::{Signer, SigningKey};
use gochat_e2ee::keys::IdentityKeyPair;
use gochat_e2ee::trust::address::{DeviceId, UserId};
use gochat_e2ee::trust::{DeviceEndorsement, DeviceEntry, DeviceList, DeviceListEvent, DeviceLists, MasterKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};

use super::{arr, hex_field, hv, str_field, u64_field};

pub(crate) const NAME: &str = "device_lists";
pub(crate) const DESCRIPTION: &str = "Device lists (§15.8): from fixed Ed25519 master seeds, the master public key, device lists (type 0x55) of versions 1 to 3 for one user (phone; phone and laptop; laptop alone), a list by another master key, the endorsement (type 0x56) of the laptop, and the results a peer's device-list store gives for a sequence of lists: New, Unchanged, Updated (added / removed), StaleDeviceList (an older version, and the same version with other contents), BadSignature (a flipped signature bit), MasterKeyChanged (another master key, not applied).";

const LIST_LABEL: &[u8] = b"GoChat-E2EE v1 device list";
const ENDORSEMENT_LABEL: &[u8] = b"GoChat-E2EE v1 device endorsement";
const USER: &str = "aminah@mof.gov.my";
const ISSUED_AT: u64 = 1_700_000_000;

fn identity(seed: u64) -> Vec<u8> {
    IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(seed)).public().to_bytes().to_vec()
}

/// One list of the scenario: name, master seed, version, (device id, identity seed).
type ListSpec = (&'static str, [u8; 32], u64, Vec<(&'static str, u64)>);

/// The lists of the scenario.
fn lists() -> Vec<ListSpec> {
    vec![
        ("v1", [1; 32], 1, vec![("phone", 1)]),
        ("v2", [1; 32], 2, vec![("phone", 1), ("laptop", 2)]),
        ("v2_fork", [1; 32], 2, vec![("phone", 1), ("tablet", 3)]),
        ("v3", [1; 32], 3, vec![("laptop", 2)]),
        ("foreign", [9; 32], 7, vec![("phone", 1), ("mallory", 4)]),
    ]
}

/// The sequence a peer processes: list names, `v2_bad_signature` being `v2` with the
/// last bit of its signature flipped.
const SEQUENCE: [&str; 8] = ["v1", "v1", "v2", "v1", "v2_fork", "v2_bad_signature", "foreign", "v3"];

fn event(e: &DeviceListEvent) -> Value {
    let list = |d: &[DeviceEntry]| -> Vec<Value> { d.iter().map(|d| json!(d.device.as_str())).collect() };
    match e {
        DeviceListEvent::New { devices } => json!({"New": list(devices)}),
        DeviceListEvent::Updated { added, removed } => {
            json!({"Updated": {"added": list(added), "removed": list(removed)}})
        }
        DeviceListEvent::Unchanged => json!("Unchanged"),
        DeviceListEvent::MasterKeyChanged { previous, new } => {
            json!({"MasterKeyChanged": {"previous": hv(&previous.to_bytes()), "new": hv(&new.to_bytes())}})
        }
    }
}

pub(crate) fn run_library() -> Result<(Value, Value), String> {
    let err = |e: &dyn std::fmt::Display| format!("library: {e}");
    let user = UserId::parse(USER).map_err(|e| err(&e))?;
    let mut ins = Vec::new();
    let mut outs = serde_json::Map::new();
    let mut bytes = std::collections::BTreeMap::new();
    for (name, seed, version, devices) in lists() {
        let master = MasterKey::from_seed(seed);
        let mut es = Vec::new();
        let mut din = Vec::new();
        for (d, s) in &devices {
            let id = identity(*s);
            let identity = gochat_e2ee::IdentityKey::from_bytes(&id).map_err(|e| err(&e))?;
            es.push(DeviceEntry { device: DeviceId::parse(d).map_err(|e| err(&e))?, identity });
            din.push(json!({"device": d, "identity": hv(&id)}));
        }
        let list = DeviceList::sign(&master, &user, version, ISSUED_AT, es).map_err(|e| err(&e))?;
        ins.push(json!({"name": name, "master_seed": hv(&seed), "version": version, "devices": din}));
        outs.insert(
            name.to_owned(),
            json!({"master_public_key": hv(&master.public_key().to_bytes()), "bytes": hv(list.as_bytes())}),
        );
        bytes.insert(name, list.encode());
    }
    let master = MasterKey::from_seed([1; 32]);
    let laptop = gochat_e2ee::IdentityKey::from_bytes(&identity(2)).map_err(|e| err(&e))?;
    let endorsement =
        DeviceEndorsement::sign(&master, &user, &DeviceId::parse("laptop").map_err(|e| err(&e))?, &laptop);
    let mut bad = bytes.get("v2").cloned().ok_or("v2")?;
    if let Some(b) = bad.last_mut() {
        *b ^= 1;
    }
    bytes.insert("v2_bad_signature", bad);
    let mut store = DeviceLists::default();
    let mut results = Vec::new();
    for name in SEQUENCE {
        let b = bytes.get(name).ok_or(name)?;
        results.push(match store.process(b) {
            Ok(e) => event(&e),
            Err(e) => json!({"error": gochat_e2ee::Error::from(e).code().as_str()}),
        });
    }
    let inputs = json!({
        "user": USER,
        "issued_at": ISSUED_AT,
        "lists": ins,
        "endorsement": {"master_seed": hv(&[1; 32]), "device": "laptop", "identity": hv(&identity(2))},
        "sequence": SEQUENCE,
    });
    outs.insert("endorsement".into(), hv(&endorsement.encode()));
    outs.insert("results".into(), Value::Array(results));
    Ok((inputs, Value::Object(outs)))
}

fn short(s: &str) -> Vec<u8> {
    [&[s.len() as u8][..], s.as_bytes()].concat()
}

fn seed32(v: &Value, name: &str) -> Result<[u8; 32], String> {
    hex_field(v, name)?.try_into().map_err(|_| format!("{name}: not 32 bytes"))
}

/// One list in the model: master key, version, device names with identities, bytes.
struct ModelList {
    master: [u8; 32],
    version: u64,
    devices: Vec<(String, Vec<u8>)>,
    bytes: Vec<u8>,
}

/// §15.8.1: the layout, devices sorted by id, and the signature over label || body.
fn encode_list(user: &str, issued_at: u64, l: &Value) -> Result<ModelList, String> {
    let key = SigningKey::from_bytes(&seed32(l, "master_seed")?);
    let master = key.verifying_key().to_bytes();
    let version = u64_field(l, "version")?;
    let mut devices: Vec<(String, Vec<u8>)> = arr(l, "devices")?
        .iter()
        .map(|d| Ok((str_field(d, "device")?.to_owned(), hex_field(d, "identity")?)))
        .collect::<Result<_, String>>()?;
    devices.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut body = vec![0x55, 0x01];
    body.extend(short(user));
    body.extend(master);
    body.extend(version.to_be_bytes());
    body.extend(issued_at.to_be_bytes());
    body.push(devices.len() as u8);
    for (d, id) in &devices {
        body.extend(short(d));
        body.extend(id);
    }
    let sig = key.sign(&[LIST_LABEL, &body].concat()).to_bytes();
    body.extend(sig);
    Ok(ModelList { master, version, devices, bytes: body })
}

/// §15.8.3 for one user: (held list, pending list).
fn process(held: &mut Option<(usize, Option<usize>)>, lists: &[ModelList], i: usize, valid: bool) -> Value {
    if !valid {
        return json!({"error": "BadSignature"});
    }
    let l = &lists[i];
    let names = |d: &[(String, Vec<u8>)]| -> Vec<Value> { d.iter().map(|(n, _)| json!(n)).collect() };
    let Some((h, pending)) = held else {
        *held = Some((i, None));
        return json!({"New": names(&l.devices)});
    };
    let cur = &lists[*h];
    if l.master == cur.master {
        if l.bytes == cur.bytes {
            return json!("Unchanged");
        }
        if l.version <= cur.version {
            return json!({"error": "StaleDeviceList"});
        }
        let added: Vec<_> = l.devices.iter().filter(|d| !cur.devices.contains(d)).cloned().collect();
        let removed: Vec<_> = cur.devices.iter().filter(|d| !l.devices.contains(d)).cloned().collect();
        *h = i;
        return json!({"Updated": {"added": names(&added), "removed": names(&removed)}});
    }
    if pending.is_none_or(|p| lists[p].master != l.master || l.version > lists[p].version) {
        *pending = Some(i);
    }
    json!({"MasterKeyChanged": {"previous": hv(&cur.master), "new": hv(&l.master)}})
}

pub(crate) fn run_model(inputs: &Value) -> Result<(Value, Value), String> {
    let user = str_field(inputs, "user")?;
    let issued_at = u64_field(inputs, "issued_at")?;
    let mut outs = serde_json::Map::new();
    let mut inter = Vec::new();
    let mut names = Vec::new();
    let mut lists = Vec::new();
    for l in arr(inputs, "lists")? {
        let m = encode_list(user, issued_at, l)?;
        let name = str_field(l, "name")?.to_owned();
        inter.push(json!({"name": name, "signed_bytes_len": m.bytes.len() - 64}));
        outs.insert(name.clone(), json!({"master_public_key": hv(&m.master), "bytes": hv(&m.bytes)}));
        names.push(name);
        lists.push(m);
    }
    // §15.8.2.
    let e = super::field(inputs, "endorsement")?;
    let key = SigningKey::from_bytes(&seed32(e, "master_seed")?);
    let mut body = vec![0x56, 0x01];
    body.extend(short(user));
    body.extend(short(str_field(e, "device")?));
    body.extend(hex_field(e, "identity")?);
    body.extend(key.verifying_key().to_bytes());
    let sig = key.sign(&[ENDORSEMENT_LABEL, &body].concat()).to_bytes();
    body.extend(sig);
    outs.insert("endorsement".into(), hv(&body));
    let mut held = None;
    let mut results = Vec::new();
    for step in arr(inputs, "sequence")? {
        let step = step.as_str().ok_or("sequence: not a string")?;
        let (name, valid) = match step.strip_suffix("_bad_signature") {
            Some(n) => (n, false),
            None => (step, true),
        };
        let i = names.iter().position(|n| n == name).ok_or_else(|| format!("unknown list {name}"))?;
        // A flipped signature bit: check that Ed25519 (strict) refuses it.
        let valid = valid || {
            let l = &lists[i];
            let mut b = l.bytes.clone();
            let n = b.len();
            b[n - 1] ^= 1;
            let sig = ed25519_dalek::Signature::from_slice(&b[n - 64..]).map_err(|e| e.to_string())?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&l.master).map_err(|e| e.to_string())?;
            vk.verify_strict(&[LIST_LABEL, &b[..n - 64]].concat(), &sig).is_ok()
        };
        results.push(process(&mut held, &lists, i, valid));
    }
    outs.insert("results".into(), Value::Array(results));
    Ok((json!({"lists": inter}), Value::Object(outs)))
}
