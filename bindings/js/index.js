// @gochat/e2ee for browsers and bundlers: instantiates the WebAssembly module (fetched from
// next to this file) with top-level await, so `import { Device } from '@gochat/e2ee'` is
// ready to use. For a custom .wasm location or lazy loading import '@gochat/e2ee/core'
// and call init(url) yourself.
import { init } from './core.js';

export * from './core.js';
await init();
