#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit and property tests, the black-box
# server tests, then the Playwright suite in Debian's Chromium against the freshly built UI
# (a release build of it, as run.sh serves it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test --release
export PATH="${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}/node_modules/.bin:$PATH"
target="${CARGO_TARGET_DIR:-$PWD/target}"
# Incremental data for the server crate (SurrealDB's generics, with debug info) grows by about
# 10 GB per session and rustc keeps two while it builds: without it a change costs a minute or
# two of compiling, with it the cached target dir fills the disk.
export CARGO_INCREMENTAL=0
# The built UI; cargo-leptos writes its list of hashed names there too, where chattrd looks.
site="$PWD/target/site"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "clippy (server, black-box suite, benchmark tool, shared crate, and the wasm build)"
cargo clippy -p server -p chattr-tests -p chattr-bench -p surreal-test-server --all-targets -- -D warnings
cargo clippy -p app --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings

step "the SurrealDB server that the ws:// test runs (a long compile the first time)"
cargo build -p surreal-test-server

step "unit, property and black-box tests"
cargo test -p app
cargo test -p chattr-bench
# The chattrd that the black-box suite's process tests, the benchmark and the end-to-end suite
# run: the suite finds it next to its own test binary (tests/process.rs; CHATTR_BIN overrides).
# Built as cargo-leptos builds it, without the test dependencies' features (which `cargo test`
# would unify into it), so what is tested is what ships, and scripts/dev.sh starts on this
# build instead of compiling another.
cargo build -p server --bin chattrd
# The server's unit tests and the black-box suite in one invocation: one resolution of the
# dependencies' features for both, so SurrealDB and the server are compiled once for the two
# (each `cargo test -p` alone unified other features, and a cold run built them once more).
cargo test -p server -p chattr-tests

step "the benchmark tool, in short runs that must deliver every message, on chattrd and on the Socket.IO peer, its idle workload on both, and the comparison in miniature (speed is not judged here)"
cargo build -p chattr-bench
"$target/debug/chattr-bench" --spawn "$target/debug/chattrd" --store disk \
  --clients 40 --room-size 10 --senders 3 --rate 10 --duration 2s --joiners 2
"$target/debug/chattr-bench" --protocol socketio --spawn tools/bench/peers/socketio/server.mjs \
  --clients 40 --room-size 10 --senders 3 --rate 10 --duration 2s
# Three nodes of a cluster (Redis and the SurrealDB server started by the tool): every message
# once to every member, none lost, none twice.
"$target/debug/chattr-bench" --spawn "$target/debug/chattrd" --cluster 3 --surreal "$target/debug/surreal-test-server" \
  --clients 30 --room-size 10 --senders 2 --rate 5 --duration 2s
"$target/debug/chattr-bench" --spawn "$target/debug/chattrd" --idle --clients 200 --room-size 50
"$target/debug/chattr-bench" --protocol socketio --spawn tools/bench/peers/socketio/server.mjs \
  --idle --clients 200 --room-size 50
# The comparison's whole path (three servers, the tables, the plot), one small step each.
compare_dir="$(mktemp -d)"
"$target/debug/chattr-bench" --compare --spawn "$target/debug/chattrd" \
  --socketio tools/bench/peers/socketio/server.mjs --step-rates 2 --p99-limit 10s \
  --clients 20 --room-size 10 --senders 2 --duration 1s --plot "$compare_dir/compare.svg"
test -s "$compare_dir/compare.svg"
rm -rf "$compare_dir"

step "build the UI as released (wasm-opt, hashed names, .br and .gz; into target/site)"
# The end-to-end suite runs on the release bundle: assets.spec.ts holds it to its size budget.
LEPTOS_SITE_ROOT="$site" LEPTOS_HASH_FILE_NAME="$site/hash.txt" \
  cargo leptos build --release --frontend-only --precompress

step "the HTTP API against its OpenAPI document (schemathesis), on a running chattrd"
# Every answer must match docs/openapi.json and none may be a 5xx. One check is left out:
# `positive_data_acceptance` wants every schema-valid request accepted, but the API refuses
# such requests for reasons no schema states (a name taken or looking like another, a user not
# online, a channel nobody is in); tests/openapi.rs and the black-box tests check those.
st_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CHATTR_DB=mem:// CHATTR_ADDR="127.0.0.1:$st_port" CHATTR_SHARED_SECRET=schemathesis-secret \
  CHATTR_FLOOD_BURST=100000 CHATTR_FLOOD_RATE=100000 CHATTR_LOG=warn LEPTOS_SITE_ROOT="$site" \
  "$target/debug/chattrd" &
st_pid=$!
trap 'kill "$st_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$st_port/healthz" && break
  sleep 0.1
done
"${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}/schemathesis/bin/st" run \
  "http://127.0.0.1:$st_port/api/openapi.json" --url "http://127.0.0.1:$st_port" \
  -H "Authorization: Bearer schemathesis-secret" --exclude-checks positive_data_acceptance \
  --max-examples 50 --seed 1 --no-color
kill "$st_pid"
wait "$st_pid" 2>/dev/null || true
trap - EXIT

step "end-to-end tests (Playwright, Debian's Chromium)"
(cd end2end && CHATTR_BIN="$target/debug/chattrd" LEPTOS_SITE_ROOT="$site" npx playwright test)
