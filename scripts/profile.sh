#!/usr/bin/env bash
# Profiles chattrd under the benchmark's load and draws a flame graph of it: perf records the
# server (call graphs by DWARF) while chattr-bench's senders send, inferno draws the SVG.
# Usage: scripts/profile.sh [out.svg] [chattr-bench arguments...]
# (default: docs/flamegraph.svg; 2,000 clients, 20×100, 10 senders × 10/s, disk store).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/flamegraph.svg}"
shift || true
tools="${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}"
if ! command -v perf > /dev/null; then
  echo "profile.sh: needs perf (Debian: apt-get install linux-perf)" >&2
  exit 1
fi
if [ ! -x "$tools/inferno/bin/inferno-flamegraph" ]; then
  cargo install --locked --root "$tools/inferno" inferno --version 0.12.3
fi
# One build of both: built apart, their shared dependencies get different features and
# everything is compiled twice.
cargo build --release -p server -p chattr-bench --bin chattrd --bin chattr-bench
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
ulimit -n "$(ulimit -Hn)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin/chattr-bench" --spawn "$bin/chattrd" --store disk --clients 2000 --room-size 100 \
  --senders 10 --rate 10 --duration 10s --profile "$work/perf.data" "$@"
# (--no-inline: resolving inlined frames runs addr2line over the whole binary, over a quarter of
# an hour here; without it the graph shows the functions that were not inlined, in seconds.)
perf script --no-inline -i "$work/perf.data" 2> /dev/null \
  | "$tools/inferno/bin/inferno-collapse-perf" \
  | "$tools/inferno/bin/inferno-flamegraph" --title "chattrd, 2,000 clients, ~200,000 deliveries/s" \
      --width 1400 --minwidth 0.2 > "$out"
echo "flame graph: $out"
