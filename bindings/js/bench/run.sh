#!/usr/bin/env bash
# Web benchmarks in one run: native Rust (the same flows through the FFI crate's Rust API),
# @gochat/e2ee in Node and in headless Chromium, and @signalapp/libsignal-client in Node;
# then attachment throughput in Node (attachments.mjs, with Node's own AES-256-GCM beside it).
#   bash bindings/js/bench/run.sh [ITERS] [SETUPS]      (defaults 5000 50)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ITERS=${1:-5000}; SETUPS=${2:-50}
[[ -f $HERE/../pkg/gochat_e2ee_wasm_bg.wasm ]] || bash "$HERE/../build.sh"
(cd "$HERE" && [[ -d node_modules/@signalapp/libsignal-client ]] || npm install --no-audit --no-fund)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; node $(node --version)"
cd "$ROOT"
cargo run -q --release -p gochat-e2ee-ffi --example ffi_baseline -- "$ITERS" "$SETUPS" | sed 's/^rust /native-rust /'
node "$HERE/node.mjs" "$ITERS" "$SETUPS"
node "$HERE/browser.mjs" "$ITERS" "$SETUPS"
node "$HERE/attachments.mjs"
