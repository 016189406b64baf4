//! The JS side of the IndexedDB store (`bindings/js/store.js`): a [`JournalBackend`]
//! handle the JS layer feeds with the rows it reads from IndexedDB and drains into the
//! same IndexedDB transaction.
//!
//! A stored `Device` (`Device.createStored` / `openStored` / `importStored`) owns a
//! [`StoredDevice`] over a second handle on the same [`JournalBackend`], so every
//! operation of the device commits into the journal the JS layer then writes to IndexedDB
//! (see `docs/web.md`, "Persistent store (IndexedDB)"). Values crossing the journal
//! boundary are sealed records and keyslots (never plaintext state), so nothing there is
//! secret in the clear; the unlock secret (platform key or passcode) is taken into
//! zeroizing buffers and never kept.

use gochat_e2ee as core;
use gochat_e2ee::ErrorCode;
use gochat_e2ee_store::backend::{Backend, StoreError};
use gochat_e2ee_store::{Argon2Params, Journal, JournalBackend, Passcode, PlatformKey, StoredDevice, Unlock};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use zeroize::Zeroizing;

use crate::holder::Holder;
use crate::{bytes, field, js_error, malformed, opt_bytes, rng, seconds, whole, Device, Obj};

/// A store error thrown as a `GoChatError`-named `Error` with `code` and `retryMayHelp`
/// (true only for `StoreBusy`).
pub(crate) fn store_error(e: StoreError) -> JsValue {
    let code = e.code();
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("GoChatError");
    let obj: &JsValue = err.as_ref();
    let _ = js_sys::Reflect::set(obj, &"code".into(), &code.as_str().into());
    let _ = js_sys::Reflect::set(obj, &"retryMayHelp".into(), &(code == ErrorCode::StoreBusy).into());
    err.into()
}

/// A stored device's error: a refused protocol operation keeps the core's code and
/// `retryMayHelp`; a store failure is thrown as by [`store_error`].
pub(crate) fn device_error(e: StoreError) -> JsValue {
    match e {
        StoreError::Protocol(p) => js_error(p),
        other => store_error(other),
    }
}

/// `NotSupported`: the operation needs the other kind of device (stored / in memory).
pub(crate) fn not_supported(detail: &str) -> JsValue {
    let err = js_sys::Error::new(detail);
    err.set_name("GoChatError");
    let obj: &JsValue = err.as_ref();
    let _ = js_sys::Reflect::set(obj, &"code".into(), &ErrorCode::NotSupported.as_str().into());
    let _ = js_sys::Reflect::set(obj, &"retryMayHelp".into(), &false.into());
    err.into()
}

type JsResult<T> = Result<T, JsValue>;

/// `{platformKey: Uint8Array(32)}` or `{passcode: string, cost?: {memoryKib, iterations,
/// lanes}}`: the unlock and the Argon2id cost a new keyslot gets (the default cost for a
/// platform key, where it is unused, or when `cost` is absent). The key bytes are copied
/// into a buffer wiped on drop. Anything else is `Malformed`; a key of another length or
/// an empty or over-long passcode is refused by the vault (`InvalidStoreParameters`).
fn unlock_arg(v: &JsValue) -> JsResult<(Unlock, Argon2Params)> {
    let key = field(v, "platformKey", "unlock")?;
    let passcode = field(v, "passcode", "unlock")?;
    match (key.is_undefined(), passcode.is_undefined()) {
        (false, true) => {
            let key = key.dyn_into::<Uint8Array>().map_err(|_| malformed("unlock platformKey"))?;
            let key = Zeroizing::new(key.to_vec());
            let key = PlatformKey::from_slice(&key).map_err(|e| store_error(e.into()))?;
            Ok((Unlock::Key(key), Argon2Params::DEFAULT))
        }
        (true, false) => {
            let text = Zeroizing::new(passcode.as_string().ok_or_else(|| malformed("unlock passcode"))?);
            let p = Passcode::from_text(&text).map_err(|e| store_error(e.into()))?;
            Ok((Unlock::Passcode(p), cost_arg(&field(v, "cost", "unlock")?)?))
        }
        _ => Err(malformed("unlock: exactly one of platformKey, passcode")),
    }
}

/// `{memoryKib, iterations, lanes}` (absent: the default, 64 MiB, 3 passes, 1 lane).
/// The vault refuses values outside its bounds (`InvalidStoreParameters`).
fn cost_arg(v: &JsValue) -> JsResult<Argon2Params> {
    if v.is_undefined() || v.is_null() {
        return Ok(Argon2Params::DEFAULT);
    }
    let n = |k: &str| -> JsResult<u32> {
        Ok(whole(&field(v, k, "passcode cost")?, f64::from(u32::MAX), "passcode cost")? as u32)
    };
    Ok(Argon2Params { memory_kib: n("memoryKib")?, iterations: n("iterations")?, lanes: n("lanes")? })
}

fn transfer_passcode(text: String) -> JsResult<Passcode> {
    let text = Zeroizing::new(text);
    Passcode::from_text(&text).map_err(|e| store_error(e.into()))
}

fn stored(s: StoredDevice) -> Device {
    Device { inner: Holder::Stored(Box::new(s)) }
}

fn stored_mut<'a>(d: &'a mut Device, what: &str) -> JsResult<&'a mut StoredDevice> {
    match &mut d.inner {
        Holder::Stored(s) => Ok(s),
        Holder::Memory(_) => Err(not_supported(what)),
    }
}

/// Wrong passcodes (or keys) counted in the store behind `journal` since its last
/// successful unlock; readable before unlocking.
#[wasm_bindgen(js_name = storeFailedAttempts)]
pub fn store_failed_attempts(journal: &StoreJournal) -> JsResult<u32> {
    StoredDevice::failed_attempts(&mut journal.inner.handle()).map_err(store_error)
}

/// The default passcode cost: `{memoryKib: 65536, iterations: 3, lanes: 1}`.
#[wasm_bindgen(js_name = defaultPasscodeCost)]
pub fn default_passcode_cost() -> JsValue {
    let p = Argon2Params::DEFAULT;
    Obj::new().set("memoryKib", p.memory_kib).set("iterations", p.iterations).set("lanes", p.lanes).done()
}

/// The store-backed device (the JS layer, `store.js`, runs each call inside one
/// IndexedDB transaction over `journal`).
#[wasm_bindgen]
impl Device {
    /// Creates a device (as `new Device(userId, now)`) kept in the new store behind
    /// `journal`, protected by `unlock`. Refused with `StoreExists` (nothing written) if
    /// the store already holds a device.
    #[wasm_bindgen(js_name = createStored)]
    pub fn create_stored(journal: &StoreJournal, unlock: JsValue, user_id: &str, now: f64) -> JsResult<Device> {
        let (unlock, cost) = unlock_arg(&unlock)?;
        let device = core::Device::new(user_id, seconds(now), &mut rng());
        StoredDevice::create(Box::new(journal.inner.handle()), &unlock, cost, device, &mut rng())
            .map(stored)
            .map_err(store_error)
    }

    /// Opens the store behind `journal`. A wrong key or passcode is `WrongKey` and is
    /// counted (the count is in the journal: store it); at the attempt limit passcodes are
    /// refused with `AttemptLimitReached`; a moved device's store is `StoreRetired`.
    /// `minGeneration` is the rollback anchor (a `storeGeneration` the app recorded
    /// outside the store): a store below it is an older copy put back, refused with
    /// `StoreRolledBack`, nothing loaded. Absent (or null), no check is made.
    #[wasm_bindgen(js_name = openStored)]
    pub fn open_stored(journal: &StoreJournal, unlock: JsValue, min_generation: JsValue) -> JsResult<Device> {
        let (unlock, _) = unlock_arg(&unlock)?;
        let min = if min_generation.is_undefined() || min_generation.is_null() {
            0
        } else {
            whole(&min_generation, 9_007_199_254_740_991.0, "minGeneration")? as u64
        };
        StoredDevice::open_at_least(Box::new(journal.inner.handle()), &unlock, min).map(stored).map_err(store_error)
    }

    /// Creates the store behind `journal` from a `moveOut` container (opened with
    /// `transferPasscode`); the device starts a new sender epoch.
    #[wasm_bindgen(js_name = importStored)]
    pub fn import_stored(
        journal: &StoreJournal,
        unlock: JsValue,
        container: &[u8],
        transfer_passcode_: String,
    ) -> JsResult<Device> {
        let (unlock, cost) = unlock_arg(&unlock)?;
        let transfer = transfer_passcode(transfer_passcode_)?;
        StoredDevice::import(Box::new(journal.inner.handle()), &unlock, cost, container, &transfer, &mut rng())
            .map(stored)
            .map_err(store_error)
    }

    /// Whether this device is kept in a store.
    #[wasm_bindgen(getter, js_name = isStored)]
    pub fn is_stored(&self) -> bool {
        matches!(self.inner, Holder::Stored(_))
    }

    /// Deletes the kept result of the message with `digest` (from `decrypt`) once the app
    /// has handled it durably; whether one was kept. Always false in memory.
    pub fn ack(&mut self, digest: &[u8]) -> JsResult<bool> {
        let digest = <[u8; 32]>::try_from(digest).map_err(|_| malformed("digest"))?;
        match &mut self.inner {
            Holder::Memory(_) => Ok(false),
            Holder::Stored(s) => s.ack(&digest).map_err(device_error),
        }
    }

    /// Deletes the kept results of many messages (an array of 32-byte digests) in one
    /// transaction (one commit, as `decryptBatch`); how many were kept. Always 0 in
    /// memory. A digest that is not 32 bytes is `Malformed` (nothing acknowledged).
    #[wasm_bindgen(js_name = ackBatch)]
    pub fn ack_batch(&mut self, digests: Vec<js_sys::Uint8Array>) -> JsResult<u32> {
        let digests = digests
            .iter()
            .map(|d| <[u8; 32]>::try_from(d.to_vec().as_slice()).map_err(|_| malformed("digest")))
            .collect::<JsResult<Vec<[u8; 32]>>>()?;
        match &mut self.inner {
            Holder::Memory(_) => Ok(0),
            Holder::Stored(s) => s.ack_many(&digests).map_err(device_error),
        }
    }

    /// Re-wraps the store's data key under `new` (unlocked with `old`, counted if
    /// wrong); no record is re-encrypted. `NotSupported` in memory.
    #[wasm_bindgen(js_name = changePasscode)]
    pub fn change_passcode(&mut self, old: JsValue, new: JsValue) -> JsResult<()> {
        let ((old, _), (new, cost)) = (unlock_arg(&old)?, unlock_arg(&new)?);
        let s = stored_mut(self, "an in-memory device has no passcode")?;
        s.change_passcode(&old, &new, cost, &mut rng()).map_err(device_error)
    }

    /// Sets how many wrong passcodes the store tolerates before `AttemptLimitReached`
    /// (at least 1). `NotSupported` in memory.
    #[wasm_bindgen(js_name = setAttemptLimit)]
    pub fn set_attempt_limit(&mut self, limit: u32) -> JsResult<()> {
        stored_mut(self, "an in-memory device has no store")?.set_attempt_limit(limit).map_err(device_error)
    }

    /// Moves the device to a new installation: the whole device encrypted under
    /// `transferPasscode` (for `importStored`; `cost` as in an unlock), and this store
    /// retired in the same transaction (every later call on it is `StoreRetired`), so
    /// live ratchet state never runs in two places. `NotSupported` in memory (use
    /// `export`).
    #[wasm_bindgen(js_name = moveOut)]
    pub fn move_out(&mut self, transfer_passcode_: String, cost: JsValue) -> JsResult<Vec<u8>> {
        let (transfer, cost) = (transfer_passcode(transfer_passcode_)?, cost_arg(&cost)?);
        let s = stored_mut(self, "an in-memory device moves with export")?;
        s.export(&transfer, cost, &mut rng()).map_err(device_error)
    }

    /// The store generation this device reflects (grows by one with every committed
    /// operation, never decreases): record it outside the store as a rollback anchor and
    /// pass it as `minGeneration` when opening. `undefined` in memory.
    #[wasm_bindgen(getter, js_name = storeGeneration)]
    pub fn store_generation(&self) -> Option<f64> {
        match &self.inner {
            Holder::Stored(s) => Some(s.generation() as f64),
            Holder::Memory(_) => None,
        }
    }

    /// Applies what other tabs committed, now (every operation also does this first).
    #[wasm_bindgen(js_name = syncStore)]
    pub fn sync_store(&mut self) -> JsResult<()> {
        match &mut self.inner {
            Holder::Memory(_) => Ok(()),
            Holder::Stored(s) => s.sync_now().map_err(device_error),
        }
    }

    /// After the JS layer failed to write a committed journal (an aborted IndexedDB
    /// transaction) and reloaded the rows into the same `StoreJournal`: the device
    /// reloads every record before its next operation, so state the disk never got is
    /// never used. `storedGeneration` is `storeGeneration` as of the last transaction
    /// the JS layer did store (a disk below it is still refused as rolled back). No-op
    /// in memory.
    #[wasm_bindgen(js_name = storeReloaded)]
    pub fn store_reloaded(&mut self, stored_generation: f64) -> JsResult<()> {
        let g = whole(&stored_generation.into(), 9_007_199_254_740_991.0, "storedGeneration")? as u64;
        if let Holder::Stored(s) = &mut self.inner {
            s.reload_before_next(g);
        }
        Ok(())
    }
}

fn key32(b: &[u8]) -> JsResult<[u8; 32]> {
    <[u8; 32]>::try_from(b).map_err(|_| malformed("record key hash"))
}

fn generation(g: f64) -> JsResult<u64> {
    // JS numbers are exact up to 2^53; a generation is a count of commits.
    if g.is_finite() && g >= 0.0 && g.fract() == 0.0 && g <= 9_007_199_254_740_991.0 {
        Ok(g as u64)
    } else {
        Err(malformed("generation"))
    }
}

fn opt_value(v: &JsValue) -> JsResult<Option<Vec<u8>>> {
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    v.dyn_ref::<Uint8Array>().map(|a| Some(a.to_vec())).ok_or_else(|| malformed("record value"))
}

fn journal_obj(j: Journal) -> JsValue {
    let meta: Array = j.meta.iter().map(|(n, v)| Array::of2(&n.as_str().into(), &bytes(v))).collect();
    let records: Array = j
        .records
        .iter()
        .map(|(k, (g, v))| Array::of3(&bytes(k), &(*g as f64).into(), &opt_bytes(v.as_deref())))
        .collect();
    Obj::new().set("meta", meta).set("records", records).done()
}

/// A handle on the rows of one store as the JS layer read them from IndexedDB, with the
/// journal of the writes it must store. See the module documentation.
#[wasm_bindgen]
pub struct StoreJournal {
    inner: JournalBackend,
}

#[wasm_bindgen]
impl StoreJournal {
    /// A handle on a new, empty store (schema version 1).
    #[wasm_bindgen(js_name = empty)]
    pub fn empty() -> StoreJournal {
        StoreJournal { inner: JournalBackend::new() }
    }

    /// A handle on the rows read from IndexedDB: `meta` as `[name, Uint8Array]` pairs
    /// (the `schema_version` row included), `records` as `[keyHash, generation, value |
    /// null]`. Refuses a newer schema (`UnsupportedSchema`) and a store without a valid
    /// schema row (`StoreCorrupt`).
    pub fn load(meta: Vec<JsValue>, records: Vec<JsValue>) -> JsResult<StoreJournal> {
        let mut m = Vec::with_capacity(meta.len());
        for row in meta {
            let row: Array = row.dyn_into().map_err(|_| malformed("meta row"))?;
            let name = row.get(0).as_string().ok_or_else(|| malformed("meta name"))?;
            let value = opt_value(&row.get(1))?.ok_or_else(|| malformed("meta value"))?;
            m.push((name, value));
        }
        let mut r = Vec::with_capacity(records.len());
        for row in records {
            let row: Array = row.dyn_into().map_err(|_| malformed("record row"))?;
            let key = opt_value(&row.get(0))?.ok_or_else(|| malformed("record key hash"))?;
            let g = generation(row.get(1).as_f64().ok_or_else(|| malformed("generation"))?)?;
            r.push((key32(&key)?, g, opt_value(&row.get(2))?));
        }
        JournalBackend::load(m, r).map(|inner| StoreJournal { inner }).map_err(store_error)
    }

    /// The highest record generation this handle has seen: feed the records above it
    /// before the next operation.
    #[wasm_bindgen(js_name = syncedGeneration)]
    pub fn synced_generation(&self) -> f64 {
        self.inner.synced_generation() as f64
    }

    /// Applies a meta row another tab committed (between operations only).
    #[wasm_bindgen(js_name = feedMeta)]
    pub fn feed_meta(&self, name: &str, value: &[u8]) -> JsResult<()> {
        self.inner.feed_meta(name, value).map_err(store_error)
    }

    /// Applies a record row another tab committed (`null` = tombstone; between
    /// operations only).
    #[wasm_bindgen(js_name = feedRecord)]
    pub fn feed_record(&self, key_hash: &[u8], generation_: f64, value: JsValue) -> JsResult<()> {
        let g = generation(generation_)?;
        self.inner.feed_record(&key32(key_hash)?, g, opt_value(&value)?.as_deref()).map_err(store_error)
    }

    /// Drains the journal of the transactions committed since the last drain:
    /// `{meta: [name, Uint8Array][], records: [keyHash, generation, value | null][]}`.
    #[wasm_bindgen(js_name = takeJournal)]
    pub fn take_journal(&self) -> JsResult<JsValue> {
        self.inner.take_journal().map(journal_obj).map_err(store_error)
    }

    /// After a failed IndexedDB write: every later call fails with `StoreCorrupt` (load
    /// a new handle, or `reload` this one).
    pub fn poison(&self) {
        self.inner.poison();
    }

    /// Replaces this handle's rows in place with the rows read again from IndexedDB (as
    /// `load`), clearing a poisoning; a stored device on this handle keeps it (call its
    /// `storeReloaded`). Refused as `load` refuses.
    pub fn reload(&self, meta: Vec<JsValue>, records: Vec<JsValue>) -> JsResult<()> {
        let fresh = StoreJournal::load(meta, records)?;
        self.inner.replace_with(fresh.inner).map_err(store_error)
    }

    /// Starts a transaction (the caller holds the store's Web Lock).
    pub fn begin(&mut self) -> JsResult<()> {
        self.inner.begin().map_err(store_error)
    }

    /// Moves the transaction's writes into the journal (not yet durable: the JS layer
    /// writes the drained journal to IndexedDB).
    pub fn commit(&mut self) -> JsResult<()> {
        self.inner.commit().map_err(store_error)
    }

    /// Drops the transaction's writes.
    pub fn rollback(&mut self) -> JsResult<()> {
        self.inner.rollback().map_err(store_error)
    }

    /// The meta value `name`, or `null`.
    #[wasm_bindgen(js_name = getMeta)]
    pub fn get_meta(&mut self, name: &str) -> JsResult<JsValue> {
        self.inner.get_meta(name).map(|v| opt_bytes(v.as_deref())).map_err(store_error)
    }

    /// Writes a meta value (in a transaction).
    #[wasm_bindgen(js_name = putMeta)]
    pub fn put_meta(&mut self, name: &str, value: &[u8]) -> JsResult<()> {
        self.inner.put_meta(name, value).map_err(store_error)
    }

    /// The live value of a record, or `null`.
    pub fn get(&mut self, key_hash: &[u8]) -> JsResult<JsValue> {
        let k = key32(key_hash)?;
        self.inner.get(&k).map(|v| opt_bytes(v.as_deref())).map_err(store_error)
    }

    /// Writes (or, with `null`, tombstones) a record at `generation` (in a transaction).
    pub fn put(&mut self, key_hash: &[u8], value: JsValue, generation_: f64) -> JsResult<()> {
        let k = key32(key_hash)?;
        let v = opt_value(&value)?;
        self.inner.put(&k, v.as_deref(), generation(generation_)?).map_err(store_error)
    }
}
