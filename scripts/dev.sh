#!/usr/bin/env bash
# The development loop: `cargo leptos watch` serves Chattr on http://127.0.0.1:3000 (or
# LEPTOS_SITE_ADDR, or CHATTR_ADDR), rebuilds and restarts chattrd when server code changes,
# rebuilds the wasm and chattrd when UI code changes, and tells the page to reload either way
# (README: Developing). It builds in the same target directory with the same settings as
# scripts/test.sh, so after a test run the server is not compiled again. Arguments go to
# cargo-leptos.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}/node_modules/.bin:$PATH"
# As scripts/test.sh: incremental compilation is part of what cargo compares to reuse a build.
export CARGO_INCREMENTAL=0
# One address: chattrd listens on CHATTR_ADDR when it is set, else on LEPTOS_SITE_ADDR, which
# cargo-leptos takes for its site-addr, opens and waits on before each reload.
if [ -n "${CHATTR_ADDR:-}" ]; then
  export LEPTOS_SITE_ADDR="$CHATTR_ADDR"
fi
exec cargo leptos watch "$@"
