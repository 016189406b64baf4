// Browser benchmark: the same @gochat/e2ee flows in headless Chromium (playwright-core).
import { createServer } from 'node:http';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
const server = createServer(async (req, res) => {
  const p = normalize(join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
  if (!p.startsWith(root)) { res.writeHead(403).end(); return; }
  try { const body = await readFile(p); res.writeHead(200, { 'content-type': types[extname(p)] ?? 'application/octet-stream' }).end(body); }
  catch { res.writeHead(404).end(); }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const iters = Number(process.argv[2] ?? 5000), setups = Number(process.argv[3] ?? 50);
const exe = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const dir = await mkdtemp(join(tmpdir(), 'chromium-bench-'));
const ctx = await chromium.launchPersistentContext(dir, { executablePath: exe, headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const page = await ctx.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/bench/bench.html?iters=${iters}&setups=${setups}`);
  await page.waitForFunction(() => window.__bench !== undefined, null, { timeout: 300_000 });
  const r = await page.evaluate(() => window.__bench);
  if (r.error) throw new Error(r.error);
  console.log(`browser-wasm encrypt_decrypt_100B ${Math.round(r.steady_us * 1000)}`);
  console.log(`browser-wasm session_setup ${Math.round(r.setup_us * 1000)}`);
  console.log(`browser-wasm group_encrypt_decrypt_100B ${Math.round(r.group_us * 1000)}`);
  // The store-backed Device in IndexedDB (real device path; GOCHAT_STORE_BENCH=0 skips it).
  if (process.env.GOCHAT_STORE_BENCH !== '0') {
    const n = Number(process.env.GOCHAT_STORE_BENCH_N ?? 200);
    await page.goto(`http://127.0.0.1:${server.address().port}/bench/store.html`);
    await page.waitForFunction(() => window.__ready === true, null, { timeout: 60_000 });
    for (const durability of ['strict', 'relaxed']) {
      const s = await page.evaluate(([d, n]) => window.run(`bench-${d}-${Date.now()}`, n, 20, d), [durability, n]);
      const ns = (ms) => Math.round(ms * 1e6);
      console.log(`browser-idb stored_decrypt_ack_100B_${durability} ${ns(s.decryptAck)} (in wasm ${ns(s.decryptAckWasm)})`);
      console.log(`browser-idb stored_decrypt_ack_pipelined_100B_${durability} ${ns(s.decryptAckPipelined)}`);
      console.log(`browser-idb stored_encrypt_100B_${durability} ${ns(s.encrypt)} (in wasm ${ns(s.encryptWasm)})`);
      console.log(`browser-idb memory_decrypt_100B ${ns(s.memory)}`);
    }
  }
} finally {
  await ctx.close();
  server.close();
  await rm(dir, { recursive: true, force: true });
}
