#!/usr/bin/env bash
# Render a report's index.html in headless Chromium to a PNG, 1280 px wide, to look at it the
# way a reader would. Needs Debian's chromium (apt-get install chromium).
#   scripts/screenshot_report.sh REPORT_DIR [OUT.png] [HEIGHT]
set -euo pipefail
dir=${1:?usage: screenshot_report.sh REPORT_DIR [OUT.png] [HEIGHT]}
out=${2:-$dir/screenshot.png}
height=${3:-6000}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1280,"$height" --screenshot="$(realpath -m "$out")" "file://$(realpath "$dir")/index.html" 2>/dev/null
echo "wrote $out"
