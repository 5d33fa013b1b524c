#!/usr/bin/env bash
# Memory soak: 300 operations (two deploys, then a rollback, repeated) against a packed
# repository of 3000 files, in direct mode and in proxy mode under wrk load; the
# daemon's RSS, RssAnon, open fds and threads sampled along the way, and every failed
# request counted. See bench/README.md.
# Usage: bench/soak.sh [OPS, default 300] [FILES, default 3000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
bash scripts/setup.sh bench
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
ops=${1:-300}
files=${2:-3000}

work=$(mktemp -d)
daemon_pid=""
load_pid=""
cleanup() {
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A repository like a real app's: many files, packed (libgit2's caches and pack windows
# are what grew before), two commits that differ in ten files and VERSION.
git init -q -b main "$work/repo"
mkdir -p "$work/repo/src"
for i in $(seq 1 "$files"); do head -c 3000 /dev/urandom | base64 > "$work/repo/src/f$i.txt"; done
echo vA > "$work/repo/VERSION"
git -C "$work/repo" add -A
git -C "$work/repo" -c user.email=b@example.com -c user.name=bench commit -qm vA
for i in $(seq 1 10); do sed -i "1s/.*/changed/" "$work/repo/src/f$i.txt"; done
echo vB > "$work/repo/VERSION"
git -C "$work/repo" -c user.email=b@example.com -c user.name=bench commit -qam vB
git -C "$work/repo" gc -q
a=$(git -C "$work/repo" rev-parse HEAD~1)
b=$(git -C "$work/repo" rev-parse HEAD)

sample() {  # $1 = label
  local s=/proc/$daemon_pid/status
  printf '  %-10s VmRSS %6d kB  RssAnon %6d kB  fds %3d  threads %3d\n' "$1" \
    "$(awk '/^VmRSS/ {print $2}' "$s")" "$(awk '/^RssAnon/ {print $2}' "$s")" \
    "$(ls "/proc/$daemon_pid/fd" | wc -l)" "$(ls "/proc/$daemon_pid/task" | wc -l)"
}

op() {  # $1 = operation number (1-based): deploy, deploy, rollback, ...
  local path=deploy body
  case $(($1 % 3)) in
    1) body="{\"commit\":\"$a\"}" ;;
    2) body="{\"commit\":\"$b\"}" ;;
    0) path=rollback body="" ;;
  esac
  code=$(curl -s -o "$work/op.out" -w '%{http_code}' -X POST -d "$body" "http://127.0.0.1:$api/$path")
  if [ "$code" != 200 ]; then
    echo "operation $1 ($path) answered $code: $(cat "$work/op.out")" >&2
    exit 1
  fi
}

# wrk in 5 s runs for as long as $work/loading exists; errors summed into $work/load.txt.
load() {
  local total=0 failed=0 out
  while [ -e "$work/loading" ]; do
    out=$(wrk -t1 -c8 -d5s "http://127.0.0.1:$port/" 2>&1)
    total=$((total + $(awk '/requests in/ {print $1}' <<<"$out")))
    failed=$((failed + $(awk '/Non-2xx/ {print $NF}' <<<"$out" | head -1 || true) + 0))
    failed=$((failed + $(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' <<<"$out" || true) + 0))
  done
  echo "$total $failed" > "$work/load.txt"
}

run_mode() {  # $1 = direct|proxy
  local mode=$1 flags=()
  [ "$mode" = direct ] && flags=(--no-proxy)
  rm -rf "$work/data"
  free_port api; free_port port; free_port internal
  write_testapp_config "$work/slot-machine.json" "$root/$dir/testapp"
  "$dir/slot-machine" start "${flags[@]}" --config "$work/slot-machine.json" \
    --repo "$work/repo" --data "$work/data" 2>"$work/daemon-$mode.log" &
  daemon_pid=$!
  wait_port "$api"
  echo "$mode mode: $ops operations (deploy, deploy, rollback, ...), $files files, packed"
  sample "start"
  op 1
  if [ "$mode" = proxy ]; then
    touch "$work/loading"
    load & load_pid=$!
    sleep 1
  fi
  local began=$SECONDS
  for i in $(seq 2 "$ops"); do
    op "$i"
    case $i in 20|50|100|200|"$ops") sample "op $i" ;; esac
  done
  local took=$((SECONDS - began))
  if [ "$mode" = proxy ]; then
    rm -f "$work/loading"
    wait "$load_pid"; load_pid=""
    read -r total failed < "$work/load.txt"
    echo "  load: $total requests through the operations ($took s), $failed failed"
  fi
  kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""
}

echo "soak: $(nproc) cores, $(uname -r), build $dir, $(date -u +%FT%TZ)"
run_mode direct
run_mode proxy
