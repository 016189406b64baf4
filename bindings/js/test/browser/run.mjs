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
