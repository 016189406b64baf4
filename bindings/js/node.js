// @gochat/e2ee for Node.js (>= 20): instantiates the WebAssembly module synchronously from
// the file next to this one. Randomness: globalThis.crypto.getRandomValues.
import { readFileSync } from 'node:fs';
import { initSync, wasmUrl } from './core.js';

export * from './core.js';
initSync(readFileSync(wasmUrl));
