#!/usr/bin/env bash
# The dashboard's weight and time to first render against a daemon with a long history
# (10,000 journal entries by default): what the page and its first API answers weigh,
# against the history sent whole, and, in headless Chromium, the first contentful paint
# and the time until live, history and revisions are shown. See bench/README.md.
# Usage: bench/ui.sh [ENTRIES, default 10000] [LOADS, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
entries=${1:-10000}
loads=${2:-10}

bench_scratch

make_app_repo "$work/repo" vA vB
b=$(git -C "$work/repo" rev-parse HEAD)
free_port api; free_port port; free_port internal
write_testapp_config "$work/slot-machine.json" "$root/$dir/testapp"
mkdir -p "$work/data"
# A long history: deploys and rollbacks as the daemon journals them.
awk -v n="$entries" 'BEGIN { for (i = 0; i < n; i++)
  printf "{\"time\":\"2026-01-01T00:%02d:%02d.000Z\",\"action\":\"%s\",\"commit\":\"%040d\",\"slot\":\"%s\",\"previous_commit\":\"%040d\",\"duration_ms\":%d,\"result\":\"ok\"}\n",
         (i / 60) % 60, i % 60, (i % 3 ? "deploy" : "rollback"), i, (i % 2 ? "a" : "b"), i + 1, 50 + i % 400 }' \
  > "$work/data/journal.ndjson"
"$dir/slot-machine" start --config "$work/slot-machine.json" --repo "$work/repo" --data "$work/data" \
  2>"$work/daemon.log" &
pids+=($!)
wait_port "$api"
"$dir/slot-machine" deploy "$b" --api-port "$api" >/dev/null

size() { curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$api$1"; }
page=0
for f in /ui/ /ui/app.js /ui/style.css; do page=$((page + $(size "$f"))); done
data=0
for f in /ui/session /status "/history?limit=20" /revisions "/commits/$b"; do data=$((data + $(size "$f"))); done
whole=$(size "/history?limit=10000")
hist_ms=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$api/history?limit=20")

echo "bench/ui: $(nproc) cores, $(chromium --version 2>/dev/null | head -n 1), $entries journal entries, $loads loads, build $dir, $(date -u +%FT%TZ)"
echo "page (index.html + app.js + style.css): $page bytes, uncompressed"
echo "its first API answers (session, status, 20 history entries, revisions, live commit): $data bytes"
echo "the history sent whole instead (limit=10000): $whole bytes"
echo "GET /history?limit=20 with $entries entries: $(awk -v s="$hist_ms" 'BEGIN { printf "%.1f", s * 1000 }') ms"
/usr/bin/python3 bench/ui_render.py "http://127.0.0.1:$api/ui/" "$loads"
