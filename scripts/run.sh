#!/usr/bin/env bash
# Builds Chattr in release mode and runs it: embedded SurrealDB in ./data, UI on
# http://127.0.0.1:3000. The first run installs the toolchain pieces and compiles for a while.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --release
export PATH="${CHATTR_TOOLS_DIR:-$HOME/.cache/chattr-tools}/node_modules/.bin:$PATH"
# The wasm, js and css are named by their content's hash and written compressed (.br, .gz) next
# to themselves; the list of hashed names goes into the site root, where chattrd looks for it.
site="$(realpath -m "${LEPTOS_SITE_ROOT:-target/site}")"
export LEPTOS_HASH_FILE_NAME="$site/hash.txt"
exec cargo leptos serve --release --precompress "$@"
