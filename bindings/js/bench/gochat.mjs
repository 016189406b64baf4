// The @gochat/e2ee flows timed in Node and in the browser (same code in both).
// steady: encrypt + decrypt of 100 bytes on an answered session (no DH step);
// setup: nextBundle -> initiate -> first encrypt -> responder decrypt (devices and
// prekeys are created outside the timed region).
// group: groupEncrypt + groupDecrypt of 100 bytes in a 2-member group whose sender
// key has been delivered (rotation off, so no key fan-out in the timed region).
export function benchGoChat(lib, { iters = 5000, setups = 50 } = {}) {
  const now = 1_700_000_000;
  const msg = new Uint8Array(100).fill(0x42);
  const alice = new lib.Device('alice', now);
  const bob = new lib.Device('bob', now);
  alice.initiate('bob', bob.nextBundle());
  bob.decrypt('alice', alice.encrypt('bob', msg));
  alice.decrypt('bob', bob.encrypt('alice', msg));
  const round = () => bob.decrypt('alice', alice.encrypt('bob', msg));
  for (let i = 0; i < iters / 5; i++) round();
  let t = performance.now();
  for (let i = 0; i < iters; i++) round();
  const steady = ((performance.now() - t) * 1000) / iters;
  alice.free(); bob.free();

  let total = 0;
  for (let i = 0; i < setups + 5; i++) {
    const a = new lib.Device('alice', now);
    const b = new lib.Device('bob', now);
    b.generateOneTimePreKeys(1);
    b.generatePqPreKeys(1, now);
    t = performance.now();
    a.initiate('bob', b.nextBundle());
    b.decrypt('alice', a.encrypt('bob', msg));
    if (i >= 5) total += performance.now() - t;
    a.free(); b.free();
  }
  return { steady_us: steady, setup_us: (total * 1000) / setups, group_us: benchGroup(lib, msg, now, iters) };
}

function benchGroup(lib, msg, now, iters) {
  const alice = new lib.Device('alice', now);
  const bob = new lib.Device('bob', now);
  alice.initiate('bob', bob.nextBundle());
  bob.decrypt('alice', alice.encrypt('bob', msg));
  alice.decrypt('bob', bob.encrypt('alice', msg));
  const c = alice.groupCreate([{ name: 'bob', identityKey: bob.identityKey }], now);
  bob.groupJoin(c.welcome, now);
  for (const o of c.outgoing) bob.groupReceive('alice', o.message);
  alice.groupSetRotationPolicy(c.groupId, { maxMessages: 0, maxAgeSecs: 0 }); // never rotate
  const round = () => bob.groupDecrypt('alice', alice.groupEncrypt(c.groupId, msg, now).message);
  for (let i = 0; i < iters / 5; i++) round();
  const t = performance.now();
  for (let i = 0; i < iters; i++) round();
  const us = ((performance.now() - t) * 1000) / iters;
  alice.free(); bob.free();
  return us;
}
