#!/usr/bin/env bash
# Builds chattrd and chattr-bench in release mode, runs the standard scenarios (each starts its
# own chattrd with a fresh store) and prints the Markdown table that docs/benchmarks.md shows.
# Extra arguments go to every run, e.g. `scripts/bench.sh --duration 30s`.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build of both: built apart, their shared dependencies get different features and
# everything is compiled twice.
cargo build --release -p server -p chattr-bench --bin chattrd --bin chattr-bench
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
# Two sockets per client on one machine: the benchmark's end and the server's.
ulimit -n "$(ulimit -Hn)"

scenarios=(
  "--clients 100 --room-size 100 --senders 10 --rate 5 --store disk"
  "--clients 1000 --room-size 100 --senders 10 --rate 5 --store disk"
  "--clients 1000 --room-size 100 --senders 10 --rate 5 --store mem"
  "--clients 1000 --room-size 1000 --senders 10 --rate 5 --store disk"
  "--clients 2000 --room-size 10 --senders 5 --rate 2 --store disk"
)
"$bin/chattr-bench" --markdown-header
for scenario in "${scenarios[@]}"; do
  # shellcheck disable=SC2086 # each scenario is a list of arguments
  "$bin/chattr-bench" --spawn "$bin/chattrd" --markdown $scenario "$@"
done
