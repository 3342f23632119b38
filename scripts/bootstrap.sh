#!/usr/bin/env bash
# Installs what building and testing Chattr needs, idempotently: each step checks first and
# does nothing when its tool is already there at the right version.
#
#   scripts/bootstrap.sh            what building needs (wasm target, cargo-leptos, wasm-bindgen)
#   scripts/bootstrap.sh --release  … plus wasm-opt for release builds
#   scripts/bootstrap.sh --test     … plus Debian's Chromium and the Playwright packages
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
want_release=false
want_test=false
for arg in "$@"; do
  case "$arg" in
    --release) want_release=true ;;
    --test) want_test=true ;;
    *) echo "usage: $0 [--release] [--test]" >&2; exit 2 ;;
  esac
done

CARGO_LEPTOS_VERSION=0.3.10
# Tools installed from npm live outside the clone, so fresh clones (CI) reuse them.
TOOLS_DIR="${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}"

say() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
  echo "bootstrap: cargo is missing; install Rust with rustup first" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes, once)"
  # no_downloads: cargo-leptos must not fetch tools itself; they come from here.
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

# wasm-bindgen's CLI must match the crate version in Cargo.lock exactly.
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' "$root/Cargo.lock")"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version"
  # Not --locked: a dependency version it locks is missing from the registry.
  cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

if $want_release; then
  if [ ! -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ]; then
    say "installing wasm-opt (npm binaryen) into $TOOLS_DIR"
    mkdir -p "$TOOLS_DIR"
    npm install --prefix "$TOOLS_DIR" --no-audit --no-fund --no-save binaryen@132.0.0
  fi
fi

if $want_test; then
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium
  fi
  # PHP runs the PHP example (examples/php) that the test command checks end to end.
  if ! command -v php >/dev/null; then
    say "installing Debian's php-cli"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq php-cli
  fi
  # Redis, which the cluster tests (tests/cluster.rs) start on a port of their own.
  if ! command -v redis-server >/dev/null; then
    say "installing Debian's redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server
  fi
  if [ ! -d "$root/end2end/node_modules/@playwright/test" ] || [ ! -d "$root/end2end/node_modules/@axe-core/playwright" ]; then
    say "installing the Playwright and axe-core packages (no browser download: Debian's Chromium is used)"
    (cd "$root/end2end" && npm ci --no-audit --no-fund)
  fi
  # The Socket.IO server the benchmark compares Chattr with (its smoke run is part of the tests).
  if [ ! -d "$root/tools/bench/peers/socketio/node_modules/socket.io" ]; then
    say "installing the Socket.IO peer's packages (tools/bench/peers/socketio)"
    (cd "$root/tools/bench/peers/socketio" && npm ci --no-audit --no-fund)
  fi
  # Schemathesis (PyPI), which checks the running server's HTTP API against docs/openapi.json.
  if [ ! -x "$TOOLS_DIR/schemathesis/bin/st" ]; then
    say "installing schemathesis into $TOOLS_DIR/schemathesis"
    python3 -m venv "$TOOLS_DIR/schemathesis"
    "$TOOLS_DIR/schemathesis/bin/pip" install -q schemathesis==4.32.5
  fi
fi
