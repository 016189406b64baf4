//! `store_export.json` and `store_inbox.json`: the store's export container (§16.6) and
//! inbox entries (§16.7), produced by the `gochat-e2ee-store` crate with fixed keys,
//! salts and nonces; [`run_export_model`] and [`run_inbox_model`] re-derive every byte
//! from the spec with argon2, hkdf, hmac, sha2 and aes-gcm directly (never the store
//! crate's encoders).

use gochat_e2ee::channel::{Announcement, ChannelId, ContentType, Received as ChannelReceived};
use gochat_e2ee::group::GroupPlaintext;
use gochat_e2ee::{ChangeReason, Decrypted, Device, IdentityEvent, SnapshotKey};
use gochat_e2ee_store::inbox::{channel_digest, direct_digest, group_digest, inbox_key, InboxEntry};
use gochat_e2ee_store::{
    Argon2Params, DataKey, Keyslot, MemoryBackend, Passcode, PlatformKey, RecordCipher, StoreId, StoredDevice, Unlock,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};

use super::{arr, hex_field, hv, prim, str_field, u64_field};

pub(crate) const EXPORT_NAME: &str = "store_export";
pub(crate) const EXPORT_DESCRIPTION: &str = "Store export container (§16.6): a fixed 32-byte export key wrapped in a passcode keyslot (type 0x61, method 0x02, Argon2id v0x13 8 MiB, t=1, p=1, fixed salt, nonce and store id), framed as 0x62 || 0x01 || u32 BE keyslot length || keyslot || snapshot, where the snapshot is a fixed device's snapshot (type 0x10, kind 0x01) under the export key. The model re-derives the keyslot and the container, opens the snapshot with the export key (§8) and checks the library imports the container with the passcode (and refuses a wrong one).";
pub(crate) const INBOX_NAME: &str = "store_inbox";
pub(crate) const INBOX_DESCRIPTION: &str = "Store inbox entries (§16.7): for a 1:1 message, a group message, a channel announcement and a channel key rotation, the inbox digest of the incoming bytes (domain separated per kind), the record key 0x80 || digest, its key hash under a fixed data key and store id, the entry body (version 0x02, kind byte, fields) and the sealed row (u32 BE key length || record key || entry, sealed as a §16.3 value with a fixed salt). A version 0x01 (first-release 1:1) body is decoded too.";

const LABEL_INBOX_GROUP: &[u8] = b"GoChat-E2EE v1 store inbox group";
const LABEL_INBOX_CHANNEL: &[u8] = b"GoChat-E2EE v1 store inbox channel";
const LABEL_MESSAGE_DIGEST: &[u8] = b"GoChat-E2EE v1 message digest";
const LABEL_KEYSLOT: &[u8] = b"GoChat-E2EE v1 store keyslot";
const LABEL_SNAPSHOT: &[u8] = b"GoChat-E2EE v1 snapshot";
const LABEL_ENCRYPTION: &[u8] = b"GoChat-E2EE v1 store encryption key";
const LABEL_NAMING: &[u8] = b"GoChat-E2EE v1 store naming key";
const LABEL_RECORD: &[u8] = b"GoChat-E2EE v1 store record";

const EXPORT_KEY: [u8; 32] = [0x3e; 32];
const STORE_ID: [u8; 16] = [0x6a; 16];
const DATA_KEY: [u8; 32] = [0x42; 32];
const PASSCODE: &str = "transfer code 0417";
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };
const NOW: u64 = 1_700_000_000;

fn fixed(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

fn arr_n<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into().map_err(|_| format!("expected {N} bytes"))
}

fn lib<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("library: {what}: {e}"))
}

// ---------------------------------------------------------------------------------
// Export container.

pub(crate) fn run_export_library() -> Result<(Value, Value), String> {
    let (salt, nonce) = (fixed(0xd0, 16), fixed(0xe0, 12));
    let mut rng = ChaCha20Rng::from_seed([0x62; 32]);
    let device = Device::new("mover", NOW, &mut rng);
    let snapshot = lib(device.export(&SnapshotKey::new(EXPORT_KEY), &mut rng), "snapshot")?;
    let pass = lib(Passcode::from_text(PASSCODE), "passcode")?;
    let slot = lib(
        Keyslot::wrap_with(
            &DataKey::from_bytes(EXPORT_KEY),
            &Unlock::Passcode(pass.clone()),
            SMALL,
            StoreId::from_bytes(STORE_ID),
            arr_n(&salt)?,
            arr_n(&nonce)?,
        ),
        "wrap",
    )?;
    let container = gochat_e2ee_store::export::encode_container(&slot.encode(), &snapshot);
    // The library's import opens it with the passcode, and refuses another one.
    let key = Unlock::Key(PlatformKey::new([1; 32]));
    let imported =
        lib(StoredDevice::import(Box::new(MemoryBackend::new()), &key, SMALL, &container, &pass, &mut rng), "import")?;
    if imported.device().identity() != device.identity() {
        return Err("library: the import holds another identity".into());
    }
    let wrong = lib(Passcode::from_text("transfer code 0418"), "passcode")?;
    let refused = StoredDevice::import(Box::new(MemoryBackend::new()), &key, SMALL, &container, &wrong, &mut rng);
    let refused = refused.err().map(|e| e.code().as_str()).unwrap_or("accepted");
    let inputs = json!({
        "export_key": hv(&EXPORT_KEY), "passcode": PASSCODE, "wrong_passcode": "transfer code 0418",
        "memory_kib": SMALL.memory_kib, "iterations": SMALL.iterations, "lanes": SMALL.lanes,
        "argon2_salt": hv(&salt), "nonce": hv(&nonce), "store_id": hv(&STORE_ID), "snapshot": hv(&snapshot),
    });
    let outputs = json!({"container": hv(&container), "wrong_passcode": refused});
    Ok((inputs, outputs))
}

/// §16.1 (passcode slot), §16.6 (framing) and §8 (the snapshot under the export key).
pub(crate) fn run_export_model(inputs: &Value) -> Result<(Value, Value), String> {
    let export_key = hex_field(inputs, "export_key")?;
    let store_id = hex_field(inputs, "store_id")?;
    let salt = hex_field(inputs, "argon2_salt")?;
    let nonce: [u8; 12] = arr_n(&hex_field(inputs, "nonce")?)?;
    let snapshot = hex_field(inputs, "snapshot")?;
    let u32f = |n: &str| u64_field(inputs, n).and_then(|v| u32::try_from(v).map_err(|_| format!("`{n}` over u32")));
    let (m, t, p) = (u32f("memory_kib")?, u32f("iterations")?, u32f("lanes")?);
    let stretched = super::store::argon2id(str_field(inputs, "passcode")?.as_bytes(), &salt, m, t, p)?;
    let info = [LABEL_KEYSLOT, &[0x02]].concat();
    let kek: [u8; 32] = arr_n(&prim::hkdf(&store_id, &stretched, &info, 32)?)?;
    let mut slot = vec![0x61, 0x01, 0x02];
    for v in [m, t, p] {
        slot.extend_from_slice(&v.to_be_bytes());
    }
    slot.extend_from_slice(&salt);
    slot.extend_from_slice(&store_id);
    slot.extend_from_slice(&nonce);
    let wrapped = prim::aes_gcm_seal(&kek, &nonce, &slot, &export_key)?;
    slot.extend_from_slice(&wrapped);
    let mut container = vec![0x62, 0x01];
    container.extend_from_slice(&(slot.len() as u32).to_be_bytes());
    container.extend_from_slice(&slot);
    container.extend_from_slice(&snapshot);
    // The snapshot opens under the export key: 0x10 || version || kind || salt (32) || ct.
    if snapshot.len() < 51 || snapshot[0] != 0x10 || snapshot[2] != 0x01 {
        return Err("model: the snapshot is not a device snapshot".into());
    }
    let okm = prim::hkdf(&snapshot[3..35], &export_key, &[LABEL_SNAPSHOT, &[0x01]].concat(), 44)?;
    let (sk, sn): ([u8; 32], [u8; 12]) = (arr_n(&okm[..32])?, arr_n(&okm[32..])?);
    let state = prim::aes_gcm_open(&sk, &sn, &snapshot[..35], &snapshot[35..])?;
    let wrong = super::store::argon2id(str_field(inputs, "wrong_passcode")?.as_bytes(), &salt, m, t, p)?;
    let wrong_kek: [u8; 32] = arr_n(&prim::hkdf(&store_id, &wrong, &info, 32)?)?;
    let aad = &slot[..slot.len() - 48];
    if prim::aes_gcm_open(&wrong_kek, &nonce, aad, &wrapped).is_ok() {
        return Err("model: a wrong passcode opened the slot".into());
    }
    let inter = json!({
        "argon2id_output": hv(&stretched), "kek": hv(&kek), "keyslot": hv(&slot),
        "snapshot_key": hv(&sk), "snapshot_nonce": hv(&sn), "state_sha256": hv(&prim::sha256(&[&state])),
    });
    Ok((inter, json!({"container": hv(&container), "wrong_passcode": "WrongKey"})))
}

// ---------------------------------------------------------------------------------
// Inbox entries.

struct Case {
    kind: &'static str,
    message: Vec<u8>,
    entry: InboxEntry,
    salt: Vec<u8>,
}

fn cases() -> Result<Vec<Case>, String> {
    let mut rng = ChaCha20Rng::from_seed([0x80; 32]);
    let ik = *Device::new("sender", NOW, &mut rng).identity();
    let previous = *Device::new("before", NOW, &mut rng).identity();
    let channel = ChannelId([0x33; 32]);
    Ok(vec![
        Case {
            kind: "direct",
            message: fixed(0x04, 80),
            entry: InboxEntry::Direct {
                peer: "bob@agency.gov.my".into(),
                decrypted: Decrypted {
                    plaintext: b"hello".to_vec(),
                    sender: ik,
                    identity: IdentityEvent::Changed { previous, approved: true, reason: ChangeReason::Certified },
                },
            },
            salt: fixed(0x51, 16),
        },
        Case {
            kind: "group",
            message: fixed(0x24, 120),
            entry: InboxEntry::Group(GroupPlaintext {
                plaintext: b"to the group".to_vec(),
                sender: "ben".into(),
                sender_identity: ik,
                key_id: 2,
                iteration: 7,
            }),
            salt: fixed(0x52, 16),
        },
        Case {
            kind: "channel",
            message: [&[0x30, 0x01][..], &channel.0, &fixed(0x90, 40)].concat(),
            entry: InboxEntry::Channel {
                channel_id: channel,
                received: ChannelReceived::Announcement(Announcement {
                    channel_id: channel,
                    seq: 5,
                    timestamp: NOW,
                    content_type: ContentType::Json,
                    body: b"{\"notice\":1}".to_vec(),
                    signer: [0x44; 32],
                }),
            },
            salt: fixed(0x53, 16),
        },
        Case {
            kind: "channel",
            message: [&[0x31, 0x01][..], &channel.0, &fixed(0xa0, 40)].concat(),
            entry: InboxEntry::Channel {
                channel_id: channel,
                received: ChannelReceived::KeyRotated { old: [0x44; 32], new: [0x45; 32], seq: 6 },
            },
            salt: fixed(0x54, 16),
        },
    ])
}

fn entry_json(e: &InboxEntry) -> Value {
    match e {
        InboxEntry::Direct { peer, decrypted } => {
            let event = match &decrypted.identity {
                IdentityEvent::New => json!({"event": 0}),
                IdentityEvent::Same => json!({"event": 1}),
                IdentityEvent::Changed { previous, approved, reason } => json!({
                    "event": 2, "previous": hv(&previous.to_bytes()), "approved": approved,
                    "reason": match reason {
                        ChangeReason::Notify => 0, ChangeReason::Certified => 1,
                        ChangeReason::AwaitingApproval => 2, ChangeReason::Uncertified => 3,
                    },
                }),
            };
            json!({"entry": "direct", "peer": peer, "plaintext": hv(&decrypted.plaintext),
                   "sender_identity": hv(&decrypted.sender.to_bytes()), "identity": event})
        }
        InboxEntry::Group(p) => json!({"entry": "group", "sender": p.sender, "sender_identity":
            hv(&p.sender_identity.to_bytes()), "key_id": p.key_id, "iteration": p.iteration,
            "plaintext": hv(&p.plaintext)}),
        InboxEntry::Channel { channel_id, received: ChannelReceived::Announcement(a) } => json!({
            "entry": "announcement", "channel_id": hv(&channel_id.0), "announcement_channel_id": hv(&a.channel_id.0),
            "seq": a.seq, "timestamp": a.timestamp, "content_type": a.content_type.to_byte(),
            "signer": hv(&a.signer), "body": hv(&a.body)}),
        InboxEntry::Channel { channel_id, received: ChannelReceived::KeyRotated { old, new, seq } } => json!({
            "entry": "key_rotated", "channel_id": hv(&channel_id.0), "old": hv(old), "new": hv(new), "seq": seq}),
    }
}

pub(crate) fn run_inbox_library() -> Result<(Value, Value), String> {
    let cipher = lib(RecordCipher::new(&DataKey::from_bytes(DATA_KEY), StoreId::from_bytes(STORE_ID)), "cipher")?;
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    for c in cases()? {
        let digest = match c.kind {
            "direct" => direct_digest(&c.message),
            "group" => group_digest(&c.message),
            _ => channel_digest(&c.message),
        };
        let key = inbox_key(&digest);
        let hash = cipher.key_hash(&key);
        let body = c.entry.encode();
        if lib(InboxEntry::decode(&body), "decode")? != c.entry {
            return Err("library: an entry decoded to another value".into());
        }
        let plain = [&(key.len() as u32).to_be_bytes()[..], &key, &body].concat();
        let row = lib(cipher.seal_with(&hash, &plain, arr_n(&c.salt)?), "seal")?;
        ins.push(
            json!({"kind": c.kind, "message": hv(&c.message), "result": entry_json(&c.entry), "salt": hv(&c.salt)}),
        );
        outs.push(json!({"digest": hv(&digest), "record_key": hv(&key), "key_hash": hv(&hash),
                         "entry": hv(&body), "row": hv(&row)}));
    }
    // A first-release (version 0x01) 1:1 body still decodes: the 0x02 body without its
    // version and kind bytes, behind 0x01.
    let legacy_src = outs.first().and_then(|o| o["entry"].as_str()).ok_or("no direct entry")?;
    let legacy_body = crate::hex::decode(legacy_src).ok_or("hex")?;
    let legacy = [&[0x01][..], &legacy_body[2..]].concat();
    let decoded = lib(InboxEntry::decode(&legacy), "decode v1")?;
    let same = cases()?.first().map(|c| c.entry == decoded).unwrap_or(false);
    let inputs = json!({"data_key": hv(&DATA_KEY), "store_id": hv(&STORE_ID), "entries": ins});
    Ok((inputs, json!({"entries": outs, "legacy_direct_entry": hv(&legacy), "legacy_decodes_to_first": same})))
}

fn put_var(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn u32_of(v: &Value, n: &str) -> Result<u32, String> {
    u32::try_from(u64_field(v, n)?).map_err(|_| format!("`{n}` over u32"))
}

fn u8_of(v: &Value, n: &str) -> Result<u8, String> {
    u8::try_from(u64_field(v, n)?).map_err(|_| format!("`{n}` over u8"))
}

/// §16.7 entry bodies from their fields.
fn model_entry(r: &Value) -> Result<Vec<u8>, String> {
    let mut out = vec![0x02];
    match str_field(r, "entry")? {
        "direct" => {
            out.push(0x01);
            put_var(&mut out, str_field(r, "peer")?.as_bytes());
            put_var(&mut out, &hex_field(r, "plaintext")?);
            out.extend_from_slice(&hex_field(r, "sender_identity")?);
            let ev = super::field(r, "identity")?;
            let e = u8_of(ev, "event")?;
            out.push(e);
            if e == 2 {
                out.extend_from_slice(&hex_field(ev, "previous")?);
                out.push(u8::from(super::field(ev, "approved")?.as_bool().ok_or("approved")?));
                out.push(u8_of(ev, "reason")?);
            }
        }
        "group" => {
            out.push(0x02);
            put_var(&mut out, str_field(r, "sender")?.as_bytes());
            out.extend_from_slice(&hex_field(r, "sender_identity")?);
            out.extend_from_slice(&u32_of(r, "key_id")?.to_be_bytes());
            out.extend_from_slice(&u32_of(r, "iteration")?.to_be_bytes());
            put_var(&mut out, &hex_field(r, "plaintext")?);
        }
        "announcement" => {
            out.push(0x03);
            out.extend_from_slice(&hex_field(r, "channel_id")?);
            out.push(0x01);
            out.extend_from_slice(&hex_field(r, "announcement_channel_id")?);
            out.extend_from_slice(&u64_field(r, "seq")?.to_be_bytes());
            out.extend_from_slice(&u64_field(r, "timestamp")?.to_be_bytes());
            out.push(u8_of(r, "content_type")?);
            out.extend_from_slice(&hex_field(r, "signer")?);
            put_var(&mut out, &hex_field(r, "body")?);
        }
        "key_rotated" => {
            out.push(0x03);
            out.extend_from_slice(&hex_field(r, "channel_id")?);
            out.push(0x02);
            out.extend_from_slice(&hex_field(r, "old")?);
            out.extend_from_slice(&hex_field(r, "new")?);
            out.extend_from_slice(&u64_field(r, "seq")?.to_be_bytes());
        }
        other => return Err(format!("unknown entry {other:?}")),
    }
    Ok(out)
}

/// §16.7 digests, record key and entry; §16.2–16.3 key hash and sealed row.
pub(crate) fn run_inbox_model(inputs: &Value) -> Result<(Value, Value), String> {
    let data_key = hex_field(inputs, "data_key")?;
    let store_id = hex_field(inputs, "store_id")?;
    let enc = prim::hkdf(&store_id, &data_key, LABEL_ENCRYPTION, 32)?;
    let naming = prim::hkdf(&store_id, &data_key, LABEL_NAMING, 32)?;
    let mut inter = Vec::new();
    let mut outs = Vec::new();
    for e in arr(inputs, "entries")? {
        let message = hex_field(e, "message")?;
        let label = match str_field(e, "kind")? {
            "direct" => LABEL_MESSAGE_DIGEST,
            "group" => LABEL_INBOX_GROUP,
            "channel" => LABEL_INBOX_CHANNEL,
            other => return Err(format!("unknown kind {other:?}")),
        };
        let digest = prim::sha256(&[label, &message]);
        let key = [&[0x80][..], &digest].concat();
        let hash = prim::hmac(&naming, &key)?;
        let body = model_entry(super::field(e, "result")?)?;
        let plain = [&(key.len() as u32).to_be_bytes()[..], &key, &body].concat();
        let salt = hex_field(e, "salt")?;
        let okm = prim::hkdf(&salt, &enc, LABEL_RECORD, 44)?;
        let (k, n): ([u8; 32], [u8; 12]) = (arr_n(&okm[..32])?, arr_n(&okm[32..])?);
        let header = [&[0x60, 0x01][..], &salt].concat();
        let aad = [&header[..], &store_id, &hash].concat();
        let ct = prim::aes_gcm_seal(&k, &n, &aad, &plain)?;
        inter.push(json!({"row_plaintext": hv(&plain), "aes_key": hv(&k), "nonce": hv(&n), "aad": hv(&aad)}));
        outs.push(json!({"digest": hv(&digest), "record_key": hv(&key), "key_hash": hv(&hash),
                         "entry": hv(&body), "row": hv(&[&header[..], &ct].concat())}));
    }
    let first = outs.first().and_then(|o| o["entry"].as_str()).ok_or("no entries")?;
    let first = crate::hex::decode(first).ok_or("hex")?;
    let legacy = [&[0x01][..], first.get(2..).ok_or("short entry")?].concat();
    Ok((
        json!({"encryption_key": hv(&enc), "naming_key": hv(&naming), "entries": inter}),
        json!({"entries": outs, "legacy_direct_entry": hv(&legacy), "legacy_decodes_to_first": true}),
    ))
}
