#!/usr/bin/env bash
# Rollback to a warm or frozen standby vs a rollback that starts the app, the memory a
# standby costs, and crash-to-serving time (crash restart; auto-rollback to a standby).
# Proxy mode, testapp with a boot delay standing in for a real app's start-up.
# See bench/README.md. Usage: bench/standby.sh [N] [BOOT_DELAY_S]   (default 10, 0.5)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
n=${1:-10}
boot=${2:-0.5}

work=$(mktemp -d)
daemon_pid=""
stop_daemon() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  daemon_pid=""
}
trap 'stop_daemon; [ -n "${KEEP_LOG:-}" ] && cp "$work/daemon.log" "$KEEP_LOG"; rm -rf "$work"' EXIT

make_app_repo "$work/repo" vA vB
a=$(git -C "$work/repo" rev-parse HEAD~1)
b=$(git -C "$work/repo" rev-parse HEAD)

# $1: extra config (JSON members); starts the daemon and deploys vA then vB.
run_daemon() {
  free_port api; free_port port; free_port internal
  cat > "$work/slot-machine.json" <<JSON
{"start_command": "exec $root/$dir/testapp --boot-delay $boot", "port": $port, "internal_port": $internal,
 "api_port": $api, "health_timeout_ms": 10000, "drain_timeout_ms": 2000 $1}
JSON
  rm -rf "$work/data"
  "$dir/slot-machine" start --config "$work/slot-machine.json" --repo "$work/repo" \
    --data "$work/data" 2>>"$work/daemon.log" &
  daemon_pid=$!
  wait_port "$api"
  for c in "$a" "$b"; do
    curl -sf -X POST -d "{\"commit\":\"$c\"}" "http://127.0.0.1:$api/deploy" >/dev/null
  done
}

echo "standby: $(nproc) cores, $(uname -r), build $dir, testapp boot delay ${boot} s, $(date -u +%FT%TZ)"
for mode in ${MODES:-off warm frozen}; do
  echo "== standby: $mode"
  run_daemon ", \"standby\": \"$mode\""
  "$dir/standby_bench" "$api" "$port" rollbacks "$n"
  stop_daemon
done
echo "== crash of the live app, restart: on-failure (backoff 1 s, then the app boots)"
run_daemon ', "restart": "on-failure"'
sleep 1
"$dir/standby_bench" "$api" "$port" crash
stop_daemon
echo "== crash of the live app within auto_rollback_s, warm standby"
run_daemon ', "standby": "warm", "auto_rollback_s": 60, "restart": "on-failure"'
"$dir/standby_bench" "$api" "$port" crash
stop_daemon
