#!/usr/bin/env bash
# Render a report's index.html in headless Chromium to a PNG, 1280 px wide and as tall as the
# page, to look at it the way a reader would. Needs Debian's chromium (apt-get install chromium).
#   scripts/screenshot_report.sh REPORT_DIR [OUT.png] [HEIGHT]
# HEIGHT (px) is measured when not given: a first pass loads a copy of the page with a line of
# JavaScript that writes the laid-out height into the DOM, read back with --dump-dom.
set -euo pipefail
dir=${1:?usage: screenshot_report.sh REPORT_DIR [OUT.png] [HEIGHT]}
out=${2:-$dir/screenshot.png}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
page="$(realpath "$dir")/index.html"
chrome() {
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$work/profile" "$@" 2>/dev/null
}
height=${3:-}
if [ -z "$height" ]; then
  probe='<script>addEventListener("load",()=>document.body.setAttribute("data-page-height",'
  probe+='Math.ceil(document.documentElement.scrollHeight)))</script></body>'
  sed "s#</body>#${probe}#" "$page" >"$work/index.html"
  height=$(chrome --window-size=1280,1000 --virtual-time-budget=5000 --dump-dom "file://$work/index.html" |
    grep -o 'data-page-height="[0-9]*"' | grep -o '[0-9]*' || true)
  [ -n "$height" ] || { echo "could not measure the page height; give HEIGHT" >&2; exit 2; }
fi
chrome --window-size=1280,"$height" --screenshot="$(realpath -m "$out")" "file://$page"
echo "wrote $out (1280 x $height px)"
