//! `store_keyslot.json` and `store_records.json`: the store's keyslots and sealed records
//! (`docs/protocol.md` §16), produced by the `gochat-e2ee-store` crate with fixed data key,
//! store id, salts and nonces; [`run_keyslot_model`] and [`run_records_model`] re-derive
//! every byte with argon2, hkdf, hmac and aes-gcm directly (never the store crate).

use gochat_e2ee_store::{
    Argon2Params, DataKey, Keyslot, Passcode, PlatformKey, RecordCipher, StoreId, Unlock, VaultError,
};
use serde_json::{json, Value};

use super::{arr, hex_field, hv, prim, str_field, u64_field};

pub(crate) const KEYSLOT_NAME: &str = "store_keyslot";
pub(crate) const KEYSLOT_DESCRIPTION: &str = "Store keyslots (§16.1): a fixed 32-byte data key wrapped for a fixed store id under a platform key (method 0x01) and under a passcode stretched with Argon2id v0x13 (method 0x02, small parameters: 8 MiB, 1 iteration, 1 lane), with fixed Argon2id salt and AES-256-GCM nonces: the Argon2id output, the HKDF-SHA256 key-encryption keys, the AAD and the keyslot bytes. Unwrapping each slot gives the data key; a wrong key or passcode is refused.";
pub(crate) const RECORDS_NAME: &str = "store_records";
pub(crate) const RECORDS_DESCRIPTION: &str = "Store records (§16.2, §16.3): from a fixed data key and store id, the record-encryption and naming keys (HKDF-SHA256), then for a few record keys (kind byte || name) the keyed hash HMAC-SHA256(naming key, record key) and the sealed value 0x60 || 0x01 || salt || AES-256-GCM(plaintext) || tag with fixed 16-byte salts: the per-record key, nonce and AAD.";

/// §16.1 and §16.3 labels (written out here, not taken from the crate).
const LABEL_KEYSLOT: &[u8] = b"GoChat-E2EE v1 store keyslot";
const LABEL_ENCRYPTION: &[u8] = b"GoChat-E2EE v1 store encryption key";
const LABEL_NAMING: &[u8] = b"GoChat-E2EE v1 store naming key";
const LABEL_RECORD: &[u8] = b"GoChat-E2EE v1 store record";

const DATA_KEY: [u8; 32] = [0x42; 32];
const STORE_ID: [u8; 16] =
    [0x5f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f];
const PLATFORM_KEY: [u8; 32] = [0x7b; 32];
const PASSCODE: &str = "correct horse battery staple";
const SMALL: Argon2Params = Argon2Params { memory_kib: 8 * 1024, iterations: 1, lanes: 1 };

fn fixed(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
}

fn arr16(v: &[u8]) -> Result<[u8; 16], String> {
    v.try_into().map_err(|_| "expected 16 bytes".to_owned())
}

fn arr12(v: &[u8]) -> Result<[u8; 12], String> {
    v.try_into().map_err(|_| "expected 12 bytes".to_owned())
}

fn arr32(v: &[u8]) -> Result<[u8; 32], String> {
    v.try_into().map_err(|_| "expected 32 bytes".to_owned())
}

fn lib<T>(r: Result<T, VaultError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("library: {what}: {e}"))
}

// ---------------------------------------------------------------------------------
// Keyslots.

pub(crate) fn run_keyslot_library() -> Result<(Value, Value), String> {
    let data_key = DataKey::from_bytes(DATA_KEY);
    let store_id = StoreId::from_bytes(STORE_ID);
    let (salt, nonce_p, nonce_k) = (fixed(0xa0, 16), fixed(0xb0, 12), fixed(0xc0, 12));
    let pass = Unlock::Passcode(lib(Passcode::from_text(PASSCODE), "passcode")?);
    let key = Unlock::Key(PlatformKey::new(PLATFORM_KEY));
    let ks = lib(Keyslot::wrap_with(&data_key, &key, SMALL, store_id, [0; 16], arr12(&nonce_k)?), "wrap key")?;
    let ps =
        lib(Keyslot::wrap_with(&data_key, &pass, SMALL, store_id, arr16(&salt)?, arr12(&nonce_p)?), "wrap passcode")?;
    let mut slots = Vec::new();
    for (slot, unlock, wrong) in [
        (&ks, &key, Unlock::Key(PlatformKey::new([0x7c; 32]))),
        (&ps, &pass, Unlock::Passcode(lib(Passcode::from_text("correct horse battery stapler"), "passcode")?)),
    ] {
        let decoded = lib(Keyslot::decode(&slot.encode()), "decode")?;
        let unwrapped = lib(decoded.unwrap(unlock), "unwrap")?;
        let same: bool = subtle::ConstantTimeEq::ct_eq(&unwrapped, &data_key).into();
        if !same {
            return Err("library: unwrap gave another data key".into());
        }
        if decoded.unwrap(&wrong).err() != Some(VaultError::WrongKey) {
            return Err("library: a wrong unlock was not refused as WrongKey".into());
        }
        slots.push(
            json!({"keyslot": hv(&slot.encode()), "unwrapped_data_key": hv(&DATA_KEY), "wrong_unlock": "WrongKey"}),
        );
    }
    let inputs = json!({
        "data_key": hv(&DATA_KEY),
        "store_id": hv(&STORE_ID),
        "slots": [
            {"method": 1, "platform_key": hv(&PLATFORM_KEY), "nonce": hv(&nonce_k),
             "wrong_platform_key": hv(&[0x7c; 32])},
            {"method": 2, "passcode": PASSCODE, "memory_kib": SMALL.memory_kib, "iterations": SMALL.iterations,
             "lanes": SMALL.lanes, "salt": hv(&salt), "nonce": hv(&nonce_p),
             "wrong_passcode": "correct horse battery stapler"},
        ],
    });
    Ok((inputs, json!({"slots": slots})))
}

/// Argon2id v0x13 with the argon2 crate's own block memory.
pub(crate) fn argon2id(passcode: &[u8], salt: &[u8], m: u32, t: u32, p: u32) -> Result<[u8; 32], String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| format!("Argon2 params: {e}"))?;
    let mut memory = vec![argon2::Block::new(); params.block_count()];
    let mut out = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into_with_memory(passcode, salt, &mut out, &mut memory[..])
        .map_err(|e| format!("Argon2id: {e}"))?;
    Ok(out)
}

fn u32_field(v: &Value, name: &str) -> Result<u32, String> {
    u32::try_from(u64_field(v, name)?).map_err(|_| format!("field `{name}` is over u32"))
}

/// §16.1: `KEK = HKDF(salt = store_id, ikm, info = label || method)`, the slot is
/// `header || store_id || nonce || AES-256-GCM(KEK, nonce, data_key, AAD = all before)`.
pub(crate) fn run_keyslot_model(inputs: &Value) -> Result<(Value, Value), String> {
    let data_key = hex_field(inputs, "data_key")?;
    let store_id = hex_field(inputs, "store_id")?;
    let mut inter = Vec::new();
    let mut outs = Vec::new();
    for s in arr(inputs, "slots")? {
        let method = u8::try_from(u64_field(s, "method")?).map_err(|_| "method")?;
        let nonce = arr12(&hex_field(s, "nonce")?)?;
        let mut header = vec![0x61, 0x01, method];
        let mut i = json!({});
        let (ikm, wrong_ikm) = match method {
            1 => (hex_field(s, "platform_key")?, hex_field(s, "wrong_platform_key")?),
            2 => {
                let (m, t, p) = (u32_field(s, "memory_kib")?, u32_field(s, "iterations")?, u32_field(s, "lanes")?);
                let salt = hex_field(s, "salt")?;
                header.extend_from_slice(&m.to_be_bytes());
                header.extend_from_slice(&t.to_be_bytes());
                header.extend_from_slice(&p.to_be_bytes());
                header.extend_from_slice(&salt);
                let out = argon2id(str_field(s, "passcode")?.as_bytes(), &salt, m, t, p)?;
                let wrong = argon2id(str_field(s, "wrong_passcode")?.as_bytes(), &salt, m, t, p)?;
                i["argon2id_output"] = hv(&out);
                (out.to_vec(), wrong.to_vec())
            }
            other => return Err(format!("unknown method {other}")),
        };
        let info = [LABEL_KEYSLOT, &[method]].concat();
        let kek = arr32(&prim::hkdf(&store_id, &ikm, &info, 32)?)?;
        header.extend_from_slice(&store_id);
        header.extend_from_slice(&nonce);
        let wrapped = prim::aes_gcm_seal(&kek, &nonce, &header, &data_key)?;
        let slot = [&header[..], &wrapped].concat();
        let unwrapped = prim::aes_gcm_open(&kek, &nonce, &header, &wrapped)?;
        let wrong_kek = arr32(&prim::hkdf(&store_id, &wrong_ikm, &info, 32)?)?;
        if prim::aes_gcm_open(&wrong_kek, &nonce, &header, &wrapped).is_ok() {
            return Err("model: a wrong unlock opened the slot".into());
        }
        i["kek_info"] = hv(&info);
        i["kek"] = hv(&kek);
        i["aad"] = hv(&header);
        inter.push(i);
        outs.push(json!({"keyslot": hv(&slot), "unwrapped_data_key": hv(&unwrapped), "wrong_unlock": "WrongKey"}));
    }
    Ok((json!({"slots": inter}), json!({"slots": outs})))
}

// ---------------------------------------------------------------------------------
// Records.

/// Record keys (kind byte || name, as the core's `RecordKey::encode` gives) and plaintexts.
fn records() -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    vec![
        (b"\x00".to_vec(), b"account state".to_vec(), fixed(0x10, 16)),
        (b"\x01alice@agency.gov.my".to_vec(), fixed(0x00, 100), fixed(0x20, 16)),
        (b"\x02group:7f3a".to_vec(), Vec::new(), fixed(0x30, 16)),
        // The same record key again, with another salt: another value.
        (b"\x01alice@agency.gov.my".to_vec(), fixed(0x00, 100), fixed(0x40, 16)),
    ]
}

pub(crate) fn run_records_library() -> Result<(Value, Value), String> {
    let cipher = lib(RecordCipher::new(&DataKey::from_bytes(DATA_KEY), StoreId::from_bytes(STORE_ID)), "cipher")?;
    let mut ins = Vec::new();
    let mut outs = Vec::new();
    for (key, pt, salt) in records() {
        let h = cipher.key_hash(&key);
        let value = lib(cipher.seal_with(&h, &pt, arr16(&salt)?), "seal")?;
        if lib(cipher.open(&h, &value), "open")?[..] != pt[..] {
            return Err("library: a record opened to other bytes".into());
        }
        ins.push(json!({"record_key": hv(&key), "plaintext": hv(&pt), "salt": hv(&salt)}));
        outs.push(json!({"key_hash": hv(&h), "value": hv(&value)}));
    }
    let inputs = json!({"data_key": hv(&DATA_KEY), "store_id": hv(&STORE_ID), "records": ins});
    Ok((inputs, json!({"records": outs})))
}

/// §16.2 and §16.3.
pub(crate) fn run_records_model(inputs: &Value) -> Result<(Value, Value), String> {
    let data_key = hex_field(inputs, "data_key")?;
    let store_id = hex_field(inputs, "store_id")?;
    let enc = prim::hkdf(&store_id, &data_key, LABEL_ENCRYPTION, 32)?;
    let naming = prim::hkdf(&store_id, &data_key, LABEL_NAMING, 32)?;
    let mut inter = Vec::new();
    let mut outs = Vec::new();
    for r in arr(inputs, "records")? {
        let (key, pt, salt) = (hex_field(r, "record_key")?, hex_field(r, "plaintext")?, hex_field(r, "salt")?);
        let h = prim::hmac(&naming, &key)?;
        let okm = prim::hkdf(&salt, &enc, LABEL_RECORD, 44)?;
        let (k, n) = (arr32(&okm[..32])?, arr12(&okm[32..])?);
        let header = [&[0x60, 0x01][..], &salt].concat();
        let aad = [&header[..], &store_id, &h].concat();
        let ct = prim::aes_gcm_seal(&k, &n, &aad, &pt)?;
        inter.push(json!({"aes_key": hv(&k), "nonce": hv(&n), "aad": hv(&aad)}));
        outs.push(json!({"key_hash": hv(&h), "value": hv(&[&header[..], &ct].concat())}));
    }
    Ok((json!({"encryption_key": hv(&enc), "naming_key": hv(&naming), "records": inter}), json!({"records": outs})))
}
