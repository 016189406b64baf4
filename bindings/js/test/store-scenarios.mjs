// Scenarios of the IndexedDB store (store.js), shared by Node (fake-indexeddb, the
// in-process queue as the lock) and headless Chromium (real IndexedDB and Web Locks).
// Each takes the library and options passed on to IndexedDbStore.open.
//
// The operations here drive the wasm StoreJournal directly (begin / put / commit), as the
// store-backed device does through the store crate: a record per key, the value a counter.

const enc = new TextEncoder();
const dec = new TextDecoder();
const key = (s) => { const k = new Uint8Array(32); k.set(enc.encode(s).slice(0, 32)); return k; };
export const COUNTER = key('counter');

function check(cond, msg) { if (!cond) throw new Error(msg); }

/** One read-modify-write of the counter: the shape of a ratchet step (read state, advance, write). */
export function increment(journal, tag) {
  journal.begin();
  const cur = journal.get(COUNTER);
  const n = cur ? Number(dec.decode(cur).split(' ')[0]) : 0;
  const g = journal.syncedGeneration() + 1;
  journal.put(COUNTER, enc.encode(`${n + 1} ${tag}`), g);
  journal.put(key(`log-${n + 1}`), enc.encode(tag), g);
  journal.commit();
  return n + 1;
}

export async function readCounter(lib, name, options) {
  const store = await lib.IndexedDbStore.open(name, options);
  try {
    return await store.transact((j) => { const v = j.get(COUNTER); return v ? Number(dec.decode(v).split(' ')[0]) : 0; });
  } finally { store.close(); }
}

/** Writes `n` increments, closes, reopens and checks they persisted. */
export async function persistAndReopen(lib, name, options, n = 5) {
  const store = await lib.IndexedDbStore.open(name, options);
  for (let i = 1; i <= n; i++) check(await store.transact((j) => increment(j, 'p')) === i, 'counter steps by one');
  const g = store.generation;
  store.close();
  const again = await lib.IndexedDbStore.open(name, options);
  check(again.generation === g, `generation ${again.generation} after reopen, expected ${g}`);
  check(await again.transact((j) => increment(j, 'p')) === n + 1, 'continues after reopen');
  again.close();
}

/** `handles` handles (tabs in the browser) racing `n` increments each: every step counted once. */
export async function race(lib, name, options, tag, n) {
  const store = await lib.IndexedDbStore.open(name, options);
  const seen = [];
  for (let i = 0; i < n; i++) seen.push(await store.transact((j) => increment(j, tag)));
  store.close();
  return seen;
}

/** After a race: the counter equals the number of steps and every step has exactly one log row. */
export async function checkRace(lib, name, options, total) {
  const store = await lib.IndexedDbStore.open(name, options);
  try {
    const got = await store.transact((j) => {
      const v = j.get(COUNTER);
      const n = v ? Number(dec.decode(v).split(' ')[0]) : 0;
      let logs = 0;
      for (let i = 1; i <= total + 1; i++) if (j.get(key(`log-${i}`))) logs++;
      return { n, logs };
    });
    check(got.n === total, `counter ${got.n}, expected ${total} (a lost update = a forked session)`);
    check(got.logs === total, `${got.logs} log rows, expected ${total}`);
  } finally { store.close(); }
}

/** An aborted IDB transaction: the result is never released, the promise rejects StoreIo,
 *  nothing is written, and the handle reloads and carries on. */
export async function abortNeverReleases(lib, name, options) {
  let abortNext = false;
  const store = await lib.IndexedDbStore.open(name, { ...options, beforeComplete: (tx) => { if (abortNext) tx.abort(); } });
  check(await store.transact((j) => increment(j, 'a')) === 1, 'first step');
  abortNext = true;
  let released = null;
  try {
    released = await store.transact((j) => increment(j, 'a'));
  } catch (e) {
    check(e.name === 'GoChatError' && e.code === 'StoreIo', `aborted op rejects StoreIo, got ${e.code}: ${e.message}`);
  }
  check(released === null, 'the result of an aborted transaction was released');
  abortNext = false;
  check(await store.transact((j) => increment(j, 'a')) === 2, 'after an abort the handle reloads: step 2 again');
  store.close();
  check(await readCounter(lib, name, options) === 2, 'the aborted step is not stored');
}

/** An operation that throws: the rejection is its error, and its rolled-back writes are not stored. */
export async function failingOpWritesNothing(lib, name, options) {
  const store = await lib.IndexedDbStore.open(name, options);
  await store.transact((j) => increment(j, 'f'));
  let err;
  try {
    await store.transact((j) => { j.begin(); j.put(COUNTER, enc.encode('99 bad'), j.syncedGeneration() + 1); throw new RangeError('refused'); });
  } catch (e) { err = e; }
  check(err instanceof RangeError, `the op's own error is the rejection, got ${err}`);
  check(await store.transact((j) => increment(j, 'f')) === 2, 'rolled-back write not seen');
  // A wasm refusal inside the op keeps its code.
  try {
    await store.transact((j) => j.put(COUNTER, null, 1));
    check(false, 'a write outside a transaction was accepted');
  } catch (e) { check(e.code === 'InvalidStoreParameters', `code ${e.code}`); }
  // An async op is refused (IndexedDB would commit under it).
  try {
    await store.transact(async () => 1);
    check(false, 'an async op was accepted');
  } catch (e) { check(e.code === 'InvalidStoreParameters', `code ${e.code}`); }
  store.close();
  check(await readCounter(lib, name, options) === 2, 'only the two good steps are stored');
}

/** A database of a newer schema (IDB version 2) is refused with UnsupportedSchema. */
export async function newerSchemaRefused(lib, name, options) {
  const idb = options.indexedDB ?? globalThis.indexedDB;
  await new Promise((res, rej) => {
    const r = idb.open(lib.storeDatabaseName(name), 2);
    r.onupgradeneeded = () => { r.result.createObjectStore('meta'); };
    r.onsuccess = () => { r.result.close(); res(); };
    r.onerror = () => rej(r.error);
  });
  try {
    await lib.IndexedDbStore.open(name, options);
    check(false, 'a newer schema was opened');
  } catch (e) { check(e.code === 'UnsupportedSchema', `code ${e.code}: ${e.message}`); }
}

/** Record keys and values are stored as given (key hashes, sealed values): nothing else. */
export async function rowsAreWhatTheJournalWrote(lib, name, options) {
  const store = await lib.IndexedDbStore.open(name, options);
  await store.transact((j) => increment(j, 'r'));
  store.close();
  const idb = options.indexedDB ?? globalThis.indexedDB;
  const db = await new Promise((res, rej) => { const r = idb.open(lib.storeDatabaseName(name), 1); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const tx = db.transaction(['meta', 'records']);
  const get = (req) => new Promise((res, rej) => { req.onsuccess = () => res(req.result); req.onerror = () => rej(req.error); });
  const schema = new Uint8Array(await get(tx.objectStore('meta').get('schema_version')));
  check(schema.join() === '0,0,0,1', `schema_version meta ${schema.join()}`);
  const keys = await get(tx.objectStore('records').getAllKeys());
  check(keys.length === 2 && keys.every((k) => new Uint8Array(k).length === 32), 'two 32-byte binary keys');
  const row = await get(tx.objectStore('records').get(COUNTER));
  check(row.g === 1 && new TextDecoder().decode(row.v) === '1 r', 'row = {g: generation, v: value}');
  db.close();
}
