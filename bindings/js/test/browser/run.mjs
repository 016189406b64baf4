// Headless Chromium run of the shared suite (../suite.mjs) plus a two-page relay test.
// Serves the repository from 127.0.0.1 (the package at /bindings/js/, the vectors at
// /test-vectors/), with a tiny message relay at /relay/<box>. Uses the system chromium
// through playwright-core (no browser download). Prints `N passed, N failed`.
import { createServer } from 'node:http';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..'));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json' };

// The relay: POST /relay/<box> queues the body, GET /relay/<box> pops one (204 if empty).
const boxes = new Map();
const server = createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path.startsWith('/relay/')) {
    const box = path.slice('/relay/'.length);
    if (req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      if (!boxes.has(box)) boxes.set(box, []);
      boxes.get(box).push(body);
      res.writeHead(204).end();
    } else {
      const q = boxes.get(box);
      if (q?.length) res.writeHead(200, { 'content-type': 'text/plain' }).end(q.shift());
      else res.writeHead(204).end();
    }
    return;
  }
  const p = normalize(join(root, path));
  if (!p.startsWith(root)) { res.writeHead(403).end(); return; }
  try {
    const body = await readFile(p);
    res.writeHead(200, { 'content-type': types[extname(p)] ?? 'application/octet-stream' }).end(body);
  } catch { res.writeHead(404).end(); }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/bindings/js/test/browser`;

const exe = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']
  .find((p) => existsSync(p));
const userDataDir = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
let failed = 0, passed = 0;
let context;
const report = (ok, name, error) => {
  if (ok) { passed++; console.log(`ok - browser: ${name}`); }
  else { failed++; console.log(`not ok - browser: ${name}\n  ${error}`); }
};
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: exe,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const log = (tag) => (m) => console.log(`[${tag} ${m.type()}] ${m.text()}`);

  // 1. The shared suite, as a plain <script type="module"> page.
  const page = await context.newPage();
  page.on('console', log('suite'));
  page.on('pageerror', (e) => console.log(`[suite pageerror] ${e}`));
  await page.goto(`${base}/index.html`);
  await page.waitForFunction(() => Array.isArray(window.__results), null, { timeout: 120_000 });
  for (const r of await page.evaluate(() => window.__results)) report(r.ok, r.name, r.error);

  // 2. Two devices in two pages, talking through the relay.
  const bob = await context.newPage();
  const alice = await context.newPage();
  bob.on('console', log('bob'));
  alice.on('console', log('alice'));
  await bob.goto(`${base}/relay.html?role=bob`);
  await alice.goto(`${base}/relay.html?role=alice`);
  await alice.waitForFunction(() => window.__done !== undefined, null, { timeout: 60_000 });
  const done = await alice.evaluate(() => window.__done);
  report(done.ok, 'two pages talk through a localhost relay', done.error);

  // 3. The IndexedDB store (store.js): real IndexedDB and Web Locks.
  const storePage = async (tag) => {
    const p = await context.newPage();
    p.on('console', log(tag));
    p.on('pageerror', (e) => console.log(`[${tag} pageerror] ${e}`));
    await p.goto(`${base}/store.html`);
    await p.waitForFunction(() => window.__ready === true, null, { timeout: 60_000 });
    return p;
  };
  const check = async (name, fn) => {
    try { await fn(); report(true, name); } catch (e) { report(false, name, e && e.message || e); }
  };
  const tab1 = await storePage('store1');
  await check('store: Web Locks and IndexedDB are present', async () => {
    const ok = await tab1.evaluate(() => !!navigator.locks && !!indexedDB);
    if (!ok) throw new Error('navigator.locks or indexedDB missing');
  });
  await check('store: rows persist and a reopened handle continues', () =>
    tab1.evaluate(() => s.persistAndReopen(lib, 'persist', {})));
  await check('store: a reloaded page reopens the store and continues', async () => {
    await tab1.evaluate(() => s.race(lib, 'reload', {}, 'before', 3));
    await tab1.reload();
    await tab1.waitForFunction(() => window.__ready === true, null, { timeout: 60_000 });
    await tab1.evaluate(() => s.checkRace(lib, 'reload', {}, 3));
    await tab1.evaluate(() => s.race(lib, 'reload', {}, 'after', 2));
    await tab1.evaluate(() => s.checkRace(lib, 'reload', {}, 5));
  });
  const tab2 = await storePage('store2');
  await check('store: two tabs racing on one store never fork (every step counted once)', async () => {
    const N = 40;
    const [a, b] = await Promise.all([
      tab1.evaluate((n) => s.race(lib, 'tabs', {}, 'tab1', n), N),
      tab2.evaluate((n) => s.race(lib, 'tabs', {}, 'tab2', n), N),
    ]);
    const all = new Set([...a, ...b]);
    if (all.size !== 2 * N) throw new Error(`${all.size} distinct steps of ${2 * N}: a step was handed out twice`);
    const interleaved = a.some((x, i) => i > 0 && x !== a[i - 1] + 1);
    console.log(`[store] two tabs: ${interleaved ? 'interleaved' : 'not interleaved'} (tab1 got ${a.slice(0, 8).join(',')}...)`);
    await tab1.evaluate((n) => s.checkRace(lib, 'tabs', {}, n), 2 * N);
  });
  await check('store: an aborted IndexedDB transaction never releases its result', () =>
    tab1.evaluate(() => s.abortNeverReleases(lib, 'abort', {})));
  await check('store: a failing operation writes nothing', () =>
    tab1.evaluate(() => s.failingOpWritesNothing(lib, 'failing', {})));
  await check('store: a newer schema is refused (UnsupportedSchema)', () =>
    tab1.evaluate(() => s.newerSchemaRefused(lib, 'newer', {})));
  await check('store: rows are stored as the journal wrote them', () =>
    tab1.evaluate(() => s.rowsAreWhatTheJournalWrote(lib, 'rows', {})));

  // 4. The store-backed Device (stored-device-scenarios.mjs): real IndexedDB and Web Locks.
  await check('stored device: every Device capability is forwarded', () => tab1.evaluate(() => sd.everyCapabilityForwarded(lib)));
  for (const [fn, title] of [
    ['conversationAcrossReopen', 'a conversation with an in-memory device across a reopen of the store'],
    ['groupsAndChannels', 'group and channel messages, across a reopen'],
    ['wrongKeyChangesNothing', 'a wrong key rejects WrongKey, is counted and changes nothing'],
    ['passcodeUnlock', 'passcode unlock, attempt limit, changePasscode'],
    ['redeliveredUntilAck', 'a decrypt is redelivered until ack'],
    ['moveOutAndImport', 'moveOut retires the store, importStoredDevice continues'],
    ['abortNeverReleases', 'an aborted IndexedDB transaction never releases a result, and the device reloads'],
    ['batchedCalls', 'calls queued while the store is busy share an IndexedDB transaction, each with its own result'],
    ['rollbackAnchor', 'the rollback anchor (storeGeneration, minGeneration) refuses an older copy put back'],
    ['platformKeyRecipe', 'the platform key recipe (non-extractable HMAC CryptoKey in IndexedDB)'],
  ]) {
    await check(`stored device: ${title}`, () => tab1.evaluate(([f, n]) => sd[f](lib, n, {}), [fn, `dev-${fn}`]));
  }
  await check('stored device: a page reload reopens the store and the conversation goes on', async () => {
    // Bob (in memory) is carried over the reload as a snapshot; alice lives in IndexedDB.
    const snap = await tab1.evaluate(async () => {
      const bob = new lib.Device('bob', 1_700_000_000);
      const alice = await lib.createStoredDevice('dev-reload', { platformKey: new Uint8Array(32).fill(5) }, 'alice', 1_700_000_000);
      await alice.initiate('bob', bob.nextBundle());
      bob.decrypt('alice', await alice.encrypt('bob', new TextEncoder().encode('before')));
      const r = await alice.decrypt('bob', bob.encrypt('alice', new TextEncoder().encode('reply')));
      await alice.ack(r.digest);
      // No close: the reload drops the page with the handle open.
      return Array.from(bob.export(new Uint8Array(32).fill(1)));
    });
    await tab1.reload();
    await tab1.waitForFunction(() => window.__ready === true, null, { timeout: 60_000 });
    await tab1.evaluate(async (snapshot) => {
      const bob = lib.Device.import(new Uint8Array(32).fill(1), Uint8Array.from(snapshot));
      const alice = await lib.openStoredDevice('dev-reload', { platformKey: new Uint8Array(32).fill(5) });
      const t = new TextDecoder();
      if (t.decode(bob.decrypt('alice', await alice.encrypt('bob', new TextEncoder().encode('after'))).plaintext) !== 'after') throw new Error('bob could not read alice after the reload');
      const r = await alice.decrypt('bob', bob.encrypt('alice', new TextEncoder().encode('again')));
      if (t.decode(r.plaintext) !== 'again' || r.redelivered) throw new Error('alice could not read bob after the reload');
      await alice.close();
    }, snap);
  });
  await check('stored device: two tabs encrypting to one peer never fork (the peer decrypts all, one session)', async () => {
    const N = 15;
    await tab1.evaluate(async () => { window.__tabs = await sd.tabsNeverFork(lib, 'dev-tabs', {}, 0); });
    const [a, b] = await Promise.all([
      tab1.evaluate((n) => sd.encryptMany(lib, 'dev-tabs', {}, 'tab1', n), N),
      tab2.evaluate((n) => sd.encryptMany(lib, 'dev-tabs', {}, 'tab2', n), N),
    ]);
    const got = await tab1.evaluate((all) => sd.decryptAll(window.__tabs.bob, all), [...a, ...b]);
    if (got !== 2 * N) throw new Error(`${got} of ${2 * N} decrypted`);
  });
  await check('stored device: a tab closed in the middle of encrypting loses no step (another tab continues, the peer decrypts all)', async () => {
    const tabK = await storePage('killed');
    const unlock = { platformKey: Array(32).fill(6) };
    const bundle = await tab1.evaluate(() => { window.__kb = new lib.Device('bob', 1_700_000_000); return Array.from(window.__kb.nextBundle()); });
    const first = await tabK.evaluate(async ([b, u]) => {
      window.__alice = await lib.createStoredDevice('dev-killed', { platformKey: Uint8Array.from(u.platformKey) }, 'alice', 1_700_000_000);
      await window.__alice.initiate('bob', Uint8Array.from(b));
      return Array.from(await window.__alice.encrypt('bob', new TextEncoder().encode('first')));
    }, [bundle, unlock]);
    const reply = await tab1.evaluate((m) => { window.__kb.decrypt('alice', Uint8Array.from(m)); return Array.from(window.__kb.encrypt('alice', new Uint8Array([1]))); }, first);
    await tabK.evaluate(async (m) => {
      const r = await window.__alice.decrypt('bob', Uint8Array.from(m));
      await window.__alice.ack(r.digest);
      window.__sent = [];
      // Encrypts until the page dies; only what resolved counts as sent.
      (async () => { for (let i = 0; ; i++) window.__sent.push(Array.from(await window.__alice.encrypt('bob', new TextEncoder().encode(`k${i}`)))); })();
    }, reply);
    await new Promise((r) => setTimeout(r, 400));
    const sent = await tabK.evaluate(() => window.__sent.slice());
    await tabK.close({ runBeforeUnload: false }); // most likely in the middle of a transaction
    if (sent.length < 5) throw new Error(`only ${sent.length} messages before the close`);
    const after = await tab2.evaluate(async (u) => {
      const alice = await lib.openStoredDevice('dev-killed', { platformKey: Uint8Array.from(u.platformKey) });
      const out = [];
      for (let i = 0; i < 5; i++) out.push(Array.from(await alice.encrypt('bob', new TextEncoder().encode(`after${i}`))));
      await alice.close();
      return out;
    }, unlock);
    const n = await tab1.evaluate((all) => {
      const seen = new Set();
      for (const m of all) {
        const t = new TextDecoder().decode(window.__kb.decrypt('alice', Uint8Array.from(m)).plaintext);
        if (seen.has(t)) throw new Error(`${t} twice`);
        seen.add(t);
      }
      return seen.size;
    }, [...sent, ...after]);
    if (n !== sent.length + 5) throw new Error(`${n} of ${sent.length + 5} decrypted`);
    console.log(`[store] closed tab: ${sent.length} messages sent before the close, 5 after from another tab, all decrypted`);
  });
  if (process.env.GOCHAT_STORE_BENCH !== '0') {
    const N = Number(process.env.GOCHAT_STORE_BENCH_N ?? 200);
    const rounds = Number(process.env.GOCHAT_STORE_BENCH_ROUNDS ?? 1);
    for (let round = 0; round < rounds * 2; round++) {
      const durability = round % 2 ? 'relaxed' : 'strict';
      const r = await tab1.evaluate(([n, d]) => benchStoredDevice(`bench-dev-${d}`, n, 20, d.split('-')[0]), [N, `${durability}-${round}`]);
      console.log(`[store bench] stored device (${durability}), ${N} x 100 B after 20 warm-up: decrypt+ack ${r.decryptAck.toFixed(3)} ms/msg (in wasm ${r.decryptAckWasm.toFixed(3)}), decrypt+ack not awaited ${r.decryptAckPipelined.toFixed(3)} ms/msg, encrypt ${r.encrypt.toFixed(3)} ms/msg (in wasm ${r.encryptWasm.toFixed(3)}); in-memory decrypt ${r.memory.toFixed(3)} ms/msg`);
    }

    const mem = await tab1.evaluate(() => benchMemory(300));
    const strict = await tab1.evaluate(() => benchStore('bench-strict', 200, 2048, 'strict'));
    const relaxed = await tab1.evaluate(() => benchStore('bench-relaxed', 200, 2048, 'relaxed'));
    console.log(`[store bench] in-memory encrypt+decrypt: ${mem.toFixed(3)} ms; IndexedDB operation (2 KB record, lock + sync + write + complete): strict ${strict.toFixed(3)} ms, relaxed ${relaxed.toFixed(3)} ms`);
  }
} catch (e) {
  failed++;
  console.log(`not ok - browser harness: ${e && e.stack || e}`);
} finally {
  await context?.close().catch(() => {});
  server.close();
  await rm(userDataDir, { recursive: true, force: true });
}
if (passed + failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
