#!/usr/bin/env bash
# Proxy throughput and latency: wrk against testapp directly, slot-machine's proxy, and
# nginx (1 worker, keep-alive upstream) in front of the same testapp; then the proxy
# under the same load through 10 deploys and 5 rollbacks. See bench/README.md.
# Usage: bench/proxy.sh [SECONDS per wrk run, default 5] [ROUNDS, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
bash scripts/setup.sh bench
dir=${BUILD_DIR:-$(bash scripts/build.sh release | tail -n 1)}  # BUILD_DIR: another build to measure
root=$PWD
secs=${1:-5}
rounds=${2:-3}

bench_scratch


# --- the app, directly -------------------------------------------------------------
free_port direct
PORT=$direct VERSION=direct "$dir/testapp" >"$work/direct.log" 2>&1 &
pids+=($!)
wait_port "$direct"

# --- nginx, 1 worker, keep-alive upstream to that same testapp ------------------------
free_port ngx
start_nginx "$ngx" "$direct"

# --- slot-machine in proxy mode ---------------------------------------------------
make_app_repo "$work/repo" vA vB
a=$(git -C "$work/repo" rev-parse HEAD~1)
b=$(git -C "$work/repo" rev-parse HEAD)
free_port api; free_port port; free_port internal
write_testapp_config "$work/slot-machine.json" "$(realpath "$dir")/testapp"
"$dir/slot-machine" start --config "$work/slot-machine.json" --repo "$work/repo" \
  --data "$work/data" 2>"$work/daemon.log" &
daemon=$!
pids+=($daemon)
wait_port "$api"
sm() { "$dir/slot-machine" "$@" --api-port "$api" >/dev/null; }
sm deploy "$a"

load() {  # name port round [pid]: wrk run, report in $work/<name>.<round>.wrk; CPU of pid per request
  local t0=0
  [ -n "${4:-}" ] && t0=$(cpu_ticks "$4")
  wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$2/" > "$work/$1.$3.wrk"
  if [ -n "${4:-}" ]; then
    local n; n=$(awk '/requests in/ {print $1}' "$work/$1.$3.wrk")
    echo $(( ($(cpu_ticks "$4") - t0) * 10000000 / n )) >> "$work/$1.cpu"  # ns per request
  fi
}
echo "bench/proxy: $(nproc) cores, $(uname -r), $(nginx -v 2>&1), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), build $dir, $(date -u +%FT%TZ)"
echo "wrk -t2 -c32 -d${secs}s --latency, GET / (testapp, ~50 bytes); $rounds rounds, targets interleaved, median round shown"
: > "$work/rss"
for r in $(seq "$rounds"); do
  load direct "$direct" "$r"
  load nginx "$ngx" "$r" "$ngx_worker"
  sample_rss & sampler=$!
  load proxy "$port" "$r" "$daemon"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
done
proxy_rss=$(peak_rss_mb)

# --- under load through 10 deploys and 5 rollbacks ----------------------------------
: > "$work/rss"
sample_rss & sampler=$!
ops_secs=$((secs > 15 ? secs : 15))
wrk -t2 -c32 -d"${ops_secs}s" --latency "http://127.0.0.1:$port/" > "$work/ops.wrk" &
wrk_pid=$!
sleep 1
ops=0
start=$(date +%s%N)
for round in 1 2 3 4 5; do
  sm deploy "$b"; sm deploy "$a"; sm rollback
  ops=$((ops + 3))
  sleep 0.3
done
ops_ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$wrk_pid"
kill "$sampler"; wait "$sampler" 2>/dev/null || true
ops_rss=$(peak_rss_mb)
live=$("$dir/slot-machine" status --api-port "$api" --json | grep -o '"live_commit": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{40\}')

read -r d_rps d_p99 d_err < <(median direct)
read -r n_rps n_p99 n_err < <(median nginx)
read -r p_rps p_p99 p_err < <(median proxy)
p_err=$(for f in "$work"/proxy.*.wrk; do parse_wrk "$f"; done | awk '{ e += $3 } END { print e }')
read -r o_rps o_p99 o_err < <(parse_wrk "$work/ops.wrk")

echo "every round (req/s p99_ms errors):"
for t in direct nginx proxy; do
  printf '  %-7s' "$t"; for f in "$work/$t".*.wrk; do printf '  %s' "$(parse_wrk "$f" | tr ' ' '/')"; done; echo
done
cpu_us() { sort -n "$work/$1.cpu" | awk '{ c[NR] = $1 } END { printf "%.1f", c[int((NR + 1) / 2)] / 1000 }'; }
echo "CPU per request (median round, from /proc/<pid>/stat): nginx worker $(cpu_us nginx) us, slot-machine daemon $(cpu_us proxy) us"
echo
printf "%-34s %12s %12s %10s\n" "" "req/s" "p99" "errors"
printf "%-34s %12s %9s ms %10s\n" "testapp directly" "$d_rps" "$d_p99" "$d_err"
printf "%-34s %12s %9s ms %10s\n" "nginx (1 worker, keepalive)" "$n_rps" "$n_p99" "$n_err"
printf "%-34s %12s %9s ms %10s\n" "slot-machine proxy" "$p_rps" "$p_p99" "$p_err (all rounds)"
printf "%-34s %12s %9s ms %10s\n" "proxy during 10 deploys+5 rollbacks" "$o_rps" "$o_p99" "$o_err"
echo
echo "ops: $ops deploys/rollbacks in $ops_ms ms under load; live at the end: ${live:0:12} (expected ${b:0:12})"
echo "daemon peak RSS: ${proxy_rss} MB under load, ${ops_rss} MB during deploys"
echo
awk -v p="$p_rps" -v n="$n_rps" -v pp="$p_p99" -v np="$n_p99" -v pe="$p_err" -v oe="$o_err" -v r="$ops_rss" -v r0="$proxy_rss" 'BEGIN {
  printf "%-36s %-14s %s\n", "target", "measured", "met"
  printf "%-36s %-14s %s\n", "proxy req/s >= nginx req/s", sprintf("%.0f vs %.0f", p, n), (p >= n ? "yes" : "NO")
  printf "%-36s %-14s %s\n", "proxy p99 <= 1.5 x nginx p99", sprintf("%.2f vs %.2f ms", pp, 1.5 * np), (pp <= 1.5 * np ? "yes" : "NO")
  printf "%-36s %-14s %s\n", "0 errors under load", pe, (pe == 0 ? "yes" : "NO")
  printf "%-36s %-14s %s\n", "0 failed through deploys/rollbacks", oe, (oe == 0 ? "yes" : "NO")
  m = (r > r0) ? r : r0
  printf "%-36s %-14s %s\n", "daemon RSS <= 10 MB under load", m " MB", (m <= 10 ? "yes" : "NO")
}'
echo "(Go reference on this machine: direct ~45k req/s, nginx ~22-27k, Go proxy ~5.6k, 158 errors across 15 deploys/rollbacks)"
