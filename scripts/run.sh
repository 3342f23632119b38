#!/usr/bin/env bash
# Builds Chattr in release mode and runs it: embedded SurrealDB in ./data, UI on
# http://127.0.0.1:3000. The first run installs the toolchain pieces and compiles for a while.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --release
export PATH="${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}/node_modules/.bin:$PATH"
exec cargo leptos serve --release "$@"
