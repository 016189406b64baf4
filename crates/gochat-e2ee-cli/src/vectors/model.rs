//! The independent model: recomputes every vector value from the file's inputs with the
//! raw primitives ([`super::prim`]), following the formulas in the core crate's module
//! docs and `docs/protocol.md`. It never calls the library.
//!
//! It knows the order in which the library draws randomness (documented in
//! `docs/test-vectors.md`, "Random draws") and consumes the recorded draws in that
//! order; every draw must be used exactly once.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use super::prim::{self, x25519, x25519_public};
use super::rng::chacha_stream;
use super::{arr, field, hex_field, hv, str_field, u64_field};

// Labels, copied from the module docs (not imported from the library).
pub(super) const FINGERPRINT: &[u8] = b"GoChat-E2EE v1 identity fingerprint";
pub(super) const SIG_SPK: &[u8] = b"GoChat-E2EE v1 signed prekey";
pub(super) const SIG_OPK: &[u8] = b"GoChat-E2EE v1 one-time prekey";
pub(super) const SIG_PQ: &[u8] = b"GoChat-E2EE v1 ML-KEM-1024 prekey";
pub(super) const PQXDH: &[u8] = b"GoChat-E2EE v1 PQXDH X25519 SHA-256 ML-KEM-1024";
pub(super) const ROOT: &[u8] = b"GoChat-E2EE v1 ratchet root";
pub(super) const MESSAGE_KEYS: &[u8] = b"GoChat-E2EE v2 1:1 message keys";
pub(super) const SNAPSHOT: &[u8] = b"GoChat-E2EE v1 snapshot";
const SIG_RETRY: &[u8] = b"GoChat-E2EE v1 retry request";
pub(super) const MESSAGE_DIGEST: &[u8] = b"GoChat-E2EE v1 message digest";
pub(super) const PAD_BLOCK: usize = 64;

pub(super) fn a32(v: &[u8]) -> Result<[u8; 32], String> {
    v.try_into().map_err(|_| format!("expected 32 bytes, got {}", v.len()))
}

pub(super) fn a64(v: &[u8]) -> Result<[u8; 64], String> {
    v.try_into().map_err(|_| format!("expected 64 bytes, got {}", v.len()))
}

/// Per-device queues of recorded draws, in order.
pub(super) struct Draws {
    queues: BTreeMap<String, VecDeque<Vec<u8>>>,
}

impl Draws {
    /// Queues the draws of `inputs.rng_log`, after checking that each device's draws,
    /// concatenated, are the ChaCha20Rng stream of its seed.
    pub(super) fn from_inputs(inputs: &Value) -> Result<Self, String> {
        let mut queues: BTreeMap<String, VecDeque<Vec<u8>>> = BTreeMap::new();
        for call in arr(inputs, "rng_log")? {
            let device = str_field(call, "device")?.to_owned();
            for d in arr(call, "draws")? {
                let bytes = crate::hex::decode(d.as_str().unwrap_or("")).ok_or("rng_log: bad hex")?;
                queues.entry(device.clone()).or_default().push_back(bytes);
            }
        }
        for (device, q) in &queues {
            let seed = a32(&hex_field(field(inputs, device)?, "rng_seed")?)?;
            let all: Vec<u8> = q.iter().flatten().copied().collect();
            if chacha_stream(seed, all.len()) != all {
                return Err(format!("rng_log: {device}'s draws are not the ChaCha20Rng stream of its seed"));
            }
        }
        Ok(Draws { queues })
    }

    /// Fails unless every queued draw was used.
    pub(super) fn check_all_used(&self) -> Result<(), String> {
        for (device, q) in &self.queues {
            if !q.is_empty() {
                return Err(format!("rng_log: {} draws of {device} were not used by the model", q.len()));
            }
        }
        Ok(())
    }

    pub(super) fn next(&mut self, device: &str, len: usize, what: &str) -> Result<Vec<u8>, String> {
        let d = self
            .queues
            .get_mut(device)
            .and_then(VecDeque::pop_front)
            .ok_or_else(|| format!("rng_log: {device} has no draw left for {what}"))?;
        if d.len() != len {
            return Err(format!("rng_log: {device}'s draw for {what} has {} bytes, expected {len}", d.len()));
        }
        Ok(d)
    }
}

/// A device's keys, as the model derives them from its draws.
pub(super) struct DeviceKeys {
    pub(super) user: String,
    pub(super) ed_seed: [u8; 32],
    pub(super) x_private: [u8; 32],
    pub(super) identity: Vec<u8>,
    pub(super) spk_private: [u8; 32],
    pub(super) spk_public: [u8; 32],
    pub(super) last_resort_seed: [u8; 64],
    pub(super) opks: Vec<(u32, [u8; 32])>,
    pub(super) pq_one_time: Vec<(u32, [u8; 64])>,
}

pub(super) fn identity_encoding(ed_public: &[u8; 32], x_public: &[u8; 32]) -> Vec<u8> {
    [&[0x01, 0x01][..], ed_public, x_public].concat()
}

/// One signed record: the exact signed bytes and the signature.
pub(super) fn signed(seed: &[u8; 32], label: &[u8], data: &[u8]) -> (Vec<u8>, [u8; 64]) {
    let msg = [label, data].concat();
    let sig = prim::ed25519_sign(seed, &msg);
    (msg, sig)
}

struct Epoch {
    private: [u8; 32],
    public: [u8; 32],
    chain0: [u8; 32],
}

#[derive(Default, Clone)]
struct Party {
    epoch: Option<usize>,
    sent: u32,
    previous: u32,
    pending: bool,
    /// The sender epoch written in this party's headers (restores of the session).
    sender_epoch: u32,
    /// Next expected counter per received epoch.
    received: BTreeMap<usize, u32>,
}

struct SentMessage {
    epoch: usize,
    counter: u32,
    plaintext: Vec<u8>,
}

/// Runs the model on a vector file's `inputs`; `outputs` is read only for the snapshot
/// bytes (which the model decrypts and re-encrypts). Returns the intermediates and the
/// outputs the library must have produced.
pub fn run(inputs: &Value, outputs: &Value) -> Result<(Value, Value), String> {
    let now = u64_field(inputs, "now")?;
    let mut inter = Map::new();
    let mut expect = Map::new();

    let mut draws = Draws::from_inputs(inputs)?;

    // Bob: identity, signed prekey, last-resort PQ prekey, one-time prekeys.
    let bob_in = field(inputs, "bob")?;
    let bob = device_keys(&mut draws, "bob", str_field(bob_in, "user")?, bob_in)?;
    let mut keys = Map::new();
    keys.insert("bob".into(), keys_json(&bob));
    let (bob_records, bundle_opk, bundle_pq) = bundle_records(&bob, now)?;
    let bundle = bundle_bytes(&bob, &bob_records, bundle_opk.is_some());
    inter.insert("signatures".into(), Value::Array(bob_records.iter().map(|r| r.json.clone()).collect()));
    let ed_pub = prim::ed25519_public(&bob.ed_seed);
    let x_pub = x25519_public(&bob.x_private);
    inter.insert(
        "identity".into(),
        json!({
            "ed25519_public": hv(&ed_pub),
            "x25519_public": hv(&x_pub),
            "encoding": hv(&bob.identity),
            "fingerprint_input": hv(&[FINGERPRINT, &bob.identity].concat()),
        }),
    );
    expect.insert("bob_identity_key".into(), hv(&bob.identity));
    expect.insert("bob_fingerprint".into(), hv(&prim::sha256(&[FINGERPRINT, &bob.identity])));
    expect.insert("bundle".into(), hv(&bundle));

    let mut alice_keys = None;
    if let Some(alice_in) = inputs.get("alice") {
        let alice = device_keys(&mut draws, "alice", str_field(alice_in, "user")?, alice_in)?;
        keys.insert("alice".into(), keys_json(&alice));
        conversation(&mut draws, inputs, &alice, &bob, bundle_opk, bundle_pq, &mut inter, &mut expect)?;
        alice_keys = Some(alice);
    }
    if let Some(r) = inputs.get("retry") {
        let alice = alice_keys.as_ref().ok_or("retry: needs alice")?;
        retry_request(r, alice, &bob, now, &mut inter, &mut expect)?;
    }
    inter.insert("keys".into(), Value::Object(keys));

    if let Some(snap) = inputs.get("snapshot") {
        snapshot(&mut draws, snap, &bob, outputs, &mut inter, &mut expect)?;
    }

    draws.check_all_used()?;
    Ok((Value::Object(inter), Value::Object(expect)))
}

/// `Device::new` draws: Ed25519 seed (32), X25519 identity scalar (32), signed prekey
/// scalar (32), last-resort ML-KEM seed (64); then one-time X25519 prekeys (32 each)
/// and one-time ML-KEM prekeys (64 each).
pub(super) fn device_keys(draws: &mut Draws, name: &str, user: &str, input: &Value) -> Result<DeviceKeys, String> {
    let ed_seed = a32(&draws.next(name, 32, "identity Ed25519 seed")?)?;
    let x_private = a32(&draws.next(name, 32, "identity X25519 scalar")?)?;
    let spk_private = a32(&draws.next(name, 32, "signed prekey scalar")?)?;
    let last_resort_seed = a64(&draws.next(name, 64, "last-resort ML-KEM seed")?)?;
    let n_opk = input.get("one_time_prekeys").and_then(Value::as_u64).unwrap_or(0) as u32;
    let n_pq = input.get("pq_one_time_prekeys").and_then(Value::as_u64).unwrap_or(0) as u32;
    let mut opks = Vec::new();
    for id in 1..=n_opk {
        opks.push((id, a32(&draws.next(name, 32, "one-time prekey scalar")?)?));
    }
    let mut pq_one_time = Vec::new();
    for i in 0..n_pq {
        // PQ prekey ids are shared by both kinds: the last-resort key is id 1.
        pq_one_time.push((2 + i, a64(&draws.next(name, 64, "one-time ML-KEM seed")?)?));
    }
    let identity = identity_encoding(&prim::ed25519_public(&ed_seed), &x25519_public(&x_private));
    Ok(DeviceKeys {
        user: user.to_owned(),
        ed_seed,
        x_private,
        identity,
        spk_public: x25519_public(&spk_private),
        spk_private,
        last_resort_seed,
        opks,
        pq_one_time,
    })
}

pub(super) fn keys_json(k: &DeviceKeys) -> Value {
    json!({
        "user": k.user,
        "identity_ed25519_seed": hv(&k.ed_seed),
        "identity_x25519_private": hv(&k.x_private),
        "signed_prekey_private": hv(&k.spk_private),
        "signed_prekey_public": hv(&k.spk_public),
        "last_resort_pq_seed": hv(&k.last_resort_seed),
        "one_time_prekeys": k.opks.iter().map(|(id, s)| json!({"id": id, "private": hv(s), "public": hv(&x25519_public(s))})).collect::<Vec<_>>(),
        "pq_one_time_prekeys": k.pq_one_time.iter().map(|(id, s)| json!({"id": id, "seed": hv(s)})).collect::<Vec<_>>(),
    })
}

struct Record {
    /// The record's encoding inside a bundle (fields then signature).
    encoding: Vec<u8>,
    json: Value,
}

/// The three records of the first bundle, and the ids of its one-time / PQ prekeys.
fn bundle_records(k: &DeviceKeys, now: u64) -> Result<(Vec<Record>, Option<u32>, u32), String> {
    records(k, now, true)
}

/// The records of a bundle: with `one_time`, the first one-time X25519 and ML-KEM
/// prekeys (when the device has them); without, only the signed prekey and the
/// last-resort ML-KEM prekey (what `next_bundle` gives once the one-time keys are issued).
fn records(k: &DeviceKeys, now: u64, one_time: bool) -> Result<(Vec<Record>, Option<u32>, u32), String> {
    let mut out = Vec::new();
    // Signed prekey: id 1, created_at = now.
    let fields = [&1u32.to_be_bytes()[..], &now.to_be_bytes(), &k.spk_public].concat();
    let (msg, sig) = signed(&k.ed_seed, SIG_SPK, &[&k.identity[..], &fields].concat());
    out.push(Record {
        encoding: [&fields[..], &sig].concat(),
        json: json!({"record": "signed prekey", "id": 1, "signed_bytes": hv(&msg), "signature": hv(&sig)}),
    });
    let opk = if one_time { k.opks.first().copied() } else { None };
    if let Some((id, s)) = opk {
        let fields = [&id.to_be_bytes()[..], &x25519_public(&s)].concat();
        let (msg, sig) = signed(&k.ed_seed, SIG_OPK, &[&k.identity[..], &fields].concat());
        out.push(Record {
            encoding: [&fields[..], &sig].concat(),
            json: json!({"record": "one-time prekey", "id": id, "signed_bytes": hv(&msg), "signature": hv(&sig)}),
        });
    }
    // PQ prekey: the first one-time ML-KEM prekey (kind 0), else the last-resort one (id 1, kind 1).
    let (pq_id, kind, seed) = match k.pq_one_time.first().filter(|_| one_time) {
        Some((id, seed)) => (*id, 0u8, *seed),
        None => (1, 1u8, k.last_resort_seed),
    };
    let ek = prim::mlkem_public(&seed);
    let fields = [&pq_id.to_be_bytes()[..], &[kind], &now.to_be_bytes(), &ek].concat();
    let (msg, sig) = signed(&k.ed_seed, SIG_PQ, &[&k.identity[..], &fields].concat());
    out.push(Record {
        encoding: [&fields[..], &sig].concat(),
        json: json!({
            "record": if kind == 0 { "one-time ML-KEM-1024 prekey" } else { "last-resort ML-KEM-1024 prekey" },
            "id": pq_id, "signed_bytes": hv(&msg), "signature": hv(&sig)
        }),
    });
    Ok((out, opk.map(|(id, _)| id), pq_id))
}

fn bundle_bytes(k: &DeviceKeys, records: &[Record], has_opk: bool) -> Vec<u8> {
    let mut b = vec![0x02, 0x01];
    b.extend_from_slice(&k.identity);
    let mut it = records.iter();
    if let Some(spk) = it.next() {
        b.extend_from_slice(&spk.encoding);
    }
    b.push(u8::from(has_opk));
    for r in it {
        b.extend_from_slice(&r.encoding);
    }
    b
}

pub(super) fn kdf_rk(root: &[u8; 32], dh: &[u8; 32]) -> Result<([u8; 32], [u8; 32]), String> {
    let okm = prim::hkdf(root, dh, ROOT, 64)?;
    Ok((a32(&okm[..32])?, a32(&okm[32..])?))
}

#[allow(clippy::too_many_arguments)]
fn conversation(
    draws: &mut Draws,
    inputs: &Value,
    alice: &DeviceKeys,
    bob: &DeviceKeys,
    opk_id: Option<u32>,
    pq_id: u32,
    inter: &mut Map<String, Value>,
    expect: &mut Map<String, Value>,
) -> Result<(), String> {
    // PQXDH, initiator side: draws EK (32), the ML-KEM message m (32), then the first
    // ratchet key (32).
    let ek = a32(&draws.next("alice", 32, "PQXDH ephemeral key EK_A")?)?;
    let m = a32(&draws.next("alice", 32, "ML-KEM encapsulation randomness m")?)?;
    let ek_pub = x25519_public(&ek);
    let bob_x_pub = x25519_public(&bob.x_private);
    let alice_x_pub = x25519_public(&alice.x_private);
    let opk = opk_id.and_then(|id| bob.opks.iter().find(|(i, _)| *i == id).map(|(_, s)| *s));
    let mut dh = vec![
        ("DH1 = DH(IK_A, SPK_B)", x25519(&alice.x_private, &bob.spk_public), x25519(&bob.spk_private, &alice_x_pub)),
        ("DH2 = DH(EK_A, IK_B)", x25519(&ek, &bob_x_pub), x25519(&bob.x_private, &ek_pub)),
        ("DH3 = DH(EK_A, SPK_B)", x25519(&ek, &bob.spk_public), x25519(&bob.spk_private, &ek_pub)),
    ];
    if let Some(o) = &opk {
        dh.push(("DH4 = DH(EK_A, OPK_B)", x25519(&ek, &x25519_public(o)), x25519(o, &ek_pub)));
    }
    for (name, a, b) in &dh {
        if a != b {
            return Err(format!("{name}: initiator and responder values differ"));
        }
    }
    let pq_seed = if pq_id == 1 {
        bob.last_resort_seed
    } else {
        bob.pq_one_time.iter().find(|(i, _)| *i == pq_id).map(|(_, s)| *s).ok_or("unknown PQ prekey")?
    };
    let (kem_ct, kem_ss) = prim::mlkem_encapsulate(&pq_seed, &m);
    if prim::mlkem_decapsulate(&pq_seed, &kem_ct)? != kem_ss {
        return Err("ML-KEM decapsulation disagrees with encapsulation".into());
    }
    let mut ikm = vec![0xFF; 32];
    for (_, d, _) in &dh {
        ikm.extend_from_slice(d);
    }
    ikm.extend_from_slice(&kem_ss);
    let sk = a32(&prim::hkdf(&[0; 32], &ikm, PQXDH, 32)?)?;
    let ad = [&alice.identity[..], &bob.identity].concat();
    let mut prekey_header = alice.identity.clone();
    prekey_header.extend_from_slice(&1u32.to_be_bytes());
    prekey_header.push(u8::from(opk_id.is_some()));
    if let Some(id) = opk_id {
        prekey_header.extend_from_slice(&id.to_be_bytes());
    }
    prekey_header.extend_from_slice(&pq_id.to_be_bytes());
    prekey_header.extend_from_slice(&ek_pub);
    prekey_header.extend_from_slice(&kem_ct);
    inter.insert(
        "pqxdh".into(),
        json!({
            "ephemeral_private": hv(&ek), "ephemeral_public": hv(&ek_pub),
            "signed_prekey_id": 1, "one_time_prekey_id": opk_id, "pq_prekey_id": pq_id,
            "dh": dh.iter().map(|(n, d, _)| json!({"name": n, "output": hv(d)})).collect::<Vec<_>>(),
            "kem_encapsulation_randomness": hv(&m),
            "kem_ciphertext": hv(&kem_ct),
            "kem_shared_secret": hv(&kem_ss),
            "hkdf_salt": hv(&[0; 32]), "hkdf_info": hv(PQXDH),
            "ikm": hv(&ikm),
            "session_secret": hv(&sk),
            "associated_data": hv(&ad),
            "prekey_header": hv(&prekey_header),
        }),
    );
    expect.insert(
        "key_schedule".into(),
        json!({
            "dh": dh.iter().map(|(_, d, _)| hv(d)).collect::<Vec<_>>(),
            "kem_secret": hv(&kem_ss), "ikm": hv(&ikm), "secret": hv(&sk),
        }),
    );

    // The Double Ratchet as one linear root chain: epoch 0 is Bob's signed prekey with
    // RK_0 = SK; epoch k >= 1 belongs to whoever made ratchet key k, and
    // RK_k, CK_k = KDF_RK(RK_{k-1}, DH(ratchet_k, ratchet_{k-1})).
    let mut epochs = vec![Epoch { private: bob.spk_private, public: bob.spk_public, chain0: [0; 32] }];
    let mut roots = vec![sk];
    let mut root_chain = Vec::new();
    let mut new_epoch =
        |owner: &str, private: [u8; 32], epochs: &mut Vec<Epoch>, roots: &mut Vec<[u8; 32]>| -> Result<usize, String> {
            let prev = epochs.last().ok_or("no epoch")?;
            let public = x25519_public(&private);
            let d = x25519(&private, &prev.public);
            if d != x25519(&prev.private, &public) {
                return Err("ratchet DH differs between the two sides".into());
            }
            let root_in = *roots.last().ok_or("no root")?;
            let (root_out, chain0) = kdf_rk(&root_in, &d)?;
            root_chain.push(json!({
                "epoch": epochs.len(), "owner": owner,
                "ratchet_private": hv(&private), "ratchet_public": hv(&public),
                "peer_ratchet_public": hv(&prev.public),
                "dh": hv(&d), "root_key_in": hv(&root_in), "root_key_out": hv(&root_out), "chain_key": hv(&chain0),
            }));
            epochs.push(Epoch { private, public, chain0 });
            roots.push(root_out);
            Ok(epochs.len() - 1)
        };
    let first = a32(&draws.next("alice", 32, "Alice's first ratchet key")?)?;
    let e1 = new_epoch("alice", first, &mut epochs, &mut roots)?;
    let mut parties: BTreeMap<&str, Party> = BTreeMap::new();
    parties.insert("alice", Party { epoch: Some(e1), pending: true, ..Party::default() });
    parties.insert("bob", Party::default());

    let mut sent: Vec<SentMessage> = Vec::new();
    let mut messages = Vec::new();
    let mut out_messages = Vec::new();
    let mut deliveries = Vec::new();
    let mut out_plaintexts = Vec::new();
    let mut exported: Option<Party> = None;
    for (i, ev) in arr(inputs, "events")?.iter().enumerate() {
        match str_field(ev, "op")? {
            // Alice's export draws the snapshot salt; an import restores her party state as
            // exported, with every session's sender epoch one higher. (The model tracks
            // only the ratchet state; the snapshot bytes are not part of this vector.)
            "export" => {
                draws.next("alice", 32, "snapshot salt")?;
                exported = Some(parties.get("alice").ok_or("no alice")?.clone());
            }
            "import" => {
                let mut p = exported.clone().ok_or_else(|| format!("event {i}: import before export"))?;
                p.sender_epoch += 1;
                parties.insert("alice", p);
            }
            "send" => {
                let from = str_field(ev, "from")?;
                let pt = hex_field(ev, "plaintext")?;
                let p = parties.get_mut(from).ok_or("unknown sender")?;
                let e = p.epoch.ok_or_else(|| format!("event {i}: {from} cannot send yet"))?;
                let epoch = epochs.get(e).ok_or("bad epoch")?;
                let mut ck = epoch.chain0;
                for _ in 0..p.sent {
                    ck = prim::hmac(&ck, &[0x02])?;
                }
                let mk = prim::hmac(&ck, &[0x01])?;
                let next_ck = prim::hmac(&ck, &[0x02])?;
                let info = [MESSAGE_KEYS, &p.sender_epoch.to_be_bytes()].concat();
                let okm = prim::hkdf(&[0; 32], &mk, &info, 44)?;
                let key = a32(&okm[..32])?;
                let nonce: [u8; 12] = okm[32..].try_into().map_err(|_| "nonce")?;
                let header = [
                    &epoch.public[..],
                    &p.previous.to_be_bytes(),
                    &p.sent.to_be_bytes(),
                    &p.sender_epoch.to_be_bytes(),
                ]
                .concat();
                let prefix = if p.pending {
                    [&[0x03, 0x02][..], &prekey_header, &header].concat()
                } else {
                    [&[0x04, 0x02][..], &header].concat()
                };
                let aad = [&ad[..], &prefix].concat();
                let padded = prim::pad(&pt, PAD_BLOCK);
                let ct = prim::aes_gcm_siv_seal(&key, &nonce, &aad, &padded)?;
                let message = [&prefix[..], &ct].concat();
                messages.push(json!({
                    "index": sent.len(), "event": i, "from": from,
                    "type": if p.pending { "prekey message (0x03)" } else { "ratchet message (0x04)" },
                    "epoch": e, "ratchet_public": hv(&epoch.public), "previous_counter": p.previous, "counter": p.sent,
                    "chain_key": hv(&ck), "message_key": hv(&mk), "next_chain_key": hv(&next_ck),
                    "sender_epoch": p.sender_epoch, "message_key_info": hv(&info),
                    "aead_key": hv(&key), "aead_nonce": hv(&nonce),
                    "ratchet_header": hv(&header), "prefix": hv(&prefix), "aad": hv(&aad),
                    "plaintext": hv(&pt), "plaintext_length": pt.len(),
                    "padded_plaintext": hv(&padded), "padded_length": padded.len(),
                    "ciphertext": hv(&ct), "message": hv(&message),
                }));
                out_messages.push(hv(&message));
                sent.push(SentMessage { epoch: e, counter: p.sent, plaintext: pt });
                p.sent += 1;
            }
            "deliver" => {
                let to = str_field(ev, "to")?;
                let idx = u64_field(ev, "message")? as usize;
                let msg = sent.get(idx).ok_or_else(|| format!("event {i}: no message {idx}"))?;
                let p = parties.get_mut(to).ok_or("unknown recipient")?;
                let (kind, skipped) = match p.received.get(&msg.epoch).copied() {
                    None => {
                        // A new ratchet key: DH ratchet step with a fresh key of ours.
                        if msg.epoch + 1 != epochs.len() {
                            return Err(format!("event {i}: event order outside the linear model"));
                        }
                        let private = a32(&draws.next(to, 32, "new ratchet key (DH step)")?)?;
                        let e = new_epoch(to, private, &mut epochs, &mut roots)?;
                        p.previous = if p.epoch.is_some() { p.sent } else { 0 };
                        p.sent = 0;
                        p.epoch = Some(e);
                        p.received.insert(msg.epoch, msg.counter + 1);
                        ("dh_ratchet_step", (0..msg.counter).collect::<Vec<_>>())
                    }
                    Some(next) if msg.counter >= next => {
                        p.received.insert(msg.epoch, msg.counter + 1);
                        ("same_chain", (next..msg.counter).collect())
                    }
                    Some(_) => ("skipped_key", Vec::new()),
                };
                if to == "alice" {
                    p.pending = false;
                }
                deliveries.push(json!({
                    "event": i, "to": to, "message": idx, "kind": kind,
                    "stores_skipped_keys_for_counters": skipped, "plaintext": hv(&msg.plaintext),
                }));
                out_plaintexts.push(hv(&msg.plaintext));
            }
            other => return Err(format!("event {i}: unknown op {other:?}")),
        }
    }
    inter.insert("root_chain".into(), Value::Array(root_chain));
    inter.insert("messages".into(), Value::Array(messages));
    inter.insert("deliveries".into(), Value::Array(deliveries));
    expect.insert("messages".into(), Value::Array(out_messages));
    expect.insert("plaintexts".into(), Value::Array(out_plaintexts));
    Ok(())
}

/// Snapshot: draws the salt (32) from the exporting device.
fn snapshot(
    draws: &mut Draws,
    snap: &Value,
    bob: &DeviceKeys,
    outputs: &Value,
    inter: &mut Map<String, Value>,
    expect: &mut Map<String, Value>,
) -> Result<(), String> {
    let key = a32(&hex_field(snap, "key")?)?;
    let salt = draws.next("bob", 32, "snapshot salt")?;
    let kind = 0x01u8; // a whole device
    let info = [SNAPSHOT, &[kind]].concat();
    let okm = prim::hkdf(&salt, &key, &info, 44)?;
    let aead_key = a32(&okm[..32])?;
    let nonce: [u8; 12] = okm[32..].try_into().map_err(|_| "nonce")?;
    let header = [&[0x10, 0x04, kind][..], &salt].concat();
    let given = hex_field(outputs, "snapshot")?;
    let ct = given.get(header.len()..).ok_or("snapshot too short")?;
    let state = prim::aes_gcm_open(&aead_key, &nonce, &header, ct)?;
    // The state starts with the user id (u32 length + bytes), then the identity's
    // Ed25519 seed and X25519 scalar, then the signed prekey's scalar, id, time, key.
    let user = bob.user.as_bytes();
    let expected_prefix = [
        &(user.len() as u32).to_be_bytes()[..],
        user,
        &bob.ed_seed,
        &bob.x_private,
        &bob.spk_private,
        &1u32.to_be_bytes(),
    ]
    .concat();
    if !state.starts_with(&expected_prefix) {
        return Err("snapshot state does not start with the device's user id and secret keys".into());
    }
    let resealed = prim::aes_gcm_seal(&aead_key, &nonce, &header, &state)?;
    let snapshot = [&header[..], &resealed].concat();
    inter.insert(
        "snapshot".into(),
        json!({
            "kind": kind, "salt": hv(&salt), "hkdf_salt": hv(&salt), "hkdf_ikm": hv(&key), "hkdf_info": hv(&info),
            "aead_key": hv(&aead_key), "aead_nonce": hv(&nonce), "aad": hv(&header),
            "state": hv(&state), "state_length": state.len(), "ciphertext": hv(&resealed),
        }),
    );
    expect.insert("snapshot".into(), hv(&snapshot));
    expect.insert("state_digest".into(), hv(&prim::sha256(&[&state])));
    Ok(())
}

/// Retry request by Bob for one of Alice's messages (`docs/protocol.md` 7.1). Bob's
/// first bundle issued his one-time prekeys, so the request carries his second bundle:
/// the signed prekey and the last-resort ML-KEM prekey. No random draws.
fn retry_request(
    r: &Value,
    alice: &DeviceKeys,
    bob: &DeviceKeys,
    now: u64,
    inter: &mut Map<String, Value>,
    expect: &mut Map<String, Value>,
) -> Result<(), String> {
    let index = u64_field(r, "message")? as usize;
    let failed = expect
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.get(index))
        .and_then(Value::as_str)
        .and_then(crate::hex::decode)
        .ok_or("retry: no such message")?;
    let digest = prim::sha256(&[MESSAGE_DIGEST, &failed]);
    let (recs, _, _) = records(bob, now, false)?;
    let bundle = bundle_bytes(bob, &recs, false);
    let prefix = [
        &[0x05, 0x02][..],
        &bob.identity,
        &alice.identity,
        &digest,
        &now.to_be_bytes(),
        &(bundle.len() as u16).to_be_bytes(),
        &bundle,
    ]
    .concat();
    let (signed_bytes, signature) = signed(&bob.ed_seed, SIG_RETRY, &prefix);
    inter.insert(
        "retry".into(),
        json!({
            "digest_input": hv(&[MESSAGE_DIGEST, &failed].concat()),
            "digest": hv(&digest),
            "bundle": hv(&bundle),
            "signed_bytes": hv(&signed_bytes),
            "signature": hv(&signature),
        }),
    );
    expect.insert("retry_request".into(), hv(&[&prefix[..], &signature].concat()));
    expect.insert("failed_message_digest".into(), hv(&digest));
    Ok(())
}
