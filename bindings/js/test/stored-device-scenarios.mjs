// Scenarios of the store-backed Device (createStoredDevice / openStoredDevice, store.js),
// shared by Node (fake-indexeddb, the in-process queue as the lock) and headless Chromium
// (real IndexedDB and Web Locks, test/browser/run.mjs). Each takes the library, a fresh
// store name and the options passed on to IndexedDbStore.open. The peer is an in-memory
// Device, so every conversation crosses the two kinds of device.

const enc = new TextEncoder();
const dec = new TextDecoder();
const NOW = 1_700_000_000;
/** The cheapest passcode cost the vault accepts (tests only; the default is 64 MiB, 3 passes). */
export const CHEAP = { memoryKib: 8 * 1024, iterations: 1, lanes: 1 };

function check(cond, msg) { if (!cond) throw new Error(msg); }
async function rejects(p, code, what) {
  try { await p; } catch (e) {
    check(e.name === 'GoChatError' && e.code === code, `${what}: expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  throw new Error(`${what}: expected ${code}, it succeeded`);
}
function throwsCode(fn, code, what) {
  try { fn(); } catch (e) {
    check(e.code === code, `${what}: expected ${code}, got ${e.code}: ${e.message}`);
    return;
  }
  throw new Error(`${what}: expected ${code}, it succeeded`);
}
const key = (b) => new Uint8Array(32).fill(b);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** A stored alice and an in-memory bob with an answered session. */
async function pair(lib, name, options, unlock = { platformKey: key(7) }) {
  const bob = new lib.Device('bob', NOW);
  const alice = await lib.createStoredDevice(name, unlock, 'alice', NOW, options);
  check(alice.isStored === true && bob.isStored === false, 'isStored');
  await alice.initiate('bob', bob.nextBundle());
  const first = bob.decrypt('alice', await alice.encrypt('bob', enc.encode('hi bob')));
  check(dec.decode(first.plaintext) === 'hi bob', 'bob reads the first message');
  check(first.redelivered === false && first.digest.length === 32, 'an in-memory decrypt has digest and redelivered: false');
  check(same(first.digest, lib.messageDigest(new Uint8Array(0))) === false, 'digest is the message digest');
  const reply = await alice.decrypt('bob', bob.encrypt('alice', enc.encode('hi alice')));
  check(dec.decode(reply.plaintext) === 'hi alice' && reply.redelivered === false, 'alice reads the reply');
  check(await alice.ack(reply.digest) === true, 'ack deletes the kept result');
  return { alice, bob };
}

/** A conversation across a reopen of the store (a new handle, as after a page reload). */
export async function conversationAcrossReopen(lib, name, options) {
  const { alice, bob } = await pair(lib, name, options);
  const identity = alice.identityKey;
  for (let i = 0; i < 3; i++) {
    check(dec.decode(bob.decrypt('alice', await alice.encrypt('bob', enc.encode(`a${i}`))).plaintext) === `a${i}`, 'a to b');
    const r = await alice.decrypt('bob', bob.encrypt('alice', enc.encode(`b${i}`)));
    check(dec.decode(r.plaintext) === `b${i}`, 'b to a');
    await alice.ack(r.digest);
  }
  await rejects(alice.export(key(1)), 'NotSupported', 'export of a stored device');
  throwsCode(() => bob.moveOut('transfer', CHEAP), 'NotSupported', 'moveOut in memory');
  check(bob.ack(new Uint8Array(32)) === false, 'ack in memory is false');
  await alice.close();
  const again = await lib.openStoredDevice(name, { platformKey: key(7) }, options);
  check(same(again.identityKey, identity) && again.userId === 'alice', 'the same device after reopen');
  check(await again.hasSession('bob'), 'the session survived');
  check(dec.decode(bob.decrypt('alice', await again.encrypt('bob', enc.encode('after reopen'))).plaintext) === 'after reopen', 'continues');
  const r = await again.decrypt('bob', bob.encrypt('alice', enc.encode('welcome back')));
  check(dec.decode(r.plaintext) === 'welcome back' && !r.redelivered, 'continues both ways');
  // A backlog in one transaction: one generation for the whole batch, every result kept.
  const gen = again.storeGeneration;
  const backlog = [0, 1, 2, 3, 4].map((i) => ({ peer: 'bob', message: bob.encrypt('alice', enc.encode(`k${i}`)) }));
  const out = await again.decryptBatch(backlog);
  check(out.every((o, i) => o.ok && dec.decode(o.result.plaintext) === `k${i}`), 'the backlog decrypts in order');
  check(again.storeGeneration === gen + 1, 'one commit for the whole batch');
  const redo = await again.decryptBatch(backlog.slice(0, 2));
  check(redo.every((o) => o.ok && o.result.redelivered), 'kept results come back until ack');
  const before = again.storeGeneration;
  check(await again.ackBatch(out.map((o) => o.result.digest)) === 5, 'the backlog acknowledged at once');
  check(again.storeGeneration === before + 1, 'one commit for the whole ack');
  await again.close();
  bob.free();
}

/** Group and channel messages on a stored device, across a reopen. */
export async function groupsAndChannels(lib, name, options) {
  const { alice, bob } = await pair(lib, name, options);
  const c = await alice.groupCreate([{ name: 'bob', identityKey: bob.identityKey }], NOW);
  const joined = bob.groupJoin(c.welcome, NOW);
  for (const o of c.outgoing) bob.receiveControl('alice', o.message);
  for (const o of joined.outgoing) await alice.receiveControl('bob', o.message);
  const g1 = await alice.groupEncrypt(c.groupId, enc.encode('to the group'), NOW);
  check(dec.decode(bob.groupDecrypt('alice', g1.message).plaintext) === 'to the group', 'bob reads alice in the group');
  const g2 = bob.groupEncrypt(c.groupId, enc.encode('from bob'), NOW);
  check(dec.decode((await alice.groupDecrypt('bob', g2.message)).plaintext) === 'from bob', 'alice reads bob in the group');
  // Channels: alice publishes; alice subscribes to bob's.
  const mine = await alice.channelCreate('public');
  bob.channelSubscribe(mine, await alice.channelPublicKey(mine), 'public');
  const post = await alice.channelAnnounce(mine, 'text', enc.encode('news 1'), NOW);
  check(dec.decode(bob.channelReceive(post, NOW).announcement.body) === 'news 1', 'bob reads alice\'s channel');
  const theirs = bob.channelCreate('public');
  await alice.channelSubscribe(theirs, bob.channelPublicKey(theirs), 'public');
  const p1 = bob.channelAnnounce(theirs, 'text', enc.encode('bob news 1'), NOW);
  const r1 = await alice.channelReceive(p1, NOW);
  check(dec.decode(r1.announcement.body) === 'bob news 1', 'alice reads bob\'s channel');
  check(r1.digest.length === 32 && r1.redelivered === false, 'a channel post result carries its digest');
  await alice.close();

  const again = await lib.openStoredDevice(name, { platformKey: key(7) }, options);
  check((await again.groupIds()).length === 1, 'the group survived the reopen');
  const g3 = await again.groupEncrypt(c.groupId, enc.encode('after reopen'), NOW);
  check(dec.decode(bob.groupDecrypt('alice', g3.message).plaintext) === 'after reopen', 'group continues after reopen');
  const g4 = bob.groupEncrypt(c.groupId, enc.encode('bob again'), NOW);
  check(dec.decode((await again.groupDecrypt('bob', g4.message)).plaintext) === 'bob again', 'group receive after reopen');
  const post2 = await again.channelAnnounce(mine, 'text', enc.encode('news 2'), NOW);
  check(bob.channelReceive(post2, NOW).announcement.seq > 0, 'the channel sequence continues');
  // The unacknowledged post comes back from the inbox after the reopen; once acked, a
  // replay is refused as stale.
  const back = await again.channelReceive(p1, NOW);
  check(back.redelivered === true && dec.decode(back.announcement.body) === 'bob news 1', 'the kept post is redelivered');
  check(await again.ack(back.digest), 'the kept post is acknowledged');
  await rejects(again.channelReceive(p1, NOW), 'StaleSequence', 'a replayed post after reopen');
  // The same for a group message: kept until ack, then a duplicate.
  const back2 = await again.groupDecrypt('bob', g2.message);
  check(back2.redelivered === true && dec.decode(back2.plaintext) === 'from bob', 'the kept group message is redelivered');
  check(await again.ack(back2.digest), 'the kept group message is acknowledged');
  await rejects(again.groupDecrypt('bob', g2.message), 'Duplicate', 'a replayed group message after ack');
  const p2 = bob.channelAnnounce(theirs, 'text', enc.encode('bob news 2'), NOW);
  check(dec.decode((await again.channelReceive(p2, NOW)).announcement.body) === 'bob news 2', 'subscription continues');
  await again.close();
  bob.free();
}

/** A wrong key rejects WrongKey, is counted, and changes nothing else; the right key then opens. */
export async function wrongKeyChangesNothing(lib, name, options) {
  const { alice, bob } = await pair(lib, name, options);
  await alice.close();
  const before = await rowsOf(lib, name, options);
  await rejects(lib.openStoredDevice(name, { platformKey: key(8) }, options), 'WrongKey', 'a wrong platform key');
  check(await lib.storeFailedAttempts(name, options) === 1, 'the wrong key is counted');
  await rejects(lib.openStoredDevice(name, { passcode: 'guess', cost: CHEAP }, options), 'WrongKey', 'a passcode on a key store');
  // A passcode where the keyslot holds a key is refused before any unwrap (not a guess).
  check(await lib.storeFailedAttempts(name, options) >= 1, 'still counted');
  const after = await rowsOf(lib, name, options);
  check(same(after.records, before.records), 'no record changed after a wrong key');
  check(after.meta.filter((m) => m !== 'failed_attempts').join() === before.meta.filter((m) => m !== 'failed_attempts').join(), 'no other meta row changed');
  const again = await lib.openStoredDevice(name, { platformKey: key(7) }, options);
  check(await lib.storeFailedAttempts(name, options) === 0, 'a successful unlock resets the count');
  check(dec.decode(bob.decrypt('alice', await again.encrypt('bob', enc.encode('still here'))).plaintext) === 'still here', 'unchanged device');
  await rejects(lib.createStoredDevice(name, { platformKey: key(7) }, 'mallory', NOW, options), 'StoreExists', 'create over a store');
  await again.close();
  bob.free();
}

/** Passcode unlock, a wrong passcode, the attempt limit and changePasscode. */
export async function passcodeUnlock(lib, name, options) {
  const unlock = { passcode: 'correct horse', cost: CHEAP };
  const { alice, bob } = await pair(lib, name, options, unlock);
  await alice.setAttemptLimit(3);
  await alice.close();
  await rejects(lib.openStoredDevice(name, { passcode: 'wrong horse' }, options), 'WrongKey', 'a wrong passcode');
  const again = await lib.openStoredDevice(name, { passcode: 'correct horse' }, options);
  await rejects(again.changePasscode({ passcode: 'nope' }, { passcode: 'new' }), 'WrongKey', 'changePasscode with a wrong old one');
  await again.changePasscode({ passcode: 'correct horse' }, { passcode: 'battery staple', cost: CHEAP });
  check(dec.decode(bob.decrypt('alice', await again.encrypt('bob', enc.encode('p'))).plaintext) === 'p', 'works after the change');
  await again.close();
  await rejects(lib.openStoredDevice(name, unlock, options), 'WrongKey', 'the old passcode after the change');
  // Counted so far: the wrong old passcode of changePasscode, then the old passcode.
  await rejects(lib.openStoredDevice(name, unlock, options), 'AttemptLimitReached', 'the limit of 3');
  await rejects(lib.openStoredDevice(name, { passcode: 'battery staple' }, options), 'AttemptLimitReached', 'even the right passcode at the limit');
  const byKey = await rejects(lib.openStoredDevice(name, { platformKey: key(7) }, options), 'WrongKey', 'a key on a passcode store');
  check(byKey, 'refused');
  bob.free();
}

/** A stored decrypt is redelivered (same result, `redelivered: true`) until ack, across a reopen. */
export async function redeliveredUntilAck(lib, name, options) {
  const { alice, bob } = await pair(lib, name, options);
  const m = bob.encrypt('alice', enc.encode('keep me'));
  const r1 = await alice.decrypt('bob', m);
  check(!r1.redelivered && dec.decode(r1.plaintext) === 'keep me', 'first delivery');
  const r2 = await alice.decrypt('bob', m);
  check(r2.redelivered && same(r2.digest, r1.digest) && dec.decode(r2.plaintext) === 'keep me', 'redelivered, same result');
  check(r2.identityEvent.kind === r1.identityEvent.kind, 'the identity event is kept with it');
  await alice.close();
  const again = await lib.openStoredDevice(name, { platformKey: key(7) }, options);
  const r3 = await again.decrypt('bob', m);
  check(r3.redelivered && dec.decode(r3.plaintext) === 'keep me', 'redelivered after a reopen');
  check(await again.ack(r3.digest) === true, 'ack');
  check(await again.ack(r3.digest) === false, 'a second ack finds nothing');
  await rejects(again.decrypt('bob', m), 'Duplicate', 'after ack the message is a duplicate');
  await again.close();
  bob.free();
}

/** The device moves out (the store retires) and into a new store, and the conversation goes on. */
export async function moveOutAndImport(lib, name, options) {
  const { alice, bob } = await pair(lib, name, options);
  const container = await alice.moveOut('transfer code', CHEAP);
  await rejects(alice.encrypt('bob', enc.encode('x')), 'StoreRetired', 'a moved-out store');
  await alice.close();
  await rejects(lib.openStoredDevice(name, { platformKey: key(7) }, options), 'StoreRetired', 'reopening a moved-out store');
  const moved = await lib.importStoredDevice(`${name}-new`, { platformKey: key(9) }, container, 'transfer code', options);
  check(dec.decode(bob.decrypt('alice', await moved.encrypt('bob', enc.encode('moved'))).plaintext) === 'moved', 'the moved device talks');
  await moved.close();
  bob.free();
}

/** After the session is answered, `tabs` handles of one store each encrypt `n` messages at
 *  once; bob decrypts every one on the one session (a fork would repeat a chain index). */
export async function tabsNeverFork(lib, name, options, n = 10) {
  const { alice, bob } = await pair(lib, name, options);
  await alice.close();
  return { bob, run: (tag) => encryptMany(lib, name, options, tag, n) };
}

/** One tab's part of `tabsNeverFork`: opens its own handle and encrypts `n` messages. */
export async function encryptMany(lib, name, options, tag, n) {
  const dev = await lib.openStoredDevice(name, { platformKey: key(7) }, options);
  const out = [];
  for (let i = 0; i < n; i++) out.push(Array.from(await dev.encrypt('bob', enc.encode(`${tag}-${i}`))));
  await dev.close();
  return out;
}

/** Bob's side of `tabsNeverFork`: every message decrypts, once, on one session. */
export function decryptAll(bob, messages) {
  const seen = new Set();
  for (const m of messages) {
    const text = dec.decode(bob.decrypt('alice', Uint8Array.from(m)).plaintext);
    check(!seen.has(text), `${text} twice`);
    seen.add(text);
  }
  return seen.size;
}

/** An aborted IndexedDB transaction never releases its result, and the device reloads: the
 *  message whose decrypt was aborted decrypts again (it would be `Duplicate` if the ratchet
 *  step the disk never got had been kept in memory). */
export async function abortNeverReleases(lib, name, options) {
  let abortNext = false;
  const opts = { ...options, beforeComplete: (tx) => { if (abortNext) { abortNext = false; tx.abort(); } } };
  const { alice, bob } = await pair(lib, name, opts);
  const m = bob.encrypt('alice', enc.encode('abort me'));
  abortNext = true;
  let released = null;
  await rejects((async () => { released = await alice.decrypt('bob', m); })(), 'StoreIo', 'an aborted decrypt');
  check(released === null, 'the plaintext of an aborted transaction was released');
  const r = await alice.decrypt('bob', m);
  check(!r.redelivered && dec.decode(r.plaintext) === 'abort me', 'the aborted step is undone: the message decrypts again');
  abortNext = true;
  await rejects((async () => { released = await alice.encrypt('bob', enc.encode('never sent')); })(), 'StoreIo', 'an aborted encrypt');
  check(released === null, 'the ciphertext of an aborted transaction was released');
  const c = await alice.encrypt('bob', enc.encode('sent'));
  check(dec.decode(bob.decrypt('alice', c).plaintext) === 'sent', 'the next encrypt is delivered');
  await alice.close();
  const again = await lib.openStoredDevice(name, { platformKey: key(7) }, options);
  check(dec.decode(bob.decrypt('alice', await again.encrypt('bob', enc.encode('reopened'))).plaintext) === 'reopened', 'the disk is consistent');
  await again.close();
  bob.free();
}

/** Calls queued while the store is busy share an IndexedDB transaction, in order, each with
 *  its own result or error; an aborted shared transaction releases none of them. */
export async function batchedCalls(lib, name, options) {
  let completes = 0;
  let abortNext = false;
  const opts = { ...options, beforeComplete: (tx) => { completes++; if (abortNext) { abortNext = false; tx.abort(); } } };
  const { alice, bob } = await pair(lib, name, opts);
  completes = 0;
  const calls = [];
  for (let i = 0; i < 10; i++) {
    calls.push(alice.encrypt('bob', enc.encode(`p${i}`)));
    if (i === 4) calls.push(alice.decrypt('bob', new Uint8Array([1, 2, 3])));
  }
  const settled = await Promise.allSettled(calls);
  check(settled[5].status === 'rejected' && settled[5].reason.name === 'GoChatError', 'the refused call rejects on its own');
  const sent = settled.filter((r, i) => i !== 5);
  check(sent.every((r) => r.status === 'fulfilled'), 'the other calls of the batch succeed');
  check(completes < 11, `11 calls took ${completes} IndexedDB transactions`);
  sent.forEach((r, i) => check(dec.decode(bob.decrypt('alice', r.value).plaintext) === `p${i}`, 'in order'));
  // decrypt, then an ack not awaited: it rides with the next decrypt.
  const ms = [0, 1, 2, 3].map((i) => bob.encrypt('alice', enc.encode(`q${i}`)));
  completes = 0;
  const acks = [];
  for (const m of ms) {
    const r = await alice.decrypt('bob', m);
    acks.push(alice.ack(r.digest));
  }
  check((await Promise.all(acks)).every((x) => x === true), 'every ack found its entry');
  check(completes <= 5, `4 decrypts + 4 acks took ${completes} IndexedDB transactions`);
  // An aborted shared transaction: nothing released, nothing kept.
  const ns = [0, 1, 2].map((i) => bob.encrypt('alice', enc.encode(`r${i}`)));
  await alice.syncStore();
  abortNext = true;
  const lost = await Promise.allSettled([alice.syncStore(), ...ns.map((m) => alice.decrypt('bob', m))]);
  check(lost.slice(1).every((r) => r.status === 'rejected' && r.reason.code === 'StoreIo'), 'every call of the aborted transaction rejects StoreIo');
  for (let i = 0; i < 3; i++) {
    const r = await alice.decrypt('bob', ns[i]);
    check(!r.redelivered && dec.decode(r.plaintext) === `r${i}`, 'the aborted decrypts happen again');
  }
  await alice.close();
  bob.free();
}

/** The rollback anchor: storeGeneration grows with every call; an older copy of the store put
 *  back is refused at open with StoreRolledBack (nothing loaded), a current one opens. */
export async function rollbackAnchor(lib, name, options) {
  const { alice, bob } = await pair(lib, name, options);
  const g0 = alice.storeGeneration;
  check(typeof g0 === 'number' && g0 > 0 && bob.storeGeneration === undefined, 'storeGeneration');
  const old = await dump(lib, name, options);
  await alice.encrypt('bob', enc.encode('advance'));
  const anchor = alice.storeGeneration;
  check(anchor === g0 + 1, `one more per call (${g0} -> ${anchor})`);
  await alice.close();
  await restore(lib, name, options, old);
  await rejects(lib.openStoredDevice(name, { platformKey: key(7) }, { ...options, minGeneration: anchor }), 'StoreRolledBack', 'an older copy put back');
  const plain = await lib.openStoredDevice(name, { platformKey: key(7) }, { ...options, minGeneration: g0 });
  await plain.close();
  bob.free();
}

/** Every row of store `name`, for putting an older copy back. */
async function dump(lib, name, options) {
  const store = await lib.IndexedDbStore.open(name, options);
  store.close();
  return idbDo(lib, name, options, 'readonly', (meta, recs) => Promise.all([
    req(meta.getAllKeys()), req(meta.getAll()), req(recs.getAllKeys()), req(recs.getAll()),
  ]));
}

async function restore(lib, name, options, [mk, mv, rk, rv]) {
  return idbDo(lib, name, options, 'readwrite', (meta, recs) => {
    meta.clear(); recs.clear();
    mk.forEach((k, i) => meta.put(mv[i], k));
    rk.forEach((k, i) => recs.put(rv[i], k));
    return Promise.resolve();
  });
}

const req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
function idbDo(lib, name, options, mode, fn) {
  const idb = options.indexedDB ?? globalThis.indexedDB;
  return new Promise((resolve, reject) => {
    const r = idb.open(lib.storeDatabaseName(name));
    r.onsuccess = () => {
      const db = r.result;
      const tx = db.transaction(['meta', 'records'], mode);
      let out;
      fn(tx.objectStore('meta'), tx.objectStore('records')).then((v) => { out = v; }, reject);
      tx.oncomplete = () => { db.close(); resolve(out); };
      tx.onabort = () => { db.close(); reject(tx.error); };
    };
    r.onerror = () => reject(r.error);
  });
}

/** The non-extractable platform key: create once, derive the same 32 bytes again, unlock with it. */
export async function platformKeyRecipe(lib, name, options) {
  const k1 = await lib.generatePlatformKey(name, options);
  check(k1 instanceof Uint8Array && k1.length === 32, '32 bytes');
  await rejects(lib.generatePlatformKey(name, options), 'StoreExists', 'a second platform key');
  const k2 = await lib.platformKeyFor(name, options);
  check(same(k1, k2), 'the same store key derived again');
  const dev = await lib.createStoredDevice(name, { platformKey: k1 }, 'alice', NOW, options);
  await dev.close();
  const again = await lib.openStoredDevice(name, { platformKey: await lib.platformKeyFor(name, options) }, options);
  await again.close();
  check(await lib.deletePlatformKey(name, options) === true, 'deleted');
  check(await lib.platformKeyFor(name, options) === null, 'no key after delete');
  check(await lib.deletePlatformKey(name, options) === false, 'nothing to delete');
  await rejects(lib.openStoredDevice(`${name}-none`, { platformKey: key(1) }, options), 'StoreCorrupt', 'no store there');
}

/** Every method of Device is on StoredDevice (async), every getter too (sync). */
export function everyCapabilityForwarded(lib) {
  const missing = [];
  for (const name of Object.getOwnPropertyNames(lib.Device.prototype)) {
    if (['constructor', 'free', 'storeReloaded', '__destroy_into_raw'].includes(name)) continue;
    if (!(name in lib.StoredDevice.prototype)) missing.push(name);
  }
  check(missing.length === 0, `not forwarded: ${missing.join(', ')}`);
}

async function rowsOf(lib, name, options) {
  const store = await lib.IndexedDbStore.open(name, options);
  try {
    const idb = options.indexedDB ?? globalThis.indexedDB;
    return await new Promise((resolve, reject) => {
      const r = idb.open(lib.storeDatabaseName(name));
      r.onsuccess = () => {
        const db = r.result;
        const tx = db.transaction(['meta', 'records'], 'readonly');
        const out = {};
        const keys = tx.objectStore('meta').getAllKeys();
        const recs = tx.objectStore('records').getAll();
        tx.oncomplete = () => {
          out.meta = keys.result.map(String).sort();
          out.records = recs.result.map((v) => (v.v ? Array.from(v.v).join(',') : '-')).sort();
          db.close();
          resolve(out);
        };
        tx.onerror = () => reject(tx.error);
      };
      r.onerror = () => reject(r.error);
    });
  } finally { store.close(); }
}
