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

// Devices named `names` with a pairwise session between every two (both have sent).
function mesh(lib, names) {
  const d = {};
  for (const n of names) {
    d[n] = new lib.Device(n, NOW);
    d[n].generateOneTimePreKeys(names.length);
    d[n].generatePqPreKeys(names.length, NOW);
  }
  names.forEach((a, i) => {
    for (const b of names.slice(i + 1)) {
      d[a].initiate(b, d[b].nextBundle());
      d[b].decrypt(a, d[a].encrypt(b, enc.encode('hi')));
      d[a].decrypt(b, d[b].encrypt(a, enc.encode('hi')));
    }
  });
  return d;
}
const member = (d, name, admin = false) => ({ name, identityKey: d[name].identityKey, admin });
const freeAll = (d) => { for (const x of Object.values(d)) x.free(); };

// Delivers pairwise control messages `outgoing` from `from` with groupReceive.
function deliver(d, from, outgoing) {
  const got = [];
  for (const o of outgoing) got.push(d[o.peer].groupReceive(from, o.message));
  return got;
}

// `creator` makes a group with `others`: each joins from the welcome, then every
// member's sender key is delivered pairwise to every other.
function makeGroup(d, creator, others) {
  const c = d[creator].groupCreate(others.map((n) => member(d, n)), NOW);
  eq(c.withheld, [], 'nothing withheld');
  const joins = others.map((n) => [n, d[n].groupJoin(c.welcome, NOW)]);
  deliver(d, creator, c.outgoing);
  for (const [n, j] of joins) deliver(d, n, j.outgoing);
  return c.groupId;
}


// ---- Attachments -------------------------------------------------------------------
const KiB = 1024;
// Deterministic non-zero test bytes (crypto.getRandomValues caps at 64 KiB a call).
function pattern(n, seed = 1) {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
// Streams `data` through an AttachmentEncryptor in `chunk`-byte pieces; the blob is every
// update result, then every finishStep ciphertext, in order.
function streamEncrypt(lib, data, chunk, enc = new lib.AttachmentEncryptor(data.length, 'application/octet-stream', 'data.bin')) {
  const parts = [];
  for (let at = 0; at < data.length; at += chunk) parts.push(enc.update(data.subarray(at, at + chunk)));
  for (;;) {
    const step = enc.finishStep();
    parts.push(step.ciphertext);
    if (step.pointer) {
      eq(step.ciphertext.length, 0, 'the last step carries no ciphertext');
      const header = enc.header();
      enc.free();
      return { blob: concat(parts), pointer: step.pointer, header };
    }
    assert(step.ciphertext.length > 0, 'a step before the pointer carries ciphertext');
  }
}
// Streams `blob` through an AttachmentDecryptor in `chunk`-byte pieces, then finishes.
function streamDecrypt(lib, pointer, blob, chunk) {
  const d = new lib.AttachmentDecryptor(pointer);
  const parts = [];
  for (let at = 0; at < blob.length; at += chunk) parts.push(d.update(blob.subarray(at, at + chunk)));
  d.finish();
  eq(d.received(), blob.length, 'received counts every byte');
  d.free();
  return concat(parts);
}
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest('SHA-256', b));

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

  test('decryptBatch: a backlog in one call, one outcome per message, failures isolated', () => {
    const { alice, bob } = pair(lib);
    const sent = [0, 1, 2, 3].map((i) => alice.encrypt('bob', enc.encode(`m${i}`)));
    const batch = sent.map((message) => ({ peer: 'alice', message }));
    batch.splice(2, 0, { peer: 'alice', message: new Uint8Array() });
    const out = bob.decryptBatch(batch);
    eq(out.length, 5);
    eq(out.filter((o) => o.ok).map((o) => dec.decode(o.result.plaintext)).join(','), 'm0,m1,m2,m3');
    eq(out[2].ok, false);
    eq(out[2].error.code, 'Malformed');
    assert(out[2].error instanceof lib.GoChatError, 'a batch error is a GoChatError');
    const again = bob.decryptBatch(sent.map((message) => ({ peer: 'alice', message })));
    eq(again.map((o) => o.error.code).join(','), 'Duplicate,Duplicate,Duplicate,Duplicate');
    throwsCode(lib, () => bob.decryptBatch(Array(1001).fill({ peer: 'alice', message: new Uint8Array() })), 'TooLarge');
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
    eq(codes.length, 89); // 53, the 7 attachment codes, 6 device-list codes, 2 provisioning codes, 9 certificate codes, 12 store codes (protocol.md section 11)
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

  test('groups: three members, keys delivered pairwise, everyone reads everyone', () => {
    const d = mesh(lib, ['ana', 'ben', 'cai']);
    const c = d.ana.groupCreate([member(d, 'ben'), member(d, 'cai', true)], NOW);
    assert(c.groupId instanceof Uint8Array && c.groupId.length === 32, 'a 32-byte group id');
    eq(c.epoch, 0);
    eq(c.commit, null);
    assert(c.welcome instanceof Uint8Array, 'a welcome');
    eq(c.change, { added: ['ben', 'cai'], removed: [], replaced: [] });
    eq(c.outgoing.map((o) => o.peer), ['ben', 'cai']);
    eq(c.withheld, []);
    const jb = d.ben.groupJoin(c.welcome, NOW);
    const jc = d.cai.groupJoin(c.welcome, NOW);
    eq(jb.change.added, ['ben']);
    throwsCode(lib, () => d.ben.groupJoin(c.welcome, NOW), 'Duplicate');
    // Ana's key: to Ben with groupReceive, to Cai with receiveControl (the same result).
    const toBen = c.outgoing.find((o) => o.peer === 'ben');
    const got = d.ben.groupReceive('ana', toBen.message);
    eq(got.kind, 'senderKey');
    eq(got.groupId, c.groupId);
    eq(got.sender, 'ana');
    eq(got.fresh, true);
    eq(got.identityEvent, { kind: 'same' });
    eq(typeof got.keyId, 'number');
    const viaControl = d.cai.receiveControl('ana', c.outgoing.find((o) => o.peer === 'cai').message);
    eq(viaControl.kind, 'senderKey');
    eq(viaControl.groupId, c.groupId);
    eq(viaControl.keyId, got.keyId);
    deliver(d, 'ben', jb.outgoing);
    for (const o of jc.outgoing) d[o.peer].receiveControl('cai', o.message);
    const id = c.groupId;
    for (const from of ['ana', 'ben', 'cai']) {
      const s = d[from].groupEncrypt(id, enc.encode(`hello from ${from}`), NOW);
      eq(s.rotated, false);
      eq(s.outgoing, []);
      for (const to of ['ana', 'ben', 'cai'].filter((t) => t !== from)) {
        const p = d[to].groupDecrypt(from, s.message);
        eq(dec.decode(p.plaintext), `hello from ${from}`, `${to} reads ${from}`);
        eq(p.sender, from);
        eq(p.senderIdentity, d[from].identityKey);
        eq(p.iteration, 0);
      }
    }
    for (const n of ['ana', 'ben', 'cai']) {
      const info = d[n].groupInfo(id);
      eq(info.groupId, id);
      eq(info.epoch, 0);
      eq(info.active, true);
      eq(info.members.map((m) => [m.name, m.admin]), [['ana', true], ['ben', false], ['cai', true]]);
      eq(info.membershipHash, d.ana.groupInfo(id).membershipHash, 'one membership');
      eq(typeof info.ownKeyId, 'number');
      eq(d[n].groupIds(), [id]);
    }
    eq(d.ana.groupInfo(new Uint8Array(32)), undefined);
    freeAll(d);
  });

  test('groups: a duplicate is refused (Duplicate) and the state is unchanged', () => {
    const d = mesh(lib, ['ana', 'ben', 'cai']);
    const id = makeGroup(d, 'ana', ['ben', 'cai']);
    const m = d.ana.groupEncrypt(id, enc.encode('once'), NOW).message;
    eq(dec.decode(d.ben.groupDecrypt('ana', m).plaintext), 'once');
    const before = d.ben.stateLen;
    const e = throwsCode(lib, () => d.ben.groupDecrypt('ana', m), 'Duplicate');
    eq(e.retryMayHelp, false);
    eq(d.ben.stateLen, before);
    eq(dec.decode(d.cai.groupDecrypt('ana', m).plaintext), 'once', 'another member still reads it');
    freeAll(d);
  });

  test('groups: a removed member cannot read what is sent after its removal', () => {
    const d = mesh(lib, ['ana', 'ben', 'cai']);
    const id = makeGroup(d, 'ana', ['ben', 'cai']);
    const warm = d.ben.groupEncrypt(id, enc.encode('warm up'), NOW).message;
    eq(dec.decode(d.cai.groupDecrypt('ben', warm).plaintext), 'warm up');
    throwsCode(lib, () => d.ben.groupRemove(id, ['cai'], NOW), 'NotAdmin');
    const r = d.ana.groupRemove(id, ['cai'], NOW);
    eq(r.epoch, 1);
    eq(r.change.removed, ['cai']);
    assert(r.commit instanceof Uint8Array, 'a commit');
    eq(r.welcome, null);
    eq(r.outgoing.map((o) => o.peer), ['ben'], 'the new key goes to the remaining member only');
    const rb = d.ben.groupProcessCommit(r.commit, NOW);
    eq(rb.epoch, 1);
    eq(rb.outgoing.map((o) => o.peer), ['ana'], 'Ben rotates too, for Ana only');
    throwsCode(lib, () => d.ben.groupProcessCommit(r.commit, NOW), 'Duplicate');
    const rc = d.cai.groupProcessCommit(r.commit, NOW);
    eq(rc.outgoing, []);
    eq(d.cai.groupInfo(id).active, false);
    deliver(d, 'ana', r.outgoing);
    deliver(d, 'ben', rb.outgoing);
    for (const from of ['ana', 'ben']) {
      const m = d[from].groupEncrypt(id, enc.encode('after the removal'), NOW).message;
      const to = from === 'ana' ? 'ben' : 'ana';
      eq(dec.decode(d[to].groupDecrypt(from, m).plaintext), 'after the removal');
      let refused = null;
      try { d.cai.groupDecrypt(from, m); } catch (e) { refused = e; }
      assert(lib.isGoChatError(refused), 'the removed member cannot decrypt');
      assert(['MissingSenderKey', 'NotMember', 'EpochAhead'].includes(refused.code), refused.code);
    }
    throwsCode(lib, () => d.cai.groupEncrypt(id, enc.encode('still here?'), NOW), 'NotMember');
    eq(d.cai.groupForget(id), true);
    eq(d.cai.groupForget(id), false);
    eq(d.cai.groupIds(), []);
    freeAll(d);
  });

  test('groups: a message before its sender key is MissingSenderKey, then reads after the key arrives', () => {
    const d = mesh(lib, ['ana', 'ben', 'cai']);
    const c = d.ana.groupCreate([member(d, 'ben'), member(d, 'cai')], NOW);
    const early = d.ana.groupEncrypt(c.groupId, enc.encode('early'), NOW).message;
    throwsCode(lib, () => d.ben.groupDecrypt('ana', early), 'UnknownGroup');
    throwsCode(lib, () => d.ben.groupReceive('ana', c.outgoing[0].message), 'UnknownGroup');
    d.ben.groupJoin(c.welcome, NOW);
    const before = d.ben.stateLen;
    throwsCode(lib, () => d.ben.groupDecrypt('ana', early), 'MissingSenderKey');
    eq(d.ben.stateLen, before, 'nothing changed');
    // The refused groupReceive above left the pairwise session as it was: it retries now.
    eq(d.ben.groupReceive('ana', c.outgoing.find((o) => o.peer === 'ben').message).fresh, true);
    eq(dec.decode(d.ben.groupDecrypt('ana', early).plaintext), 'early');
    freeAll(d);
  });

  test('groups: a tampered message is refused and the state is unchanged', () => {
    const d = mesh(lib, ['ana', 'ben', 'cai']);
    const id = makeGroup(d, 'ana', ['ben', 'cai']);
    const m = d.ana.groupEncrypt(id, enc.encode('signed'), NOW).message;
    const before = d.ben.stateLen;
    for (const i of [40, m.length - 70, m.length - 1]) {
      const bad = m.slice();
      bad[i] ^= 1;
      let refused = null;
      try { d.ben.groupDecrypt('ana', bad); } catch (e) { refused = e; }
      assert(lib.isGoChatError(refused), `flip at ${i} accepted`);
      assert(['BadSignature', 'AuthenticationFailed', 'Malformed'].includes(refused.code), refused.code);
      eq(d.ben.stateLen, before, `state unchanged after flip at ${i}`);
    }
    const last = m.slice();
    last[last.length - 1] ^= 1;
    throwsCode(lib, () => d.ben.groupDecrypt('ana', last), 'BadSignature');
    throwsCode(lib, () => d.ben.groupDecrypt('cai', m), 'MissingSenderKey'); // not Cai's key
    eq(d.ben.stateLen, before);
    eq(dec.decode(d.ben.groupDecrypt('ana', m).plaintext), 'signed', 'the original still reads');
    throwsCode(lib, () => d.ben.groupDecrypt('ana', new Uint8Array([0x24])), 'Malformed');
    throwsCode(lib, () => d.ana.groupEncrypt(new Uint8Array(31), enc.encode('x'), NOW), 'Malformed');
    throwsCode(lib, () => d.ana.groupEncrypt(new Uint8Array(32), enc.encode('x'), NOW), 'UnknownGroup');
    throwsCode(lib, () => d.ana.groupEncrypt(id, new Uint8Array(70000), NOW), 'PlaintextTooLarge');
    throwsCode(lib, () => d.ana.groupCreate([{ name: 'ben' }], NOW), 'Malformed');
    throwsCode(lib, () => d.ana.groupCreate([{ name: 'ben', identityKey: new Uint8Array(66) }], NOW), 'WrongMessageType');
    freeAll(d);
  });

  test('groups: rotation policy, add, resend and a snapshot round trip', () => {
    const d = mesh(lib, ['ana', 'ben', 'cai']);
    const id = makeGroup(d, 'ana', ['ben']);
    throwsCode(lib, () => d.ana.groupSetRotationPolicy(id, { maxMessages: -1, maxAgeSecs: 0 }), 'Malformed');
    throwsCode(lib, () => d.ana.groupSetRotationPolicy(id, { maxMessages: 1.5, maxAgeSecs: 0 }), 'Malformed');
    throwsCode(lib, () => d.ana.groupSetRotationPolicy(id, null), 'Malformed');
    d.ana.groupSetRotationPolicy(id, { maxMessages: 2, maxAgeSecs: 0 });
    eq(d.ana.groupInfo(id).rotationPolicy, { maxMessages: 2, maxAgeSecs: 0 });
    const sent = [1, 2, 3].map((i) => d.ana.groupEncrypt(id, enc.encode(`m${i}`), NOW));
    eq(sent.map((s) => s.rotated), [false, false, true]);
    eq(sent[2].outgoing.map((o) => o.peer), ['ben']);
    deliver(d, 'ana', sent[2].outgoing);
    for (const [i, s] of sent.entries()) eq(dec.decode(d.ben.groupDecrypt('ana', s.message).plaintext), `m${i + 1}`);
    const a = d.ana.groupAdd(id, [member(d, 'cai')], NOW);
    eq(a.epoch, 1);
    eq(a.change.added, ['cai']);
    d.ben.groupProcessCommit(a.commit, NOW);
    const j = d.cai.groupJoin(a.welcome, NOW);
    deliver(d, 'ana', a.outgoing);
    deliver(d, 'cai', j.outgoing);
    const rs = d.ben.groupResendKey(id, 'cai');
    eq(rs.outgoing.map((o) => o.peer), ['cai']);
    eq(rs.withheld, []);
    deliver(d, 'ben', rs.outgoing);
    throwsCode(lib, () => d.ben.groupResendKey(id, 'zed'), 'NotMember');
    const key = new Uint8Array(32).fill(9);
    const cai2 = lib.Device.import(key, d.cai.export(key));
    eq(cai2.groupIds(), [id]);
    eq(cai2.stateLen, d.cai.stateLen);
    const m = d.ben.groupEncrypt(id, enc.encode('to the restored copy'), NOW).message;
    eq(dec.decode(cai2.groupDecrypt('ben', m).plaintext), 'to the restored copy');
    cai2.free();
    freeAll(d);
  });

  test('channels: public announce and receive; a replay is StaleSequence; another signer is WrongSigner', () => {
    const agency = new lib.Device('agency', NOW);
    const citizen = new lib.Device('citizen', NOW);
    const id = agency.channelCreate('public');
    assert(id instanceof Uint8Array && id.length === 32, 'a 32-byte channel id');
    const key = agency.channelPublicKey(id);
    eq(key.length, 32);
    eq(agency.channelPublisherIds(), [id]);
    citizen.channelSubscribe(id, key, 'public');
    eq(citizen.channelSubscriptionIds(), [id]);
    throwsCode(lib, () => citizen.channelSubscribe(id, key, 'public'), 'Duplicate');
    const post = agency.channelAnnounce(id, 'text', enc.encode('office closed on Monday'), NOW);
    eq(post[0], 0x30, 'a public announcement');
    const r = citizen.channelReceive(post, NOW);
    eq(r.kind, 'announcement');
    eq(r.announcement.channelId, id);
    eq(r.announcement.seq, 1);
    eq(r.announcement.timestamp, NOW);
    eq(r.announcement.contentType, 'text');
    eq(dec.decode(r.announcement.body), 'office closed on Monday');
    eq(r.announcement.signer, key);
    const before = citizen.stateLen;
    throwsCode(lib, () => citizen.channelReceive(post, NOW), 'StaleSequence');
    eq(citizen.stateLen, before, 'a refused replay changes nothing');
    // Strictly monotonic: a withheld post delivered after a later one is a rollback.
    const withheld = agency.channelAnnounce(id, 'text', enc.encode('withheld'), NOW);
    const json = agency.channelAnnounce(id, 'json', enc.encode('{"a":1}'), NOW);
    eq(citizen.channelReceive(json, NOW).announcement.contentType, 'json');
    throwsCode(lib, () => citizen.channelReceive(withheld, NOW), 'StaleSequence');
    // A second channel's key posing as this one: another subscriber trusting a wrong key.
    const impostor = new lib.Device('impostor', NOW);
    const other = impostor.channelCreate('public');
    const fooled = new lib.Device('fooled', NOW);
    fooled.channelSubscribe(id, impostor.channelPublicKey(other), 'public');
    throwsCode(lib, () => fooled.channelReceive(agency.channelAnnounce(id, 'text', enc.encode('x'), NOW), NOW), 'WrongSigner');
    throwsCode(lib, () => citizen.channelReceive(impostor.channelAnnounce(other, 'text', enc.encode('x'), NOW), NOW), 'UnknownGroup');
    const tampered = agency.channelAnnounce(id, 'text', enc.encode('genuine'), NOW);
    tampered[tampered.length - 1] ^= 1;
    throwsCode(lib, () => citizen.channelReceive(tampered, NOW), 'BadSignature');
    throwsCode(lib, () => citizen.channelReceive(agency.channelAnnounce(id, 'text', enc.encode('later'), NOW + 3600), NOW), 'FromFuture');
    throwsCode(lib, () => agency.channelAnnounce(id, 'html', enc.encode('x'), NOW), 'Malformed');
    throwsCode(lib, () => agency.channelCreate('secret'), 'Malformed');
    throwsCode(lib, () => agency.channelPublicKey(new Uint8Array(32)), 'UnknownGroup');
    throwsCode(lib, () => agency.channelSendKey(id, ['citizen']), 'WrongChannel');
    throwsCode(lib, () => citizen.channelSubscribe(new Uint8Array(32), new Uint8Array(32), 'public'), 'Malformed');
    throwsCode(lib, () => citizen.channelSubscribe(id, key, 'private'), 'Malformed');
    eq(citizen.channelForget(id), true);
    eq(citizen.channelForget(id), false);
    eq(citizen.channelSubscriptionIds(), []);
    for (const x of [agency, citizen, impostor, fooled]) x.free();
  });

  test('channels: verifyAnnouncement proves who signed a forwarded copy', () => {
    const agency = new lib.Device('agency', NOW);
    const id = agency.channelCreate('public');
    const key = agency.channelPublicKey(id);
    const post = agency.channelAnnounce(id, 'attachmentPointer', enc.encode('https://example.invalid/notice.pdf'), NOW);
    const forwarded = post.slice(); // e.g. pasted into a 1:1 chat
    const a = lib.verifyAnnouncement(forwarded, key);
    eq(a.channelId, id);
    eq(a.signer, key);
    eq(a.contentType, 'attachmentPointer');
    eq(dec.decode(a.body), 'https://example.invalid/notice.pdf');
    const stranger = new lib.Device('stranger', NOW);
    const strangerKey = stranger.channelPublicKey(stranger.channelCreate('public'));
    throwsCode(lib, () => lib.verifyAnnouncement(forwarded, strangerKey), 'WrongSigner');
    const bad = forwarded.slice();
    bad[bad.length - 10] ^= 1;
    throwsCode(lib, () => lib.verifyAnnouncement(bad, key), 'BadSignature');
    throwsCode(lib, () => lib.verifyAnnouncement(forwarded, key.slice(0, 31)), 'Malformed');
    throwsCode(lib, () => lib.verifyAnnouncement(forwarded.slice(0, 40), key), 'Malformed');
    agency.free(); stranger.free();
  });

  test('channels: restricted, content key fanned out with receiveControl; a removed subscriber reads nothing after the rotation', () => {
    const d = mesh(lib, ['agency', 'ben', 'cai']);
    const dev = new lib.Device('dev', NOW); // no session with the agency
    const id = d.agency.channelCreate('restricted');
    const key = d.agency.channelPublicKey(id);
    for (const n of ['ben', 'cai']) d[n].channelSubscribe(id, key, 'restricted');
    const early = d.agency.channelAnnounce(id, 'text', enc.encode('before any key'), NOW);
    eq(early[0], 0x32, 'a restricted announcement');
    const before = d.ben.stateLen;
    throwsCode(lib, () => d.ben.channelReceive(early, NOW), 'MissingSenderKey');
    eq(d.ben.stateLen, before);
    const sent = d.agency.channelSendKey(id, ['ben', 'cai', 'dev']);
    eq(sent.outgoing.map((o) => o.peer), ['ben', 'cai']);
    eq(sent.withheld, [{ peer: 'dev', reason: 'noSession' }]);
    let keyId;
    for (const o of sent.outgoing) {
      const got = d[o.peer].receiveControl('agency', o.message);
      eq(got.kind, 'channelKey');
      eq(got.channelId, id);
      eq(got.sender, 'agency');
      eq(got.identityEvent, { kind: 'same' });
      keyId = got.keyId;
    }
    throwsCode(lib, () => d.ben.receiveControl('agency', sent.outgoing[0].message), 'Duplicate');
    const post = d.agency.channelAnnounce(id, 'text', enc.encode('for subscribers'), NOW);
    for (const n of ['ben', 'cai']) eq(dec.decode(d[n].channelReceive(post, NOW).announcement.body), 'for subscribers');
    throwsCode(lib, () => dev.channelReceive(post, NOW), 'UnknownGroup');
    // Remove Cai: a new content key for Ben only.
    const rk = d.agency.channelRotateContentKey(id, ['ben']);
    assert(rk.keyId !== keyId, 'a new key id');
    eq(rk.outgoing.map((o) => o.peer), ['ben']);
    eq(rk.withheld, []);
    eq(d.ben.receiveControl('agency', rk.outgoing[0].message).keyId, rk.keyId);
    const after = d.agency.channelAnnounce(id, 'text', enc.encode('after the removal'), NOW);
    eq(dec.decode(d.ben.channelReceive(after, NOW).announcement.body), 'after the removal');
    const caiBefore = d.cai.stateLen;
    throwsCode(lib, () => d.cai.channelReceive(after, NOW), 'MissingSenderKey');
    eq(d.cai.stateLen, caiBefore, 'the removed subscriber state is unchanged');
    // Tampering with a restricted post is refused; the genuine post still reads.
    const next = d.agency.channelAnnounce(id, 'text', enc.encode('genuine'), NOW);
    const bad = next.slice();
    bad[bad.length - 1] ^= 1;
    throwsCode(lib, () => d.ben.channelReceive(bad, NOW), 'AuthenticationFailed');
    eq(dec.decode(d.ben.channelReceive(next, NOW).announcement.body), 'genuine');
    dev.free(); freeAll(d);
  });

  test('channels: signing-key rotation moves subscribers to the new key', () => {
    const d = mesh(lib, ['agency', 'ben', 'cai']);
    const id = d.agency.channelCreate('public');
    const oldKey = d.agency.channelPublicKey(id);
    for (const n of ['ben', 'cai']) d[n].channelSubscribe(id, oldKey, 'public');
    eq(d.ben.channelReceive(d.agency.channelAnnounce(id, 'text', enc.encode('one'), NOW), NOW).announcement.seq, 1);
    const rotation = d.agency.channelRotateSigningKey(id, NOW);
    eq(rotation[0], 0x31, 'a key rotation');
    const newKey = d.agency.channelPublicKey(id);
    assert(newKey.some((b, i) => b !== oldKey[i]), 'a new key');
    const r = d.ben.channelReceive(rotation, NOW);
    eq(r, { kind: 'keyRotated', old: oldKey, new: newKey, seq: 2, digest: r.digest, redelivered: false });
    eq(r.old, oldKey);
    eq(r.new, newKey);
    const post = d.agency.channelAnnounce(id, 'text', enc.encode('signed by the new key'), NOW);
    const a = d.ben.channelReceive(post, NOW).announcement;
    eq(a.signer, newKey);
    eq(lib.verifyAnnouncement(post, newKey).seq, 3);
    throwsCode(lib, () => lib.verifyAnnouncement(post, oldKey), 'WrongSigner');
    // Cai has not seen the rotation: the new key's post is WrongSigner until it has.
    const caiBefore = d.cai.stateLen;
    throwsCode(lib, () => d.cai.channelReceive(post, NOW), 'WrongSigner');
    eq(d.cai.stateLen, caiBefore);
    eq(d.cai.channelReceive(rotation, NOW).kind, 'keyRotated');
    eq(dec.decode(d.cai.channelReceive(post, NOW).announcement.body), 'signed by the new key');
    // A replayed rotation is signed by the old key, no longer trusted.
    throwsCode(lib, () => d.cai.channelReceive(rotation, NOW), 'WrongSigner');
    // A restricted channel's rotation replaces its content key too: send it again.
    const rid = d.agency.channelCreate('restricted');
    d.ben.channelSubscribe(rid, d.agency.channelPublicKey(rid), 'restricted');
    d.ben.receiveControl('agency', d.agency.channelSendKey(rid, ['ben']).outgoing[0].message);
    const rrot = d.agency.channelRotateSigningKey(rid, NOW);
    eq(d.ben.channelReceive(rrot, NOW).kind, 'keyRotated');
    d.ben.receiveControl('agency', d.agency.channelSendKey(rid, ['ben']).outgoing[0].message);
    const rpost = d.agency.channelAnnounce(rid, 'text', enc.encode('restricted, new key'), NOW);
    eq(dec.decode(d.ben.channelReceive(rpost, NOW).announcement.body), 'restricted, new key');
    eq(d.agency.channelForget(rid), true);
    throwsCode(lib, () => d.agency.channelAnnounce(rid, 'text', enc.encode('x'), NOW), 'UnknownGroup');
    const key = new Uint8Array(32).fill(4);
    const ben2 = lib.Device.import(key, d.ben.export(key));
    eq(ben2.channelSubscriptionIds().length, 2);
    throwsCode(lib, () => ben2.channelReceive(post, NOW), 'StaleSequence');
    ben2.free(); freeAll(d);
  });

  test('attachments: one-shot round trip; the blob has the layout its header gives', async () => {
    const data = pattern(100 * KiB + 7);
    const { blob, pointer } = lib.attachmentEncrypt(data, 'image/jpeg', 'photo.jpg');
    assert(blob instanceof Uint8Array && pointer instanceof Uint8Array, 'Uint8Array results');
    const info = lib.attachmentHeaderInfo(blob.subarray(0, 53));
    eq(info, { segmentSize: 65536, paddedLen: lib.attachmentPaddedLen(data.length), segmentCount: 2, ciphertextLen: blob.length });
    eq(blob.length, 53 + info.paddedLen + 16 * info.segmentCount);
    eq(blob[0], 0x40, 'blob type');
    eq(pointer[0], 0x41, 'pointer type');
    eq(lib.attachmentDecrypt(pointer, blob), data);
    const p = lib.attachmentPointerInfo(pointer);
    eq(p.size, data.length);
    eq(p.contentType, 'image/jpeg');
    eq(p.fileName, 'photo.jpg');
    eq(p.digest, await sha256(blob), 'the digest is SHA-256 of the whole blob');
    // Two encryptions of the same file share nothing: fresh key and nonce prefix.
    const again = lib.attachmentEncrypt(data, 'image/jpeg', 'photo.jpg');
    assert(again.pointer.subarray(2, 34).some((b, i) => b !== pointer[2 + i]), 'a fresh key');
    assert(again.blob.subarray(14, 21).some((b, i) => b !== blob[14 + i]), 'a fresh nonce prefix');
  });

  test('attachments: streaming 300 KiB in 64 KiB chunks; any chunking decrypts; finished streams refuse', () => {
    const data = pattern(300 * KiB, 7);
    const enc = new lib.AttachmentEncryptor(data.length, 'audio/ogg', null);
    const first = enc.update(data.subarray(0, 64 * KiB - 1));
    eq(first.length, 53, 'the header only: the first segment is not yet complete');
    const seg0 = enc.update(data.subarray(64 * KiB - 1, 64 * KiB));
    eq(seg0.length, 65536 + 16, 'one more byte completes segment 0');
    const { blob, pointer, header } = streamEncrypt(lib, data.subarray(64 * KiB), 64 * KiB, {
      update: (c) => enc.update(c), finishStep: () => enc.finishStep(), header: () => enc.header(), free: () => {},
    });
    const whole = concat([first, seg0, blob]);
    eq(header, whole.subarray(0, 53), 'header() is the blob start');
    const info = lib.attachmentHeaderInfo(header);
    eq(info.segmentCount, 5, '300 KiB pads to 304 KiB: 5 segments');
    eq(whole.length, info.ciphertextLen);
    eq(lib.attachmentPointerInfo(pointer).fileName, null, 'no file name');
    for (const chunk of [64 * KiB, 1000, 53, whole.length]) eq(streamDecrypt(lib, pointer, whole, chunk), data, `chunks of ${chunk}`);
    throwsCode(lib, () => enc.update(new Uint8Array(0)), 'StreamFinished');
    throwsCode(lib, () => enc.finishStep(), 'StreamFinished');
    enc.free();
    const d = new lib.AttachmentDecryptor(pointer);
    const out = d.update(whole);
    eq(out.length, data.length);
    d.finish();
    throwsCode(lib, () => d.update(new Uint8Array(1)), 'StreamFinished');
    throwsCode(lib, () => d.finish(), 'StreamFinished');
    d.free();
  });

  test('attachments: an empty file is one padded segment', () => {
    const enc = new lib.AttachmentEncryptor(0, 'text/plain');
    eq(enc.update(new Uint8Array(0)).length, 53, 'the header');
    const step = enc.finishStep();
    eq(step.pointer, null);
    eq(step.ciphertext.length, 1024 + 16, 'one segment of 1,024 padding bytes');
    const done = enc.finishStep();
    assert(done.pointer instanceof Uint8Array && done.ciphertext.length === 0, 'then the pointer');
    const blob = concat([enc.header(), step.ciphertext]);
    eq(lib.attachmentDecrypt(done.pointer, blob), new Uint8Array(0));
    eq(lib.attachmentPointerInfo(done.pointer).size, 0);
    const one = lib.attachmentEncrypt(new Uint8Array(0), 'text/plain');
    eq(one.blob.length, 53 + 1024 + 16);
    eq(lib.attachmentDecrypt(one.pointer, one.blob).length, 0);
    enc.free();
  });

  test('attachments: a size on a segment boundary holds the last segment for finishStep', () => {
    const data = pattern(128 * KiB, 3); // a padding bucket itself: two full segments, no padding
    eq(lib.attachmentPaddedLen(data.length), data.length);
    const enc = new lib.AttachmentEncryptor(data.length, 'video/mp4', 'clip.mp4');
    const out = enc.update(data);
    eq(out.length, 53 + 65536 + 16, 'header and segment 0; the last segment waits');
    const last = enc.finishStep();
    eq(last.ciphertext.length, 65536 + 16);
    const done = enc.finishStep();
    const blob = concat([out, last.ciphertext]);
    eq(lib.attachmentHeaderInfo(blob.subarray(0, 53)).segmentCount, 2);
    eq(streamDecrypt(lib, done.pointer, blob, 65536 + 16), data);
    const small = lib.AttachmentEncryptor.withSegmentSize(4 * KiB, 1024, 'text/plain', null);
    assert(small instanceof lib.AttachmentEncryptor, 'the factory makes an AttachmentEncryptor');
    const s = streamEncrypt(lib, pattern(4 * KiB, 9), 1024, small);
    eq(lib.attachmentHeaderInfo(s.header), { segmentSize: 1024, paddedLen: 4096, segmentCount: 4, ciphertextLen: 53 + 4096 + 64 });
    eq(lib.attachmentDecrypt(s.pointer, s.blob), pattern(4 * KiB, 9));
    enc.free();
  });

  test('attachments: WrongKey, Tampered, Truncated, TrailingData, DigestMismatch', () => {
    const data = pattern(200 * KiB, 5);
    const a = lib.attachmentEncrypt(data, 'application/pdf', 'a.pdf');
    const b = lib.attachmentEncrypt(data, 'application/pdf', 'a.pdf');
    throwsCode(lib, () => lib.attachmentDecrypt(b.pointer, a.blob), 'WrongKey');
    const flipped = a.blob.slice();
    flipped[53 + 65552 + 100] ^= 1; // inside segment 1
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, flipped), 'Tampered');
    const header = a.blob.slice();
    header[20] ^= 1; // the nonce prefix: every tag covers the header
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, header), 'Tampered');
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, a.blob.subarray(0, a.blob.length - 1)), 'Truncated');
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, a.blob.subarray(0, 53 + 65552)), 'Truncated'); // at a segment boundary
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, a.blob.subarray(0, 40)), 'Truncated');
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, concat([a.blob, new Uint8Array(1)])), 'TrailingData');
    // The pointer: type, version, key (2..34), digest (34..66), size (66..74), ...
    const digest = a.pointer.slice();
    digest[34] ^= 1;
    throwsCode(lib, () => lib.attachmentDecrypt(digest, a.blob), 'DigestMismatch');
    const key = a.pointer.slice();
    key[2] ^= 1;
    throwsCode(lib, () => lib.attachmentDecrypt(key, a.blob), 'WrongKey');
    const size = a.pointer.slice();
    size[73] ^= 0x80; // another padding bucket than the header's
    throwsCode(lib, () => lib.attachmentDecrypt(size, a.blob), 'SizeMismatch');
    const sameBucket = a.pointer.slice(); // the size is bound into every tag (protocol.md 14.1)
    new DataView(sameBucket.buffer).setBigUint64(66, BigInt(data.length - 1));
    eq(lib.attachmentPaddedLen(data.length - 1), lib.attachmentPaddedLen(data.length), 'the same padding bucket');
    throwsCode(lib, () => lib.attachmentDecrypt(sameBucket, a.blob), 'Tampered');
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer.subarray(0, 60), a.blob), 'Malformed');
    throwsCode(lib, () => new lib.AttachmentDecryptor(new Uint8Array([0x41, 1])), 'Malformed');
    throwsCode(lib, () => lib.attachmentDecrypt(a.pointer, concat([new Uint8Array([0x42]), a.blob.subarray(1)])), 'WrongMessageType');
    eq(lib.attachmentDecrypt(a.pointer, a.blob), data, 'the genuine blob still decrypts');
  });

  test('attachments: a refused update leaves the decryptor unchanged and usable', () => {
    const data = pattern(300 * KiB, 11);
    const { blob, pointer } = lib.attachmentEncrypt(data, 'audio/ogg');
    const seg = 65536 + 16;
    const d = new lib.AttachmentDecryptor(pointer);
    const other = lib.attachmentEncrypt(data, 'audio/ogg');
    throwsCode(lib, () => d.update(other.blob.subarray(0, 100)), 'WrongKey');
    eq(d.received(), 0, 'a refused header is not counted');
    const parts = [d.update(blob.subarray(0, 53 + seg + 10))];
    eq(parts[0], data.subarray(0, 65536), 'segment 0 is released once authenticated');
    const at = d.received();
    eq(at, 53 + seg + 10);
    const bad = blob.slice(at, 53 + 3 * seg);
    bad[seg] ^= 1; // inside segment 2
    throwsCode(lib, () => d.update(bad), 'Tampered');
    eq(d.received(), at, 'nothing accepted');
    throwsCode(lib, () => d.finish(), 'Truncated');
    parts.push(d.update(blob.subarray(at, blob.length - 5)));
    throwsCode(lib, () => d.finish(), 'Truncated');
    throwsCode(lib, () => d.update(concat([blob.subarray(blob.length - 5), new Uint8Array(3)])), 'TrailingData');
    parts.push(d.update(blob.subarray(blob.length - 5)));
    throwsCode(lib, () => d.update(new Uint8Array(1)), 'TrailingData');
    d.finish();
    eq(concat(parts), data);
    // A blob whose digest the pointer does not name is refused at finish, after every
    // segment was authentic: nothing released so far may be kept.
    const digest = pointer.slice();
    digest[40] ^= 1;
    const e = new lib.AttachmentDecryptor(digest);
    eq(e.update(blob).length, data.length);
    throwsCode(lib, () => e.finish(), 'DigestMismatch');
    d.free(); e.free();
  });

  test('attachments: random access to a middle segment (seeking)', () => {
    const data = pattern(300 * KiB, 13);
    const { blob, pointer } = lib.attachmentEncrypt(data, 'video/mp4');
    const header = blob.subarray(0, 53);
    const index = lib.attachmentSegmentForOffset(header, 150_000);
    eq(index, 2);
    const r = lib.attachmentSegmentRange(header, index);
    eq(r, { offset: 53 + 2 * (65536 + 16), length: 65536 + 16 });
    const seg = blob.subarray(r.offset, r.offset + r.length);
    eq(lib.attachmentDecryptSegment(pointer, header, index, seg), data.subarray(2 * 65536, 3 * 65536));
    // The last segment releases only the real bytes, not the padding.
    const last = lib.attachmentHeaderInfo(header).segmentCount - 1;
    const lr = lib.attachmentSegmentRange(header, last);
    eq(lr.offset + lr.length, blob.length);
    eq(lib.attachmentDecryptSegment(pointer, header, last, blob.subarray(lr.offset)), data.subarray(last * 65536));
    throwsCode(lib, () => lib.attachmentDecryptSegment(pointer, header, 1, seg), 'Tampered'); // wrong position
    throwsCode(lib, () => lib.attachmentDecryptSegment(pointer, header, index, seg.subarray(1)), 'Truncated');
    throwsCode(lib, () => lib.attachmentDecryptSegment(pointer, header, index, concat([seg, new Uint8Array(1)])), 'TrailingData');
    throwsCode(lib, () => lib.attachmentDecryptSegment(pointer, header, last + 1, seg), 'Malformed');
    throwsCode(lib, () => lib.attachmentDecryptSegment(pointer, header, 1.5, seg), 'Malformed');
    throwsCode(lib, () => lib.attachmentDecryptSegment(lib.attachmentEncrypt(data, 'video/mp4').pointer, header, index, seg), 'WrongKey');
    throwsCode(lib, () => lib.attachmentSegmentRange(header, last + 1), 'Malformed');
    eq(lib.attachmentSegmentForOffset(header, data.length - 1), last);
    throwsCode(lib, () => lib.attachmentSegmentForOffset(header, (last + 1) * 65536), 'Malformed');
    throwsCode(lib, () => lib.attachmentSegmentForOffset(header, -1), 'Malformed');
    throwsCode(lib, () => lib.attachmentHeaderInfo(header.subarray(0, 52)), 'Malformed');
  });

  test('attachments: attachmentPointerInfo describes the pointer without its key', () => {
    const { pointer } = lib.attachmentEncrypt(pattern(5000), 'image/png', 'Übersicht – Q3.png');
    const info = lib.attachmentPointerInfo(pointer);
    eq(Object.keys(info).sort(), ['contentType', 'digest', 'fileName', 'size']);
    eq(info.fileName, 'Übersicht – Q3.png');
    eq(info.digest, pointer.subarray(34, 66));
    const key = pointer.subarray(2, 34);
    for (const v of Object.values(info)) {
      if (v instanceof Uint8Array) assert(v.some((b, i) => b !== key[i]), 'no field is the key');
    }
    throwsCode(lib, () => lib.attachmentPointerInfo(pointer.subarray(0, pointer.length - 1)), 'Malformed');
    throwsCode(lib, () => lib.attachmentPointerInfo(new Uint8Array(600)), 'TooLarge');
  });

  test('attachments: finishStep before the declared size is SizeMismatch and changes nothing; bad arguments', () => {
    const data = pattern(70 * KiB, 17);
    const enc = new lib.AttachmentEncryptor(data.length, 'application/zip', 'x.zip');
    const parts = [enc.update(data.subarray(0, 10 * KiB))];
    throwsCode(lib, () => enc.finishStep(), 'SizeMismatch');
    throwsCode(lib, () => enc.update(new Uint8Array(60 * KiB + 1)), 'SizeMismatch'); // one byte too many
    parts.push(enc.update(data.subarray(10 * KiB)));
    const { blob, pointer } = streamEncrypt(lib, new Uint8Array(0), 1, enc);
    eq(lib.attachmentDecrypt(pointer, concat([...parts, blob])), data, 'the stream went on after the refusals');
    throwsCode(lib, () => new lib.AttachmentEncryptor(-1, 'text/plain'), 'Malformed');
    throwsCode(lib, () => new lib.AttachmentEncryptor(1.5, 'text/plain'), 'Malformed');
    throwsCode(lib, () => new lib.AttachmentEncryptor(NaN, 'text/plain'), 'Malformed');
    throwsCode(lib, () => new lib.AttachmentEncryptor(2 ** 40 + 1, 'text/plain'), 'TooLarge');
    throwsCode(lib, () => new lib.AttachmentEncryptor(1, ''), 'Malformed');
    throwsCode(lib, () => new lib.AttachmentEncryptor(1, 'text/plain', '../etc/passwd'), 'Malformed');
    throwsCode(lib, () => new lib.AttachmentEncryptor(1, 'text/plain', ''), 'Malformed');
    throwsCode(lib, () => lib.AttachmentEncryptor.withSegmentSize(1, 512, 'text/plain'), 'Malformed');
    throwsCode(lib, () => lib.AttachmentEncryptor.withSegmentSize(1, 2 ** 20 + 1, 'text/plain'), 'Malformed');
    throwsCode(lib, () => lib.attachmentEncrypt(new Uint8Array(1), 'text/\n'), 'Malformed');
    throwsCode(lib, () => lib.attachmentPaddedLen(2 ** 40 + 1), 'TooLarge');
    eq([0, 1024, 1025, 65537, 2 ** 20 + 1].map((n) => lib.attachmentPaddedLen(n)), [1024, 1024, 1088, 67584, 2 ** 20 + 2 ** 15]);
  });

  test('attachments: limits and error codes', () => {
    const l = lib.limits();
    eq([l.headerBytes, l.defaultSegmentSize, l.minSegmentSize, l.maxSegmentSize, l.maxAttachmentBytes, l.maxPointerBytes],
      [53, 65536, 1024, 1048576, 2 ** 40, 587]);
    const codes = lib.errorCodes();
    for (const c of ['WrongKey', 'Tampered', 'Truncated', 'TrailingData', 'DigestMismatch', 'SizeMismatch', 'StreamFinished']) {
      assert(codes.includes(c), `${c} listed`);
    }
  });

  test('safety numbers: both sides see the same 60 digits; a scan matches only the real identities', () => {
    const alice = new lib.Device('alice@agency.gov.my', NOW);
    const bob = new lib.Device('bob@agency.gov.my', NOW);
    const mallory = new lib.Device('bob@agency.gov.my', NOW);
    const a = new lib.SafetyNumber('alice@agency.gov.my', alice.identityKey, 'bob@agency.gov.my', bob.identityKey);
    const b = new lib.SafetyNumber('bob@agency.gov.my', bob.identityKey, 'alice@agency.gov.my', alice.identityKey);
    eq(a.digits(), b.digits());
    assert(/^[0-9]{60}$/.test(a.digits()), '60 digits');
    eq(a.grouped().split(' ').length, 12);
    eq(a.grouped().replaceAll(' ', ''), a.digits());
    eq(a.scannable().length, 66);
    eq(a.compareScanned(b.scannable()), { result: 'match' });
    eq(a.compareScanned(a.scannable()), { result: 'mismatch' });
    // The server put Mallory's key in Bob's place on Alice's side.
    const m = new lib.SafetyNumber('alice@agency.gov.my', alice.identityKey, 'bob@agency.gov.my', mallory.identityKey);
    assert(m.digits() !== a.digits(), 'another key, another number');
    eq(m.compareScanned(b.scannable()), { result: 'mismatch' });
    const v2 = b.scannable();
    v2[1] = 2;
    eq(a.compareScanned(v2), { result: 'versionMismatch', theirs: 2 });
    throwsCode(lib, () => a.compareScanned(new Uint8Array(0)), 'Malformed');
    throwsCode(lib, () => a.compareScanned(b.scannable().subarray(0, 65)), 'Malformed');
    throwsCode(lib, () => a.compareScanned(new Uint8Array(66).fill(0x51)), 'WrongMessageType');
    throwsCode(lib, () => new lib.SafetyNumber('', alice.identityKey, 'bob', bob.identityKey), 'Malformed');
    throwsCode(lib, () => new lib.SafetyNumber('a', alice.identityKey, 'a', alice.identityKey), 'Malformed');
    for (const x of [a, b, m, alice, bob, mallory]) x.free();
  });

  test('linking a device: the offer opens one message; failures change nothing', () => {
    const web = new lib.Device('aminah@mof.gov.my', NOW);
    const phone = new lib.Device('aminah@mof.gov.my', NOW);
    const secret = new lib.ProvisioningSecret(web.identityKey, 'web-1', NOW);
    const offer = secret.offer;
    assert(offer.length <= 173 && offer[0] === 0x57 && offer[1] === 1, 'offer header and size');
    const info = lib.inspectProvisioningOffer(offer);
    eq([info.deviceId, info.createdAt], ['web-1', NOW]);
    eq(info.identity, web.identityKey);
    const payload = {
      user: 'aminah@mof.gov.my',
      masterPublic: phone.identityKey.slice(2, 34),
      endorsement: new Uint8Array(100).fill(0x56),
      deviceList: new Uint8Array(200).fill(0x55),
    };
    throwsCode(lib, () => lib.provisioningSeal(offer, payload, NOW + 601), 'ProvisioningExpired');
    throwsCode(lib, () => lib.provisioningSeal(offer, payload, NOW - 61), 'ProvisioningExpired');
    throwsCode(lib, () => lib.provisioningSeal(offer, { ...payload, user: 'Aminah@mof.gov.my' }, NOW), 'Malformed');
    throwsCode(lib, () => lib.provisioningSeal(offer, { ...payload, masterPublic: new Uint8Array(32) }, NOW), 'InvalidKey');
    throwsCode(lib, () => lib.inspectProvisioningOffer(offer.subarray(0, 50)), 'Malformed');
    const message = lib.provisioningSeal(offer, payload, NOW + 10);
    eq([message[0], message[1]], [0x58, 1]);
    const tampered = message.slice();
    tampered[40] ^= 1;
    throwsCode(lib, () => secret.open(tampered), 'AuthenticationFailed');
    throwsCode(lib, () => secret.open(new Uint8Array([0x58, 1])), 'Malformed');
    const other = new lib.ProvisioningSecret(web.identityKey, 'web-2', NOW);
    throwsCode(lib, () => other.open(message), 'AuthenticationFailed');
    eq(secret.isUsed, false);
    const got = secret.open(message);
    eq(got.user, payload.user);
    eq(got.masterPublic, payload.masterPublic);
    eq(got.endorsement, payload.endorsement);
    eq(got.deviceList, payload.deviceList);
    eq(secret.isUsed, true);
    throwsCode(lib, () => secret.open(message), 'ProvisioningUsed');
    throwsCode(lib, () => new lib.ProvisioningSecret(web.identityKey, 'a/b', NOW), 'Malformed');
    for (const c of ['ProvisioningExpired', 'ProvisioningUsed']) assert(lib.errorCodes().includes(c), c);
    for (const x of [secret, other, web, phone]) x.free();
  });

  test('device lists: endorsement, processing, fan-out report, removal; failures change nothing', () => {
    const bob = 'bob@mof.gov.my';
    const phone = new lib.Device(`${bob}/phone`, NOW);
    const laptop = new lib.Device(`${bob}/laptop`, NOW);
    const ana = new lib.Device('ana@mof.gov.my/phone', NOW);
    eq([phone.isPrimary, phone.ownAddress, phone.ownDeviceList()], [false, undefined, undefined]);
    throwsCode(lib, () => phone.createMasterKey('a/b', NOW), 'Malformed');
    throwsCode(lib, () => phone.createMasterKey('laptop', NOW), 'DeviceListMismatch'); // not the address's device
    eq(phone.isPrimary, false);
    const v1 = phone.createMasterKey('phone', NOW);
    eq([v1[0], v1[1]], [0x55, 1]);
    eq([phone.isPrimary, phone.ownAddress], [true, `${bob}/phone`]);
    throwsCode(lib, () => phone.createMasterKey('phone', NOW), 'Duplicate');
    const l1 = lib.decodeDeviceList(v1);
    eq([l1.user, l1.version, l1.issuedAt, l1.devices.map((d) => d.deviceId)], [bob, 1, NOW, ['phone']]);
    eq(l1.devices[0].identityKey, phone.identityKey);
    eq(l1.bytes, v1);
    eq(l1.masterPublicKey.length, 32);

    const endorsed = phone.endorseDevice('laptop', laptop.identityKey, NOW);
    throwsCode(lib, () => phone.endorseDevice('laptop', laptop.identityKey, NOW), 'Duplicate');
    throwsCode(lib, () => phone.endorseDevice('a/b', laptop.identityKey, NOW), 'Malformed');
    eq(phone.ownDeviceList().version, 2);
    const info = lib.decodeDeviceEndorsement(endorsed.endorsement);
    eq([info.user, info.deviceId], [bob, 'laptop']);
    eq(info.identityKey, laptop.identityKey);
    eq(info.masterPublicKey, l1.masterPublicKey);
    throwsCode(lib, () => ana.adoptOwnDeviceList(endorsed.deviceList, endorsed.endorsement), 'DeviceListMismatch');
    eq(ana.ownDeviceList(), undefined);
    laptop.adoptOwnDeviceList(endorsed.deviceList, endorsed.endorsement);
    eq([laptop.isPrimary, laptop.ownAddress, laptop.ownDeviceList().version], [false, `${bob}/laptop`, 2]);
    throwsCode(lib, () => laptop.endorseDevice('tablet', ana.identityKey, NOW), 'NotPrimary');
    throwsCode(lib, () => laptop.removeLinkedDevice('phone', NOW), 'NotPrimary');

    const first = ana.processDeviceList(v1, NOW);
    eq(first.event.kind, 'new');
    eq(first.event.devices.map((d) => d.deviceId), ['phone']);
    eq([first.groupChanges, first.groupFailures], [[], []]);
    const update = ana.processDeviceList(endorsed.deviceList, NOW).event;
    eq([update.kind, update.added.map((d) => d.deviceId), update.removed], ['updated', ['laptop'], []]);
    eq(ana.processDeviceList(endorsed.deviceList, NOW).event, { kind: 'unchanged' });
    throwsCode(lib, () => ana.processDeviceList(v1, NOW), 'StaleDeviceList');
    const bad = endorsed.deviceList.slice();
    bad[bad.length - 1] ^= 1;
    throwsCode(lib, () => ana.processDeviceList(bad, NOW), 'BadSignature');
    throwsCode(lib, () => ana.processDeviceList(endorsed.deviceList.subarray(0, 20), NOW), 'Malformed');
    throwsCode(lib, () => lib.decodeDeviceList(bad), 'BadSignature');
    throwsCode(lib, () => lib.decodeDeviceEndorsement(endorsed.deviceList), 'WrongMessageType');
    eq(ana.deviceList(bob).bytes, endorsed.deviceList); // the refusals changed nothing
    throwsCode(lib, () => ana.deviceList('Bob'), 'Malformed');
    eq(ana.deviceList('carol@mof.gov.my'), undefined);

    throwsCode(lib, () => ana.encryptForUser(bob, enc.encode('x'), [{ address: 'bob', bundle: phone.nextBundle() }]), 'Malformed');
    throwsCode(lib, () => ana.encryptForUser(bob, enc.encode('x'), [{ address: `${bob}/phone`, bundle: new Uint8Array(3) }]), 'WrongMessageType');
    // No list for carol: her bundle's device is never used.
    const carol = new lib.Device('carol@mof.gov.my/phone', NOW);
    const none = ana.encryptForUser('carol@mof.gov.my', enc.encode('x'), [{ address: 'carol@mof.gov.my/phone', bundle: carol.nextBundle() }]);
    eq(none.messages, []);
    eq(none.report.map((r) => [r.address, r.sent, r.newSession, r.missing]), [['carol@mof.gov.my/phone', false, false, 'NoDeviceList']]);
    carol.free();
    const partial = ana.encryptForUser(bob, enc.encode('x'), []);
    eq(partial.report.map((r) => [r.address, r.sent, r.missing]), [
      [`${bob}/laptop`, false, 'NoSessionOrBundle'], [`${bob}/phone`, false, 'NoSessionOrBundle'],
    ]);
    const bundles = [
      { address: `${bob}/phone`, bundle: phone.nextBundle() },
      { address: `${bob}/laptop`, bundle: laptop.nextBundle() },
    ];
    const out = ana.encryptForUser(bob, enc.encode('to both'), bundles);
    eq(out.report.filter((r) => r.sent && r.newSession && r.missing === null).length, 2);
    const devices = { [`${bob}/phone`]: phone, [`${bob}/laptop`]: laptop };
    eq(out.messages.map((m) => m.peer).sort(), [`${bob}/laptop`, `${bob}/phone`]);
    for (const m of out.messages) {
      eq(dec.decode(devices[m.peer].decrypt('ana@mof.gov.my/phone', m.message).plaintext), 'to both');
    }

    throwsCode(lib, () => phone.removeLinkedDevice('phone', NOW), 'UnknownDevice');
    throwsCode(lib, () => phone.removeLinkedDevice('tablet', NOW), 'UnknownDevice');
    const removal = phone.removeLinkedDevice('laptop', NOW);
    eq([removal.groupChanges, removal.groupFailures], [[], []]);
    eq(lib.decodeDeviceList(removal.deviceList).version, 3);
    const removed = ana.processDeviceList(removal.deviceList, NOW).event;
    eq([removed.kind, removed.removed.map((d) => d.deviceId)], ['updated', ['laptop']]);
    const after = ana.encryptForUser(bob, enc.encode('after'), [{ address: `${bob}/laptop`, bundle: laptop.nextBundle() }]);
    eq(after.report.map((r) => r.address), [`${bob}/phone`]);
    eq(after.messages.map((m) => m.peer), [`${bob}/phone`]);
    for (const x of [phone, laptop, ana]) x.free();
  });

  test('device lists: a foreign master key is surfaced and blocks until approved', () => {
    const bob = 'bob@mof.gov.my';
    const phone = new lib.Device(`${bob}/phone`, NOW);
    const impostor = new lib.Device(`${bob}/phone`, NOW);
    const ana = new lib.Device('ana@mof.gov.my/phone', NOW);
    ana.processDeviceList(phone.createMasterKey('phone', NOW), NOW);
    const foreign = impostor.createMasterKey('phone', NOW);
    const changed = ana.processDeviceList(foreign, NOW).event;
    eq(changed.kind, 'masterKeyChanged');
    eq(changed.previous, ana.deviceList(bob).masterPublicKey);
    eq(ana.pendingDeviceList(bob).bytes, foreign);
    const out = ana.encryptForUser(bob, enc.encode('x'), []);
    eq([out.messages, out.report.map((r) => r.missing)], [[], ['MasterKeyChanged']]);
    throwsCode(lib, () => ana.approveMasterKey(bob, ana.deviceList(bob).masterPublicKey, NOW), 'UnknownMasterKey');
    throwsCode(lib, () => ana.approveMasterKey(bob, changed.new.subarray(0, 31), NOW), 'InvalidKey');
    throwsCode(lib, () => ana.approveMasterKey('Bob', changed.new, NOW), 'Malformed');
    throwsCode(lib, () => phone.approveMasterKey(bob, changed.new, NOW), 'DeviceListMismatch');
    eq(ana.approveMasterKey(bob, changed.new, NOW).event.kind, 'updated');
    eq(ana.deviceList(bob).masterPublicKey, changed.new);
    eq(ana.pendingDeviceList(bob), undefined);
    for (const x of [phone, impostor, ana]) x.free();
  });

  test('linking a device: linkDevice on the phone, completeLink on the new device', () => {
    const user = 'aminah@mof.gov.my';
    const phone = new lib.Device(`${user}/phone`, NOW);
    const web = new lib.Device(user, NOW);
    const secret = new lib.ProvisioningSecret(web.identityKey, 'web-1', NOW);
    throwsCode(lib, () => phone.linkDevice(secret.offer, NOW), 'NotPrimary');
    phone.createMasterKey('phone', NOW);
    throwsCode(lib, () => phone.linkDevice(secret.offer, NOW + 601), 'ProvisioningExpired');
    throwsCode(lib, () => phone.linkDevice(secret.offer.subarray(0, 40), NOW), 'Malformed');
    eq(phone.ownDeviceList().version, 1); // refused offers changed nothing
    const link = phone.linkDevice(secret.offer, NOW + 5);
    eq([link.message[0], link.message[1]], [0x58, 1]);
    eq([link.deviceList.user, link.deviceList.version], [user, 2]);
    eq(link.deviceList.devices.map((d) => d.deviceId), ['phone', 'web-1']);
    eq(phone.ownDeviceList().bytes, link.deviceList.bytes);
    throwsCode(lib, () => phone.linkDevice(secret.offer, NOW + 5), 'Duplicate');

    const tampered = link.message.slice();
    tampered[40] ^= 1;
    throwsCode(lib, () => web.completeLink(secret, tampered), 'AuthenticationFailed');
    const stranger = new lib.Device(user, NOW);
    throwsCode(lib, () => stranger.completeLink(secret, link.message), 'DeviceListMismatch');
    eq([secret.isUsed, web.ownDeviceList(), stranger.ownDeviceList()], [false, undefined, undefined]);
    const adopted = web.completeLink(secret, link.message);
    eq([adopted.user, adopted.version, adopted.devices.map((d) => d.deviceId)], [user, 2, ['phone', 'web-1']]);
    eq(adopted.bytes, link.deviceList.bytes);
    eq([secret.isUsed, web.isPrimary, web.ownAddress], [true, false, `${user}/web-1`]);
    throwsCode(lib, () => web.completeLink(secret, link.message), 'ProvisioningUsed');

    // The phone fans a message out to its own other device, the web one.
    const out = phone.encryptForUser(user, enc.encode('hello web'), [{ address: `${user}/web-1`, bundle: web.nextBundle() }]);
    eq(out.report.map((r) => [r.address, r.sent]), [[`${user}/web-1`, true]]);
    eq(dec.decode(web.decrypt(`${user}/phone`, out.messages[0].message).plaintext), 'hello web');
    for (const x of [secret, phone, web, stranger]) x.free();
  });

  test('agency certificates: issue, verify, each refusal, a certified session start', () => {
    const root = lib.RootKey.fromSeed(new Uint8Array(32).fill(1));
    const agency = lib.AgencyKey.fromSeed(new Uint8Array(32).fill(2));
    const bob = new lib.Device('bob@mof.gov.my', NOW);
    bob.generateOneTimePreKeys(2);
    bob.generatePqPreKeys(2, NOW);
    const agencyCert = root.certifyAgency(7n, agency.publicKey, 'Ministry of Finance', ['mof.gov.my'], NOW - 1000, NOW + 1000);
    const deviceCert = agency.certifyDevice(42n, 'bob@mof.gov.my/laptop', bob.identityKey, NOW - 100, NOW + 100);
    const chain = lib.certificateChain(deviceCert, agencyCert);
    const v = lib.verifyCertificateChain(chain, [root.publicKey], [], NOW);
    eq(v.peer, 'bob@mof.gov.my/laptop');
    eq(v.identityKey, bob.identityKey);
    eq(v.agencyName, 'Ministry of Finance');
    throwsCode(lib, () => lib.verifyCertificateChain(chain, [root.publicKey], [], NOW + 100), 'CertificateExpired');
    throwsCode(lib, () => lib.verifyCertificateChain(chain, [root.publicKey], [], NOW - 101), 'CertificateNotYetValid');
    throwsCode(lib, () => lib.verifyCertificateChain(chain, [agency.publicKey], [], NOW), 'UnknownRoot');
    throwsCode(lib, () => lib.verifyCertificateChain(chain.slice(0, 20), [root.publicKey], [], NOW), 'Malformed');
    const list = agency.revocationList(1n, NOW, new BigUint64Array([42n]));
    throwsCode(lib, () => lib.verifyCertificateChain(chain, [root.publicKey], [{ list, agencyCertificate: agencyCert }], NOW), 'CertificateRevoked');
    const wrongDomain = lib.certificateChain(agency.certifyDevice(43n, 'bob@pmo.gov.my/laptop', bob.identityKey, NOW - 100, NOW + 100), agencyCert);
    throwsCode(lib, () => lib.verifyCertificateChain(wrongDomain, [root.publicKey], [], NOW), 'WrongDomain');
    const alice = new lib.Device('alice@mof.gov.my', NOW);
    alice.setTrustRoots([root.publicKey]);
    alice.setRequireCertificate(true);
    eq(alice.requireCertificate, true);
    throwsCode(lib, () => alice.initiate('bob@mof.gov.my/laptop', bob.nextBundle()), 'CertificateRequired');
    const proof = alice.verifyDevice(chain, NOW);
    throwsCode(lib, () => alice.initiateCertified('bob@mof.gov.my/phone', bob.nextBundle(), proof), 'CertificateMismatch');
    eq(alice.initiateCertified('bob@mof.gov.my/laptop', bob.nextBundle(), proof).kind, 'new');
    eq(alice.applyRevocationList(list, agencyCert, NOW), 'applied');
    eq(alice.applyRevocationList(list, agencyCert, NOW), 'unchanged');
    throwsCode(lib, () => alice.verifyDevice(chain, NOW), 'CertificateRevoked');
    for (const x of [root, agency, bob, alice, v, proof]) x.free();
  });
}
