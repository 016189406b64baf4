// The test suite shared by Node (`node --test`, see node.test.mjs) and headless Chromium
// (browser/run.mjs). `test(name, fn)` registers a test; `lib` is the package;
// `loadVector(name)` returns a parsed file from test-vectors/.

const enc = new TextEncoder();
const dec = new TextDecoder();
const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));
const NOW = 1_700_000_000;

function assert(cond, msg = 'assertion failed') {
  if (!cond) throw new Error(msg);
}
function eq(a, b, msg) {
  const sa = a instanceof Uint8Array ? `bytes:${Array.from(a).join(',')}` : JSON.stringify(a);
  const sb = b instanceof Uint8Array ? `bytes:${Array.from(b).join(',')}` : JSON.stringify(b);
  if (sa !== sb) throw new Error(`${msg ?? 'not equal'}: ${sa.slice(0, 80)} != ${sb.slice(0, 80)}`);
}
function throwsCode(lib, fn, code) {
  try {
    fn();
  } catch (e) {
    assert(lib.isGoChatError(e), `expected a GoChatError, got ${e}`);
    assert(e instanceof lib.GoChatError, 'instanceof GoChatError');
    assert(e instanceof Error, 'instanceof Error');
    eq(e.code, code, `error code (${e.message})`);
    return e;
  }
  throw new Error(`expected ${code}, nothing thrown`);
}

function pair(lib) {
  const alice = new lib.Device('alice', NOW);
  const bob = new lib.Device('bob', NOW);
  bob.generateOneTimePreKeys(5);
  bob.generatePqPreKeys(5, NOW);
  alice.initiate('bob', bob.nextBundle());
  return { alice, bob };
}

const VECTORS = ['identity_and_bundle', 'pqxdh_one_time_prekey', 'pqxdh_last_resort', 'ratchet_conversation', 'padding', 'snapshot'];

export function defineTests(test, lib, loadVector) {
  test('vectors: every bundle verifies with the vector identity and fingerprint', async () => {
    for (const name of VECTORS) {
      const out = (await loadVector(name)).outputs;
      const info = lib.verifyBundle(hex(out.bundle));
      eq(info.identityKey, hex(out.bob_identity_key), name);
      eq(info.fingerprint, out.bob_fingerprint, name);
      eq(lib.identityFingerprint(hex(out.bob_identity_key)), out.bob_fingerprint, name);
    }
  });

  test('vectors: every flipped byte of a bundle is refused', async () => {
    const bundle = hex((await loadVector('identity_and_bundle')).outputs.bundle);
    for (let i = 0; i < bundle.length; i++) {
      const bad = bundle.slice();
      bad[i] ^= 0x01;
      let refused = false;
      try { lib.verifyBundle(bad); } catch (e) { refused = lib.isGoChatError(e); }
      assert(refused, `flip at byte ${i} accepted`);
    }
    throwsCode(lib, () => lib.verifyBundle(bundle.slice(0, -1)), 'Malformed');
    throwsCode(lib, () => lib.verifyBundle(new Uint8Array([...bundle, 0])), 'TooLarge');
  });

  test('vectors: the snapshot vector imports with its key and holds the session', async () => {
    const v = await loadVector('snapshot');
    const key = hex(v.inputs.snapshot.key);
    const snap = hex(v.outputs.snapshot);
    const bob = lib.Device.import(key, snap);
    eq(bob.userId, 'bob');
    eq(bob.identityKey, hex(v.outputs.bob_identity_key));
    eq(bob.fingerprint, v.outputs.bob_fingerprint);
    assert(bob.hasSession('alice'), 'session restored');
    throwsCode(lib, () => bob.decrypt('alice', hex(v.outputs.messages[0])), 'Duplicate');
    const wrong = key.map((b) => b ^ 0xff);
    throwsCode(lib, () => lib.Device.import(wrong, snap), 'SnapshotUndecryptable');
    throwsCode(lib, () => lib.Device.import(key.slice(0, 31), snap), 'InvalidSnapshotKey');
    throwsCode(lib, () => lib.Device.import(key, snap.slice(0, 40)), 'SnapshotTruncated');
    bob.free();
  });

  test('vectors: message digests and limits', async () => {
    const v = await loadVector('ratchet_conversation');
    const m = hex(v.outputs.messages[0]);
    eq(lib.messageDigest(m).length, 32);
    const l = lib.limits();
    eq(l.maxForwardJump, 25000);
    eq(l.maxSkippedKeys, 2000);
    eq(l.maxReceiverChains, 5);
    eq(l.maxArchivedSessions, 40);
    eq(l.paddingBlock, 64);
    eq(l.maxBundleBytes, 1922);
    eq(l.maxMessageBytes, 67277); // message v2: the ratchet header carries the sender epoch
  });

  test('conversation: setup, replies, out-of-order delivery', () => {
    const { alice, bob } = pair(lib);
    const m1 = alice.encrypt('bob', enc.encode('one'));
    const m2 = alice.encrypt('bob', enc.encode('two'));
    const m3 = alice.encrypt('bob', enc.encode('three'));
    eq(m1[0], 0x03, 'prekey message until Bob replies');
    eq(dec.decode(bob.decrypt('alice', m3).plaintext), 'three');
    eq(dec.decode(bob.decrypt('alice', m1).plaintext), 'one');
    const r = bob.encrypt('alice', enc.encode('reply'));
    eq(r[0], 0x04, 'ratchet message');
    eq(dec.decode(alice.decrypt('bob', r).plaintext), 'reply');
    eq(dec.decode(bob.decrypt('alice', m2).plaintext), 'two');
    const later = [];
    for (let i = 0; i < 10; i++) later.push(alice.encrypt('bob', enc.encode(`m${i}`)));
    eq(later[0][0], 0x04, 'after the reply: ratchet messages');
    for (const i of [9, 3, 0, 7, 1, 2, 8, 4, 6, 5]) eq(dec.decode(bob.decrypt('alice', later[i]).plaintext), `m${i}`);
    for (let i = 0; i < 5; i++) {
      eq(dec.decode(bob.decrypt('alice', alice.encrypt('bob', enc.encode(`ping${i}`))).plaintext), `ping${i}`);
      eq(dec.decode(alice.decrypt('bob', bob.encrypt('alice', enc.encode(`pong${i}`))).plaintext), `pong${i}`);
    }
    eq(bob.peerIdentity('alice'), alice.identityKey);
    alice.free(); bob.free();
  });

  test('tampering: AuthenticationFailed, distinct from Duplicate, state unchanged', () => {
    const { alice, bob } = pair(lib);
    bob.decrypt('alice', alice.encrypt('bob', enc.encode('hi')));
    alice.decrypt('bob', bob.encrypt('alice', enc.encode('hello')));
    const m = alice.encrypt('bob', enc.encode('secret'));
    const bad = m.slice();
    bad[bad.length - 1] ^= 1;
    const e = throwsCode(lib, () => bob.decrypt('alice', bad), 'AuthenticationFailed');
    eq(e.retryMayHelp, true);
    eq(dec.decode(bob.decrypt('alice', m).plaintext), 'secret', 'the original still decrypts');
    const d = throwsCode(lib, () => bob.decrypt('alice', m), 'Duplicate');
    eq(d.retryMayHelp, false);
    throwsCode(lib, () => bob.decrypt('carol', m), 'NoSession');
    throwsCode(lib, () => bob.decrypt('alice', new Uint8Array()), 'Malformed');
    throwsCode(lib, () => bob.decrypt('alice', new Uint8Array([0x09, 1, 2, 3])), 'WrongMessageType');
    throwsCode(lib, () => bob.decrypt('alice', new Uint8Array(70000)), 'TooLarge');
    throwsCode(lib, () => alice.encrypt('bob', new Uint8Array(70000)), 'PlaintextTooLarge');
    alice.free(); bob.free();
  });

  test('snapshot round trip, device and session', () => {
    const { alice, bob } = pair(lib);
    bob.decrypt('alice', alice.encrypt('bob', enc.encode('hi')));
    const key = new Uint8Array(32).fill(7);
    const saved = bob.export(key);
    bob.free();
    const bob2 = lib.Device.import(key, saved);
    eq(dec.decode(bob2.decrypt('alice', alice.encrypt('bob', enc.encode('after restore'))).plaintext), 'after restore');
    const s = bob2.exportSession('alice', key);
    throwsCode(lib, () => bob2.importSession('alice', key.map((b) => b ^ 1), s), 'SnapshotUndecryptable');
    bob2.importSession('alice', key, s);
    throwsCode(lib, () => lib.Device.import(key, s), 'SnapshotWrongKind');
    alice.free(); bob2.free();
  });

  test('retry flow: lost state heals through a retry request', () => {
    const { alice, bob } = pair(lib);
    bob.decrypt('alice', alice.encrypt('bob', enc.encode('hi')));
    alice.decrypt('bob', bob.encrypt('alice', enc.encode('hello')));
    const key = new Uint8Array(32).fill(3);
    const backup = bob.export(key);
    for (let i = 0; i < 3; i++) {
      alice.decrypt('bob', bob.encrypt('alice', enc.encode('x')));
      bob.decrypt('alice', alice.encrypt('bob', enc.encode('y')));
    }
    const restored = lib.Device.import(key, backup);
    const failed = alice.encrypt('bob', enc.encode('lost?'));
    let e = null;
    try { restored.decrypt('alice', failed); } catch (x) { e = x; }
    assert(lib.isGoChatError(e), 'the restored device cannot decrypt a message on a newer chain');
    assert(e.retryMayHelp, `retry may help (${e.code})`);
    const req = restored.retryRequest('alice', alice.identityKey, failed, NOW);
    throwsCode(lib, () => alice.handleRetryRequest('carol', req, NOW), 'UntrustedIdentity');
    const ex = throwsCode(lib, () => alice.handleRetryRequest('bob', req, NOW + 2 * 86400), 'RetryExpired');
    eq(ex.retryMayHelp, false);
    const digest = alice.handleRetryRequest('bob', req, NOW + 60);
    eq(digest, lib.messageDigest(failed));
    throwsCode(lib, () => alice.handleRetryRequest('bob', req, NOW + 60), 'UnknownMessage');
    const again = alice.encrypt('bob', enc.encode('lost?'));
    eq(dec.decode(restored.decrypt('alice', again).plaintext), 'lost?');
    alice.free(); bob.free(); restored.free();
  });

  test('retry request for an already used counter is refused (Duplicate)', () => {
    const { alice, bob } = pair(lib);
    const m = alice.encrypt('bob', enc.encode('read once'));
    eq(dec.decode(bob.decrypt('alice', m).plaintext), 'read once');
    throwsCode(lib, () => bob.retryRequest('alice', alice.identityKey, m, NOW), 'Duplicate');
    alice.free(); bob.free();
  });

  test('a restored sender starts a new epoch: a re-used counter is CounterReused', () => {
    const { alice, bob } = pair(lib);
    const key = new Uint8Array(32).fill(5);
    const backup = alice.export(key); // saved before the next encrypt: the wrong order
    eq(dec.decode(bob.decrypt('alice', alice.encrypt('bob', enc.encode('one'))).plaintext), 'one');
    const alice2 = lib.Device.import(key, backup);
    const again = alice2.encrypt('bob', enc.encode('one again'));
    const e = throwsCode(lib, () => bob.decrypt('alice', again), 'CounterReused');
    eq(e.retryMayHelp, true);
    alice.free(); bob.free(); alice2.free();
  });

  test('identity: first contact is new, then same; pinned and pending getters', () => {
    const alice = new lib.Device('alice', NOW);
    const bob = new lib.Device('bob', NOW);
    eq(alice.pinnedIdentity('bob'), undefined);
    eq(alice.initiate('bob', bob.nextBundle()), { kind: 'new' });
    eq(alice.pinnedIdentity('bob'), bob.identityKey);
    eq(alice.pendingIdentity('bob'), undefined);
    const r = bob.decrypt('alice', alice.encrypt('bob', enc.encode('first')));
    eq(dec.decode(r.plaintext), 'first');
    assert(r.plaintext instanceof Uint8Array && r.senderIdentity instanceof Uint8Array, 'Uint8Array fields');
    eq(r.senderIdentity, alice.identityKey);
    eq(r.identityEvent, { kind: 'new' });
    eq(bob.pinnedIdentity('alice'), alice.identityKey);
    eq(bob.decrypt('alice', alice.encrypt('bob', enc.encode('second'))).identityEvent, { kind: 'same' });
    alice.free(); bob.free();
  });

  test('identity: a reinstalled peer is changed, unapproved; sending waits for approveIdentity', () => {
    const { alice, bob } = pair(lib);
    bob.decrypt('alice', alice.encrypt('bob', enc.encode('hi')));
    eq(alice.identityPolicy, 'requireApproval');
    const bobNew = new lib.Device('bob', NOW); // Bob reinstalls: new identity, same name
    bobNew.generateOneTimePreKeys(1);
    throwsCode(lib, () => alice.initiate('bob', bobNew.nextBundle()), 'IdentityChanged');
    eq(bobNew.initiate('alice', alice.nextBundle()), { kind: 'new' });
    const got = alice.decrypt('bob', bobNew.encrypt('alice', enc.encode('new phone')));
    eq(dec.decode(got.plaintext), 'new phone');
    eq(got.senderIdentity, bobNew.identityKey);
    eq(got.identityEvent.kind, 'changed');
    eq(got.identityEvent.previous, bob.identityKey);
    eq(got.identityEvent.approved, false);
    eq(alice.pinnedIdentity('bob'), bob.identityKey);
    eq(alice.pendingIdentity('bob'), bobNew.identityKey);
    throwsCode(lib, () => alice.encrypt('bob', enc.encode('to whom?')), 'IdentityChanged');
    alice.approveIdentity('bob', bobNew.identityKey);
    eq(alice.pinnedIdentity('bob'), bobNew.identityKey);
    eq(alice.pendingIdentity('bob'), undefined);
    const back = bobNew.decrypt('alice', alice.encrypt('bob', enc.encode('welcome back')));
    eq(dec.decode(back.plaintext), 'welcome back');
    eq(back.identityEvent, { kind: 'same' });
    alice.free(); bob.free(); bobNew.free();
  });

  test('state: removeSessions keeps the pin, forgetIdentity makes the next contact new; stateLen is exact', () => {
    const { alice, bob } = pair(lib);
    bob.decrypt('alice', alice.encrypt('bob', enc.encode('hi')));
    eq(bob.export(new Uint8Array(32)).length, bob.stateLen + 51);
    const before = bob.stateLen;
    eq(bob.removeSessions('alice'), true);
    eq(bob.removeSessions('alice'), false);
    assert(bob.stateLen < before, 'state shrinks');
    eq(bob.hasSession('alice'), false);
    eq(bob.pinnedIdentity('alice'), alice.identityKey);
    throwsCode(lib, () => bob.encrypt('alice', enc.encode('x')), 'NoSession');
    eq(bob.forgetIdentity('alice'), true);
    eq(bob.forgetIdentity('alice'), false);
    eq(bob.pinnedIdentity('alice'), undefined);
    const again = new lib.Device('alice', NOW); // another identity under the same name
    eq(bob.initiate('alice', again.nextBundle()), { kind: 'new' });
    eq(bob.export(new Uint8Array(32)).length, bob.stateLen + 51);
    alice.free(); bob.free(); again.free();
  });

  test('identity: the notify policy accepts a changed identity and reports it', () => {
    const { alice, bob } = pair(lib);
    bob.decrypt('alice', alice.encrypt('bob', enc.encode('hi')));
    alice.setIdentityPolicy('notify');
    eq(alice.identityPolicy, 'notify');
    throwsCode(lib, () => alice.setIdentityPolicy('sometimes'), 'Malformed');
    const bobNew = new lib.Device('bob', NOW);
    bobNew.initiate('alice', alice.nextBundle());
    const got = alice.decrypt('bob', bobNew.encrypt('alice', enc.encode('new phone')));
    eq(got.identityEvent.kind, 'changed');
    eq(got.identityEvent.previous, bob.identityKey);
    eq(got.identityEvent.approved, true);
    eq(alice.pinnedIdentity('bob'), bobNew.identityKey);
    eq(alice.pendingIdentity('bob'), undefined);
    eq(dec.decode(bobNew.decrypt('alice', alice.encrypt('bob', enc.encode('hello new bob'))).plaintext), 'hello new bob');
    alice.free(); bob.free(); bobNew.free();
  });

  test('errors: codes are stable and complete', () => {
    const codes = lib.errorCodes();
    eq(codes.length, 53);
    for (const c of ['Duplicate', 'AuthenticationFailed', 'TooFarAhead', 'NoSession', 'BadSignature', 'SnapshotUndecryptable',
      'IdentityChanged', 'MessageLost', 'CounterReused', 'RetryExpired', 'TooManyPeers', 'StateFull', 'Internal',
      'UnknownGroup', 'MissingSenderKey', 'GroupFork', 'StaleEpoch', 'WrongSigner', 'StaleSequence', 'WrongChannel']) {
      assert(codes.includes(c), c);
    }
    eq(new Set(codes).size, codes.length, 'distinct');
    const d = new lib.Device('x', NOW);
    throwsCode(lib, () => d.initiate('y', new Uint8Array([2, 1])), 'Malformed');
    throwsCode(lib, () => d.initiate('y', new Uint8Array([2, 1, 0])), 'WrongMessageType');
    throwsCode(lib, () => d.generateOneTimePreKeys(201), 'PreKeyStoreFull');
    throwsCode(lib, () => d.retryRequest('y', new Uint8Array(65), new Uint8Array(1), NOW), 'WrongMessageType');
    eq(typeof lib.libraryVersion(), 'string');
    if (typeof Symbol.dispose === 'symbol') eq(typeof d[Symbol.dispose], 'function');
    d.free();
  });
}

