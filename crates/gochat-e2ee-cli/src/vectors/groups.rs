//! Group and channel vectors: `group_conversation` (three devices, a removal) and
//! `announcements` (a public channel with a key rotation, a restricted channel with a
//! content-key rotation, refused posts). The library runs here; the independent
//! re-derivation is [`super::group_model`]. The file format is documented in
//! `docs/test-vectors.md` ("Group and channel vectors").
//!
//! Each device has two RNGs: the recorded one (`rng_seed`, every draw in `rng_log`) for
//! `Device::new` and every group or channel operation, and a `pairwise` one (its seed is
//! `seed(name, device + "/pairwise")`, not recorded) for the pairwise sessions the
//! distributions travel on. The pairwise 1:1 messages are covered by the other vectors;
//! here only their plaintexts (the 0x23 distributions) are derived.

use std::collections::BTreeMap;

use gochat_e2ee::channel::{ChannelKind, ContentType, Publisher, Received, Subscription};
use gochat_e2ee::group::{GroupId, GroupMember};
use gochat_e2ee::{Device, Error, PreKeyBundle};
use serde_json::{json, Map, Value};

use super::rng::RecordingRng;
use super::{hv, lib, prim, seed, Log, NOW};

/// Which of the two group/channel vectors.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Group,
    Channels,
}

pub(crate) struct GroupVector {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) kind: Kind,
}

pub(crate) fn vectors() -> Vec<GroupVector> {
    vec![
        GroupVector {
            name: "group_conversation",
            description: "A group of three devices (alice admin, bob, carol) with pairwise sessions: alice creates the group (welcome at epoch 0), every member joins and distributes its sender key, each sends; alice removes carol (commit to epoch 1); alice and bob each start a new generation and distribute it to the remaining members only; the messages after the removal are unreadable for carol, whose held chains name other generations.",
            kind: Kind::Group,
        },
        GroupVector {
            name: "announcements",
            description: "Official channels: a public channel's announcements (seq 1..4), refused posts (replay, wrong signer, flipped byte, from the future, the old key after a rotation), a key rotation (0x31, old and new signatures) and a post by the new key; a restricted channel's content key distribution (0x33), restricted announcements (0x32, AES-256-GCM-SIV), a content-key rotation that leaves carol out, refused restricted posts, and strictly monotonic sequence numbers (a withheld post delivered after a later one is StaleSequence; a restricted post at a skipped iteration is Chain(MessageLost)).",
            kind: Kind::Channels,
        },
    ]
}

pub(crate) fn run_library(v: &GroupVector) -> Result<(Value, Value), String> {
    match v.kind {
        Kind::Group => run_group(v.name),
        Kind::Channels => run_channels(v.name),
    }
}

/// The stable error code name of a library error.
fn code(e: Error) -> &'static str {
    e.code().as_str()
}

struct Member {
    device: Device,
    rng: RecordingRng,
    pairwise: RecordingRng,
}

const DEVICES: [&str; 3] = ["alice", "bob", "carol"];

/// Starts a session from `a` to `b` and answers it (pairwise RNGs only).
fn connect(m: &mut BTreeMap<&'static str, Member>, a: &'static str, b: &'static str) -> Result<(), String> {
    let bundle = {
        let d = m.get_mut(b).ok_or("device")?;
        let bytes = lib(d.device.next_bundle(), "next_bundle")?.to_bytes();
        lib(PreKeyBundle::from_bytes(&bytes).map_err(Into::into), "bundle")?
    };
    let first = {
        let d = m.get_mut(a).ok_or("device")?;
        let _ = lib(d.device.initiate(b, &bundle, &mut d.pairwise), "initiate")?;
        lib(d.device.encrypt(b, b"hi"), "encrypt")?
    };
    let reply = {
        let d = m.get_mut(b).ok_or("device")?;
        let _ = lib(d.device.decrypt(a, &first, &mut d.pairwise), "decrypt")?;
        lib(d.device.encrypt(a, b"hi"), "encrypt")?
    };
    let d = m.get_mut(a).ok_or("device")?;
    let _ = lib(d.device.decrypt(b, &reply, &mut d.pairwise), "decrypt")?;
    Ok(())
}

struct GroupRun {
    m: BTreeMap<&'static str, Member>,
    log: Log,
    events: Vec<Value>,
    /// Pairwise distributions not yet delivered: (from, to, bytes).
    pending: Vec<(String, String, Vec<u8>)>,
    distributions: Vec<Value>,
    messages: Vec<Value>,
    deliveries: Vec<Value>,
}

impl GroupRun {
    fn dev(&mut self, name: &str) -> Result<&mut Member, String> {
        self.m.get_mut(name).ok_or_else(|| format!("no device {name}"))
    }

    fn record(&mut self, device: &str, call: String) -> Result<(), String> {
        let rng = &mut self.m.get_mut(device).ok_or("device")?.rng;
        self.log.record(device, call, rng);
        Ok(())
    }

    /// Queues a new generation's distributions and notes them in the outputs.
    fn distributed(&mut self, from: &str, gid: &GroupId, out: &[gochat_e2ee::group::Outgoing]) -> Result<(), String> {
        if out.is_empty() {
            return Ok(());
        }
        let key_id = self.dev(from)?.device.group(gid).and_then(|g| g.own_key_id()).ok_or("no own key")?;
        let to: Vec<&str> = out.iter().map(|o| o.peer.as_str()).collect();
        self.distributions.push(json!({"from": from, "key_id": key_id, "to": to}));
        for o in out {
            self.pending.push((from.to_owned(), o.peer.clone(), o.message.clone()));
        }
        Ok(())
    }

    /// Delivers every queued distribution (pairwise RNG of the receiver).
    fn flush(&mut self) -> Result<(), String> {
        for (from, to, bytes) in std::mem::take(&mut self.pending) {
            let d = self.dev(&to)?;
            let got = lib(d.device.group_receive(&from, &bytes, &mut d.pairwise), "group_receive")?;
            if !got.fresh {
                return Err("library: a distribution was not fresh".into());
            }
        }
        Ok(())
    }
}

fn run_group(name: &str) -> Result<(Value, Value), String> {
    let mut inputs = Map::new();
    inputs.insert("now".into(), json!(NOW));
    let mut m = BTreeMap::new();
    let mut log = Log(Vec::new());
    for d in DEVICES {
        let mut rng = RecordingRng::from_seed(seed(name, d));
        let mut pairwise = RecordingRng::from_seed(seed(name, &format!("{d}/pairwise")));
        let mut device = Device::new(d, NOW, &mut rng);
        log.record(d, "Device::new".into(), &mut rng);
        lib(device.account_mut().generate_one_time_prekeys(2, &mut pairwise).map_err(Into::into), "prekeys")?;
        lib(device.account_mut().generate_pq_prekeys(2, NOW, &mut pairwise).map_err(Into::into), "pq prekeys")?;
        inputs.insert(d.into(), json!({"user": d, "rng_seed": hv(&seed(name, d))}));
        m.insert(d, Member { device, rng, pairwise });
    }
    connect(&mut m, "alice", "bob")?;
    connect(&mut m, "alice", "carol")?;
    connect(&mut m, "bob", "carol")?;
    let mut r = GroupRun {
        m,
        log,
        events: Vec::new(),
        pending: Vec::new(),
        distributions: Vec::new(),
        messages: Vec::new(),
        deliveries: Vec::new(),
    };
    let mut outputs = Map::new();
    let mut hashes = Vec::new();

    // alice creates the group with bob and carol.
    let members: Vec<GroupMember> = ["bob", "carol"]
        .iter()
        .map(|n| GroupMember { name: (*n).to_owned(), identity: *r.m[n].device.identity(), admin: false })
        .collect();
    let a = r.dev("alice")?;
    let change = lib(a.device.group_create(&members, NOW, &mut a.rng), "group_create")?;
    r.record("alice", "Device::group_create".into())?;
    let gid = change.group_id;
    r.events.push(json!({"op": "create", "device": "alice",
        "members": [{"name": "bob", "admin": false}, {"name": "carol", "admin": false}]}));
    let welcome = change.welcome.clone().ok_or("library: no welcome")?;
    outputs.insert("group_id".into(), hv(&gid.0));
    outputs.insert("welcome".into(), hv(&welcome));
    r.distributed("alice", &gid, &change.outgoing)?;
    for d in ["bob", "carol"] {
        let dev = r.dev(d)?;
        let joined = lib(dev.device.group_join(&welcome, NOW, &mut dev.rng), "group_join")?;
        r.record(d, "Device::group_join".into())?;
        r.events.push(json!({"op": "join", "device": d}));
        r.distributed(d, &gid, &joined.outgoing)?;
    }
    r.flush()?;
    hashes.push(epoch_hash(&r, &gid, &DEVICES)?);

    let before = [
        ("alice", "alice: the first message at epoch 0"),
        ("bob", "bob: hello group"),
        ("carol", "carol: still a member"),
        ("alice", "alice: iteration 1 of her first generation"),
    ];
    for (from, text) in before {
        send(&mut r, &gid, from, text, &DEVICES)?;
    }

    // alice removes carol: every remaining member rotates, distributing to the others.
    let a = r.dev("alice")?;
    let change = lib(a.device.group_remove(&gid, &["carol".to_owned()], NOW, &mut a.rng), "group_remove")?;
    r.record("alice", "Device::group_remove".into())?;
    r.events.push(json!({"op": "remove", "device": "alice", "names": ["carol"]}));
    let commit = change.commit.clone().ok_or("library: no commit")?;
    outputs.insert("commit".into(), hv(&commit));
    r.distributed("alice", &gid, &change.outgoing)?;
    for d in ["bob", "carol"] {
        let dev = r.dev(d)?;
        let applied = lib(dev.device.group_process_commit(&commit, NOW, &mut dev.rng), "group_process_commit")?;
        r.record(d, "Device::group_process_commit".into())?;
        r.events.push(json!({"op": "process_commit", "device": d}));
        r.distributed(d, &gid, &applied.outgoing)?;
    }
    if r.m["carol"].device.group(&gid).is_some_and(|g| g.is_active()) {
        return Err("library: carol is still active after her removal".into());
    }
    r.flush()?;
    hashes.push(epoch_hash(&r, &gid, &["alice", "bob"])?);

    let after = [
        ("alice", "alice: after the removal"),
        ("bob", "bob: carol cannot read this"),
        ("alice", "alice: iteration 1 of her second generation"),
    ];
    for (from, text) in after {
        send(&mut r, &gid, from, text, &DEVICES)?;
    }

    inputs.insert("events".into(), Value::Array(r.events));
    inputs.insert("rng_log".into(), Value::Array(r.log.0));
    outputs.insert("membership".into(), Value::Array(hashes));
    outputs.insert("distributions".into(), Value::Array(r.distributions));
    outputs.insert("messages".into(), Value::Array(r.messages));
    outputs.insert("deliveries".into(), Value::Array(r.deliveries));
    Ok((Value::Object(inputs), Value::Object(outputs)))
}

/// The current epoch and hash, which every listed device must agree on.
fn epoch_hash(r: &GroupRun, gid: &GroupId, devices: &[&str]) -> Result<Value, String> {
    let g = r.m["alice"].device.group(gid).ok_or("library: alice has no group")?;
    for d in devices {
        let other = r.m[d].device.group(gid).ok_or("library: no group")?;
        if other.membership_hash() != g.membership_hash() || other.epoch() != g.epoch() {
            return Err(format!("library: {d} sees another membership hash"));
        }
    }
    Ok(json!({"epoch": g.epoch(), "hash": hv(&g.membership_hash())}))
}

/// `from` sends; the message is delivered to every other device (a refusal is recorded
/// with its code).
fn send(r: &mut GroupRun, gid: &GroupId, from: &str, text: &str, devices: &[&str]) -> Result<(), String> {
    let dev = r.dev(from)?;
    let sent = lib(dev.device.group_encrypt(gid, text.as_bytes(), NOW, &mut dev.rng), "group_encrypt")?;
    if sent.rotated {
        return Err("library: an unexpected rotation at a send".into());
    }
    r.record(from, "Device::group_encrypt".into())?;
    let index = r.messages.len();
    r.events.push(json!({"op": "send", "from": from, "plaintext": hv(text.as_bytes())}));
    r.messages.push(hv(&sent.message));
    for to in devices.iter().filter(|d| **d != from) {
        let result = r.dev(to)?.device.group_decrypt(from, &sent.message);
        r.deliveries.push(match result {
            Ok(p) if p.plaintext == text.as_bytes() => {
                json!({"message": index, "to": to, "plaintext": hv(&p.plaintext)})
            }
            Ok(_) => return Err("library: a group message decrypted to other bytes".into()),
            Err(e) => json!({"message": index, "to": to, "error": code(e)}),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Channels.

/// The forger's Ed25519 seed of the wrong-signer case: `SHA-256("GoChat-E2EE test
/// vectors/announcements/forger")`.
pub(crate) fn forger_seed(name: &str) -> [u8; 32] {
    seed(name, "forger")
}

/// A copy of announcement `a` with `seq` replaced and `signer`/signature by `seed`.
pub(crate) fn forged(a: &[u8], seq: u64, seed: &[u8; 32]) -> Vec<u8> {
    let n = a.len() - 64 - 32;
    let mut out = a[..n].to_vec();
    out[34..42].copy_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&prim::ed25519_public(seed));
    let sig = prim::ed25519_sign(seed, &[b"GoChat-E2EE v1 channel announcement" as &[u8], &out].concat());
    out.extend_from_slice(&sig);
    out
}

/// `bytes` with the byte at `at` XORed with 0x01.
pub(crate) fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

fn received(r: Result<Received, gochat_e2ee::channel::ChannelError>) -> Value {
    match r {
        Ok(Received::Announcement(a)) => json!({"accepted": "announcement", "seq": a.seq, "body": hv(&a.body)}),
        Ok(Received::KeyRotated { old, new, seq }) => {
            json!({"accepted": "key_rotation", "seq": seq, "old_key": hv(&old), "new_key": hv(&new)})
        }
        Err(e) => refusal(e),
    }
}

/// A refusal: the `ChannelError` variant (the name 13.6 uses) and its `ErrorCode`.
fn refusal(e: gochat_e2ee::channel::ChannelError) -> Value {
    let variant = format!("{e:?}");
    let variant: String = variant.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    json!({"error": variant, "code": code(Error::from(e))})
}

/// The channel scenario, as the event list both the library run and the model read.
fn channel_events(name: &str) -> Vec<Value> {
    let t = |s: &str| hv(s.as_bytes());
    let ann = |ch: &str, ct: u8, body: &str| json!({"op": "announce", "channel": ch, "content_type": ct, "body": t(body), "now": NOW});
    let del = |ch: &str, to: &str, object: usize, now: u64| json!({"op": "deliver", "channel": ch, "to": to, "object": object, "now": now});
    let p = "public";
    let r = "restricted";
    let mut e = vec![
        json!({"op": "create", "channel": p, "subscribers": ["dana"]}),
        ann(p, 1, "Office hours change on Friday."),
        ann(p, 2, "{\"alert\":\"storm\",\"level\":2}"),
        ann(p, 3, "attachment:0123456789abcdef"),
        // objects 0, 1, 2
        del(p, "dana", 0, NOW),
        del(p, "dana", 1, NOW),
        del(p, "dana", 2, NOW),
        del(p, "dana", 1, NOW), // replay: StaleSequence
        json!({"op": "forge", "object": 0, "seq": 10, "seed": hv(&forger_seed(name))}), // object 3
        del(p, "dana", 3, NOW), // WrongSigner
        json!({"op": "flip", "object": 2, "at": 60}), // object 4
        del(p, "dana", 4, NOW), // BadSignature
        ann(p, 1, "Dated now, received early."), // object 5
        del(p, "dana", 5, NOW - 301), // FromFuture
        del(p, "dana", 5, NOW),
        json!({"op": "rotate_key", "channel": p, "now": NOW}), // object 6
        del(p, "dana", 6, NOW),
        del(p, "dana", 6, NOW),                      // replayed rotation: WrongSigner
        del(p, "dana", 5, NOW),                      // the old key's post after the rotation: WrongSigner
        ann(p, 1, "Signed by the new channel key."), // object 7
        del(p, "dana", 7, NOW),
        json!({"op": "verify", "object": 0, "key": {"channel": p, "key": 0}}),
        json!({"op": "verify", "object": 7, "key": {"channel": p, "key": 0}}), // WrongSigner
        json!({"op": "verify", "object": 7, "key": {"channel": p, "key": 1}}),
        json!({"op": "verify", "object": 3, "key": {"forger": 8}}), // event 8 is the forge
        json!({"op": "verify", "object": 4, "key": {"channel": p, "key": 0}}), // BadSignature
        json!({"op": "create", "channel": r, "subscribers": ["bob", "carol"]}),
        json!({"op": "send_key", "channel": r, "to": ["bob", "carol"]}), // object 8
        ann(r, 1, "Restricted: first briefing."),                        // object 9
        ann(r, 1, "Restricted: second briefing."),                       // object 10
        del(r, "bob", 9, NOW),
        del(r, "carol", 9, NOW),
    ];
    e.extend([
        json!({"op": "flip", "object": 10, "at": "last"}), // object 11
        del(r, "bob", 11, NOW),                            // AuthenticationFailed
        del(r, "bob", 10, NOW),
        del(r, "carol", 10, NOW),
        del(r, "bob", 9, NOW), // replay: Chain(Duplicate)
        // carol is removed: a new content key, sent to bob only.
        json!({"op": "rotate_content_key", "channel": r}),
        json!({"op": "send_key", "channel": r, "to": ["bob"]}), // object 12
        ann(r, 1, "Restricted: after carol's removal."),        // object 13
        del(r, "bob", 13, NOW),
        del(r, "carol", 13, NOW), // UnknownKey
        // Strictly monotonic seqs: a post the server withheld and delivers after a
        // later one is StaleSequence; a restricted post at a skipped iteration is
        // Chain(MessageLost) (no key is kept for it).
        ann(p, 1, "Withheld by the server."), // object 14
        ann(p, 1, "Delivered first."),        // object 15
        del(p, "dana", 15, NOW),
        del(p, "dana", 14, NOW),              // StaleSequence
        ann(r, 1, "Restricted: skipped."),    // object 16
        ann(r, 1, "Restricted: read first."), // object 17
        del(r, "bob", 17, NOW),
        del(r, "bob", 16, NOW), // Chain(MessageLost)
    ]);
    e
}

fn run_channels(name: &str) -> Result<(Value, Value), String> {
    let mut inputs = Map::new();
    let mut log = Log(Vec::new());
    let mut rng = RecordingRng::from_seed(seed(name, "agency"));
    inputs.insert("now".into(), json!(NOW));
    inputs.insert("agency".into(), json!({"rng_seed": hv(&seed(name, "agency"))}));
    let events = channel_events(name);
    let ch = |e: gochat_e2ee::channel::ChannelError| format!("library: {e}");
    let bad = |what: &str| format!("channel event: {what}");
    let mut publishers: BTreeMap<String, Publisher> = BTreeMap::new();
    let mut keys: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
    let mut subs: BTreeMap<(String, String), Subscription> = BTreeMap::new();
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let mut results = Vec::new();
    let mut channels = Map::new();
    for (i, e) in events.iter().enumerate() {
        let op = e["op"].as_str().ok_or_else(|| bad("op"))?;
        let channel = e["channel"].as_str().unwrap_or("").to_owned();
        let now = e["now"].as_u64().unwrap_or(NOW);
        let object = |objects: &Vec<Vec<u8>>| {
            e["object"].as_u64().and_then(|o| objects.get(o as usize).cloned()).ok_or_else(|| bad("object"))
        };
        match op {
            "create" => {
                let kind = if channel == "public" { ChannelKind::Public } else { ChannelKind::Restricted };
                let p = Publisher::new(kind, &mut rng);
                log.record("agency", format!("Publisher::new({kind:?}) (event {i})"), &mut rng);
                for s in e["subscribers"].as_array().ok_or_else(|| bad("subscribers"))? {
                    let s = s.as_str().ok_or_else(|| bad("subscriber"))?.to_owned();
                    let sub = Subscription::new(p.channel_id(), p.public_key(), kind).map_err(ch)?;
                    subs.insert((channel.clone(), s), sub);
                }
                keys.insert(channel.clone(), vec![p.public_key()]);
                channels.insert(channel.clone(), json!({"channel_id": hv(&p.channel_id().0)}));
                publishers.insert(channel, p);
            }
            "announce" => {
                let p = publishers.get_mut(&channel).ok_or_else(|| bad("channel"))?;
                let ct = e["content_type"].as_u64().and_then(|c| ContentType::from_byte(c as u8));
                let body = crate::hex::decode(e["body"].as_str().unwrap_or("")).ok_or_else(|| bad("body"))?;
                objects.push(p.announce(ct.ok_or_else(|| bad("content type"))?, &body, now).map_err(ch)?);
            }
            "rotate_key" => {
                let p = publishers.get_mut(&channel).ok_or_else(|| bad("channel"))?;
                objects.push(p.rotate_key(now, &mut rng).map_err(ch)?);
                log.record("agency", format!("Publisher::rotate_key (event {i})"), &mut rng);
                keys.get_mut(&channel).ok_or_else(|| bad("channel"))?.push(p.public_key());
            }
            "rotate_content_key" => {
                let p = publishers.get_mut(&channel).ok_or_else(|| bad("channel"))?;
                p.rotate_content_key(&mut rng).map_err(ch)?;
                log.record("agency", format!("Publisher::rotate_content_key (event {i})"), &mut rng);
            }
            "send_key" => {
                let p = publishers.get(&channel).ok_or_else(|| bad("channel"))?;
                let d = p.key_distribution().map_err(ch)?.to_vec();
                for to in e["to"].as_array().ok_or_else(|| bad("to"))? {
                    let to = to.as_str().ok_or_else(|| bad("to"))?.to_owned();
                    let s = subs.get_mut(&(channel.clone(), to)).ok_or_else(|| bad("subscriber"))?;
                    s.accept_key(&d).map_err(ch)?;
                }
                objects.push(d);
            }
            "forge" => {
                let seed =
                    super::model::a32(&crate::hex::decode(e["seed"].as_str().unwrap_or("")).unwrap_or_default())?;
                let seq = e["seq"].as_u64().ok_or_else(|| bad("seq"))?;
                objects.push(forged(&object(&objects)?, seq, &seed));
            }
            "flip" => {
                let o = object(&objects)?;
                let at = e["at"].as_u64().map_or(o.len() - 1, |a| a as usize);
                objects.push(flipped(&o, at));
            }
            "deliver" => {
                let to = e["to"].as_str().ok_or_else(|| bad("to"))?.to_owned();
                let o = object(&objects)?;
                let s = subs.get_mut(&(channel, to)).ok_or_else(|| bad("subscriber"))?;
                results.push(json!({"event": i, "result": received(s.receive(&o, now))}));
            }
            "verify" => {
                let o = object(&objects)?;
                let k = &e["key"];
                let key = if let Some(f) = k["forger"].as_u64() {
                    let f = events.get(f as usize).and_then(|f| f["seed"].as_str()).and_then(crate::hex::decode);
                    prim::ed25519_public(&super::model::a32(&f.ok_or_else(|| bad("forger"))?)?)
                } else {
                    let list = keys.get(k["channel"].as_str().unwrap_or("")).ok_or_else(|| bad("key channel"))?;
                    *list.get(k["key"].as_u64().unwrap_or(0) as usize).ok_or_else(|| bad("key index"))?
                };
                let r = gochat_e2ee::channel::verify_announcement(&o, &key).map(Received::Announcement);
                results.push(json!({"event": i, "result": received(r)}));
            }
            _ => return Err(bad(op)),
        }
    }
    for (name, list) in &keys {
        if let Some(Value::Object(c)) = channels.get_mut(name) {
            c.insert("channel_keys".into(), Value::Array(list.iter().map(|k| hv(k)).collect()));
        }
    }
    inputs.insert("events".into(), Value::Array(events));
    inputs.insert("rng_log".into(), Value::Array(log.0));
    let outputs = json!({
        "channels": channels,
        "objects": objects.iter().map(|o| hv(o)).collect::<Vec<_>>(),
        "results": results,
    });
    Ok((Value::Object(inputs), outputs))
}
