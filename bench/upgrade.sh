#!/usr/bin/env bash
# Upgrading the daemon under load (contract §7). wrk -c32 against the public port:
#   1. for a baseline, with nothing happening;
#   2. through 10 upgrades (`slot-machine upgrade`, one every ~0.9 s): failed requests,
#      p99, and the time from `upgrade` to the new daemon serving (the old daemon's
#      log; and the client's whole round trip);
#   3. through 10 `slot-machine restart` (the app restarted in place), for comparison;
#   4. through 3 SIGKILLs of a daemon on held sockets (bench/socket_holder.py stands in
#      for systemd's .socket unit and starts it again): connect errors.
# See bench/README.md. Usage: bench/upgrade.sh [SECONDS per wrk run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
bash scripts/setup.sh bench
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
secs=${1:-10}

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  local p
  p=$(curl -s -m 1 "http://127.0.0.1:${api:-0}/status" | grep -o '"daemon_pid":[0-9]*' | cut -d: -f2 || true)
  [ -n "$p" ] && kill -TERM "$p" 2>/dev/null && sleep 1
  rm -rf "$work"
}
trap cleanup EXIT

make_app_repo "$work/repo" vA
free_port api; free_port port; free_port internal
write_testapp_config "$work/slot-machine.json" "$root/$dir/testapp"
sm() { "$root/$dir/slot-machine" "$@"; }
daemon_now() { curl -s -m 1 "http://127.0.0.1:$api/status" | grep -o '"daemon_pid":[0-9]*' | cut -d: -f2; }
wait_api() { until curl -s -m 1 "http://127.0.0.1:$api/status" >/dev/null; do sleep 0.02; done; }

# wrk's summary as "requests=N failed=N connect_errors=N p99=X"
summarize() {
  awk '/requests in/ { req = $1 }
       /Socket errors/ { gsub(/,/, ""); for (i = 1; i <= NF; i++) if ($i ~ /^(connect|read|write|timeout)$/) { err += $(i + 1); if ($i == "connect") conn = $(i + 1) } }
       /Non-2xx/ { err += $NF }
       $1 == "99%" { p99 = $2 }
       END { printf "requests=%d failed=%d connect_errors=%d p99=%s", req, err, conn, p99 }' "$1"
}
load() { wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/" > "$1" 2>&1; }

echo "bench/upgrade: $(nproc) cores, build $dir, $(date -u +%FT%TZ), wrk -t2 -c32 -d${secs}s"

sm start --config "$work/slot-machine.json" --repo "$work/repo" --data "$work/data" 2>>"$work/daemon.log" &
daemon_pid=$!
wait_api
sm deploy --api-port "$api" -q "$(git -C "$work/repo" rev-parse HEAD)" >/dev/null
app=$(curl -s "http://127.0.0.1:$api/status" | grep -o '"live_pid":[0-9]*')

load "$work/base.txt"
echo "baseline        $(summarize "$work/base.txt")"

load "$work/up.txt" &
wrk_pid=$!
sleep 0.5
times=()
for _ in $(seq 10); do
  t0=$(date +%s%N)
  sm upgrade --api-port "$api" >/dev/null
  times+=($(( ($(date +%s%N) - t0) / 1000000 )))
  sleep 0.9
done
wait "$wrk_pid"
daemon_pid=""  # the first daemon has handed over and exited
echo "10 upgrades     $(summarize "$work/up.txt")"
ready=$(grep -o 'serves after [0-9]* ms' "$work/daemon.log" | awk '{ print $3 }' | sort -n | tr '\n' ' ')
echo "  upgrade→ready (old daemon's log, ms): $ready  (target <= 100)"
echo "  \`slot-machine upgrade\` round trip (ms): $(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')"
curl -s "http://127.0.0.1:$api/status" | grep -q "$app" || { echo "the app was restarted: not adopted" >&2; exit 1; }
echo "  app adopted every time: $app"

# The app restarted in place (contract §12, `slot-machine restart`), for comparison.
load "$work/restart.txt" &
wrk_pid=$!
sleep 0.5
for _ in $(seq 10); do
  sm restart --api-port "$api" -q >/dev/null
  sleep 0.5
done
wait "$wrk_pid"
echo "10 app restarts $(summarize "$work/restart.txt")"
kill -TERM "$(daemon_now)"
sleep 1.5

# SIGKILL on held sockets.
python3 bench/socket_holder.py public="$port" api="$api" -- "$root/$dir/slot-machine" start \
  --config "$work/slot-machine.json" --repo "$work/repo" --data "$work/data" 2>>"$work/holder.log" &
daemon_pid=$!
wait_api
app=$(curl -s "http://127.0.0.1:$api/status" | grep -o '"live_pid":[0-9]*')  # started afresh: the stop above drained it
load "$work/kill.txt" &
wrk_pid=$!
for _ in 1 2 3; do
  sleep "$(awk -v s="$secs" 'BEGIN { print s / 4 }')"
  kill -KILL "$(daemon_now)"
done
wait "$wrk_pid"
echo "3 SIGKILLs      $(summarize "$work/kill.txt")   (failed: requests in flight at each kill)"
wait_api
curl -s "http://127.0.0.1:$api/status" | grep -q "$app" || {
  echo "the app was restarted: not adopted" >&2; cat "$work/holder.log" >&2; exit 1; }
echo "  app adopted every time: $app"
