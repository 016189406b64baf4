//! The independent model of the group and channel vectors: every value re-derived from
//! the inputs with the raw primitives, following `docs/protocol.md` chapters 12 and 13
//! (never the library's group or channel code). Labels are spelled out here.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::groups::Kind;
use super::model::{a32, device_keys, Draws};
use super::{arr, field, hv, prim, str_field, u64_field};

const GROUP_STATE: &[u8] = b"GoChat-E2EE v1 group state";
const SIG_COMMIT: &[u8] = b"GoChat-E2EE v1 group commit";
const SIG_WELCOME: &[u8] = b"GoChat-E2EE v1 group welcome";
const SIG_GROUP_MESSAGE: &[u8] = b"GoChat-E2EE v1 group message";
const GROUP_MESSAGE_KEYS: &[u8] = b"GoChat-E2EE v1 group message keys";
const SIG_ANNOUNCEMENT: &[u8] = b"GoChat-E2EE v1 channel announcement";
const SIG_ROTATION: &[u8] = b"GoChat-E2EE v1 channel key rotation";
const CHANNEL_MESSAGE_KEYS: &[u8] = b"GoChat-E2EE v1 channel message keys";
const SIG_CHANNEL_KEY: &[u8] = b"GoChat-E2EE v1 channel key distribution";
/// 13.6: a timestamp more than this after `now` is refused.
const MAX_FUTURE_SECS: u64 = 300;
/// How many iterations of a removed member's held chains are tried on each message
/// sent after the removal (none may open it).
const REMOVED_TRIALS: u32 = 16;

pub fn run(kind: Kind, inputs: &Value) -> Result<(Value, Value), String> {
    match kind {
        Kind::Group => run_group(inputs),
        Kind::Channels => run_channels(inputs),
    }
}

/// `KDF_CK` (6.1): the message key and the next chain key.
fn kdf_ck(ck: &[u8; 32]) -> Result<([u8; 32], [u8; 32]), String> {
    Ok((prim::hmac(ck, &[0x01])?, prim::hmac(ck, &[0x02])?))
}

/// `key (32) || nonce (12) = HKDF(0^32, MK, label, 44)`.
fn aead_keys(mk: &[u8; 32], label: &[u8]) -> Result<([u8; 32], [u8; 12]), String> {
    let okm = prim::hkdf(&[0u8; 32], mk, label, 44)?;
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    nonce.copy_from_slice(&okm[32..]);
    Ok((key, nonce))
}

/// 5.4: `padded = p || 0x80 || 0x00*` to a multiple of 64; the inverse refuses anything else.
fn unpad(padded: &[u8]) -> Result<Vec<u8>, String> {
    let end = padded.iter().rposition(|b| *b != 0).ok_or("padding")?;
    if padded[end] != 0x80 || padded.len() - end > 64 {
        return Err("padding".into());
    }
    Ok(padded[..end].to_vec())
}

fn hexv(v: &Value) -> Result<Vec<u8>, String> {
    crate::hex::decode(v.as_str().ok_or("not a string")?).ok_or_else(|| "not hex".into())
}

// ---------------------------------------------------------------------------------
// Groups (chapter 12).

#[derive(Clone)]
struct Entry {
    name: String,
    identity: Vec<u8>,
    admin: bool,
}

/// A name: `u32 length || UTF-8`.
fn name_enc(n: &str) -> Vec<u8> {
    [&(n.len() as u32).to_be_bytes()[..], n.as_bytes()].concat()
}

/// A member entry: `name || IdentityKey (66) || admin flag`.
fn entry_enc(e: &Entry) -> Vec<u8> {
    [name_enc(&e.name), e.identity.clone(), vec![u8::from(e.admin)]].concat()
}

fn entries_json(list: &[Entry]) -> Value {
    Value::Array(list.iter().map(|e| json!({"name": e.name, "identity": hv(&e.identity), "admin": e.admin})).collect())
}

/// 12.2: the hash input (without the label) and `state_hash(e)`.
fn state_hash(gid: &[u8; 32], epoch: u64, prev: &[u8; 32], list: &[Entry]) -> (Vec<u8>, [u8; 32]) {
    let mut input = [&gid[..], &epoch.to_be_bytes(), prev, &(list.len() as u16).to_be_bytes()].concat();
    for e in list {
        input.extend(entry_enc(e));
    }
    let hash = prim::sha256(&[GROUP_STATE, &input]);
    (input, hash)
}

/// One sender key generation (12.1) as its owner holds it.
#[derive(Clone)]
struct Gen {
    key_id: u32,
    chain_key: [u8; 32],
    iteration: u32,
    signing_seed: [u8; 32],
}

/// A generation as a receiver holds it: the chain key at its next iteration.
#[derive(Clone)]
struct Held {
    key_id: u32,
    chain_key: [u8; 32],
    next: u32,
    signing_public: [u8; 32],
}

struct GDev {
    user: String,
    ed_seed: [u8; 32],
    identity: Vec<u8>,
    epoch: u64,
    hash: [u8; 32],
    members: Vec<Entry>,
    own: Option<Gen>,
    /// Per sender, its generations, oldest first.
    held: BTreeMap<String, Vec<Held>>,
    active: bool,
}

struct GroupModel {
    draws: Draws,
    devices: BTreeMap<String, GDev>,
    order: Vec<String>,
    gid: [u8; 32],
    welcome: Vec<u8>,
    inter: Map<String, Value>,
    epochs: Vec<Value>,
    generations: Vec<Value>,
    distributions: Vec<Value>,
    out_distributions: Vec<Value>,
    /// Distributions sent and not yet accepted: (from, to, plaintext).
    pending: Vec<(String, String, Vec<u8>)>,
    messages: Vec<Value>,
    out_messages: Vec<Value>,
    deliveries: Vec<Value>,
    removed: Option<(String, Vec<(String, Held)>)>,
    removed_checks: Vec<Value>,
}

impl GroupModel {
    fn dev(&mut self, name: &str) -> Result<&mut GDev, String> {
        self.devices.get_mut(name).ok_or_else(|| format!("no device {name}"))
    }

    /// A new generation of `device` (draws: signing seed, chain key, key id).
    fn generate(&mut self, device: &str, event: usize) -> Result<(), String> {
        let signing_seed = a32(&self.draws.next(device, 32, "sender signing seed")?)?;
        let chain_key = a32(&self.draws.next(device, 32, "sender chain key")?)?;
        let id = self.draws.next(device, 4, "sender key id")?;
        let key_id = u32::from_be_bytes(id.as_slice().try_into().map_err(|_| "key id")?);
        self.generations.push(json!({"device": device, "event": event, "key_id": key_id,
            "chain_key": hv(&chain_key), "signing_seed": hv(&signing_seed),
            "signing_public": hv(&prim::ed25519_public(&signing_seed))}));
        self.dev(device)?.own = Some(Gen { key_id, chain_key, iteration: 0, signing_seed });
        Ok(())
    }

    /// 12.4: the distribution of `device`'s current generation to every other member.
    fn distribute(&mut self, device: &str) -> Result<(), String> {
        let gid = self.gid;
        let d = self.devices.get(device).ok_or("no device")?;
        let own = d.own.clone().ok_or("no generation")?;
        let public = prim::ed25519_public(&own.signing_seed);
        let plaintext = [
            &[0x23, 0x01][..],
            &gid,
            &d.epoch.to_be_bytes(),
            &d.hash,
            &own.key_id.to_be_bytes(),
            &own.iteration.to_be_bytes(),
            &own.chain_key,
            &public,
        ]
        .concat();
        let to: Vec<String> = d.members.iter().map(|m| m.name.clone()).filter(|n| n != &d.user).collect();
        self.distributions.push(json!({"from": device, "to": to, "plaintext": hv(&plaintext),
            "group_id": hv(&gid), "epoch": d.epoch, "state_hash": hv(&d.hash), "key_id": own.key_id,
            "iteration": own.iteration, "chain_key": hv(&own.chain_key), "signing_public": hv(&public)}));
        self.out_distributions.push(json!({"from": device, "key_id": own.key_id, "to": to}));
        for t in to {
            self.pending.push((device.to_owned(), t, plaintext.clone()));
        }
        Ok(())
    }

    /// Accepts every pending distribution (12.4: member, stamp at our epoch and hash).
    fn accept_pending(&mut self) -> Result<(), String> {
        for (from, to, p) in std::mem::take(&mut self.pending) {
            let d = self.dev(&to)?;
            if !d.active || !d.members.iter().any(|m| m.name == from) {
                return Err(format!("{to} refuses {from}'s distribution: NotMember"));
            }
            let epoch = u64::from_be_bytes(p[34..42].try_into().map_err(|_| "epoch")?);
            if epoch != d.epoch || p[42..74] != d.hash {
                return Err(format!("{to} refuses {from}'s distribution: stamp"));
            }
            let held = Held {
                key_id: u32::from_be_bytes(p[74..78].try_into().map_err(|_| "key id")?),
                next: u32::from_be_bytes(p[78..82].try_into().map_err(|_| "iteration")?),
                chain_key: a32(&p[82..114])?,
                signing_public: a32(&p[114..146])?,
            };
            let list = d.held.entry(from).or_default();
            list.push(held);
            if list.len() > 4 {
                list.remove(0);
            }
        }
        Ok(())
    }

    fn record_epoch(&mut self, list: &[Entry], epoch: u64, input: &[u8], hash: &[u8; 32]) {
        self.epochs.push(json!({"epoch": epoch, "members": entries_json(list),
            "hash_input": hv(&[GROUP_STATE, input].concat()), "hash": hv(hash)}));
    }

    fn create(&mut self, e: &Value, event: usize) -> Result<(), String> {
        let author = str_field(e, "device")?.to_owned();
        self.gid = a32(&self.draws.next(&author, 32, "group id")?)?;
        let mut list = Vec::new();
        for m in arr(e, "members")? {
            let name = str_field(m, "name")?.to_owned();
            let identity = self.dev(&name)?.identity.clone();
            list.push(Entry { name, identity, admin: field(m, "admin")?.as_bool().ok_or("admin")? });
        }
        let identity = self.dev(&author)?.identity.clone();
        list.push(Entry { name: author.clone(), identity, admin: true });
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let (input, hash) = state_hash(&self.gid, 0, &[0; 32], &list);
        self.record_epoch(&list, 0, &input, &hash);
        let mut body = [&[0x22, 0x01][..], &self.gid, &0u64.to_be_bytes(), &[0; 32], &name_enc(&author)].concat();
        body.extend((list.len() as u16).to_be_bytes());
        for m in &list {
            body.extend(entry_enc(m));
        }
        let signed = [SIG_WELCOME, &body].concat();
        let signature = prim::ed25519_sign(&self.dev(&author)?.ed_seed, &signed);
        self.inter.insert("welcome".into(), json!({"signed": hv(&signed), "signature": hv(&signature)}));
        self.welcome = [body, signature.to_vec()].concat();
        let d = self.dev(&author)?;
        d.members = list;
        d.epoch = 0;
        d.hash = hash;
        d.active = true;
        self.generate(&author, event)?;
        self.distribute(&author)
    }

    /// 12.3: joining from the welcome (the list it carries).
    fn join(&mut self, e: &Value, event: usize) -> Result<(), String> {
        let device = str_field(e, "device")?.to_owned();
        let (list, hash) = {
            let a = self.devices.values().find(|d| d.active && d.epoch == 0).ok_or("no welcome author")?;
            (a.members.clone(), a.hash)
        };
        let d = self.dev(&device)?;
        if !list.iter().any(|m| m.name == d.user && m.identity == d.identity) {
            return Err("join: not in the list".into());
        }
        d.members = list;
        d.epoch = 0;
        d.hash = hash;
        d.active = true;
        self.generate(&device, event)?;
        self.distribute(&device)
    }

    /// 12.3: the remove commit by `device` and its application by the author.
    fn remove(&mut self, e: &Value, event: usize) -> Result<(), String> {
        let author = str_field(e, "device")?.to_owned();
        let names: Vec<String> =
            arr(e, "names")?.iter().map(|n| n.as_str().map(str::to_owned).ok_or("name")).collect::<Result<_, _>>()?;
        let d = self.devices.get(&author).ok_or("no device")?;
        if !d.members.iter().any(|m| m.name == author && m.admin) {
            return Err("remove: NotAdmin".into());
        }
        let epoch = d.epoch + 1;
        let mut body = [&[0x21, 0x01][..], &self.gid, &epoch.to_be_bytes(), &d.hash, &name_enc(&author)].concat();
        body.push(0x02);
        body.extend((names.len() as u16).to_be_bytes());
        for n in &names {
            body.extend(name_enc(n));
        }
        let signed = [SIG_COMMIT, &body].concat();
        let signature = prim::ed25519_sign(&d.ed_seed, &signed);
        let list: Vec<Entry> = d.members.iter().filter(|m| !names.contains(&m.name)).cloned().collect();
        let (input, hash) = state_hash(&self.gid, epoch, &d.hash, &list);
        self.inter.insert("commit".into(), json!({"signed": hv(&signed), "signature": hv(&signature)}));
        self.inter.insert("commit_bytes".into(), hv(&[body, signature.to_vec()].concat()));
        self.record_epoch(&list, epoch, &input, &hash);
        self.inter.insert("removed_names".into(), json!(names));
        self.apply_removal(&author, &names, epoch, hash, &list, event)
    }

    fn apply_removal(
        &mut self,
        device: &str,
        names: &[String],
        epoch: u64,
        hash: [u8; 32],
        list: &[Entry],
        event: usize,
    ) -> Result<(), String> {
        let d = self.dev(device)?;
        if names.contains(&d.user) {
            // This device was removed: inactive, every key of the group deleted. Its last
            // chain state is kept aside for the statement below.
            let held: Vec<(String, Held)> =
                d.held.iter().flat_map(|(s, l)| l.iter().map(|h| (s.clone(), h.clone()))).collect();
            d.held.clear();
            d.own = None;
            d.active = false;
            self.removed = Some((device.to_owned(), held));
            return Ok(());
        }
        for n in names {
            d.held.remove(n);
        }
        d.members = list.to_vec();
        d.epoch = epoch;
        d.hash = hash;
        // After a removal every remaining member's own generation is retired at once.
        self.generate(device, event)?;
        self.distribute(device)
    }

    fn process_commit(&mut self, e: &Value, event: usize) -> Result<(), String> {
        let device = str_field(e, "device")?.to_owned();
        let names: Vec<String> =
            serde_json::from_value(self.inter["removed_names"].clone()).map_err(|e| e.to_string())?;
        let last = self.epochs.last().ok_or("no epoch")?;
        let epoch = u64_field(last, "epoch")?;
        let hash = a32(&hexv(field(last, "hash")?)?)?;
        let list: Vec<Entry> = arr(last, "members")?
            .iter()
            .map(|m| {
                Ok(Entry {
                    name: str_field(m, "name")?.to_owned(),
                    identity: hexv(field(m, "identity")?)?,
                    admin: field(m, "admin")?.as_bool().ok_or("admin")?,
                })
            })
            .collect::<Result<_, String>>()?;
        self.apply_removal(&device, &names, epoch, hash, &list, event)
    }

    /// 12.5: `from` sends; every other device receives it.
    fn send(&mut self, e: &Value) -> Result<(), String> {
        self.accept_pending()?;
        let from = str_field(e, "from")?.to_owned();
        let plaintext = hexv(field(e, "plaintext")?)?;
        let gid = self.gid;
        let d = self.dev(&from)?;
        let (epoch, hash) = (d.epoch, d.hash);
        let own = d.own.as_mut().ok_or("no generation")?;
        let chain_key = own.chain_key;
        let iteration = own.iteration;
        let (mk, next) = kdf_ck(&chain_key)?;
        own.chain_key = next;
        own.iteration += 1;
        let (key_id, seed) = (own.key_id, own.signing_seed);
        let (key, nonce) = aead_keys(&mk, GROUP_MESSAGE_KEYS)?;
        let header =
            [&[0x24, 0x01][..], &gid, &epoch.to_be_bytes(), &hash, &key_id.to_be_bytes(), &iteration.to_be_bytes()]
                .concat();
        let padded = prim::pad(&plaintext, 64);
        let ciphertext = prim::aes_gcm_seal(&key, &nonce, &header, &padded)?;
        let signed = [SIG_GROUP_MESSAGE, &header, &ciphertext].concat();
        let signature = prim::ed25519_sign(&seed, &signed);
        let message = [&header[..], &ciphertext, &signature].concat();
        let index = self.out_messages.len();
        self.messages.push(json!({"from": from, "epoch": epoch, "state_hash": hv(&hash), "key_id": key_id,
            "iteration": iteration, "chain_key": hv(&chain_key), "next_chain_key": hv(&next),
            "message_key": hv(&mk), "aes_key": hv(&key), "nonce": hv(&nonce), "padded": hv(&padded),
            "header": hv(&header), "ciphertext": hv(&ciphertext), "signed": hv(&signed),
            "signature": hv(&signature)}));
        self.out_messages.push(hv(&message));
        for to in self.order.clone().iter().filter(|t| **t != from) {
            let r = self.receive(to, &from, &message)?;
            let mut v = json!({"message": index, "to": to});
            match r {
                Ok(p) => v["plaintext"] = hv(&p),
                Err(code) => v["error"] = json!(code),
            }
            self.deliveries.push(v);
            if let Some((removed, held)) = &self.removed {
                if removed == to {
                    let check = removed_check(held, &from, key_id, &header, &ciphertext)?;
                    self.removed_checks.push(json!({"message": index, "sender": from, "key_id": key_id,
                        "held": false, "tried": check}));
                }
            }
        }
        Ok(())
    }

    /// 12.5, in its order: active and sender a member, generation held, signature,
    /// stamp, chain, AEAD, padding. Nothing changes before all pass.
    fn receive(&mut self, to: &str, from: &str, m: &[u8]) -> Result<Result<Vec<u8>, &'static str>, String> {
        let d = self.dev(to)?;
        if !d.active || !d.members.iter().any(|e| e.name == from) {
            return Ok(Err("NotMember"));
        }
        let (header, rest) = m.split_at(82);
        let (ciphertext, signature) = rest.split_at(rest.len() - 64);
        let key_id = u32::from_be_bytes(header[74..78].try_into().map_err(|_| "key id")?);
        let iteration = u32::from_be_bytes(header[78..82].try_into().map_err(|_| "iteration")?);
        let Some(h) = d.held.get_mut(from).and_then(|l| l.iter_mut().find(|h| h.key_id == key_id)) else {
            return Ok(Err("MissingSenderKey"));
        };
        let expect =
            prim::ed25519_verify(&h.signing_public, &[SIG_GROUP_MESSAGE, header, ciphertext].concat(), signature);
        if !expect {
            return Ok(Err("BadSignature"));
        }
        let epoch = u64::from_be_bytes(header[34..42].try_into().map_err(|_| "epoch")?);
        if epoch != d.epoch || header[42..74] != d.hash {
            return Ok(Err("stamp"));
        }
        if iteration != h.next {
            return Err("model: the scenario delivers in order".into());
        }
        let (mk, next) = kdf_ck(&h.chain_key)?;
        let (key, nonce) = aead_keys(&mk, GROUP_MESSAGE_KEYS)?;
        let padded = prim::aes_gcm_open(&key, &nonce, header, ciphertext)?;
        let p = unpad(&padded)?;
        h.chain_key = next;
        h.next += 1;
        Ok(Ok(p))
    }
}

/// The removed member's last chain state cannot open a message sent after the removal:
/// the message names a generation it does not hold, and none of its held chains, at
/// their next `REMOVED_TRIALS` iterations, authenticates the ciphertext. Fails
/// otherwise. Returns how many keys were tried.
fn removed_check(held: &[(String, Held)], from: &str, key_id: u32, header: &[u8], ct: &[u8]) -> Result<u32, String> {
    if held.iter().any(|(s, h)| s == from && h.key_id == key_id) {
        return Err(format!("the removed member holds {from}'s generation {key_id}"));
    }
    let mut tried = 0;
    for (_, h) in held {
        let mut ck = h.chain_key;
        for _ in 0..REMOVED_TRIALS {
            let (mk, next) = kdf_ck(&ck)?;
            let (key, nonce) = aead_keys(&mk, GROUP_MESSAGE_KEYS)?;
            if prim::aes_gcm_open(&key, &nonce, header, ct).is_ok() {
                return Err("a removed member's old chain opens a message sent after the removal".into());
            }
            tried += 1;
            ck = next;
        }
    }
    Ok(tried)
}

fn run_group(inputs: &Value) -> Result<(Value, Value), String> {
    let mut draws = Draws::from_inputs(inputs)?;
    let mut order: Vec<String> = Vec::new();
    for call in arr(inputs, "rng_log")? {
        let d = str_field(call, "device")?.to_owned();
        if !order.contains(&d) {
            order.push(d);
        }
    }
    let mut devices = BTreeMap::new();
    let mut ids = Map::new();
    for name in &order {
        let input = field(inputs, name)?;
        let k = device_keys(&mut draws, name, str_field(input, "user")?, input)?;
        ids.insert(name.clone(), json!({"identity_ed25519_seed": hv(&k.ed_seed), "identity_key": hv(&k.identity)}));
        devices.insert(
            name.clone(),
            GDev {
                user: k.user.clone(),
                ed_seed: k.ed_seed,
                identity: k.identity.clone(),
                epoch: 0,
                hash: [0; 32],
                members: Vec::new(),
                own: None,
                held: BTreeMap::new(),
                active: false,
            },
        );
    }
    let mut g = GroupModel {
        draws,
        devices,
        order,
        gid: [0; 32],
        welcome: Vec::new(),
        inter: Map::new(),
        epochs: Vec::new(),
        generations: Vec::new(),
        distributions: Vec::new(),
        out_distributions: Vec::new(),
        pending: Vec::new(),
        messages: Vec::new(),
        out_messages: Vec::new(),
        deliveries: Vec::new(),
        removed: None,
        removed_checks: Vec::new(),
    };
    for (i, e) in arr(inputs, "events")?.iter().enumerate() {
        match str_field(e, "op")? {
            "create" => g.create(e, i)?,
            "join" => g.join(e, i)?,
            "remove" => g.remove(e, i)?,
            "process_commit" => g.process_commit(e, i)?,
            "send" => g.send(e)?,
            op => return Err(format!("unknown group op {op}")),
        }
    }
    g.accept_pending()?;
    g.draws.check_all_used()?;
    let commit = g.inter.remove("commit_bytes").ok_or("no commit")?;
    g.inter.remove("removed_names");
    let (removed, held) = g.removed.clone().ok_or("nobody was removed")?;
    if g.removed_checks.is_empty() {
        return Err("no message was sent after the removal".into());
    }
    let mut inter = Map::new();
    inter.insert("devices".into(), Value::Object(ids));
    inter.insert("group_id".into(), hv(&g.gid));
    inter.insert("epochs".into(), Value::Array(g.epochs.clone()));
    inter.extend(std::mem::take(&mut g.inter));
    inter.insert("generations".into(), Value::Array(g.generations));
    inter.insert("distributions".into(), Value::Array(g.distributions));
    inter.insert("messages".into(), Value::Array(g.messages));
    inter.insert(
        "removed_member".into(),
        json!({
            "device": removed,
            "held": held.iter().map(|(s, h)| json!({"sender": s, "key_id": h.key_id, "next_iteration": h.next,
                "chain_key": hv(&h.chain_key)})).collect::<Vec<_>>(),
            "iterations_tried_per_chain": REMOVED_TRIALS,
            "after_removal": g.removed_checks,
        }),
    );
    let outputs = json!({
        "group_id": hv(&g.gid),
        "welcome": hv(&g.welcome),
        "commit": commit,
        "membership": g.epochs.iter().map(|e| json!({"epoch": e["epoch"], "hash": e["hash"]})).collect::<Vec<_>>(),
        "distributions": g.out_distributions,
        "messages": g.out_messages,
        "deliveries": g.deliveries,
    });
    Ok((Value::Object(inter), outputs))
}

// ---------------------------------------------------------------------------------
// Channels (chapter 13).

struct Pub {
    id: [u8; 32],
    seed: [u8; 32],
    keys: Vec<[u8; 32]>,
    next_seq: u64,
    /// Restricted: key id, chain key, iteration.
    content: Option<(u32, [u8; 32], u32)>,
}

struct ContentKey {
    key_id: u32,
    chain_key: [u8; 32],
    next: u32,
    lost_below: u32,
}

struct Sub {
    id: [u8; 32],
    restricted: bool,
    key: [u8; 32],
    last: u64,
    keys: Vec<ContentKey>,
}

type Refusal = (&'static str, &'static str);

/// The `ErrorCode` each refusal of 13.6 maps to.
fn refused<T>(variant: &'static str) -> Result<T, Refusal> {
    let code = match variant {
        "UnknownKey" => "MissingSenderKey",
        "WrongKind" => "WrongChannel",
        "ChainDuplicate" => return Err(("Chain", "Duplicate")),
        "ChainMessageLost" => return Err(("Chain", "MessageLost")),
        "ChainTooFarAhead" => return Err(("Chain", "TooFarAhead")),
        v => v,
    };
    Err((variant, code))
}

fn ann_fields(b: &[u8]) -> Result<(u64, u64, usize), String> {
    let seq = u64::from_be_bytes(b.get(34..42).ok_or("short")?.try_into().map_err(|_| "seq")?);
    let ts = u64::from_be_bytes(b.get(42..50).ok_or("short")?.try_into().map_err(|_| "ts")?);
    let n = u32::from_be_bytes(b.get(51..55).ok_or("short")?.try_into().map_err(|_| "len")?) as usize;
    if b.len() != 151 + n {
        return Err("announcement length".into());
    }
    Ok((seq, ts, n))
}

impl Sub {
    /// 13.6, announcement checks 2–6; returns (seq, body) without changing anything.
    fn check_announcement(&self, b: &[u8], now: u64) -> Result<(u64, Vec<u8>), Refusal> {
        let (seq, ts, n) = ann_fields(b).map_err(|_| ("Decode", "Malformed"))?;
        if b[2..34] != self.id {
            return refused("WrongChannel");
        }
        if b[55 + n..87 + n] != self.key {
            return refused("WrongSigner");
        }
        if !prim::ed25519_verify(&self.key, &[SIG_ANNOUNCEMENT, &b[..87 + n]].concat(), &b[87 + n..]) {
            return refused("BadSignature");
        }
        // 13.6: strictly monotonic.
        if seq <= self.last {
            return refused("StaleSequence");
        }
        if ts > now + MAX_FUTURE_SECS {
            return refused("FromFuture");
        }
        Ok((seq, b[55..55 + n].to_vec()))
    }

    fn receive(&mut self, b: &[u8], now: u64) -> Result<Value, Refusal> {
        match b.first() {
            Some(0x30) if self.restricted => refused("WrongKind"),
            Some(0x30) => {
                let (seq, body) = self.check_announcement(b, now)?;
                self.last = seq;
                Ok(json!({"accepted": "announcement", "seq": seq, "body": hv(&body)}))
            }
            Some(0x31) => {
                let seq = u64::from_be_bytes(b[34..42].try_into().map_err(|_| ("Decode", "Malformed"))?);
                let ts = u64::from_be_bytes(b[42..50].try_into().map_err(|_| ("Decode", "Malformed"))?);
                if b[2..34] != self.id {
                    return refused("WrongChannel");
                }
                if b[50..82] != self.key {
                    return refused("WrongSigner");
                }
                let new = a32(&b[82..114]).map_err(|_| ("Decode", "Malformed"))?;
                if !prim::ed25519_verify(&self.key, &[SIG_ROTATION, &b[..114]].concat(), &b[114..178])
                    || !prim::ed25519_verify(&new, &[SIG_ROTATION, &b[..178]].concat(), &b[178..242])
                {
                    return refused("BadSignature");
                }
                if seq <= self.last {
                    return refused("StaleSequence");
                }
                if ts > now + MAX_FUTURE_SECS {
                    return refused("FromFuture");
                }
                let old = self.key;
                self.key = new;
                self.last = seq;
                Ok(json!({"accepted": "key_rotation", "seq": seq, "old_key": hv(&old), "new_key": hv(&new)}))
            }
            Some(0x32) if !self.restricted => refused("WrongKind"),
            Some(0x32) => {
                if b[2..34] != self.id {
                    return refused("WrongChannel");
                }
                let key_id = u32::from_be_bytes(b[34..38].try_into().map_err(|_| ("Decode", "Malformed"))?);
                let iteration = u32::from_be_bytes(b[38..42].try_into().map_err(|_| ("Decode", "Malformed"))?);
                let Some(k) = self.keys.iter().find(|k| k.key_id == key_id) else {
                    return refused("UnknownKey");
                };
                // Chain position (staged only).
                // 13.6: no key is kept for a skipped iteration.
                let mk = if iteration < k.next {
                    return refused(if iteration < k.lost_below { "ChainMessageLost" } else { "ChainDuplicate" });
                } else {
                    let mut ck = k.chain_key;
                    for _ in k.next..iteration {
                        ck = kdf_ck(&ck).map_err(|_| ("Crypto", "Internal"))?.1;
                    }
                    kdf_ck(&ck).map_err(|_| ("Crypto", "Internal"))?.0
                };
                let (key, nonce) = aead_keys(&mk, CHANNEL_MESSAGE_KEYS).map_err(|_| ("Crypto", "Internal"))?;
                let Some(padded) = prim::aes_gcm_siv_open(&key, &nonce, &b[..42], &b[42..]) else {
                    return refused("AuthenticationFailed");
                };
                let inner = unpad(&padded).map_err(|_| ("InvalidPadding", "InvalidPadding"))?;
                let (seq, body) = self.check_announcement(&inner, now)?;
                // Only now: the chain step and the seq.
                let k = self.keys.iter_mut().find(|k| k.key_id == key_id).ok_or(("Internal", "Internal"))?;
                let mut ck = k.chain_key;
                for _ in k.next..iteration {
                    ck = kdf_ck(&ck).map_err(|_| ("Crypto", "Internal"))?.1;
                }
                if iteration > k.next {
                    k.lost_below = k.lost_below.max(iteration);
                }
                k.chain_key = kdf_ck(&ck).map_err(|_| ("Crypto", "Internal"))?.1;
                k.next = iteration + 1;
                self.last = seq;
                Ok(json!({"accepted": "announcement", "seq": seq, "body": hv(&body)}))
            }
            _ => Err(("Decode", "WrongMessageType")),
        }
    }

    /// 13.6, key distribution: channel, kind, signer, signature; a held key id is kept.
    fn accept_key(&mut self, b: &[u8]) -> Result<(), String> {
        if b.len() != 170 || b[2..34] != self.id || !self.restricted || b[74..106] != self.key {
            return Err("key distribution refused".into());
        }
        if !prim::ed25519_verify(&self.key, &[SIG_CHANNEL_KEY, &b[..106]].concat(), &b[106..]) {
            return Err("key distribution: BadSignature".into());
        }
        let key_id = u32::from_be_bytes(b[34..38].try_into().map_err(|_| "key id")?);
        if self.keys.iter().any(|k| k.key_id == key_id) {
            return Ok(());
        }
        let next = u32::from_be_bytes(b[38..42].try_into().map_err(|_| "iteration")?);
        if self.keys.len() == 4 {
            self.keys.remove(0);
        }
        self.keys.push(ContentKey { key_id, chain_key: a32(&b[42..74])?, next, lost_below: next });
        Ok(())
    }
}

fn result_json(r: Result<Value, Refusal>) -> Value {
    match r {
        Ok(v) => v,
        Err((variant, code)) => json!({"error": variant, "code": code}),
    }
}

fn content_key(draws: &mut Draws, avoid: Option<u32>) -> Result<(u32, [u8; 32]), String> {
    loop {
        let id = draws.next("agency", 4, "content key id")?;
        let id = u32::from_be_bytes(id.as_slice().try_into().map_err(|_| "key id")?);
        if Some(id) != avoid {
            return Ok((id, a32(&draws.next("agency", 32, "content chain key")?)?));
        }
    }
}

/// 13.1: the signed announcement.
fn announcement(
    seed: &[u8; 32],
    id: &[u8; 32],
    seq: u64,
    ts: u64,
    ct: u8,
    body: &[u8],
) -> (Vec<u8>, Vec<u8>, [u8; 64]) {
    let unsigned = [
        &[0x30, 0x01][..],
        id,
        &seq.to_be_bytes(),
        &ts.to_be_bytes(),
        &[ct],
        &(body.len() as u32).to_be_bytes(),
        body,
        &prim::ed25519_public(seed),
    ]
    .concat();
    let signed = [SIG_ANNOUNCEMENT, &unsigned].concat();
    let sig = prim::ed25519_sign(seed, &signed);
    ([unsigned, sig.to_vec()].concat(), signed, sig)
}

fn run_channels(inputs: &Value) -> Result<(Value, Value), String> {
    let mut draws = Draws::from_inputs(inputs)?;
    let events = arr(inputs, "events")?;
    let mut pubs: BTreeMap<String, Pub> = BTreeMap::new();
    let mut subs: BTreeMap<(String, String), Sub> = BTreeMap::new();
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let mut inter_objects: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    let mut created = Map::new();
    for (i, e) in events.iter().enumerate() {
        let op = str_field(e, "op")?;
        let channel = e.get("channel").and_then(Value::as_str).unwrap_or("").to_owned();
        let now = e.get("now").and_then(Value::as_u64).unwrap_or(u64_field(inputs, "now")?);
        let object = |objects: &Vec<Vec<u8>>| -> Result<Vec<u8>, String> {
            let o = u64_field(e, "object")? as usize;
            objects.get(o).cloned().ok_or_else(|| format!("event {i}: no object {o}"))
        };
        match op {
            "create" => {
                let id = a32(&draws.next("agency", 32, "channel id")?)?;
                let seed = a32(&draws.next("agency", 32, "channel key seed")?)?;
                let restricted = channel == "restricted";
                let content = if restricted {
                    let (id, ck) = content_key(&mut draws, None)?;
                    Some((id, ck, 0))
                } else {
                    None
                };
                let key = prim::ed25519_public(&seed);
                for s in arr(e, "subscribers")? {
                    let s = s.as_str().ok_or("subscriber")?.to_owned();
                    subs.insert((channel.clone(), s), Sub { id, restricted, key, last: 0, keys: Vec::new() });
                }
                let mut c =
                    json!({"event": i, "channel_id": hv(&id), "channel_key_seed": hv(&seed), "channel_key": hv(&key)});
                if let Some((kid, ck, _)) = content {
                    c["content_key_id"] = json!(kid);
                    c["content_chain_key"] = hv(&ck);
                }
                created.insert(channel.clone(), c);
                pubs.insert(channel, Pub { id, seed, keys: vec![key], next_seq: 1, content });
            }
            "announce" => {
                let p = pubs.get_mut(&channel).ok_or("channel")?;
                let body = hexv(field(e, "body")?)?;
                let ct = u64_field(e, "content_type")? as u8;
                let seq = p.next_seq;
                p.next_seq += 1;
                let (inner, signed, sig) = announcement(&p.seed, &p.id, seq, now, ct, &body);
                let mut v = json!({"object": objects.len(), "event": i, "kind": "announcement", "seq": seq,
                    "timestamp": now, "signed": hv(&signed), "signature": hv(&sig)});
                let bytes = match p.content.as_mut() {
                    None => inner,
                    Some((key_id, ck, iteration)) => {
                        let (mk, next) = kdf_ck(ck)?;
                        let (key, nonce) = aead_keys(&mk, CHANNEL_MESSAGE_KEYS)?;
                        let header =
                            [&[0x32, 0x01][..], &p.id, &key_id.to_be_bytes(), &iteration.to_be_bytes()].concat();
                        let padded = prim::pad(&inner, 64);
                        let ciphertext = prim::aes_gcm_siv_seal(&key, &nonce, &header, &padded)?;
                        v["kind"] = json!("restricted_announcement");
                        v["inner"] = hv(&inner);
                        v["key_id"] = json!(*key_id);
                        v["iteration"] = json!(*iteration);
                        v["chain_key"] = hv(ck);
                        v["message_key"] = hv(&mk);
                        v["aes_key"] = hv(&key);
                        v["nonce"] = hv(&nonce);
                        v["padded"] = hv(&padded);
                        v["aad"] = hv(&header);
                        v["ciphertext"] = hv(&ciphertext);
                        *ck = next;
                        *iteration += 1;
                        [header, ciphertext].concat()
                    }
                };
                inter_objects.push(v);
                objects.push(bytes);
            }
            "rotate_key" => {
                let p = pubs.get_mut(&channel).ok_or("channel")?;
                let old_key = prim::ed25519_public(&p.seed);
                let new_seed = loop {
                    let s = a32(&draws.next("agency", 32, "new channel key seed")?)?;
                    if prim::ed25519_public(&s) != old_key {
                        break s;
                    }
                };
                let new_key = prim::ed25519_public(&new_seed);
                if let Some((kid, _, _)) = p.content {
                    let (id, ck) = content_key(&mut draws, Some(kid))?;
                    p.content = Some((id, ck, 0));
                }
                let seq = p.next_seq;
                p.next_seq += 1;
                let body =
                    [&[0x31, 0x01][..], &p.id, &seq.to_be_bytes(), &now.to_be_bytes(), &old_key, &new_key].concat();
                let old_signed = [SIG_ROTATION, &body].concat();
                let old_sig = prim::ed25519_sign(&p.seed, &old_signed);
                let with_old = [body, old_sig.to_vec()].concat();
                let new_signed = [SIG_ROTATION, &with_old].concat();
                let new_sig = prim::ed25519_sign(&new_seed, &new_signed);
                inter_objects.push(json!({"object": objects.len(), "event": i, "kind": "key_rotation", "seq": seq,
                    "new_channel_key_seed": hv(&new_seed), "old_signed": hv(&old_signed), "old_signature": hv(&old_sig),
                    "new_signed": hv(&new_signed), "new_signature": hv(&new_sig)}));
                objects.push([with_old, new_sig.to_vec()].concat());
                p.seed = new_seed;
                p.keys.push(new_key);
            }
            "rotate_content_key" => {
                let p = pubs.get_mut(&channel).ok_or("channel")?;
                let (kid, _, _) = p.content.ok_or("public channel")?;
                let (id, ck) = content_key(&mut draws, Some(kid))?;
                p.content = Some((id, ck, 0));
                created
                    .get_mut(&channel)
                    .ok_or("channel")?
                    .as_object_mut()
                    .ok_or("channel")?
                    .insert("rotated_content_keys".into(), json!([{"event": i, "key_id": id, "chain_key": hv(&ck)}]));
            }
            "send_key" => {
                let p = pubs.get(&channel).ok_or("channel")?;
                let (kid, ck, it) = p.content.ok_or("public channel")?;
                let body = [
                    &[0x33, 0x01][..],
                    &p.id,
                    &kid.to_be_bytes(),
                    &it.to_be_bytes(),
                    &ck,
                    &prim::ed25519_public(&p.seed),
                ]
                .concat();
                let signed = [SIG_CHANNEL_KEY, &body].concat();
                let sig = prim::ed25519_sign(&p.seed, &signed);
                let bytes = [body, sig.to_vec()].concat();
                for to in arr(e, "to")? {
                    let to = to.as_str().ok_or("to")?.to_owned();
                    subs.get_mut(&(channel.clone(), to)).ok_or("subscriber")?.accept_key(&bytes)?;
                }
                inter_objects.push(json!({"object": objects.len(), "event": i, "kind": "key_distribution",
                    "key_id": kid, "iteration": it, "chain_key": hv(&ck), "signed": hv(&signed), "signature": hv(&sig)}));
                objects.push(bytes);
            }
            "forge" => {
                let o = object(&objects)?;
                let seed = a32(&hexv(field(e, "seed")?)?)?;
                let seq = u64_field(e, "seq")?;
                let (_, _, n) = ann_fields(&o)?;
                let (bytes, signed, sig) = announcement(
                    &seed,
                    &a32(&o[2..34])?,
                    seq,
                    u64::from_be_bytes(o[42..50].try_into().map_err(|_| "ts")?),
                    o[50],
                    &o[55..55 + n],
                );
                inter_objects.push(json!({"object": objects.len(), "event": i, "kind": "forged_announcement",
                    "forger_public": hv(&prim::ed25519_public(&seed)), "signed": hv(&signed), "signature": hv(&sig)}));
                objects.push(bytes);
            }
            "flip" => {
                let mut o = object(&objects)?;
                let at = e.get("at").and_then(Value::as_u64).map_or(o.len() - 1, |a| a as usize);
                *o.get_mut(at).ok_or("flip offset")? ^= 0x01;
                inter_objects.push(json!({"object": objects.len(), "event": i, "kind": "flipped", "offset": at}));
                objects.push(o);
            }
            "deliver" => {
                let o = object(&objects)?;
                let to = str_field(e, "to")?.to_owned();
                let s = subs.get_mut(&(channel, to)).ok_or("subscriber")?;
                results.push(json!({"event": i, "result": result_json(s.receive(&o, now))}));
            }
            "verify" => {
                let o = object(&objects)?;
                let k = field(e, "key")?;
                let key = if let Some(f) = k.get("forger").and_then(Value::as_u64) {
                    let ev = events.get(f as usize).ok_or("forger event")?;
                    prim::ed25519_public(&a32(&hexv(field(ev, "seed")?)?)?)
                } else {
                    let p = pubs.get(str_field(k, "channel")?).ok_or("key channel")?;
                    *p.keys.get(u64_field(k, "key")? as usize).ok_or("key index")?
                };
                // 13.6: decode, signer is the agency key, strict signature.
                let r = (|| {
                    let (seq, _, n) = ann_fields(&o).map_err(|_| ("Decode", "Malformed"))?;
                    if o[55 + n..87 + n] != key {
                        return refused("WrongSigner");
                    }
                    if !prim::ed25519_verify(&key, &[SIG_ANNOUNCEMENT, &o[..87 + n]].concat(), &o[87 + n..]) {
                        return refused("BadSignature");
                    }
                    Ok(json!({"accepted": "announcement", "seq": seq, "body": hv(&o[55..55 + n])}))
                })();
                results.push(json!({"event": i, "result": result_json(r)}));
            }
            op => return Err(format!("unknown channel op {op}")),
        }
    }
    draws.check_all_used()?;
    let mut channels = Map::new();
    for (name, p) in &pubs {
        channels.insert(
            name.clone(),
            json!({"channel_id": hv(&p.id), "channel_keys": p.keys.iter().map(|k| hv(k)).collect::<Vec<_>>()}),
        );
    }
    let inter = json!({"channels": created, "objects": inter_objects});
    let outputs = json!({
        "channels": channels,
        "objects": objects.iter().map(|o| hv(o)).collect::<Vec<_>>(),
        "results": results,
    });
    Ok((inter, outputs))
}
