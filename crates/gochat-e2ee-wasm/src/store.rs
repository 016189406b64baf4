//! The JS side of the IndexedDB store (`bindings/js/store.js`): a [`JournalBackend`]
//! handle the JS layer feeds with the rows it reads from IndexedDB and drains into the
//! same IndexedDB transaction.
//!
//! `StoreJournal` is the seam only. Its raw `begin` / `put` / `commit` are what the
//! store-backed device will call through the store crate's `StoredDevice`; the JS layer
//! and its tests drive them directly until that device is wired in (see `docs/web.md`,
//! "Persistent store (IndexedDB)"). Values crossing this boundary are sealed records and
//! keyslots (never plaintext state), so nothing here is secret in the clear.

use gochat_e2ee::ErrorCode;
use gochat_e2ee_store::backend::{Backend, StoreError};
use gochat_e2ee_store::{Journal, JournalBackend};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{bytes, malformed, opt_bytes, Obj};

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

type JsResult<T> = Result<T, JsValue>;

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
    /// a new handle).
    pub fn poison(&self) {
        self.inner.poison();
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
