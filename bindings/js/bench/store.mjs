// The store-backed Device in a browser: per-message cost of IndexedDB on the real device
// path (test/browser/run.mjs and bench/browser.mjs run it in headless Chromium).
/**
 * Per-message cost on the real device path, `n` 100-byte messages after `warm` warm-up
 * ones, pre-encrypted by an in-memory peer (so only the receiving side is timed): a stored
 * decrypt + ack (two IndexedDB transactions), the same with the ack not awaited (it rides
 * with the next decrypt: one transaction a message), a stored encrypt (one), and the
 * in-memory decrypt. Mean ms per message.
 */
export async function benchStoredDevice(lib, name, n, warm, durability) {
  const now = 1_700_000_000;
  const m = new Uint8Array(100).fill(0x42);
  const peer = new lib.Device('peer', now);
  const dev = await lib.createStoredDevice(name, { platformKey: new Uint8Array(32).fill(3) }, 'dev', now, { durability });
  await dev.initiate('peer', peer.nextBundle());
  peer.decrypt('dev', await dev.encrypt('peer', m));
  const msgs = [];
  for (let i = 0; i < 2 * n + warm; i++) msgs.push(peer.encrypt('dev', m));
  for (let i = 0; i < warm; i++) { const r = await dev.decrypt('peer', msgs[i]); await dev.ack(r.digest); }
  // Time spent inside the synchronous wasm calls (the rest is lock + IndexedDB).
  let inWasm = 0;
  const raw = dev._raw;
  for (const name of ['decrypt', 'ack', 'encrypt']) {
    const f = raw[name].bind(raw);
    raw[name] = (...args) => { const t = performance.now(); try { return f(...args); } finally { inWasm += performance.now() - t; } };
  }
  let t0 = performance.now();
  for (let i = warm; i < n + warm; i++) { const r = await dev.decrypt('peer', msgs[i]); await dev.ack(r.digest); }
  const decryptAck = (performance.now() - t0) / n;
  const decryptAckWasm = inWasm / n;
  // The same with the ack not awaited: it shares the next decrypt's IndexedDB transaction.
  t0 = performance.now();
  const acks = [];
  for (let i = n + warm; i < 2 * n + warm; i++) { const r = await dev.decrypt('peer', msgs[i]); acks.push(dev.ack(r.digest)); }
  await Promise.all(acks);
  const decryptAckPipelined = (performance.now() - t0) / n;
  inWasm = 0;
  const out = [];
  t0 = performance.now();
  for (let i = 0; i < n; i++) out.push(await dev.encrypt('peer', m));
  const encrypt = (performance.now() - t0) / n;
  const encryptWasm = inWasm / n;
  for (const c of out) peer.decrypt('dev', c);
  await dev.close();
  // The same receive path in memory.
  const a = new lib.Device('a', now);
  const b = new lib.Device('b', now);
  a.initiate('b', b.nextBundle());
  b.decrypt('a', a.encrypt('b', m));
  const mm = [];
  for (let i = 0; i < n + warm; i++) mm.push(a.encrypt('b', m));
  for (let i = 0; i < warm; i++) b.decrypt('a', mm[i]);
  t0 = performance.now();
  for (let i = warm; i < n + warm; i++) b.decrypt('a', mm[i]);
  const memory = (performance.now() - t0) / n;
  a.free(); b.free(); peer.free();
  return { decryptAck, decryptAckWasm, decryptAckPipelined, encrypt, encryptWasm, memory };
}
