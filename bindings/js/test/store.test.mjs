// The IndexedDB store in Node: fake-indexeddb (devDependency) stands in for IndexedDB, and
// Node has no Web Locks, so the in-process queue is the lock. The same scenarios run in
// headless Chromium against the real IndexedDB (test/browser/run.mjs).
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as lib from '../node.js';
import * as s from './store-scenarios.mjs';

let n = 0;
const fresh = () => `node-${process.pid}-${n++}`;
const options = {};

test('store: rows persist and a reopened handle continues', () => s.persistAndReopen(lib, fresh(), options));
test('store: two handles racing on one store lose no step (the in-process queue)', async () => {
  const name = fresh();
  const [a, b] = await Promise.all([s.race(lib, name, options, 'a', 25), s.race(lib, name, options, 'b', 25)]);
  assert.equal(new Set([...a, ...b]).size, 50, 'every step number handed out once');
  await s.checkRace(lib, name, options, 50);
});
test('store: an aborted transaction never releases its result', () => s.abortNeverReleases(lib, fresh(), options));
test('store: a failing operation writes nothing', () => s.failingOpWritesNothing(lib, fresh(), options));
test('store: a newer schema is refused', () => s.newerSchemaRefused(lib, fresh(), options));
test('store: rows are stored as the journal wrote them', () => s.rowsAreWhatTheJournalWrote(lib, fresh(), options));
test('store: wasm StoreJournal refuses what the JournalBackend refuses', () => {
  const j = lib.StoreJournal.empty();
  assert.throws(() => j.put(new Uint8Array(32), null, 1), (e) => e.code === 'InvalidStoreParameters');
  assert.throws(() => j.put(new Uint8Array(31), null, 1), (e) => e.code === 'Malformed');
  j.begin();
  assert.throws(() => j.takeJournal(), (e) => e.code === 'InvalidStoreParameters');
  j.put(new Uint8Array(32), new Uint8Array([7]), 3);
  j.commit();
  const out = j.takeJournal();
  assert.equal(out.records.length, 1);
  assert.equal(out.records[0][1], 3);
  assert.deepEqual([...out.records[0][2]], [7]);
  assert.throws(() => lib.StoreJournal.load([['schema_version', new Uint8Array([0, 0, 0, 2])]], []),
    (e) => e.code === 'UnsupportedSchema');
  assert.throws(() => lib.StoreJournal.load([], []), (e) => e.code === 'StoreCorrupt');
  j.poison();
  assert.throws(() => j.get(new Uint8Array(32)), (e) => e.code === 'StoreCorrupt');
});
