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
import {
  StoreJournal as RawStoreJournal,
  Device as RawDevice,
  storeFailedAttempts as rawStoreFailedAttempts,
} from './pkg/gochat_e2ee_wasm.js';
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
    this._reloads = 0;
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
    try {
      if (this._journal) {
        // In place: a stored device holds a second handle on these rows.
        this._journal.reload(meta, records);
        this._reloads++;
      } else {
        this._journal = RawStoreJournal.load(meta, records);
      }
    } catch (e) {
      throw adopt(e);
    }
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

// --- The store-backed Device (docs/web.md, "Stored devices") --------------------------

/**
 * A Device kept in an IndexedDB store. Every method of `Device` is here, async: each call
 * takes the store's Web Lock, opens one readwrite IndexedDB transaction, feeds in what
 * other tabs committed, runs the synchronous wasm method (which commits its change set into
 * the journal), writes the drained journal in the same transaction and resolves only after
 * `complete`. A rejected call changed nothing in IndexedDB; an aborted transaction never
 * releases its result (`StoreIo`) and the device reloads every record before its next call.
 * Getters stay synchronous: `userId`, `identityKey`, `fingerprint` never change; the others
 * (`identityPolicy`, `stateLen`, `isPrimary`, ...) read this tab's view as of its last call
 * (`await device.syncStore()` first to see another tab's changes).
 */
export class StoredDevice {
  /** @private */
  constructor(store, raw) {
    this._store = store;
    this._raw = raw;
    this._reloads = store._reloads;
    // storeGeneration as of the last IndexedDB transaction of this handle that completed.
    this._stored = raw.storeGeneration;
    this._queue = [];
    this._kicked = false;
  }

  /** The store's name. */
  get storeName() { return this._store.name; }

  /**
   * @private Queues `raw[method](...args)`. Calls queued while the store is busy run
   * together (in order, at most MAX_CALLS_PER_TRANSACTION) in the next IndexedDB
   * transaction: each is its own journal transaction with its own result or error, and
   * every result is released only after that IndexedDB transaction completed.
   */
  _call(method, args) {
    return new Promise((resolve, reject) => {
      this._queue.push({ method, args, resolve, reject });
      this._kick();
    });
  }

  /** @private Starts a store operation for the queued calls, unless one is waiting already. */
  _kick() {
    if (this._kicked || this._queue.length === 0) return;
    this._kicked = true;
    let batch = null;
    this._store.transact(() => {
      this._kicked = false;
      batch = this._queue.splice(0, MAX_CALLS_PER_TRANSACTION);
      this._kick(); // the rest (if any) waits for the lock behind this operation
      const raw = this._raw;
      if (!raw) throw storeError('StoreIo', 'this stored device is closed');
      if (this._reloads !== this._store._reloads) {
        // The rows were reloaded after a failed write: the device reloads too.
        raw.storeReloaded(this._stored);
        this._reloads = this._store._reloads;
      }
      // Every earlier operation of this handle completed (or was undone just above).
      this._stored = raw.storeGeneration;
      // The wasm calls are failure-atomic: a refused one rolled its journal transaction back.
      return batch.map(({ method, args }) => {
        try {
          return { ok: true, value: raw[method](...args) };
        } catch (e) {
          return { ok: false, error: adopt(e) };
        }
      });
    }).then((outcomes) => {
      outcomes.forEach((o, i) => (o.ok ? batch[i].resolve(o.value) : batch[i].reject(o.error)));
    }, (e) => {
      // Nothing of this operation is kept (or it never ran): no result is released.
      if (batch === null) {
        this._kicked = false;
        batch = this._queue.splice(0);
      }
      for (const c of batch) c.reject(e);
    });
  }

  /** Waits for the running call, then frees the wasm device and closes the store handle. */
  close() {
    return this._store._withLock(() => {
      this._raw?.free();
      this._raw = null;
      if (!this._store._closed) this._store.close();
    });
  }

  /** As `close`, without waiting. */
  free() {
    this._raw?.free();
    this._raw = null;
    if (!this._store._closed) this._store.close();
  }
}
if (typeof Symbol.dispose === 'symbol') StoredDevice.prototype[Symbol.dispose] = StoredDevice.prototype.free;

/**
 * At most this many queued calls of one stored device share an IndexedDB transaction (it
 * bounds how long one operation holds the store's lock and how much it writes).
 */
export const MAX_CALLS_PER_TRANSACTION = 64;

// Methods of the wasm Device that are not forwarded: lifetime and the store's own reload hook.
const NOT_FORWARDED = new Set(['constructor', 'free', 'storeReloaded', '__destroy_into_raw']);
// Every method of Device.prototype, forwarded by name (called by name at call time, so the
// error wrappers core.js installs later apply too), so no capability can be forgotten.
function forwardDeviceMethods() {
  for (const name of Object.getOwnPropertyNames(RawDevice.prototype)) {
    if (NOT_FORWARDED.has(name) || name.startsWith('_') || name in StoredDevice.prototype) continue;
    const d = Object.getOwnPropertyDescriptor(RawDevice.prototype, name);
    if (d.get) {
      Object.defineProperty(StoredDevice.prototype, name, {
        get() {
          if (!this._raw) throw storeError('StoreIo', 'this stored device is closed');
          return this._raw[name];
        },
        configurable: true,
      });
    } else if (typeof d.value === 'function') {
      Object.defineProperty(StoredDevice.prototype, name, {
        value: function (...args) { return this._call(name, args); },
        writable: true,
        configurable: true,
      });
    }
  }
}

forwardDeviceMethods();

async function withNewDevice(name, options, make) {
  const store = await IndexedDbStore.open(name, options ?? {});
  let raw = null;
  try {
    await store.transact((j) => { raw = make(j); return null; });
  } catch (e) {
    // A device whose creation or unlock the disk did not keep is never handed out.
    raw?.free();
    store.close();
    throw e;
  }
  return new StoredDevice(store, raw);
}

/**
 * Creates a device (as `new Device(userId, now)`) kept in the new IndexedDB store `name`,
 * protected by `unlock` (`{platformKey}` or `{passcode, cost?}`). `StoreExists` if the
 * store already holds a device. `options` as `IndexedDbStore.open`.
 */
export function createStoredDevice(name, unlock, userId, now, options) {
  return withNewDevice(name, options, (j) => RawDevice.createStored(j, unlock, userId, now));
}

/**
 * Opens the device in store `name`. A wrong key or passcode rejects with `WrongKey`, changes
 * nothing but the failed-attempt count (`storeFailedAttempts`); at the attempt limit
 * passcodes are refused with `AttemptLimitReached`; a moved device's store is `StoreRetired`.
 * `options.minGeneration` is the rollback anchor (a `storeGeneration` recorded outside the
 * store): an older store is refused with `StoreRolledBack`, nothing loaded.
 */
export function openStoredDevice(name, unlock, options) {
  return withNewDevice(name, options, (j) => RawDevice.openStored(j, unlock, options?.minGeneration ?? null));
}

/**
 * Creates store `name` from a `moveOut` container (opened with `transferPasscode`); the
 * device starts a new sender epoch.
 */
export function importStoredDevice(name, unlock, container, transferPasscode, options) {
  return withNewDevice(name, options, (j) => RawDevice.importStored(j, unlock, container, transferPasscode));
}

/** Wrong passcodes (or keys) counted in store `name` since its last successful unlock. */
export async function storeFailedAttempts(name, options) {
  const store = await IndexedDbStore.open(name, options ?? {});
  try {
    return await store.transact((j) => rawStoreFailedAttempts(j));
  } finally {
    store.close();
  }
}

// --- The platform key: a non-extractable WebCrypto key (docs/web.md, "Platform key") ----

/** The IndexedDB database holding the non-extractable platform keys of this origin. */
export const PLATFORM_KEY_DATABASE = 'gochat-e2ee-platform-keys';
/** The HMAC input from which a store key is derived. */
export const PLATFORM_KEY_LABEL = 'GoChat-E2EE web store key v1';
const KEYS = 'keys';

function openKeyDatabase(idb) {
  return new Promise((resolve, reject) => {
    const req = idb.open(PLATFORM_KEY_DATABASE, 1);
    req.onupgradeneeded = () => { req.result.createObjectStore(KEYS); };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(storeError('StoreIo', `IndexedDB open of ${PLATFORM_KEY_DATABASE} failed`, req.error));
  });
}

async function keyTransaction(options, mode, fn) {
  const idb = options?.indexedDB ?? globalThis.indexedDB;
  if (!idb) throw storeError('StoreIo', 'IndexedDB is not available here');
  const db = await openKeyDatabase(idb);
  try {
    const tx = db.transaction(KEYS, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(storeError('StoreIo', 'platform key transaction aborted', tx.error));
    });
    const value = await fn(tx.objectStore(KEYS));
    await done;
    return value;
  } finally {
    db.close();
  }
}

async function deriveStoreKey(cryptoKey) {
  const mac = await globalThis.crypto.subtle.sign('HMAC', cryptoKey, new TextEncoder().encode(PLATFORM_KEY_LABEL));
  return new Uint8Array(mac);
}

/**
 * Creates the platform key of store `name`: a NON-extractable HMAC-SHA-256 CryptoKey kept
 * in IndexedDB (database `gochat-e2ee-platform-keys`), and returns the 32-byte store key
 * derived from it (as `platformKeyFor`). `StoreExists` if `name` already has one (a new key
 * would lock the store out). The key's bytes can never be read out by script.
 */
export async function generatePlatformKey(name, options) {
  const key = await globalThis.crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256', length: 256 }, false, ['sign']);
  const stored = await keyTransaction(options, 'readwrite', async (keys) => {
    if ((await request(keys.getKey(name))) !== undefined) return false;
    keys.add(key, name);
    return true;
  });
  if (!stored) throw storeError('StoreExists', `a platform key for ${name} already exists`);
  return deriveStoreKey(key);
}

/**
 * The 32-byte store key of `name`: HMAC-SHA-256(platform key, "GoChat-E2EE web store key v1").
 * `null` if `name` has no platform key (`generatePlatformKey` makes one).
 */
export async function platformKeyFor(name, options) {
  const key = await keyTransaction(options, 'readonly', (keys) => request(keys.get(name)));
  if (!key) return null;
  return deriveStoreKey(key);
}

/** Deletes the platform key of `name` (the store it opens becomes unopenable); whether one was held. */
export async function deletePlatformKey(name, options) {
  return keyTransaction(options, 'readwrite', async (keys) => {
    const held = (await request(keys.getKey(name))) !== undefined;
    if (held) keys.delete(name);
    return held;
  });
}
