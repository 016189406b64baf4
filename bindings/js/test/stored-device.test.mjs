// The store-backed Device in Node: fake-indexeddb stands in for IndexedDB and the
// in-process queue for Web Locks. The same scenarios run in headless Chromium.
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as lib from '../node.js';
import * as s from './stored-device-scenarios.mjs';

let n = 0;
const fresh = () => `node-dev-${process.pid}-${n++}`;
const options = {};

test('stored device: every Device capability is forwarded', () => s.everyCapabilityForwarded(lib));
test('stored device: a conversation with an in-memory device across a reopen', () => s.conversationAcrossReopen(lib, fresh(), options));
test('stored device: group and channel messages, across a reopen', () => s.groupsAndChannels(lib, fresh(), options));
test('stored device: a wrong key rejects WrongKey, is counted and changes nothing', () => s.wrongKeyChangesNothing(lib, fresh(), options));
test('stored device: passcode unlock, attempt limit, changePasscode', () => s.passcodeUnlock(lib, fresh(), options));
test('stored device: a decrypt is redelivered until ack', () => s.redeliveredUntilAck(lib, fresh(), options));
test('stored device: moveOut retires the store, importStoredDevice continues', () => s.moveOutAndImport(lib, fresh(), options));
test('stored device: an aborted IDB transaction never releases a result, and the device reloads', () => s.abortNeverReleases(lib, fresh(), options));
test('stored device: two handles encrypting to one peer never fork', async () => {
  const name = fresh();
  const { bob, run } = await s.tabsNeverFork(lib, name, options, 10);
  const [a, b] = await Promise.all([run('tab1'), run('tab2')]);
  assert.equal(s.decryptAll(bob, [...a, ...b]), 20);
});
test('stored device: calls queued while the store is busy share a transaction', () => s.batchedCalls(lib, fresh(), options));
test('stored device: the rollback anchor (storeGeneration, minGeneration) refuses an older copy', () => s.rollbackAnchor(lib, fresh(), options));
test('stored device: the platform key recipe (non-extractable HMAC key in IndexedDB)', () => s.platformKeyRecipe(lib, fresh(), options));
