#!/usr/bin/env bash
# Idempotent, CI-safe installer for everything the test suites need.
# Runs as root (CI and dev machines) or with sudo available. Safe to re-run: every
# step is skipped when already satisfied, and `apt-get update` only runs when an apt
# package is actually missing.
#
#   bash scripts/install-deps.sh            # everything
#   SKIP_APT=1 SKIP_CARGO_TOOLS=1 ...        # opt out of parts
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { echo "[install-deps] $*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

SUDO=
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

# ---------------------------------------------------------------- apt packages
APT_PKGS=()
have_wasm_rustup() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}
if have_wasm_rustup; then
  log "rustup has wasm32-unknown-unknown: Debian rustc-web not needed"
else
  # Fallback route for wasm: Debian's rustc-web + std sources + wasm-ld.
  APT_PKGS+=(rustc-web cargo-web rust-web-src lld-16)
fi
APT_PKGS+=(chromium binaryen jq)
command -v mvn >/dev/null 2>&1 || APT_PKGS+=(maven)
command -v java >/dev/null 2>&1 || APT_PKGS+=(openjdk-17-jdk-headless)
command -v node >/dev/null 2>&1 || APT_PKGS+=(nodejs npm)

if [[ ${SKIP_APT:-0} != 1 ]] && command -v dpkg-query >/dev/null 2>&1; then
  MISSING=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING+=("$p")
  done
  if [[ ${#MISSING[@]} -gt 0 ]]; then
    log "apt: installing ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
  else
    log "apt: all present (${APT_PKGS[*]})"
  fi
fi

# ---------------------------------------------------------------- rust components
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" || log "warn: rustup component $c unavailable"
  done
fi

# ---------------------------------------------------------------- cargo tools
if [[ ${SKIP_CARGO_TOOLS:-0} != 1 ]]; then
  # wasm-bindgen-cli must equal the wasm-bindgen crate version in Cargo.lock.
  WB=
  if [[ -f Cargo.lock ]]; then
    WB=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -n1)
  fi
  if [[ -n $WB ]]; then
    if [[ "$(wasm-bindgen --version 2>/dev/null || true)" == "wasm-bindgen $WB" ]]; then
      log "wasm-bindgen-cli $WB present"
    else
      log "installing wasm-bindgen-cli $WB (about 6 min cold)"
      # no --locked: the crates.io mirror may lack the exact patch versions in its lockfile
      cargo install wasm-bindgen-cli --version "$WB"
    fi
  else
    log "no wasm-bindgen in Cargo.lock: wasm-bindgen-cli not needed yet"
  fi

  if [[ -f fuzz/Cargo.toml ]]; then
    if cargo fuzz --version >/dev/null 2>&1; then
      log "cargo-fuzz present ($(cargo fuzz --version))"
    else
      log "installing cargo-fuzz"
      cargo install cargo-fuzz
    fi
  fi
fi

# ---------------------------------------------------------------- python venv
if [[ ${SKIP_PYTHON:-0} != 1 ]]; then
  PY=${PYTHON:-$(command -v python3 || true)}
  if [[ -z $PY ]]; then
    log "warn: no python3; python suite will fail"
  else
    if [[ ! -x .venv/bin/python ]]; then
      log "creating .venv with $($PY --version)"
      "$PY" -m venv .venv || { rm -rf .venv; log "warn: venv failed"; }
    fi
    if [[ -x .venv/bin/python ]]; then
      if ! .venv/bin/python -c 'import pytest' 2>/dev/null; then
        log "pip install pytest into .venv"
        .venv/bin/python -m pip install -q --disable-pip-version-check pytest
      else
        log "pytest present in .venv"
      fi
      # maturin only if a python binding is packaged with it
      if [[ -f bindings/python/pyproject.toml ]] && grep -q maturin bindings/python/pyproject.toml; then
        .venv/bin/python -c 'import maturin' 2>/dev/null || .venv/bin/python -m pip install -q --disable-pip-version-check maturin
      fi
    fi
  fi
fi

# ---------------------------------------------------------------- npm
if [[ ${SKIP_NPM:-0} != 1 && -f bindings/js/package.json ]]; then
  if [[ -f bindings/js/package-lock.json ]]; then
    if [[ ! -d bindings/js/node_modules ]] || [[ bindings/js/package-lock.json -nt bindings/js/node_modules/.package-lock.json ]]; then
      log "npm ci in bindings/js"
      (cd bindings/js && npm ci --no-audit --no-fund)
    else
      log "bindings/js/node_modules up to date"
    fi
  else
    log "npm install in bindings/js"
    (cd bindings/js && npm install --no-audit --no-fund)
  fi
fi

# Maven dependencies are fetched by Maven itself on first `mvn test`.
log "done"
