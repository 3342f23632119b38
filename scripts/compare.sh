#!/usr/bin/env bash
# The comparison of issue 13: the stepped workload (2,000 clients in 20 channels of 100, 10
# senders each, the send rate raised step by step, a fresh server per step, until p99 passes
# 50 ms, a message is lost, or the generator works harder than the server) on chattrd with its
# default disk store, on chattrd in memory, and on the Socket.IO peer; then again with the server
# and the generator pinned to one core each (taskset). Writes the tables into
# docs/benchmarks.md and the latency-vs-load plot into docs/compare.svg.
# Extra arguments go to chattr-bench, e.g. `scripts/compare.sh --duration 20s`.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build of both: built apart, their shared dependencies get different features and
# everything is compiled twice.
cargo build --release -p server -p chattr-bench --bin chattrd --bin chattr-bench
if [ ! -d tools/bench/peers/socketio/node_modules/socket.io ]; then
  (cd tools/bench/peers/socketio && npm ci --no-audit --no-fund)
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
# Two sockets per client on one machine: the benchmark's end and the server's.
ulimit -n "$(ulimit -Hn)"
"$bin/chattr-bench" --compare --spawn "$bin/chattrd" \
  --socketio tools/bench/peers/socketio/server.mjs \
  --clients 2000 --room-size 100 --senders 10 --duration 10s \
  --step-rates 2.5,3,3.5,4,5,6,8,10,12,14,16,18,20,22,24,26 --p99-limit 50ms --pin \
  --plot docs/compare.svg --write docs/benchmarks.md "$@"
