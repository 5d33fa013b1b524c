#!/usr/bin/env bash
# App restart to healthy status when adopting: SIGKILL the daemon, start it again,
# time from exec until GET /status says healthy with the same live pid. See bench/README.md.
# Usage: bench/restart.sh [N]   (default 10; both modes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
n=${1:-10}

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

make_app_repo "$work/repo" vA

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
status() { curl -s -m 1 "http://127.0.0.1:$api/status" || true; }

run_mode() {  # mode-name extra-start-args...
  local name=$1; shift
  rm -rf "$work/data"
  free_port api; free_port port; free_port internal
  write_testapp_config "$work/slot-machine.json" "$root/$dir/testapp"
  start() {
    "$dir/slot-machine" start "$@" --config "$work/slot-machine.json" --repo "$work/repo" \
      --data "$work/data" 2>>"$work/daemon.log" &
    daemon_pid=$!
  }
  start "$@"
  until status | grep -q '"mode"'; do sleep 0.02; done
  "$dir/slot-machine" deploy --api-port "$api" "$(git -C "$work/repo" rev-parse HEAD)" >/dev/null
  local pid
  pid=$(status | grep -o '"live_pid":[0-9]*' | cut -d: -f2)
  local times=()
  for _ in $(seq "$n"); do
    kill -KILL "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
    local t0 t1
    t0=$(now_ms)
    start "$@"
    until status | grep -q '"healthy":true'; do sleep 0.002; done
    t1=$(now_ms)
    status | grep -q "\"live_pid\":$pid" || { echo "$name: live pid changed: not adopted" >&2; exit 1; }
    times+=($((t1 - t0)))
  done
  kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
  printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" '{ t[NR] = $1 } END {
    printf "%-7s restarts=%d median=%d ms min=%d max=%d   (target <= 200 ms)\n", name, NR, t[int((NR + 1) / 2)], t[1], t[NR] }'
}

echo "bench/restart: $(nproc) cores, build $dir, $(date -u +%FT%TZ); SIGKILL the daemon, start it, poll /status (curl, ~2-5 ms resolution)"
run_mode direct --no-proxy
run_mode proxy
