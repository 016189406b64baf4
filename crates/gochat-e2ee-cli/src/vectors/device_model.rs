//! The independent model of whole devices, for the scripted vectors ([`super::scripts`]).
//!
//! It re-implements, with the raw primitives only and following `docs/protocol.md`, what
//! the scripts exercise: accounts (prekey pools, bundles, consumption, last-resort use
//! records), PQXDH on both sides, session records with archived sessions and the
//! simultaneous-start rule, the Double Ratchet with its bounded state (skipped keys,
//! receiving chains, dropped-chain records, evicted ranges, sender epochs), pinned
//! identities, and the state encoding of protocol.md 8.1 inside snapshots. It never
//! calls the library. It reads only the file's `inputs` and predicts every output.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Map, Value};

use super::model::{
    a32, device_keys, identity_encoding, kdf_rk, keys_json, signed, DeviceKeys, Draws, FINGERPRINT, MESSAGE_DIGEST,
    MESSAGE_KEYS, PAD_BLOCK, PQXDH, SIG_OPK, SIG_PQ, SIG_SPK, SNAPSHOT,
};
use super::prim::{self, x25519, x25519_public};
use super::{arr, field, hex_field, hv, str_field, u64_field};

const LAST_RESORT_USE: &[u8] = b"GoChat-E2EE v1 last-resort use";
const MAX_FORWARD_JUMP: u32 = 25_000;
const MAX_ARCHIVED_FORWARD_JUMP: u32 = 250;
const MAX_SKIPPED_KEYS: usize = 2_000;
const MAX_RECEIVER_CHAINS: usize = 5;
const MAX_DROPPED_CHAINS: usize = 64;
const MAX_EVICTED_RANGES: usize = 32;
const MAX_ARCHIVED_SESSIONS: usize = 40;
const RETRY_WINDOW: usize = 64;
/// Uses of the current last-resort prekey after which it would be retired (not modelled).
const MAX_LAST_RESORT_USES: usize = 4_096;

/// Why a step did not succeed: a refusal the protocol specifies (error code and the rule
/// that decided it), or a problem of the model or the script.
enum Fail {
    Refused(&'static str, &'static str),
    Model(String),
}

impl From<String> for Fail {
    fn from(e: String) -> Self {
        Fail::Model(e)
    }
}

impl From<&str> for Fail {
    fn from(e: &str) -> Self {
        Fail::Model(e.to_owned())
    }
}

type R<T> = Result<T, Fail>;

fn refused<T>(code: &'static str, by: &'static str) -> R<T> {
    Err(Fail::Refused(code, by))
}

fn model_err(e: Fail) -> String {
    match e {
        Fail::Model(m) => m,
        Fail::Refused(code, by) => format!("unexpected refusal {code} ({by})"),
    }
}

fn dh(private: &[u8; 32], public: &[u8; 32]) -> R<[u8; 32]> {
    let out = x25519(private, public);
    if out == [0; 32] {
        return refused("NonContributory", "all-zero X25519 output");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Accounts.

#[derive(Clone)]
struct SignedPreKey {
    private: [u8; 32],
    id: u32,
    created_at: u64,
    public: [u8; 32],
    signature: [u8; 64],
}

impl SignedPreKey {
    fn fields(&self) -> Vec<u8> {
        [&self.id.to_be_bytes()[..], &self.created_at.to_be_bytes(), &self.public, &self.signature].concat()
    }
}

#[derive(Clone)]
struct OneTime {
    private: [u8; 32],
    id: u32,
    public: [u8; 32],
    signature: [u8; 64],
    /// Handed out in a bundle (`Issue` 0x01: not yet stamped by `expire_prekeys`).
    issued: bool,
}

impl OneTime {
    fn fields(&self) -> Vec<u8> {
        [&self.id.to_be_bytes()[..], &self.public, &self.signature].concat()
    }
}

#[derive(Clone)]
struct Pq {
    seed: [u8; 64],
    id: u32,
    kind: u8,
    created_at: u64,
    ek: Vec<u8>,
    signature: [u8; 64],
    issued: bool,
}

impl Pq {
    fn fields(&self) -> Vec<u8> {
        [&self.id.to_be_bytes()[..], &[self.kind], &self.created_at.to_be_bytes(), &self.ek, &self.signature].concat()
    }
}

#[derive(Clone)]
struct Account {
    ed_seed: [u8; 32],
    x_private: [u8; 32],
    identity: Vec<u8>,
    spk: SignedPreKey,
    next_signed_id: u32,
    one_time: BTreeMap<u32, OneTime>,
    next_one_time_id: u32,
    pq: BTreeMap<u32, Pq>,
    last_resort: Pq,
    next_pq_id: u32,
    /// Use records of the current last-resort prekey, in ascending byte order.
    uses: BTreeSet<[u8; 32]>,
}

fn pq_key(k: &DeviceKeys, id: u32, kind: u8, seed: [u8; 64], now: u64) -> Pq {
    let ek = prim::mlkem_public(&seed);
    let data = [&k.identity[..], &id.to_be_bytes(), &[kind], &now.to_be_bytes(), &ek].concat();
    let (_, signature) = signed(&k.ed_seed, SIG_PQ, &data);
    Pq { seed, id, kind, created_at: now, ek, signature, issued: false }
}

impl Account {
    /// The account right after `Device::new` and the one-time prekey generation.
    fn new(k: &DeviceKeys, now: u64) -> Self {
        let spk_data = [&k.identity[..], &1u32.to_be_bytes(), &now.to_be_bytes(), &k.spk_public].concat();
        let (_, spk_sig) = signed(&k.ed_seed, SIG_SPK, &spk_data);
        let one_time: BTreeMap<u32, OneTime> = k
            .opks
            .iter()
            .map(|(id, private)| {
                let public = x25519_public(private);
                let data = [&k.identity[..], &id.to_be_bytes(), &public].concat();
                let (_, signature) = signed(&k.ed_seed, SIG_OPK, &data);
                (*id, OneTime { private: *private, id: *id, public, signature, issued: false })
            })
            .collect();
        let pq: BTreeMap<u32, Pq> =
            k.pq_one_time.iter().map(|(id, seed)| (*id, pq_key(k, *id, 0, *seed, now))).collect();
        Account {
            ed_seed: k.ed_seed,
            x_private: k.x_private,
            identity: k.identity.clone(),
            spk: SignedPreKey {
                private: k.spk_private,
                id: 1,
                created_at: now,
                public: k.spk_public,
                signature: spk_sig,
            },
            next_signed_id: 2,
            next_one_time_id: 1 + one_time.len() as u32,
            one_time,
            next_pq_id: 2 + pq.len() as u32,
            pq,
            last_resort: pq_key(k, 1, 1, k.last_resort_seed, now),
            uses: BTreeSet::new(),
        }
    }
}

/// A published bundle, as the model keeps it.
struct Bundle {
    identity: Vec<u8>,
    spk_id: u32,
    spk_public: [u8; 32],
    opk: Option<(u32, [u8; 32])>,
    pq_id: u32,
    pq_seed: [u8; 64],
}

/// `next_bundle`: the lowest-id one-time keys not yet handed out (each pool on its own),
/// else no one-time X25519 prekey / the last-resort ML-KEM prekey.
fn next_bundle(a: &mut Account) -> (Bundle, Vec<u8>, Vec<Value>) {
    let ik = a.identity.clone();
    let mut records = Vec::new();
    let spk_data = [&ik[..], &a.spk.id.to_be_bytes(), &a.spk.created_at.to_be_bytes(), &a.spk.public].concat();
    let (msg, _) = signed(&a.ed_seed, SIG_SPK, &spk_data);
    records.push(
        json!({"record": "signed prekey", "id": a.spk.id, "signed_bytes": hv(&msg), "signature": hv(&a.spk.signature)}),
    );
    let mut bytes = [&[0x02, 0x01][..], &ik, &a.spk.fields()].concat();
    let opk = a.one_time.values_mut().find(|k| !k.issued).map(|k| {
        k.issued = true;
        k.clone()
    });
    bytes.push(u8::from(opk.is_some()));
    if let Some(k) = &opk {
        let (msg, _) = signed(&a.ed_seed, SIG_OPK, &[&ik[..], &k.id.to_be_bytes(), &k.public].concat());
        records.push(
            json!({"record": "one-time prekey", "id": k.id, "signed_bytes": hv(&msg), "signature": hv(&k.signature)}),
        );
        bytes.extend_from_slice(&k.fields());
    }
    let pq =
        a.pq.values_mut()
            .find(|k| !k.issued)
            .map(|k| {
                k.issued = true;
                k.clone()
            })
            .unwrap_or_else(|| a.last_resort.clone());
    let data = [&ik[..], &pq.id.to_be_bytes(), &[pq.kind], &pq.created_at.to_be_bytes(), &pq.ek].concat();
    let (msg, _) = signed(&a.ed_seed, SIG_PQ, &data);
    let record = if pq.kind == 0 { "one-time ML-KEM-1024 prekey" } else { "last-resort ML-KEM-1024 prekey" };
    records.push(json!({"record": record, "id": pq.id, "signed_bytes": hv(&msg), "signature": hv(&pq.signature)}));
    bytes.extend_from_slice(&pq.fields());
    let bundle = Bundle {
        identity: ik,
        spk_id: a.spk.id,
        spk_public: a.spk.public,
        opk: opk.map(|k| (k.id, k.public)),
        pq_id: pq.id,
        pq_seed: pq.seed,
    };
    (bundle, bytes, records)
}

// ---------------------------------------------------------------------------------
// Sessions and the ratchet.

#[derive(Clone)]
struct Chain {
    key: [u8; 32],
    ck: [u8; 32],
    next: u32,
    epoch: u32,
}

#[derive(Clone)]
struct Skipped {
    key: [u8; 32],
    counter: u32,
    mk: [u8; 32],
}

#[derive(Clone)]
struct Dropped {
    key: [u8; 32],
    next: u32,
    epoch: u32,
}

#[derive(Clone)]
struct Evicted {
    key: [u8; 32],
    lo: u32,
    hi: u32,
}

#[derive(Clone)]
struct Ratchet {
    root: [u8; 32],
    dhs_private: [u8; 32],
    dhs_public: [u8; 32],
    sending: Option<([u8; 32], u32)>,
    pn: u32,
    epoch: u32,
    recv: VecDeque<Chain>,
    skipped: VecDeque<Skipped>,
    dropped: VecDeque<Dropped>,
    evicted: VecDeque<Evicted>,
}

#[derive(Clone)]
struct Session {
    /// The model's number for this session (both sides' copies share it).
    sid: usize,
    remote: Vec<u8>,
    ad: Vec<u8>,
    base_key: [u8; 32],
    /// The encoded PreKeyHeader, until the first message from the peer decrypts.
    pending: Option<Vec<u8>>,
    r: Ratchet,
}

#[derive(Clone)]
struct Sent {
    digest: [u8; 32],
    recipient: Vec<u8>,
    base_key: [u8; 32],
}

#[derive(Clone, Default)]
struct Record {
    /// Current first.
    sessions: Vec<Session>,
    /// Oldest first.
    sent: VecDeque<Sent>,
}

#[derive(Clone)]
struct Dev {
    user: String,
    account: Account,
    peers: BTreeMap<String, Record>,
    /// Pinned identity per peer name (no pending identities in the scripts).
    pins: BTreeMap<String, Vec<u8>>,
}

/// The ratchet header fields a receiver uses (`previous_counter` is informational).
struct Header {
    key: [u8; 32],
    n: u32,
    e: u32,
}

struct PreKeyFields {
    initiator: Vec<u8>,
    spk_id: u32,
    opk_id: Option<u32>,
    pq_id: u32,
    base_key: [u8; 32],
    ct: Vec<u8>,
}

struct Msg {
    prekey: Option<PreKeyFields>,
    header: Header,
    prefix: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// One root-chain step of a session: `RK_out || CK = KDF_RK(RK_in, DH(private, peer_public))`.
struct RootStep {
    owner: String,
    private: [u8; 32],
    public: [u8; 32],
    peer_public: [u8; 32],
    dh: [u8; 32],
    root_in: [u8; 32],
    root_out: [u8; 32],
    chain_key: [u8; 32],
}

/// What the model records about a session for the intermediates.
struct SessionLog {
    json: Map<String, Value>,
    base_key: [u8; 32],
    sk: [u8; 32],
    /// Epoch 0 is the responder's signed prekey; `steps[k - 1]` is epoch `k`.
    spk_public: [u8; 32],
    steps: Vec<RootStep>,
}

impl SessionLog {
    fn epoch_of(&self, public: &[u8; 32]) -> Option<usize> {
        if public == &self.spk_public {
            return Some(0);
        }
        self.steps.iter().position(|s| &s.public == public).map(|i| i + 1)
    }
}

/// Derives message keys of `ck` from `from` up to `to` (exclusive), keeping the newest
/// `MAX_SKIPPED_KEYS`, then the key at `to` (6.3 steps 3, 6, 7).
struct Advanced {
    skipped: Vec<Skipped>,
    lost: Option<Evicted>,
    mk: [u8; 32],
    next_ck: [u8; 32],
}

fn advance(key: [u8; 32], mut ck: [u8; 32], from: u32, to: u32, max_jump: u32) -> R<Advanced> {
    if u64::from(to) - u64::from(from) > u64::from(max_jump) {
        return refused("TooFarAhead", "forward jump over the session's bound");
    }
    let keep_from = to.saturating_sub(MAX_SKIPPED_KEYS as u32).max(from);
    let mut skipped = Vec::new();
    for counter in from..to {
        if counter >= keep_from {
            skipped.push(Skipped { key, counter, mk: prim::hmac(&ck, &[0x01])? });
        }
        ck = prim::hmac(&ck, &[0x02])?;
    }
    let mk = prim::hmac(&ck, &[0x01])?;
    let next_ck = prim::hmac(&ck, &[0x02])?;
    let lost = (keep_from > from).then_some(Evicted { key, lo: from, hi: keep_from });
    Ok(Advanced { skipped, lost, mk, next_ck })
}

enum Stage {
    Skipped(usize),
    Chain { index: usize, adv: Advanced },
    Dh { root: [u8; 32], adv: Advanced },
}

impl Ratchet {
    fn knows(&self, key: &[u8; 32]) -> bool {
        self.recv.iter().any(|c| &c.key == key)
            || self.skipped.iter().any(|k| &k.key == key)
            || self.dropped.iter().any(|d| &d.key == key)
            || self.evicted.iter().any(|e| &e.key == key)
    }

    /// A counter below a chain's next counter that has no skipped key.
    fn used_counter(&self, h: &Header, chain_epoch: u32, by: &'static str) -> Fail {
        if self.evicted.iter().any(|e| e.key == h.key && (e.lo..e.hi).contains(&h.n)) {
            Fail::Refused("MessageLost", by)
        } else if h.e > chain_epoch {
            Fail::Refused("CounterReused", by)
        } else {
            Fail::Refused("Duplicate", by)
        }
    }

    /// Steps 1-6 of protocol.md 6.3, from the header alone.
    fn stage(&self, h: &Header, max_jump: u32) -> R<(Stage, [u8; 32])> {
        if let Some(i) = self.skipped.iter().position(|k| k.key == h.key && k.counter == h.n) {
            let mk = self.skipped.get(i).map(|k| k.mk).ok_or("skipped key")?;
            return Ok((Stage::Skipped(i), mk));
        }
        if h.n == u32::MAX {
            return refused("ChainExhausted", "counter 2^32 - 1");
        }
        if let Some(index) = self.recv.iter().position(|c| c.key == h.key) {
            let c = self.recv.get(index).ok_or("chain")?;
            if h.n < c.next {
                return Err(self.used_counter(h, c.epoch, "receiving chain: counter already used"));
            }
            let adv = advance(c.key, c.ck, c.next, h.n, max_jump)?;
            let mk = adv.mk;
            return Ok((Stage::Chain { index, adv }, mk));
        }
        if let Some(d) = self.dropped.iter().find(|d| d.key == h.key) {
            if h.n < d.next {
                return Err(self.used_counter(h, d.epoch, "dropped-chain record: counter already used"));
            }
            return refused("MessageLost", "dropped-chain record: the chain key is gone");
        }
        if self.evicted.iter().any(|e| e.key == h.key) {
            return refused("MessageLost", "evicted range: the chain is gone");
        }
        if h.n > max_jump {
            return refused("TooFarAhead", "new ratchet key: counter over the session's bound");
        }
        let (root, ck) = kdf_rk(&self.root, &dh(&self.dhs_private, &h.key)?)?;
        let adv = advance(h.key, ck, 0, h.n, max_jump)?;
        let mk = adv.mk;
        Ok((Stage::Dh { root, adv }, mk))
    }

    fn push_evicted(&mut self, range: Evicted) {
        if let Some(last) = self.evicted.back_mut() {
            if last.key == range.key && last.hi == range.lo {
                last.hi = range.hi;
                return;
            }
        }
        self.evicted.push_back(range);
        while self.evicted.len() > MAX_EVICTED_RANGES {
            self.evicted.pop_front();
        }
    }

    fn push_skipped(&mut self, keys: Vec<Skipped>, lost: Option<Evicted>) {
        if let Some(l) = lost {
            self.push_evicted(l);
        }
        self.skipped.extend(keys);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            if let Some(k) = self.skipped.pop_front() {
                self.push_evicted(Evicted { key: k.key, lo: k.counter, hi: k.counter + 1 });
            }
        }
    }
}

fn unpad(padded: &[u8]) -> R<Vec<u8>> {
    let end = padded.iter().rposition(|b| *b != 0);
    match end {
        Some(end) if padded.get(end) == Some(&0x80) && padded.len() - end <= PAD_BLOCK => {
            Ok(padded.get(..end).ok_or("unpad")?.to_vec())
        }
        _ => refused("InvalidPadding", "padding"),
    }
}

/// The AEAD key and nonce of a message key for a sender epoch (6.2), and the HKDF info.
struct MessageKeys {
    key: [u8; 32],
    nonce: [u8; 12],
    info: Vec<u8>,
}

fn message_aead(mk: &[u8; 32], epoch: u32) -> Result<MessageKeys, String> {
    let info = [MESSAGE_KEYS, &epoch.to_be_bytes()].concat();
    let okm = prim::hkdf(&[0; 32], mk, &info, 44)?;
    let key = a32(okm.get(..32).ok_or("okm")?)?;
    let nonce: [u8; 12] = okm.get(32..).and_then(|n| n.try_into().ok()).ok_or("nonce")?;
    Ok(MessageKeys { key, nonce, info })
}

/// Who is decrypting, for the draws and the root-chain log.
struct Ctx<'a> {
    device: &'a str,
    draws: &'a mut Draws,
    logs: &'a mut [SessionLog],
}

/// How a message was decrypted on one session.
struct Opened {
    kind: &'static str,
    stored: Vec<u32>,
    plaintext: Vec<u8>,
}

/// Decrypts `m` on session `s` with forward-jump bound `max_jump`; `s` changes only on success.
fn session_decrypt(s: &mut Session, m: &Msg, max_jump: u32, ctx: &mut Ctx<'_>) -> R<Opened> {
    let (stage, mk) = s.r.stage(&m.header, max_jump)?;
    let MessageKeys { key, nonce, .. } = message_aead(&mk, m.header.e)?;
    let aad = [&s.ad[..], &m.prefix].concat();
    let padded = prim::aes_gcm_siv_open(&key, &nonce, &aad, &m.ciphertext)
        .ok_or(Fail::Refused("AuthenticationFailed", "AEAD tag"))?;
    let plaintext = unpad(&padded)?;
    let h = &m.header;
    let r = &mut s.r;
    let (kind, stored) = match stage {
        Stage::Skipped(i) => {
            r.skipped.remove(i);
            ("skipped_key", Vec::new())
        }
        Stage::Chain { index, adv } => {
            let c = r.recv.get_mut(index).ok_or("chain")?;
            c.ck = adv.next_ck;
            c.next = h.n + 1;
            c.epoch = c.epoch.max(h.e);
            let stored = adv.skipped.iter().map(|k| k.counter).collect();
            r.push_skipped(adv.skipped, adv.lost);
            ("same_chain", stored)
        }
        Stage::Dh { root, adv } => {
            let log = ctx.logs.get_mut(s.sid).ok_or("session log")?;
            // The receiving half must be the step the sender made with this key.
            let step = log
                .steps
                .iter()
                .find(|st| st.public == h.key)
                .ok_or("model: a new ratchet key outside the session's root chain")?;
            let recv_ck = kdf_rk(&r.root, &dh(&r.dhs_private, &h.key)?)?.1;
            if step.root_out != root || step.chain_key != recv_ck || step.root_in != r.root {
                return Err("model: the two sides of a root-chain step differ".into());
            }
            let private = a32(&ctx.draws.next(ctx.device, 32, "new ratchet key (DH step)")?)?;
            let send_dh = dh(&private, &h.key)?;
            let (root2, send_ck) = kdf_rk(&root, &send_dh)?;
            if x25519(&step.private, &x25519_public(&private)) != send_dh {
                return Err("model: ratchet DH differs between the two sides".into());
            }
            log.steps.push(RootStep {
                owner: ctx.device.to_owned(),
                private,
                public: x25519_public(&private),
                peer_public: h.key,
                dh: send_dh,
                root_in: root,
                root_out: root2,
                chain_key: send_ck,
            });
            r.root = root2;
            r.pn = r.sending.map_or(0, |(_, n)| n);
            r.dhs_private = private;
            r.dhs_public = x25519_public(&private);
            r.sending = Some((send_ck, 0));
            r.recv.push_back(Chain { key: h.key, ck: adv.next_ck, next: h.n + 1, epoch: h.e });
            while r.recv.len() > MAX_RECEIVER_CHAINS {
                if let Some(c) = r.recv.pop_front() {
                    r.dropped.push_back(Dropped { key: c.key, next: c.next, epoch: c.epoch });
                }
            }
            while r.dropped.len() > MAX_DROPPED_CHAINS {
                r.dropped.pop_front();
            }
            let stored = adv.skipped.iter().map(|k| k.counter).collect();
            r.push_skipped(adv.skipped, adv.lost);
            ("dh_ratchet_step", stored)
        }
    };
    s.pending = None;
    Ok(Opened { kind, stored, plaintext })
}

fn max_jump(position: usize) -> u32 {
    if position == 0 {
        MAX_FORWARD_JUMP
    } else {
        MAX_ARCHIVED_FORWARD_JUMP
    }
}

fn truncate(rec: &mut Record) {
    rec.sessions.truncate(1 + MAX_ARCHIVED_SESSIONS);
}

/// Pins on first contact; any other identity than the pinned one is not modelled.
fn classify(dev: &mut Dev, peer: &str, identity: &[u8]) -> R<&'static str> {
    match dev.pins.get(peer) {
        None => {
            dev.pins.insert(peer.to_owned(), identity.to_vec());
            Ok("New")
        }
        Some(p) if p == identity => Ok("Same"),
        Some(_) => Err("model: identity changes are not modelled".into()),
    }
}

/// Notes in a delivery's details which session (and record position) decrypted it, and how.
fn opened(d: &mut Map<String, Value>, s: &Session, position: usize, o: &Opened) {
    d.insert("session".into(), json!(s.sid));
    d.insert("position".into(), json!(position));
    d.insert("kind".into(), json!(o.kind));
    d.insert("stores_skipped_keys_for_counters".into(), json!(o.stored));
}

/// A delivery's result and what the model saw on the way (for `deliveries[]`).
struct Delivery {
    details: Map<String, Value>,
    result: R<(Vec<u8>, &'static str)>,
}

fn deliver(dev: &mut Dev, peer: &str, m: &Msg, ctx: &mut Ctx<'_>) -> Delivery {
    let mut details = Map::new();
    let result = deliver_inner(dev, peer, m, ctx, &mut details);
    Delivery { details, result }
}

fn deliver_inner(
    dev: &mut Dev,
    peer: &str,
    m: &Msg,
    ctx: &mut Ctx<'_>,
    d: &mut Map<String, Value>,
) -> R<(Vec<u8>, &'static str)> {
    let Some(h) = &m.prekey else {
        d.insert("path".into(), json!("ratchet message"));
        let rec = dev.peers.get_mut(peer).ok_or(Fail::Refused("NoSession", "no record"))?;
        if rec.sessions.is_empty() {
            return refused("NoSession", "no session");
        }
        let (position, o) = if let Some(i) = rec.sessions.iter().position(|s| s.r.knows(&m.header.key)) {
            d.insert("tried".into(), json!("the session that knows the ratchet key"));
            let mut s = rec.sessions.get(i).ok_or("session")?.clone();
            let o = session_decrypt(&mut s, m, max_jump(i), ctx)?;
            opened(d, &s, i, &o);
            *rec.sessions.get_mut(i).ok_or("session")? = s;
            (i, o)
        } else {
            d.insert("tried".into(), json!("a DH ratchet step on each session, current first"));
            let mut attempts = Vec::new();
            let mut first_err = None;
            let mut done = None;
            for i in 0..rec.sessions.len() {
                let mut s = rec.sessions.get(i).ok_or("session")?.clone();
                match session_decrypt(&mut s, m, max_jump(i), ctx) {
                    Ok(o) => {
                        attempts.push(json!({"session": s.sid, "position": i, "result": "ok"}));
                        opened(d, &s, i, &o);
                        *rec.sessions.get_mut(i).ok_or("session")? = s;
                        done = Some((i, o));
                        break;
                    }
                    Err(Fail::Refused(code, by)) => {
                        attempts.push(json!({"session": s.sid, "position": i, "result": code}));
                        first_err.get_or_insert((code, by));
                    }
                    Err(e) => return Err(e),
                }
            }
            d.insert("attempts".into(), Value::Array(attempts));
            match done {
                Some(x) => x,
                None => {
                    let (code, by) = first_err.unwrap_or(("AuthenticationFailed", "no session"));
                    return refused(code, by);
                }
            }
        };
        let sender = rec.sessions.get(position).ok_or("session")?.remote.clone();
        let event = classify(dev, peer, &sender)?;
        // The identity is the pinned one: a session that decrypts becomes current.
        let rec = dev.peers.get_mut(peer).ok_or("record")?;
        if position > 0 {
            let s = rec.sessions.remove(position);
            rec.sessions.insert(0, s);
        }
        return Ok((o.plaintext, event));
    };
    // A prekey message: a stored session with this base key, else a new session.
    if let Some(rec) = dev.peers.get_mut(peer) {
        if let Some(i) = rec.sessions.iter().position(|s| s.base_key == h.base_key) {
            d.insert("path".into(), json!("prekey message, stored session (base key match)"));
            let mut s = rec.sessions.get(i).ok_or("session")?.clone();
            let o = session_decrypt(&mut s, m, max_jump(i), ctx)?;
            opened(d, &s, i, &o);
            let sender = s.remote.clone();
            *rec.sessions.get_mut(i).ok_or("session")? = s;
            let event = classify(dev, peer, &sender)?;
            return Ok((o.plaintext, event));
        }
    }
    d.insert("path".into(), json!("prekey message, new session"));
    let a = &dev.account;
    if h.spk_id != a.spk.id {
        return refused("UnknownSignedPreKey", "signed prekey id");
    }
    let opk = match h.opk_id {
        None => None,
        Some(id) => match a.one_time.get(&id) {
            Some(k) => Some(k.private),
            None if id != 0 && id < a.next_one_time_id => return refused("OneTimePreKeyReused", "one-time prekey id"),
            None => return refused("UnknownOneTimePreKey", "one-time prekey id"),
        },
    };
    let mut use_record = None;
    let pq_seed = if let Some(k) = a.pq.get(&h.pq_id) {
        k.seed
    } else if a.last_resort.id == h.pq_id {
        let w = [&h.spk_id.to_be_bytes()[..], &h.opk_id.unwrap_or(0).to_be_bytes(), &h.pq_id.to_be_bytes()].concat();
        let record = prim::sha256(&[LAST_RESORT_USE, &w, &h.base_key]);
        if a.uses.contains(&record) {
            return refused("LastResortReplay", "last-resort use record");
        }
        if a.uses.len() + 1 >= MAX_LAST_RESORT_USES {
            return Err("model: last-resort retirement is not modelled".into());
        }
        use_record = Some(record);
        a.last_resort.seed
    } else if h.pq_id != 0 && h.pq_id < a.next_pq_id {
        return refused("PqPreKeyReused", "PQ prekey id");
    } else {
        return refused("UnknownPqPreKey", "PQ prekey id");
    };
    if h.initiator == a.identity {
        return refused("SelfSession", "own identity");
    }
    let ik_a_dh = a32(h.initiator.get(34..66).ok_or("identity")?)?;
    let mut ikm = vec![0xFF; 32];
    ikm.extend_from_slice(&dh(&a.spk.private, &ik_a_dh)?);
    ikm.extend_from_slice(&dh(&a.x_private, &h.base_key)?);
    ikm.extend_from_slice(&dh(&a.spk.private, &h.base_key)?);
    if let Some(o) = &opk {
        ikm.extend_from_slice(&dh(o, &h.base_key)?);
    }
    ikm.extend_from_slice(&prim::mlkem_decapsulate(&pq_seed, &h.ct)?);
    let sk = a32(&prim::hkdf(&[0; 32], &ikm, PQXDH, 32)?)?;
    let sid = ctx.logs.iter().position(|l| l.base_key == h.base_key).ok_or("model: unknown base key")?;
    if ctx.logs.get(sid).map(|l| l.sk) != Some(sk) {
        return Err("model: the responder's session secret differs from the initiator's".into());
    }
    let mut s = Session {
        sid,
        remote: h.initiator.clone(),
        ad: [&h.initiator[..], &a.identity].concat(),
        base_key: h.base_key,
        pending: None,
        r: Ratchet {
            root: sk,
            dhs_private: a.spk.private,
            dhs_public: a.spk.public,
            sending: None,
            pn: 0,
            epoch: 0,
            recv: VecDeque::new(),
            skipped: VecDeque::new(),
            dropped: VecDeque::new(),
            evicted: VecDeque::new(),
        },
    };
    let o = session_decrypt(&mut s, m, MAX_FORWARD_JUMP, ctx)?;
    // Commit: the one-time prekeys are deleted, the last-resort use is recorded.
    let a = &mut dev.account;
    if let Some(id) = h.opk_id {
        a.one_time.remove(&id);
    }
    a.pq.remove(&h.pq_id);
    if let Some(r) = use_record {
        a.uses.insert(r);
    }
    let event = classify(dev, peer, &h.initiator)?;
    let rec = dev.peers.entry(peer.to_owned()).or_default();
    let keep_current = rec
        .sessions
        .first()
        .is_some_and(|cur| cur.pending.is_some() && cur.remote == s.remote && cur.base_key < s.base_key);
    let at = usize::from(keep_current);
    d.insert("session".into(), json!(sid));
    d.insert("kind".into(), json!(o.kind));
    d.insert("stores_skipped_keys_for_counters".into(), json!(o.stored));
    d.insert(
        "inserted".into(),
        json!(if keep_current {
            "archived: the current session is our unanswered session with the same identity and a lower base key"
        } else {
            "current"
        }),
    );
    rec.sessions.insert(at, s);
    truncate(rec);
    Ok((o.plaintext, event))
}

// ---------------------------------------------------------------------------------
// The state encoding (protocol.md 8.1).

struct Enc {
    bytes: Vec<u8>,
    fields: Option<Vec<Value>>,
}

impl Enc {
    fn new(named: bool) -> Self {
        Enc { bytes: Vec::new(), fields: named.then(Vec::new) }
    }

    fn put(&mut self, name: impl FnOnce() -> String, b: &[u8]) {
        self.bytes.extend_from_slice(b);
        if let Some(f) = &mut self.fields {
            f.push(json!({"field": name(), "value": hv(b)}));
        }
    }

    fn u32(&mut self, name: impl FnOnce() -> String, v: u32) {
        self.put(name, &v.to_be_bytes());
    }

    fn count(&mut self, name: impl FnOnce() -> String, n: usize) -> Result<(), String> {
        self.u32(name, u32::try_from(n).map_err(|_| "count")?);
        Ok(())
    }
}

fn encode_record(e: &mut Enc, p: &str, rec: &Record) -> Result<(), String> {
    e.count(|| format!("{p}sessions.count"), rec.sessions.len())?;
    for (i, s) in rec.sessions.iter().enumerate() {
        let q = format!("{p}sessions[{i}].");
        let r = &s.r;
        e.put(|| format!("{q}remote_identity"), &s.remote);
        e.put(|| format!("{q}ratchet.root_key"), &r.root);
        e.put(|| format!("{q}ratchet.dhs_private"), &r.dhs_private);
        e.put(|| format!("{q}ratchet.dhs_public"), &r.dhs_public);
        e.put(|| format!("{q}ratchet.sending_flag"), &[u8::from(r.sending.is_some())]);
        if let Some((ck, n)) = &r.sending {
            e.put(|| format!("{q}ratchet.sending_chain_key"), ck);
            e.u32(|| format!("{q}ratchet.sending_counter"), *n);
        }
        e.u32(|| format!("{q}ratchet.previous_counter"), r.pn);
        e.u32(|| format!("{q}ratchet.sender_epoch"), r.epoch);
        e.count(|| format!("{q}ratchet.receiving_chains.count"), r.recv.len())?;
        for (j, c) in r.recv.iter().enumerate() {
            e.put(|| format!("{q}ratchet.receiving_chains[{j}].ratchet_key"), &c.key);
            e.put(|| format!("{q}ratchet.receiving_chains[{j}].chain_key"), &c.ck);
            e.u32(|| format!("{q}ratchet.receiving_chains[{j}].next_counter"), c.next);
            e.u32(|| format!("{q}ratchet.receiving_chains[{j}].epoch"), c.epoch);
        }
        e.count(|| format!("{q}ratchet.skipped_keys.count"), r.skipped.len())?;
        for (j, k) in r.skipped.iter().enumerate() {
            e.put(|| format!("{q}ratchet.skipped_keys[{j}].ratchet_key"), &k.key);
            e.u32(|| format!("{q}ratchet.skipped_keys[{j}].counter"), k.counter);
            e.put(|| format!("{q}ratchet.skipped_keys[{j}].message_key"), &k.mk);
        }
        e.count(|| format!("{q}ratchet.dropped_chains.count"), r.dropped.len())?;
        for (j, d) in r.dropped.iter().enumerate() {
            e.put(|| format!("{q}ratchet.dropped_chains[{j}].ratchet_key"), &d.key);
            e.u32(|| format!("{q}ratchet.dropped_chains[{j}].next_counter"), d.next);
            e.u32(|| format!("{q}ratchet.dropped_chains[{j}].epoch"), d.epoch);
        }
        e.count(|| format!("{q}ratchet.evicted_ranges.count"), r.evicted.len())?;
        for (j, v) in r.evicted.iter().enumerate() {
            e.put(|| format!("{q}ratchet.evicted_ranges[{j}].ratchet_key"), &v.key);
            e.u32(|| format!("{q}ratchet.evicted_ranges[{j}].lo"), v.lo);
            e.u32(|| format!("{q}ratchet.evicted_ranges[{j}].hi"), v.hi);
        }
        e.put(|| format!("{q}associated_data"), &s.ad);
        e.put(|| format!("{q}base_key"), &s.base_key);
        e.put(|| format!("{q}pending_flag"), &[u8::from(s.pending.is_some())]);
        if let Some(ph) = &s.pending {
            e.put(|| format!("{q}pending_prekey_header"), ph);
        }
    }
    e.count(|| format!("{p}sent.count"), rec.sent.len())?;
    for (i, m) in rec.sent.iter().enumerate() {
        e.put(|| format!("{p}sent[{i}].digest"), &m.digest);
        e.put(|| format!("{p}sent[{i}].recipient_identity"), &m.recipient);
        e.put(|| format!("{p}sent[{i}].base_key"), &m.base_key);
    }
    Ok(())
}

fn encode_device(e: &mut Enc, dev: &Dev) -> Result<(), String> {
    let var = |e: &mut Enc, name: &str, b: &[u8]| -> Result<(), String> {
        e.count(|| format!("{name}.length"), b.len())?;
        e.put(|| name.to_owned(), b);
        Ok(())
    };
    var(e, "user_id", dev.user.as_bytes())?;
    let a = &dev.account;
    e.put(|| "account.identity_ed25519_seed".into(), &a.ed_seed);
    e.put(|| "account.identity_x25519_scalar".into(), &a.x_private);
    e.put(|| "account.signed_prekey.scalar".into(), &a.spk.private);
    e.put(|| "account.signed_prekey.record".into(), &a.spk.fields());
    e.count(|| "account.retired_signed_prekeys.count".into(), 0)?;
    e.u32(|| "account.next_signed_prekey_id".into(), a.next_signed_id);
    e.count(|| "account.one_time_prekeys.count".into(), a.one_time.len())?;
    for (i, k) in a.one_time.values().enumerate() {
        e.put(|| format!("account.one_time_prekeys[{i}].issue"), &[u8::from(k.issued)]);
        e.put(|| format!("account.one_time_prekeys[{i}].scalar"), &k.private);
        e.put(|| format!("account.one_time_prekeys[{i}].record"), &k.fields());
    }
    e.u32(|| "account.next_one_time_prekey_id".into(), a.next_one_time_id);
    e.count(|| "account.pq_one_time_prekeys.count".into(), a.pq.len())?;
    for (i, k) in a.pq.values().enumerate() {
        e.put(|| format!("account.pq_one_time_prekeys[{i}].issue"), &[u8::from(k.issued)]);
        e.put(|| format!("account.pq_one_time_prekeys[{i}].seed"), &k.seed);
        e.put(|| format!("account.pq_one_time_prekeys[{i}].record"), &k.fields());
    }
    e.put(|| "account.last_resort_pq_prekey.seed".into(), &a.last_resort.seed);
    e.put(|| "account.last_resort_pq_prekey.record".into(), &a.last_resort.fields());
    e.count(|| "account.retired_last_resort_pq_prekeys.count".into(), 0)?;
    e.u32(|| "account.next_pq_prekey_id".into(), a.next_pq_id);
    e.count(|| "account.last_resort_uses.count".into(), a.uses.len())?;
    for (i, u) in a.uses.iter().enumerate() {
        e.u32(|| format!("account.last_resort_uses[{i}].pq_prekey_id"), a.last_resort.id);
        e.put(|| format!("account.last_resort_uses[{i}].record"), u);
    }
    e.count(|| "peers.count".into(), dev.peers.len())?;
    for (i, (name, rec)) in dev.peers.iter().enumerate() {
        var(e, &format!("peers[{i}].name"), name.as_bytes())?;
        encode_record(e, &format!("peers[{i}].record."), rec)?;
    }
    e.put(|| "trust.policy".into(), &[0]);
    e.count(|| "trust.count".into(), dev.pins.len())?;
    for (i, (name, ik)) in dev.pins.iter().enumerate() {
        var(e, &format!("trust[{i}].name"), name.as_bytes())?;
        e.put(|| format!("trust[{i}].pinned_identity"), ik);
        e.put(|| format!("trust[{i}].pending_flag"), &[0]);
    }
    // Snapshot version 3: the groups and channels sections (empty in these scripts).
    e.count(|| "groups.count".into(), 0)?;
    e.count(|| "channels.publishers.count".into(), 0)?;
    e.count(|| "channels.subscriptions.count".into(), 0)?;
    // Snapshot version 4: the trust-anchor section (protocol 15.10; empty here).
    e.put(|| "trust_anchors.root_count".into(), &[0]);
    e.put(|| "trust_anchors.require_certificate".into(), &[0]);
    e.put(|| "trust_anchors.list_count".into(), &[0, 0]);
    // Snapshot version 4 (§15.8.5): no own address, master key or endorsement, no lists.
    e.put(|| "own_device.address_flag".into(), &[0]);
    e.put(|| "own_device.master_key_flag".into(), &[0]);
    e.put(|| "own_device.endorsement_flag".into(), &[0]);
    e.count(|| "device_lists.count".into(), 0)?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// The script.

/// The last export of a device: the whole device, or its record of the peer.
enum Export {
    Device(Box<Dev>),
    Session(Record),
}

fn bump_epochs(rec: &mut Record) {
    for s in &mut rec.sessions {
        s.r.epoch = s.r.epoch.saturating_add(1);
    }
}

fn other(device: &str) -> &'static str {
    if device == "alice" {
        "bob"
    } else {
        "alice"
    }
}

/// Runs the model on a scripted vector's `inputs`; returns the intermediates and the
/// outputs the library must have produced.
pub fn run(inputs: &Value) -> Result<(Value, Value), String> {
    let now = u64_field(inputs, "now")?;
    let mut draws = Draws::from_inputs(inputs)?;
    let mut devices: BTreeMap<String, Dev> = BTreeMap::new();
    let mut keys = Map::new();
    let mut identities = Map::new();
    // Devices are created in the order of their first rng_log entry (Bob, then Alice).
    let mut order: Vec<String> = Vec::new();
    for call in arr(inputs, "rng_log")? {
        let d = str_field(call, "device")?.to_owned();
        if !order.contains(&d) {
            order.push(d);
        }
    }
    for name in &order {
        let input = field(inputs, name)?;
        let k = device_keys(&mut draws, name, str_field(input, "user")?, input)?;
        keys.insert(name.clone(), keys_json(&k));
        let ed = prim::ed25519_public(&k.ed_seed);
        identities.insert(
            name.clone(),
            json!({"ed25519_public": hv(&ed), "x25519_public": hv(&x25519_public(&k.x_private)),
                   "encoding": hv(&k.identity), "fingerprint": hv(&prim::sha256(&[FINGERPRINT, &k.identity]))}),
        );
        if identity_encoding(&ed, &x25519_public(&k.x_private)) != k.identity {
            return Err("identity encoding".into());
        }
        devices.insert(
            name.clone(),
            Dev { user: k.user.clone(), account: Account::new(&k, now), peers: BTreeMap::new(), pins: BTreeMap::new() },
        );
    }

    let mut bundles: Vec<Bundle> = Vec::new();
    let mut logs: Vec<SessionLog> = Vec::new();
    let mut msgs: Vec<Msg> = Vec::new();
    let mut exports: BTreeMap<String, Export> = BTreeMap::new();
    let (mut j_bundles, mut o_bundles, mut o_schedules) = (Vec::new(), Vec::new(), Vec::new());
    let (mut j_messages, mut o_messages) = (Vec::new(), Vec::new());
    let (mut j_deliveries, mut o_results) = (Vec::new(), Vec::new());
    let (mut j_snapshots, mut o_snapshots) = (Vec::new(), Vec::new());

    for (i, ev) in arr(inputs, "events")?.iter().enumerate() {
        let op = str_field(ev, "op")?;
        let at = |e: String| format!("event {i} ({op}): {e}");
        match op {
            "bundle" => {
                let name = str_field(ev, "device")?;
                let d = devices.get_mut(name).ok_or_else(|| at("no such device".into()))?;
                let (b, bytes, records) = next_bundle(&mut d.account);
                j_bundles.push(json!({"index": bundles.len(), "event": i, "device": name,
                    "one_time_prekey_id": b.opk.map(|(id, _)| id), "pq_prekey_id": b.pq_id,
                    "signatures": records, "bytes": hv(&bytes)}));
                o_bundles.push(hv(&bytes));
                bundles.push(b);
            }
            "initiate" => {
                let name = str_field(ev, "device")?;
                let peer = str_field(ev, "peer")?;
                let b = bundles.get(u64_field(ev, "bundle")? as usize).ok_or_else(|| at("no such bundle".into()))?;
                let d = devices.get_mut(name).ok_or_else(|| at("no such device".into()))?;
                let ek = a32(&draws.next(name, 32, "PQXDH ephemeral key EK_A")?)?;
                let m = a32(&draws.next(name, 32, "ML-KEM encapsulation randomness m")?)?;
                let first = a32(&draws.next(name, 32, "first ratchet key")?)?;
                let a = &d.account;
                let ek_pub = x25519_public(&ek);
                let bob_x = a32(b.identity.get(34..66).ok_or("identity")?)?;
                let mut dhs = vec![
                    ("DH1 = DH(IK_A, SPK_B)", x25519(&a.x_private, &b.spk_public)),
                    ("DH2 = DH(EK_A, IK_B)", x25519(&ek, &bob_x)),
                    ("DH3 = DH(EK_A, SPK_B)", x25519(&ek, &b.spk_public)),
                ];
                if let Some((_, opk)) = &b.opk {
                    dhs.push(("DH4 = DH(EK_A, OPK_B)", x25519(&ek, opk)));
                }
                let (ct, ss) = prim::mlkem_encapsulate(&b.pq_seed, &m);
                let mut ikm = vec![0xFF; 32];
                for (_, v) in &dhs {
                    ikm.extend_from_slice(v);
                }
                ikm.extend_from_slice(&ss);
                let sk = a32(&prim::hkdf(&[0; 32], &ikm, PQXDH, 32)?)?;
                let ad = [&a.identity[..], &b.identity].concat();
                let mut header = a.identity.clone();
                header.extend_from_slice(&b.spk_id.to_be_bytes());
                header.push(u8::from(b.opk.is_some()));
                if let Some((id, _)) = b.opk {
                    header.extend_from_slice(&id.to_be_bytes());
                }
                header.extend_from_slice(&b.pq_id.to_be_bytes());
                header.extend_from_slice(&ek_pub);
                header.extend_from_slice(&ct);
                let pqxdh = json!({
                    "ephemeral_private": hv(&ek), "ephemeral_public": hv(&ek_pub),
                    "signed_prekey_id": b.spk_id, "one_time_prekey_id": b.opk.map(|(id, _)| id), "pq_prekey_id": b.pq_id,
                    "dh": dhs.iter().map(|(n, v)| json!({"name": n, "output": hv(v)})).collect::<Vec<_>>(),
                    "kem_encapsulation_randomness": hv(&m), "kem_ciphertext": hv(&ct), "kem_shared_secret": hv(&ss),
                    "hkdf_salt": hv(&[0; 32]), "hkdf_info": hv(PQXDH), "ikm": hv(&ikm), "session_secret": hv(&sk),
                    "associated_data": hv(&ad), "prekey_header": hv(&header),
                });
                o_schedules.push(json!({"dh": dhs.iter().map(|(_, v)| hv(v)).collect::<Vec<_>>(),
                    "kem_secret": hv(&ss), "ikm": hv(&ikm), "secret": hv(&sk)}));
                let dh1 = dh(&first, &b.spk_public).map_err(model_err)?;
                let (root, ck) = kdf_rk(&sk, &dh1)?;
                let sid = logs.len();
                let mut json = Map::new();
                json.insert("index".into(), json!(sid));
                json.insert("event".into(), json!(i));
                json.insert("initiator".into(), json!(name));
                json.insert("responder".into(), json!(peer));
                json.insert("bundle".into(), json!(u64_field(ev, "bundle")?));
                json.insert("base_key".into(), hv(&ek_pub));
                json.insert("pqxdh".into(), pqxdh);
                logs.push(SessionLog {
                    json,
                    base_key: ek_pub,
                    sk,
                    spk_public: b.spk_public,
                    steps: vec![RootStep {
                        owner: name.to_owned(),
                        private: first,
                        public: x25519_public(&first),
                        peer_public: b.spk_public,
                        dh: dh1,
                        root_in: sk,
                        root_out: root,
                        chain_key: ck,
                    }],
                });
                let identity = b.identity.clone();
                classify(d, peer, &identity).map_err(model_err)?;
                let s = Session {
                    sid,
                    remote: identity,
                    ad,
                    base_key: ek_pub,
                    pending: Some(header),
                    r: Ratchet {
                        root,
                        dhs_private: first,
                        dhs_public: x25519_public(&first),
                        sending: Some((ck, 0)),
                        pn: 0,
                        epoch: 0,
                        recv: VecDeque::new(),
                        skipped: VecDeque::new(),
                        dropped: VecDeque::new(),
                        evicted: VecDeque::new(),
                    },
                };
                let rec = d.peers.entry(peer.to_owned()).or_default();
                rec.sessions.insert(0, s);
                truncate(rec);
            }
            "send" => {
                let from = str_field(ev, "from")?;
                let to = str_field(ev, "to")?;
                let pt = hex_field(ev, "plaintext")?;
                let d = devices.get_mut(from).ok_or_else(|| at("no such device".into()))?;
                let rec = d.peers.get_mut(to).ok_or_else(|| at("no session".into()))?;
                let s = rec.sessions.first_mut().ok_or_else(|| at("no session".into()))?;
                if d.pins.get(to) != Some(&s.remote) {
                    return Err(at("the current session is not with the pinned identity".into()));
                }
                let (ck, n) = s.r.sending.ok_or_else(|| at("no sending chain".into()))?;
                let mk = prim::hmac(&ck, &[0x01])?;
                let next_ck = prim::hmac(&ck, &[0x02])?;
                let MessageKeys { key, nonce, info } = message_aead(&mk, s.r.epoch)?;
                let header =
                    [&s.r.dhs_public[..], &s.r.pn.to_be_bytes(), &n.to_be_bytes(), &s.r.epoch.to_be_bytes()].concat();
                let prefix = match &s.pending {
                    Some(ph) => [&[0x03, 0x02][..], ph, &header].concat(),
                    None => [&[0x04, 0x02][..], &header].concat(),
                };
                let aad = [&s.ad[..], &prefix].concat();
                let padded = prim::pad(&pt, PAD_BLOCK);
                let ct = prim::aes_gcm_siv_seal(&key, &nonce, &aad, &padded)?;
                let message = [&prefix[..], &ct].concat();
                let log = logs.get(s.sid).ok_or("session log")?;
                let epoch =
                    log.epoch_of(&s.r.dhs_public).ok_or_else(|| at("sending key not in the root chain".into()))?;
                j_messages.push(json!({
                    "index": msgs.len(), "event": i, "from": from, "to": to, "session": s.sid,
                    "type": if s.pending.is_some() { "prekey message (0x03)" } else { "ratchet message (0x04)" },
                    "epoch": epoch, "ratchet_public": hv(&s.r.dhs_public), "previous_counter": s.r.pn, "counter": n,
                    "chain_key": hv(&ck), "message_key": hv(&mk), "next_chain_key": hv(&next_ck),
                    "sender_epoch": s.r.epoch, "message_key_info": hv(&info),
                    "aead_key": hv(&key), "aead_nonce": hv(&nonce),
                    "ratchet_header": hv(&header), "prefix": hv(&prefix), "aad": hv(&aad),
                    "plaintext": hv(&pt), "plaintext_length": pt.len(),
                    "padded_plaintext": hv(&padded), "padded_length": padded.len(),
                    "ciphertext": hv(&ct), "message": hv(&message),
                }));
                o_messages.push(hv(&message));
                let prekey = match &s.pending {
                    None => None,
                    Some(_) => {
                        let b = &s.base_key;
                        let ph = s.pending.as_deref().ok_or("pending")?;
                        // The header's fields, as the receiver reads them (5.1).
                        let initiator = ph.get(..66).ok_or("header")?.to_vec();
                        let mut pos = 66;
                        let rd_u32 = |pos: &mut usize| -> Result<u32, String> {
                            let v = ph.get(*pos..*pos + 4).ok_or("header")?;
                            *pos += 4;
                            Ok(u32::from_be_bytes(v.try_into().map_err(|_| "header")?))
                        };
                        let spk_id = rd_u32(&mut pos)?;
                        let flag = *ph.get(pos).ok_or("header")?;
                        pos += 1;
                        let opk_id = if flag == 1 { Some(rd_u32(&mut pos)?) } else { None };
                        let pq_id = rd_u32(&mut pos)?;
                        let base_key = a32(ph.get(pos..pos + 32).ok_or("header")?)?;
                        if &base_key != b {
                            return Err(at("the pending header names another base key".into()));
                        }
                        let ct = ph.get(pos + 32..).ok_or("header")?.to_vec();
                        Some(PreKeyFields { initiator, spk_id, opk_id, pq_id, base_key, ct })
                    }
                };
                msgs.push(Msg {
                    prekey,
                    header: Header { key: s.r.dhs_public, n, e: s.r.epoch },
                    prefix,
                    ciphertext: ct,
                });
                s.r.sending = Some((next_ck, n + 1));
                let sent = Sent {
                    digest: prim::sha256(&[MESSAGE_DIGEST, &message]),
                    recipient: s.remote.clone(),
                    base_key: s.base_key,
                };
                if rec.sent.len() == RETRY_WINDOW {
                    rec.sent.pop_front();
                }
                rec.sent.push_back(sent);
            }
            "deliver" => {
                let to = str_field(ev, "to")?;
                let index = u64_field(ev, "message")? as usize;
                let m = msgs.get(index).ok_or_else(|| at("no such message".into()))?;
                let d = devices.get_mut(to).ok_or_else(|| at("no such device".into()))?;
                let before = {
                    let mut e = Enc::new(false);
                    encode_device(&mut e, d)?;
                    e.bytes
                };
                let mut work = d.clone();
                let mut ctx = Ctx { device: to, draws: &mut draws, logs: &mut logs };
                let out = deliver(&mut work, other(to), m, &mut ctx);
                let mut j = Map::new();
                j.insert("event".into(), json!(i));
                j.insert("to".into(), json!(to));
                j.insert("message".into(), json!(index));
                j.extend(out.details);
                match out.result {
                    Ok((pt, identity)) => {
                        *d = work;
                        j.insert("result".into(), json!("ok"));
                        j.insert("plaintext".into(), hv(&pt));
                        j.insert("identity".into(), json!(identity));
                        o_results.push(json!({"plaintext": hv(&pt), "identity": identity}));
                    }
                    Err(Fail::Refused(code, by)) => {
                        j.insert("result".into(), json!(code));
                        j.insert("decided_by".into(), json!(by));
                        o_results.push(json!({"error": code}));
                    }
                    Err(Fail::Model(e)) => return Err(at(e)),
                }
                let after = {
                    let mut e = Enc::new(false);
                    encode_device(&mut e, d)?;
                    e.bytes
                };
                if j.get("result") != Some(&json!("ok")) && after != before {
                    return Err(at("a refused message changed the model's state".into()));
                }
                let rec = d.peers.get(other(to));
                j.insert(
                    "record_after".into(),
                    json!(rec.map(|r| r.sessions.iter().map(|s| s.sid).collect::<Vec<_>>()).unwrap_or_default()),
                );
                j_deliveries.push(Value::Object(j));
            }
            "export" => {
                let name = str_field(ev, "device")?;
                let scope = str_field(ev, "scope")?;
                let key = a32(&hex_field(ev, "key")?)?;
                let d = devices.get(name).ok_or_else(|| at("no such device".into()))?;
                let salt = draws.next(name, 32, "snapshot salt")?;
                let mut e = Enc::new(true);
                let (kind, context) = match scope {
                    "device" => {
                        encode_device(&mut e, d)?;
                        exports.insert(name.to_owned(), Export::Device(Box::new(d.clone())));
                        (0x01u8, Vec::new())
                    }
                    "session" => {
                        let peer = other(name);
                        let rec = d.peers.get(peer).ok_or_else(|| at("no session".into()))?;
                        encode_record(&mut e, "", rec)?;
                        exports.insert(name.to_owned(), Export::Session(rec.clone()));
                        let ctx =
                            [&d.account.identity[..], &(peer.len() as u32).to_be_bytes(), peer.as_bytes()].concat();
                        (0x02u8, ctx)
                    }
                    other => return Err(at(format!("unknown scope {other:?}"))),
                };
                let info = [SNAPSHOT, &[kind]].concat();
                let okm = prim::hkdf(&salt, &key, &info, 44)?;
                let aead_key = a32(okm.get(..32).ok_or("okm")?)?;
                let nonce: [u8; 12] = okm.get(32..).and_then(|n| n.try_into().ok()).ok_or("nonce")?;
                let header = [&[0x10, 0x04, kind][..], &salt].concat();
                let aad = [&header[..], &context].concat();
                let sealed = prim::aes_gcm_seal(&aead_key, &nonce, &aad, &e.bytes)?;
                let snapshot = [&header[..], &sealed].concat();
                j_snapshots.push(json!({
                    "index": j_snapshots.len(), "event": i, "device": name, "scope": scope, "kind": kind,
                    "salt": hv(&salt), "hkdf_salt": hv(&salt), "hkdf_ikm": hv(&key), "hkdf_info": hv(&info),
                    "aead_key": hv(&aead_key), "aead_nonce": hv(&nonce), "context": hv(&context), "aad": hv(&aad),
                    "state": hv(&e.bytes), "state_length": e.bytes.len(),
                    "state_fields": e.fields.unwrap_or_default(), "ciphertext": hv(&sealed), "snapshot": hv(&snapshot),
                }));
                o_snapshots.push(hv(&snapshot));
            }
            "import" => {
                let name = str_field(ev, "device")?;
                let scope = str_field(ev, "scope")?;
                match (exports.get(name), scope) {
                    (Some(Export::Device(x)), "device") => {
                        let mut x = (**x).clone();
                        for rec in x.peers.values_mut() {
                            bump_epochs(rec);
                        }
                        devices.insert(name.to_owned(), x);
                    }
                    (Some(Export::Session(x)), "session") => {
                        let mut x = x.clone();
                        bump_epochs(&mut x);
                        let d = devices.get_mut(name).ok_or_else(|| at("no such device".into()))?;
                        d.peers.insert(other(name).to_owned(), x);
                    }
                    _ => return Err(at("import without a matching export".into())),
                }
            }
            other => return Err(at(format!("unknown op {other:?}"))),
        }
    }
    draws.check_all_used()?;

    let mut sessions = Vec::new();
    for log in logs {
        let mut j = log.json;
        let steps: Vec<Value> = log
            .steps
            .iter()
            .enumerate()
            .map(|(k, s)| {
                json!({"epoch": k + 1, "owner": s.owner, "ratchet_private": hv(&s.private),
                       "ratchet_public": hv(&s.public), "peer_ratchet_public": hv(&s.peer_public), "dh": hv(&s.dh),
                       "root_key_in": hv(&s.root_in), "root_key_out": hv(&s.root_out), "chain_key": hv(&s.chain_key)})
            })
            .collect();
        j.insert("root_chain".into(), Value::Array(steps));
        sessions.push(Value::Object(j));
    }
    let mut final_states = Map::new();
    let mut digests = Map::new();
    for (name, d) in &devices {
        let mut e = Enc::new(false);
        encode_device(&mut e, d)?;
        digests.insert(name.clone(), hv(&prim::sha256(&[&e.bytes])));
        final_states.insert(name.clone(), hv(&e.bytes));
    }
    let inter = json!({
        "keys": keys, "identities": identities, "bundles": j_bundles, "sessions": sessions,
        "messages": j_messages, "deliveries": j_deliveries, "snapshots": j_snapshots, "final_states": final_states,
    });
    let outputs = json!({
        "bundles": o_bundles, "key_schedules": o_schedules, "messages": o_messages, "results": o_results,
        "snapshots": o_snapshots, "state_digests": digests,
    });
    Ok((inter, outputs))
}

/// Re-derives the snapshot of a fixed scenario (`snapshot.json`) with this model: its
/// events run as a script (Bob's bundle, Alice's `initiate`, the events, Bob's device
/// export). The fixed scenario's own model checks only a prefix of the state; this
/// requires the whole snapshot and the state digest to be what protocol.md 8.1 gives.
pub fn check_fixed_snapshot(inputs: &Value, outputs: &Value) -> Result<(), String> {
    let Some(snap) = inputs.get("snapshot") else { return Ok(()) };
    let mut events = vec![
        json!({"op": "bundle", "device": "bob"}),
        json!({"op": "initiate", "device": "alice", "peer": "bob", "bundle": 0}),
    ];
    events.extend(arr(inputs, "events")?.iter().cloned());
    events.push(
        json!({"op": "export", "device": str_field(snap, "device")?, "scope": "device", "key": field(snap, "key")?}),
    );
    let mut script = inputs.clone();
    script["events"] = Value::Array(events);
    let (_, predicted) = run(&script).map_err(|e| format!("whole-state check: {e}"))?;
    if predicted["snapshots"][0] != outputs["snapshot"] || predicted["state_digests"]["bob"] != outputs["state_digest"]
    {
        return Err("whole-state check: the snapshot is not the state encoding of protocol.md 8.1".into());
    }
    Ok(())
}
