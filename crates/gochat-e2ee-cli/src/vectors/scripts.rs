//! Scripted vectors: scenarios written as an explicit list of device operations
//! (publish a bundle, initiate, send, deliver, export, import), run through the library.
//! They cover what the fixed two-party scenarios cannot: several sessions in one record
//! (archived sessions, a simultaneous start), deliveries that fail (`MessageLost`,
//! `Duplicate`), and snapshots whose state holds skipped keys or a pending prekey header.
//! The independent re-derivation is [`super::device_model`]. The file format is
//! documented in `docs/test-vectors.md` ("Scripted vectors").

use std::collections::BTreeMap;

use gochat_e2ee::{Device, Error, IdentityEvent, PreKeyBundle, SnapshotKey};
use serde_json::{json, Map, Value};

use super::rng::RecordingRng;
use super::{hv, lib, seed, Log, NOW};

/// The snapshot key of every export in the scripted vectors: `00 01 .. 1f`.
pub(crate) const SNAPSHOT_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = i as u8;
        i += 1;
    }
    k
};

/// What an export or import covers.
#[derive(Clone, Copy)]
pub(crate) enum SnapshotScope {
    /// `Device::export` / `Device::import` (snapshot kind 0x01).
    Device,
    /// `Device::export_session` / `Device::import_session` for the other device (kind 0x02).
    Session,
}

impl SnapshotScope {
    fn name(self) -> &'static str {
        match self {
            SnapshotScope::Device => "device",
            SnapshotScope::Session => "session",
        }
    }
}

pub(crate) enum Step {
    /// The device publishes its next bundle (`Device::next_bundle`).
    Bundle(&'static str),
    /// The device starts a session with the other device from bundle number `bundle`.
    Initiate { device: &'static str, bundle: usize },
    /// The device encrypts `plaintext` for the other device.
    Send { from: &'static str, plaintext: Vec<u8> },
    /// Message `message` is given to `to`; `expect` is the error code it must give, if any.
    Deliver { to: &'static str, message: usize, expect: Option<&'static str> },
    /// The device exports (drawing a salt).
    Export { device: &'static str, scope: SnapshotScope },
    /// The device (or its record of the other device) is replaced by the import of its
    /// last export.
    Import { device: &'static str, scope: SnapshotScope },
}

pub(crate) struct Script {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    /// One-time X25519 and one-time ML-KEM prekeys each device generates at creation.
    pub(crate) prekeys: [(&'static str, usize); 2],
    pub(crate) steps: Vec<Step>,
}

fn other(device: &str) -> &'static str {
    if device == "alice" {
        "bob"
    } else {
        "alice"
    }
}

fn send(from: &'static str, text: &str) -> Step {
    Step::Send { from, plaintext: text.as_bytes().to_vec() }
}

fn deliver(to: &'static str, message: usize) -> Step {
    Step::Deliver { to, message, expect: None }
}

fn refused(to: &'static str, message: usize, code: &'static str) -> Step {
    Step::Deliver { to, message, expect: Some(code) }
}

fn dropped_chain() -> Vec<Step> {
    let mut s = vec![
        Step::Bundle("bob"),
        Step::Initiate { device: "alice", bundle: 0 },
        send("alice", "A0: chain 1, counter 0"),
        send("alice", "A1: chain 1, counter 1, held back"),
        send("alice", "A2: chain 1, counter 2"),
        send("alice", "A3: chain 1, counter 3, held back"),
        deliver("bob", 0),
        deliver("bob", 2),
    ];
    // Five round trips: each reply of Alice's comes on a new ratchet key, so Bob's sixth
    // receiving chain drops his first one (Alice's chain 1) into the dropped-chain records.
    let mut next = 4;
    for round in 1..=5 {
        s.push(send("bob", &format!("B{round}: reply {round}")));
        s.push(deliver("alice", next));
        s.push(send("alice", &format!("A{}: receiving chain {} of Bob's", round + 3, round + 1)));
        s.push(deliver("bob", next + 1));
        next += 2;
    }
    s.extend([
        // A1's skipped key outlived its chain: it still decrypts.
        deliver("bob", 1),
        // A3 is past the dropped chain's next counter: its chain key is gone.
        refused("bob", 3, "MessageLost"),
        // A0 again: below the dropped chain's next counter, same sender epoch.
        refused("bob", 0, "Duplicate"),
    ]);
    s
}

pub(crate) fn scripts() -> Vec<Script> {
    vec![
        Script {
            name: "archived_session",
            description: "Archived sessions: Alice starts a second session while Bob still sends on the first. Bob's B1 reaches Alice on her archived first session (its ratchet key is known there), which becomes current again; Alice's A2 on it reaches Bob, whose current session (the second) fails the DH-step attempt without drawing randomness, and whose archived first session decrypts it and becomes current.",
            prekeys: [("bob", 1), ("alice", 0)],
            steps: vec![
                Step::Bundle("bob"),
                Step::Initiate { device: "alice", bundle: 0 },
                send("alice", "A0: session 0"),
                deliver("bob", 0),
                send("bob", "B0: session 0"),
                deliver("alice", 1),
                Step::Bundle("bob"),
                Step::Initiate { device: "alice", bundle: 1 },
                send("alice", "A1: session 1 (a new prekey message)"),
                send("bob", "B1: still on session 0"),
                deliver("bob", 2),
                deliver("alice", 3),
                send("alice", "A2: session 0 again"),
                deliver("bob", 4),
            ],
        },
        Script {
            name: "simultaneous_start",
            description: "A simultaneous start: Alice and Bob each initiate from the other's bundle and send two prekey messages before anything arrives. Each side archives or keeps its own unanswered session by the same rule (the session with the lower base key stays or becomes current), every message on either session decrypts, and the replies go on the surviving session.",
            prekeys: [("bob", 1), ("alice", 1)],
            steps: vec![
                Step::Bundle("bob"),
                Step::Bundle("alice"),
                Step::Initiate { device: "alice", bundle: 0 },
                Step::Initiate { device: "bob", bundle: 1 },
                send("alice", "A0: Alice's session"),
                send("alice", "A1: Alice's session, second"),
                send("bob", "B0: Bob's session"),
                send("bob", "B1: Bob's session, second"),
                deliver("bob", 0),
                deliver("alice", 2),
                deliver("bob", 1),
                deliver("alice", 3),
                send("alice", "A2: on the surviving session"),
                send("bob", "B2: on the surviving session"),
                deliver("bob", 4),
                deliver("alice", 5),
            ],
        },
        Script {
            name: "snapshot_skipped_keys",
            description: "Skipped message keys in a device snapshot: Bob receives A0 and A2, so he holds the skipped key of A1; he exports his device (the state lists that key), imports the snapshot, and the restored device decrypts A1 with it; its reply carries sender epoch 1.",
            prekeys: [("bob", 1), ("alice", 0)],
            steps: vec![
                Step::Bundle("bob"),
                Step::Initiate { device: "alice", bundle: 0 },
                send("alice", "A0: first"),
                send("alice", "A1: overtaken"),
                send("alice", "A2: overtakes A1"),
                deliver("bob", 0),
                deliver("bob", 2),
                Step::Export { device: "bob", scope: SnapshotScope::Device },
                Step::Import { device: "bob", scope: SnapshotScope::Device },
                deliver("bob", 1),
                send("bob", "B0: from the restored device"),
                deliver("alice", 3),
            ],
        },
        Script {
            name: "dropped_chain",
            description: "A dropped receiving chain: Bob holds a skipped key on Alice's first chain, then five round trips give him a sixth receiving chain, so the first is dropped (kept as a dropped-chain record). The skipped key outlives the chain and decrypts A1; A3, past the chain's next counter, is MessageLost; A0 again is Duplicate. Failures draw nothing and change nothing.",
            prekeys: [("bob", 1), ("alice", 0)],
            steps: dropped_chain(),
        },
        Script {
            name: "snapshot_pending_prekey",
            description: "A pending prekey header in a session snapshot: Alice sends A0 (a prekey message) and, before any reply, exports her session record with Bob (kind 0x02, bound to her identity and the peer name \"bob\"); the state holds the pending PQXDH header. She imports it back and sends A1, still a prekey message, with sender epoch 1. Bob starts the session from A1 and then decrypts A0 on it.",
            prekeys: [("bob", 1), ("alice", 0)],
            steps: vec![
                Step::Bundle("bob"),
                Step::Initiate { device: "alice", bundle: 0 },
                send("alice", "A0: before the export"),
                Step::Export { device: "alice", scope: SnapshotScope::Session },
                Step::Import { device: "alice", scope: SnapshotScope::Session },
                send("alice", "A1: after the import"),
                deliver("bob", 1),
                deliver("bob", 0),
                send("bob", "B0: reply"),
                deliver("alice", 2),
            ],
        },
    ]
}

struct Party {
    device: Device,
    rng: RecordingRng,
    export: Option<Vec<u8>>,
}

fn event_name(e: &IdentityEvent) -> &'static str {
    match e {
        IdentityEvent::New => "New",
        IdentityEvent::Same => "Same",
        IdentityEvent::Changed { .. } => "Changed",
    }
}

/// Runs a script through the library; returns the inputs and the library's outputs.
pub(crate) fn run_library(s: &Script) -> Result<(Value, Value), String> {
    let mut inputs = Map::new();
    let mut log = Log(Vec::new());
    inputs.insert("now".into(), json!(NOW));
    let mut parties: BTreeMap<&str, Party> = BTreeMap::new();
    for (name, prekeys) in s.prekeys {
        let mut rng = RecordingRng::from_seed(seed(s.name, name));
        let mut device = Device::new(name, NOW, &mut rng);
        log.record(name, "Device::new".into(), &mut rng);
        if prekeys > 0 {
            lib(device.account_mut().generate_one_time_prekeys(prekeys, &mut rng).map_err(Into::into), "prekeys")?;
            log.record(name, format!("Account::generate_one_time_prekeys({prekeys})"), &mut rng);
            lib(device.account_mut().generate_pq_prekeys(prekeys, NOW, &mut rng).map_err(Into::into), "pq")?;
            log.record(name, format!("Account::generate_pq_prekeys({prekeys})"), &mut rng);
        }
        inputs.insert(
            name.into(),
            json!({"user": name, "rng_seed": hv(&seed(s.name, name)),
                   "one_time_prekeys": prekeys, "pq_one_time_prekeys": prekeys}),
        );
        parties.insert(name, Party { device, rng, export: None });
    }
    fn party<'a>(parties: &'a mut BTreeMap<&str, Party>, name: &str) -> Result<&'a mut Party, String> {
        parties.get_mut(name).ok_or_else(|| format!("no device {name}"))
    }
    let key = SnapshotKey::new(SNAPSHOT_KEY);
    let mut events = Vec::new();
    let mut bundles: Vec<Vec<u8>> = Vec::new();
    let mut schedules = Vec::new();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut results = Vec::new();
    let mut snapshots = Vec::new();
    for (i, step) in s.steps.iter().enumerate() {
        match step {
            Step::Bundle(name) => {
                let p = party(&mut parties, name)?;
                bundles.push(lib(p.device.next_bundle(), "next_bundle")?.to_bytes());
                log.record(name, format!("Device::next_bundle (event {i})"), &mut p.rng);
                events.push(json!({"op": "bundle", "device": name}));
            }
            Step::Initiate { device, bundle } => {
                let bytes = bundles.get(*bundle).ok_or("script initiates from an unpublished bundle")?;
                let fetched = lib(PreKeyBundle::from_bytes(bytes).map_err(Into::into), "bundle decode")?;
                let p = party(&mut parties, device)?;
                let t = lib(p.device.initiate_traced(other(device), &fetched, &mut p.rng), "initiate")?;
                log.record(device, format!("Device::initiate_traced (event {i})"), &mut p.rng);
                schedules.push(json!({"dh": t.dh.iter().map(|d| hv(d)).collect::<Vec<_>>(),
                    "kem_secret": hv(&t.kem_secret), "ikm": hv(&t.ikm), "secret": hv(&t.secret)}));
                events.push(json!({"op": "initiate", "device": device, "peer": other(device), "bundle": bundle}));
            }
            Step::Send { from, plaintext } => {
                let p = party(&mut parties, from)?;
                sent.push(lib(p.device.encrypt(other(from), plaintext), "encrypt")?);
                log.record(from, format!("Device::encrypt (event {i})"), &mut p.rng);
                events.push(json!({"op": "send", "from": from, "to": other(from), "plaintext": hv(plaintext)}));
            }
            Step::Deliver { to, message, expect } => {
                let m = sent.get(*message).ok_or("script delivers an unsent message")?;
                let p = party(&mut parties, to)?;
                let before = p.device.state_digest();
                let got = p.device.decrypt(other(to), m, &mut p.rng);
                log.record(to, format!("Device::decrypt (event {i})"), &mut p.rng);
                match (got, expect) {
                    (Ok(d), None) => {
                        results.push(json!({"plaintext": hv(&d.plaintext), "identity": event_name(&d.identity)}))
                    }
                    (Err(e), Some(code)) if e.code().as_str() == *code => {
                        if p.device.state_digest() != before {
                            return Err(format!("library: event {i}: a refused message changed the state"));
                        }
                        results.push(json!({"error": code}));
                    }
                    (got, _) => {
                        let got = got.map(|_| "ok").map_err(|e: Error| e.code().as_str());
                        return Err(format!("library: event {i}: expected {expect:?}, got {got:?}"));
                    }
                }
                events.push(json!({"op": "deliver", "to": to, "message": message}));
            }
            Step::Export { device, scope } => {
                let p = party(&mut parties, device)?;
                let snap = match scope {
                    SnapshotScope::Device => lib(p.device.export(&key, &mut p.rng), "export")?,
                    SnapshotScope::Session => lib(p.device.export_session(other(device), &key, &mut p.rng), "export")?,
                };
                let call = match scope {
                    SnapshotScope::Device => "Device::export",
                    SnapshotScope::Session => "Device::export_session",
                };
                log.record(device, format!("{call} (event {i})"), &mut p.rng);
                snapshots.push(hv(&snap));
                p.export = Some(snap);
                events.push(json!({"op": "export", "device": device, "scope": scope.name(), "key": hv(&SNAPSHOT_KEY)}));
            }
            Step::Import { device, scope } => {
                let p = party(&mut parties, device)?;
                let snap = p.export.as_ref().ok_or("script imports before an export")?;
                match scope {
                    SnapshotScope::Device => p.device = lib(Device::import(&key, snap), "import")?,
                    SnapshotScope::Session => lib(p.device.import_session(other(device), &key, snap), "import")?,
                }
                events.push(json!({"op": "import", "device": device, "scope": scope.name()}));
            }
        }
    }
    let digests: Map<String, Value> =
        parties.iter().map(|(name, p)| ((*name).to_owned(), hv(&p.device.state_digest()))).collect();
    inputs.insert("events".into(), Value::Array(events));
    inputs.insert("rng_log".into(), Value::Array(log.0));
    let outputs = json!({
        "bundles": bundles.iter().map(|b| hv(b)).collect::<Vec<_>>(),
        "key_schedules": schedules,
        "messages": sent.iter().map(|m| hv(m)).collect::<Vec<_>>(),
        "results": results,
        "snapshots": snapshots,
        "state_digests": digests,
    });
    Ok((Value::Object(inputs), outputs))
}
