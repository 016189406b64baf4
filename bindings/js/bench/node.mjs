// Node benchmarks: @gochat/e2ee (wasm) and @signalapp/libsignal-client (native).
import * as lib from '../node.js';
import { benchGoChat } from './gochat.mjs';

const opts = { iters: Number(process.argv[2] ?? 5000), setups: Number(process.argv[3] ?? 50) };
const ours = benchGoChat(lib, opts);
console.log(`node-wasm encrypt_decrypt_100B ${Math.round(ours.steady_us * 1000)}`);
console.log(`node-wasm session_setup ${Math.round(ours.setup_us * 1000)}`);
console.log(`node-wasm group_encrypt_decrypt_100B ${Math.round(ours.group_us * 1000)}`);
try {
  const { benchSignal } = await import('./signal.mjs');
  const sig = await benchSignal(opts);
  console.log(`node-libsignal encrypt_decrypt_100B ${Math.round(sig.steady_us * 1000)}`);
  console.log(`node-libsignal session_setup ${Math.round(sig.setup_us * 1000)}`);
} catch (e) {
  console.error(`libsignal-client not available (${e.message}); run npm install in bindings/js/bench`);
}
