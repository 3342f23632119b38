#!/usr/bin/env bash
# Writes the tab icons with an unread badge (public/badges): the favicon with a red badge of the
# unread count, or an amber one of the mentions, 1 to 9 and "9+". The UI points the page's
# <link rel="icon"> at them (app/src/ui/mod.rs, `favicon`); they are files rather than data:
# URLs because the page's Content-Security-Policy allows images from the server only.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/public/badges"
mkdir -p "$dir"

icon() { # file, badge colour, text colour, label, font size
  printf '%s' \
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">' \
    '<rect width="32" height="32" rx="7" fill="#2563eb"/>' \
    '<path d="M8 10h16v10H14l-5 4v-4H8z" fill="#fff"/>' \
    "<circle cx=\"21\" cy=\"11\" r=\"11\" fill=\"$2\" stroke=\"#fff\" stroke-width=\"1.5\"/>" \
    "<text x=\"21\" y=\"$(( 11 + $5 * 36 / 100 ))\" fill=\"$3\" font-family=\"Arial,Helvetica,sans-serif\"" \
    " font-size=\"$5\" font-weight=\"700\" text-anchor=\"middle\">$4</text></svg>" >"$dir/$1.svg"
  echo >>"$dir/$1.svg"
}

for kind in unread mention; do
  if [ "$kind" = unread ]; then fill="#dc2626" ink="#fff"; else fill="#f59e0b" ink="#111"; fi
  for n in 1 2 3 4 5 6 7 8 9; do icon "$kind-$n" "$fill" "$ink" "$n" 17; done
  icon "$kind-9plus" "$fill" "$ink" "9+" 14
done
