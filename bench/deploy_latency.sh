#!/usr/bin/env bash
# Deploy and rollback latency and daemon RSS, direct mode, testapp, no setup_command.
# See bench/README.md. Usage: bench/deploy_latency.sh [N]   (default 20)
# BUILD_DIR=other/build bench/deploy_latency.sh measures another build (before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$(realpath "${BUILD_DIR:-$(bash scripts/build.sh release | tail -n 1)}")
root=$PWD
n=${1:-20}

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

make_app_repo "$work/repo" vA vB
a=$(git -C "$work/repo" rev-parse HEAD~1)
b=$(git -C "$work/repo" rev-parse HEAD)

free_port api; free_port port; free_port internal
write_testapp_config "$work/slot-machine.json" "$dir/testapp"
"$dir/slot-machine" start --no-proxy --config "$work/slot-machine.json" --repo "$work/repo" \
  --data "$work/data" 2>"$work/daemon.log" &
daemon_pid=$!
wait_port "$api"

echo "deploy_latency: $(nproc) cores, $(uname -r), build $dir, $(date -u +%FT%TZ)"
"$dir/deploy_latency" "$api" "$daemon_pid" "$a" "$b" "$n"
