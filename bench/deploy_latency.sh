#!/usr/bin/env bash
# Deploy and rollback latency and daemon RSS, direct mode, testapp, no setup_command.
# See bench/README.md. Usage: bench/deploy_latency.sh [N]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
n=${1:-20}

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT


git -C "$work" init -q -b main repo
git -C "$work/repo" -c user.email=b@b -c user.name=bench commit -q --allow-empty -m init
for v in A B; do
  echo "v$v" > "$work/repo/VERSION"
  git -C "$work/repo" add VERSION
  git -C "$work/repo" -c user.email=b@b -c user.name=bench commit -q -m "v$v"
done
a=$(git -C "$work/repo" rev-parse HEAD~1)
b=$(git -C "$work/repo" rev-parse HEAD)

free_port api; free_port port; free_port internal
cat > "$work/slot-machine.json" <<JSON
{"start_command": "exec $root/$dir/testapp", "port": $port, "internal_port": $internal,
 "api_port": $api, "health_timeout_ms": 10000, "drain_timeout_ms": 5000}
JSON
"$dir/slot-machine" start --no-proxy --config "$work/slot-machine.json" --repo "$work/repo" \
  --data "$work/data" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$api) 2>/dev/null && break; sleep 0.05; done

echo "deploy_latency: $(nproc) cores, $(uname -r), build $dir, $(date -u +%FT%TZ)"
"$dir/deploy_latency" "$api" "$daemon_pid" "$a" "$b" "$n"
