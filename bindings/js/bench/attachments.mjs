// Attachment throughput in Node: @gochat/e2ee (wasm) streaming encrypt and decrypt, and,
// in the same run over the same bytes, Node's built-in crypto (OpenSSL, native, with
// AES-NI) doing raw AES-256-GCM, and AES-256-GCM plus SHA-256 (what the attachment format
// does per byte: one AEAD pass and one digest pass).
//
//   node bindings/js/bench/attachments.mjs [SIZES_MIB] [CHUNK_MIB]     (defaults "1,100" 1)
//
// Each figure is the best of several runs (the machine may be shared), in MB/s with
// MB = 10^6 bytes of plaintext. The wasm figures include every boundary crossing: one
// `update` call per chunk, the chunk copied into wasm memory and the output copied out.
import { createCipheriv, createDecipheriv, createHash, randomFillSync } from 'node:crypto';
import * as lib from '../node.js';

const MiB = 1 << 20;
const sizes = (process.argv[2] ?? '1,100').split(',').map((s) => Number(s) * MiB);
const chunk = Number(process.argv[3] ?? 1) * MiB;

function runs(size) {
  return size <= 4 * MiB ? 30 : 3;
}

function best(size, fn) {
  fn(); // warm up (JIT, wasm memory growth)
  let min = Infinity;
  for (let i = 0; i < runs(size); i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return size / 1e6 / (min / 1000);
}

function gochatEncrypt(data) {
  const enc = new lib.AttachmentEncryptor(data.length, 'application/octet-stream', null);
  const parts = [];
  for (let at = 0; at < data.length; at += chunk) parts.push(enc.update(data.subarray(at, at + chunk)));
  for (;;) {
    const step = enc.finishStep();
    if (step.pointer) {
      enc.free();
      return { parts, pointer: step.pointer };
    }
    parts.push(step.ciphertext);
  }
}

function joined(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function gochatDecrypt(pointer, blob) {
  const dec = new lib.AttachmentDecryptor(pointer);
  let n = 0;
  for (let at = 0; at < blob.length; at += chunk) n += dec.update(blob.subarray(at, at + chunk)).length;
  dec.finish();
  dec.free();
  return n;
}

// One GCM message over the whole file, fed in the same chunks.
function nodeEncrypt(key, iv, data, hash) {
  const c = createCipheriv('aes-256-gcm', key, iv);
  const h = hash ? createHash('sha256') : null;
  const parts = [];
  for (let at = 0; at < data.length; at += chunk) {
    const out = c.update(data.subarray(at, at + chunk));
    h?.update(out);
    parts.push(out);
  }
  parts.push(c.final());
  h?.digest();
  return { parts, tag: c.getAuthTag() };
}

function nodeDecrypt(key, iv, ct, tag, hash) {
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAuthTag(tag);
  const h = hash ? createHash('sha256') : null;
  let n = 0;
  for (let at = 0; at < ct.length; at += chunk) {
    const part = ct.subarray(at, at + chunk);
    h?.update(part);
    n += d.update(part).length;
  }
  d.final();
  h?.digest();
  return n;
}

const fmt = (x) => x.toFixed(1).padStart(8);
console.log(`node ${process.version}, ${chunk / MiB} MiB chunks, MB/s (10^6 bytes of plaintext per second), best of several runs`);
console.log('size      gochat-wasm enc  dec   | node AES-GCM enc  dec   | node AES-GCM+SHA-256 enc  dec');
for (const size of sizes) {
  const data = randomFillSync(new Uint8Array(size));
  const { parts, pointer } = gochatEncrypt(data);
  const blob = joined(parts);
  if (gochatDecrypt(pointer, blob) !== size) throw new Error('round trip failed');
  const encRate = best(size, () => gochatEncrypt(data));
  const decRate = best(size, () => gochatDecrypt(pointer, blob));

  const key = randomFillSync(new Uint8Array(32));
  const iv = randomFillSync(new Uint8Array(12));
  const n = nodeEncrypt(key, iv, data, false);
  const ct = joined(n.parts);
  const nodeEnc = best(size, () => nodeEncrypt(key, iv, data, false));
  const nodeDec = best(size, () => nodeDecrypt(key, iv, ct, n.tag, false));
  const nodeEncH = best(size, () => nodeEncrypt(key, iv, data, true));
  const nodeDecH = best(size, () => nodeDecrypt(key, iv, ct, n.tag, true));
  console.log(`${String(size / MiB).padStart(4)} MiB ${fmt(encRate)} ${fmt(decRate)} | ${fmt(nodeEnc)} ${fmt(nodeDec)} | ${fmt(nodeEncH)} ${fmt(nodeDecH)}`);
  // Machine-readable lines, as the other benches print them.
  console.log(`node-wasm attachment_encrypt_${size / MiB}MiB_MBps ${encRate.toFixed(1)}`);
  console.log(`node-wasm attachment_decrypt_${size / MiB}MiB_MBps ${decRate.toFixed(1)}`);
  console.log(`node-crypto aes256gcm_encrypt_${size / MiB}MiB_MBps ${nodeEnc.toFixed(1)}`);
  console.log(`node-crypto aes256gcm_decrypt_${size / MiB}MiB_MBps ${nodeDec.toFixed(1)}`);
  console.log(`node-crypto aes256gcm_sha256_encrypt_${size / MiB}MiB_MBps ${nodeEncH.toFixed(1)}`);
  console.log(`node-crypto aes256gcm_sha256_decrypt_${size / MiB}MiB_MBps ${nodeDecH.toFixed(1)}`);
}
