// Peak memory of a streamed attachment through @gochat/e2ee in Node: N bytes of generated
// plaintext are encrypted 1 MiB at a time into a file, then the file is decrypted 1 MiB at
// a time (its plaintext hashed and discarded). Neither the plaintext nor the blob is ever
// held in memory. Prints the peak RSS, sampled after every chunk (it includes the wasm
// linear memory, which only grows).
//
//   node --expose-gc bindings/js/bench/attachment_memory.mjs SIZE_MIB   (one process per size)
//
// With --expose-gc a full collection runs every 64 MiB, so the peak reflects what is
// live rather than how lazily V8 collects the 1 MiB output arrays.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lib from '../node.js';

const MiB = 1 << 20;
const size = Number(process.argv[2] ?? 16) * MiB;
const path = join(tmpdir(), `gochat-attachment-memory-${process.pid}.blob`);
let peak = 0;
let chunks = 0;
const sample = () => {
  if (globalThis.gc && ++chunks % 64 === 0) globalThis.gc();
  peak = Math.max(peak, process.memoryUsage().rss);
};

const chunk = new Uint8Array(MiB);
const plainHash = createHash('sha256');
const fd = openSync(path, 'w');
const enc = new lib.AttachmentEncryptor(size, 'video/mp4', null);
for (let at = 0; at < size; at += MiB) {
  const n = Math.min(MiB, size - at);
  for (let i = 0; i < n; i += 4096) chunk[i] = (at + i) & 0xff;
  const part = chunk.subarray(0, n);
  plainHash.update(part);
  writeSync(fd, enc.update(part));
  sample();
}
let pointer;
for (;;) {
  const step = enc.finishStep();
  writeSync(fd, step.ciphertext);
  if (step.pointer) {
    pointer = step.pointer;
    break;
  }
}
enc.free();
closeSync(fd);
const afterEncrypt = peak;

const dec = new lib.AttachmentDecryptor(pointer);
const back = createHash('sha256');
const rfd = openSync(path, 'r');
const buf = new Uint8Array(MiB);
for (;;) {
  const n = readSync(rfd, buf, 0, MiB, null);
  if (n === 0) break;
  back.update(dec.update(buf.subarray(0, n)));
  sample();
}
dec.finish();
dec.free();
closeSync(rfd);
rmSync(path);
if (back.digest('hex') !== plainHash.digest('hex')) throw new Error('plaintext mismatch');
const kib = (b) => `${Math.round(b / 1024)} KiB`;
console.log(`size ${size / MiB} MiB: peak RSS after encrypt ${kib(afterEncrypt)}, at the end ${kib(peak)}`);
