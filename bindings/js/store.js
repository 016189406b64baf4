// The IndexedDB store of @gochat/e2ee (docs/web.md, "Persistent store (IndexedDB)").
//
// The wasm side is synchronous and IndexedDB is not, so every operation runs as:
//   Web Lock 'gochat-e2ee:<name>' (cross-tab; an in-process queue where Web Locks are missing)
//   -> one readwrite IDB transaction over `meta` and `records`
//   -> feed the rows other tabs committed (meta: all rows; records: the `generation` index
//      above the handle's synced generation) into the wasm StoreJournal
//   -> run the synchronous wasm operation (it commits into the journal)
//   -> write the drained journal in the same IDB transaction
//   -> resolve only after the transaction's `complete` event ("persist before send").
// An aborted or failed transaction rejects with a StoreIo GoChatError, poisons the handle,
// and the handle reloads every row from IndexedDB before its next operation.
import { StoreJournal as RawStoreJournal } from './pkg/gochat_e2ee_wasm.js';
import { GoChatError } from './core.js';

/** The schema version of the stores written (IDB database version and meta `schema_version`). */
export const STORE_SCHEMA_VERSION = 1;
/** The IndexedDB database name of store `name`, and the name of its Web Lock. */
export const storeDatabaseName = (name) => `gochat-e2ee:${name}`;

const META = 'meta';
const RECORDS = 'records';
const GENERATION_INDEX = 'generation';
const SCHEMA_META = 'schema_version';

function storeError(code, message, cause) {
  const e = new GoChatError(message, code, code === 'StoreBusy');
  if (cause !== undefined) e.cause = cause;
  return e;
}

function adopt(e) {
  if (e instanceof Error && e.name === 'GoChatError' && !(e instanceof GoChatError)) {
    Object.setPrototypeOf(e, GoChatError.prototype);
  }
  return e;
}

const u32be = (n) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
const u8 = (v) => (v == null ? null : v instanceof Uint8Array ? v : new Uint8Array(v));

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// One promise chain per store name: the lock where Web Locks are missing (Node, old
// browsers). It serializes the handles of one JS realm only.
const queues = new Map();
function localLock(name, fn) {
  const tail = queues.get(name) ?? Promise.resolve();
  const run = tail.then(fn, fn);
  const next = run.then(() => {}, () => {});
  queues.set(name, next);
  next.then(() => { if (queues.get(name) === next) queues.delete(name); });
  return run;
}

function openDatabase(idb, dbName) {
  return new Promise((resolve, reject) => {
    const req = idb.open(dbName, STORE_SCHEMA_VERSION);
    let created = false;
    req.onupgradeneeded = (ev) => {
      if (ev.oldVersion !== 0) {
        // Version 1 is the only schema; a future version migrates here, step by step.
        req.transaction.abort();
        return;
      }
      created = true;
      const db = req.result;
      db.createObjectStore(META);
      const records = db.createObjectStore(RECORDS);
      records.createIndex(GENERATION_INDEX, 'g');
      req.transaction.objectStore(META).put(u32be(STORE_SCHEMA_VERSION), SCHEMA_META);
    };
    req.onsuccess = () => resolve({ db: req.result, created });
    req.onerror = () => {
      const e = req.error;
      if (e && e.name === 'VersionError') {
        reject(storeError('UnsupportedSchema', `${dbName} was written by a newer library version`, e));
      } else {
        reject(storeError('StoreIo', `IndexedDB open of ${dbName} failed: ${e && e.message}`, e));
      }
    };
    req.onblocked = () => reject(storeError('StoreBusy', `${dbName} is held open by an older version in another tab`));
  });
}

/**
 * A store in IndexedDB, shared by every tab of the origin. See docs/web.md.
 * Operations run one at a time across tabs, each in one IDB transaction.
 */
export class IndexedDbStore {
  /** @private */
  constructor(name, db, journal, options) {
    this.name = name;
    this._db = db;
    this._journal = journal;
    this._stale = false;
    this._options = options;
    this._locks = options.locks === undefined ? globalThis.navigator?.locks : options.locks;
    db.onversionchange = () => { db.close(); this._closed = true; };
  }

  /**
   * Opens (creating if absent) the store `name`: IDB database `gochat-e2ee:<name>`,
   * schema version 1. Refuses a newer schema (`UnsupportedSchema`).
   * `options.indexedDB` / `options.locks` replace the globals (`locks: null` forces the
   * in-process queue); `options.durability` is the IDB transaction durability hint
   * (default 'strict': flushed before `complete`); `options.beforeComplete(tx)` is a test hook run after the journal
   * is written and before `complete` (a test aborts `tx` there).
   */
  static async open(name, options = {}) {
    if (typeof name !== 'string' || name.length === 0) {
      throw storeError('InvalidStoreParameters', 'a store name is a non-empty string');
    }
    const idb = options.indexedDB ?? globalThis.indexedDB;
    if (!idb) throw storeError('StoreIo', 'IndexedDB is not available here');
    const { db } = await openDatabase(idb, storeDatabaseName(name));
    const store = new IndexedDbStore(name, db, null, options);
    await store._withLock(() => store._reload());
    return store;
  }

  /** Deletes the database of store `name` (every tab must have closed it). */
  static deleteStore(name, options = {}) {
    const idb = options.indexedDB ?? globalThis.indexedDB;
    return request(idb.deleteDatabase(storeDatabaseName(name)));
  }

  /** The highest record generation this handle has seen. */
  get generation() {
    return this._journal.syncedGeneration();
  }

  /** Closes the handle (later operations reject with StoreIo). */
  close() {
    this._closed = true;
    this._db.close();
    this._journal?.free();
    this._journal = null;
  }

  _withLock(fn) {
    const lockName = storeDatabaseName(this.name);
    if (this._locks && typeof this._locks.request === 'function') {
      return this._locks.request(lockName, { mode: 'exclusive' }, fn);
    }
    return localLock(lockName, fn);
  }

  async _reload() {
    const tx = this._db.transaction([META, RECORDS], 'readonly');
    const metaStore = tx.objectStore(META);
    const recStore = tx.objectStore(RECORDS);
    const [metaKeys, metaValues, recKeys, recValues] = await Promise.all([
      request(metaStore.getAllKeys()), request(metaStore.getAll()),
      request(recStore.getAllKeys()), request(recStore.getAll()),
    ]);
    const meta = metaKeys.map((k, i) => [k, u8(metaValues[i])]);
    const records = recKeys.map((k, i) => [u8(k), recValues[i].g, u8(recValues[i].v)]);
    let journal;
    try {
      journal = RawStoreJournal.load(meta, records);
    } catch (e) {
      throw adopt(e);
    }
    this._journal?.free();
    this._journal = journal;
    this._stale = false;
  }

  /**
   * Runs `op(journal)` as one operation: under the store's lock, inside one readwrite IDB
   * transaction, after feeding the rows other tabs committed. `op` is synchronous (it
   * must not await: the IDB transaction would commit). What `op` committed into the
   * journal is written in the same transaction; the returned promise resolves with
   * `op`'s result (or rejects with what it threw) only after `complete`. A transaction
   * that aborts or fails rejects with `StoreIo`, and the handle reloads before its next
   * operation. Writes `op` rolled back are never written.
   */
  transact(op) {
    return this._withLock(async () => {
      if (this._closed) throw storeError('StoreIo', `store ${this.name} is closed`);
      if (this._stale) await this._reload();
      const journal = this._journal;
      let tx;
      try {
        tx = this._db.transaction([META, RECORDS], 'readwrite', { durability: this._options.durability ?? 'strict' });
      } catch (e) {
        throw storeError('StoreIo', `IndexedDB transaction refused: ${e && e.message}`, e);
      }
      const done = new Promise((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onabort = () => reject(tx.error ?? new DOMException('aborted', 'AbortError'));
        tx.onerror = (ev) => ev.preventDefault(); // reported through onabort
      });
      done.catch(() => {});
      const metaStore = tx.objectStore(META);
      const recStore = tx.objectStore(RECORDS);
      let outcome;
      try {
        // Sync: every meta row (a handful), and the records above our generation.
        const since = journal.syncedGeneration();
        const [metaKeys, metaValues, changed] = await Promise.all([
          request(metaStore.getAllKeys()), request(metaStore.getAll()),
          request(recStore.index(GENERATION_INDEX).getAll(IDBKeyRange.lowerBound(since, true))),
        ]);
        const changedKeys = changed.length
          ? await request(recStore.index(GENERATION_INDEX).getAllKeys(IDBKeyRange.lowerBound(since, true)))
          : [];
        for (let i = 0; i < metaKeys.length; i++) {
          if (metaKeys[i] !== SCHEMA_META) journal.feedMeta(metaKeys[i], u8(metaValues[i]));
        }
        for (let i = 0; i < changed.length; i++) {
          journal.feedRecord(u8(changedKeys[i]), changed[i].g, u8(changed[i].v));
        }
        // The operation: synchronous, inside the still-active transaction.
        try {
          outcome = { ok: true, value: op(journal) };
        } catch (e) {
          outcome = { ok: false, error: adopt(e) };
          try { journal.rollback(); } catch { /* op had no transaction open */ }
        }
        if (outcome.ok && outcome.value && typeof outcome.value.then === 'function') {
          throw storeError('InvalidStoreParameters', 'a store operation must be synchronous');
        }
        const written = journal.takeJournal();
        for (const [name, value] of written.meta) metaStore.put(value, name);
        for (const [key, g, value] of written.records) recStore.put({ g, v: value }, key);
        this._options.beforeComplete?.(tx);
      } catch (e) {
        try { tx.abort(); } catch { /* already finished */ }
        this._poison();
        await done.catch(() => {});
        throw isStoreError(e) ? e : storeError('StoreIo', `store operation failed: ${e && e.message}`, e);
      }
      try {
        await done;
      } catch (e) {
        this._poison();
        throw storeError('StoreIo', `IndexedDB transaction aborted: ${e && (e.message || e.name)}`, e);
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    });
  }

  _poison() {
    this._journal?.poison();
    this._stale = true;
  }
}

function isStoreError(e) {
  return e instanceof GoChatError;
}
