#!/usr/bin/env bash
# Canary (issue 25, contract §14): the split over N new visitors (default 10,000) for
# P = 10 and 50; requests failed under load through canary → promote and canary →
# rollback; proxy throughput with a canary running (every request a new visitor: drawn
# and told, the dearest case) against without, interleaved. See bench/README.md.
# Usage: bench/canary.sh [SECONDS per wrk run, default 5] [ROUNDS, default 3] [N, default 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
bash scripts/setup.sh bench
dir=${BUILD_DIR:-$(bash scripts/build.sh release | tail -n 1)}
secs=${1:-5}
rounds=${2:-3}
visitors=${3:-10000}

bench_scratch
make_app_repo "$work/app" v1 v2 v3 v4
rev() { git -C "$work/app" rev-parse "$1"; }
free_port api; free_port port; free_port internal
write_testapp_config "$work/config.json" "$(realpath "$dir")/testapp"
"$dir/slot-machine" start --config "$work/config.json" --repo "$work/app" --data "$work/data" 2>"$work/daemon.log" &
daemon=$!
pids+=($daemon)
wait_port "$api"
sm() { "$dir/slot-machine" "$@" --api-port "$api" >/dev/null; }
sm deploy "$(rev HEAD~3)"

echo "bench/canary: $(nproc) cores, $(uname -r), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2), build $dir, $(date -u +%FT%TZ)"

# --- the split ---------------------------------------------------------------------
split() {  # P: N requests without a cookie on one keep-alive connection; the share told "new"
  python3 - "$port" "$visitors" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
new = old = bad = 0
for _ in range(n):
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read()
    cookie = r.getheader("Set-Cookie") or ""
    if r.status != 200: bad += 1
    elif cookie.startswith("slot-machine-canary=new") and b"hello from v2" in body: new += 1
    elif cookie.startswith("slot-machine-canary=old") and b"hello from v1" in body: old += 1
    else: bad += 1
print(f"{100.0 * new / n:.2f} {new} {old} {bad}")
PY
}
for p in 10 50; do
  sm deploy "$(rev HEAD~2)" --canary "$p"
  read -r share new old bad < <(split)
  echo "split, P = $p: $share% of $visitors new visitors got the canary ($new new, $old old, $bad neither or failed)"
  sm rollback
done

# --- promote and rollback under load -------------------------------------------------
under_load() {  # label, then the command to run 2 s into a 6 s wrk run
  local label=$1; shift
  wrk -t2 -c20 -d6s "http://127.0.0.1:$port/" > "$work/load.wrk" &
  local w=$!
  sleep 2
  "$@"
  wait "$w"
  read -r rps _ errors < <(parse_wrk "$work/load.wrk")
  echo "$label under load (wrk -c20): $(awk '/requests in/ {print $1}' "$work/load.wrk") requests, $errors failed"
}
sm deploy "$(rev HEAD~2)" --canary 50
under_load "canary → promote " sm promote
sm deploy "$(rev HEAD~1)" --canary 50
under_load "canary → rollback" sm rollback

# --- throughput with and without a canary, interleaved -------------------------------
echo "wrk -t2 -c32 -d${secs}s --latency, GET /, no cookies (each request drawn with a canary); $rounds rounds, median"
for r in $(seq "$rounds"); do
  wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/" > "$work/without.$r.wrk"
  sm deploy "$(rev HEAD)" --canary 50
  wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/" > "$work/with.$r.wrk"
  sm rollback
done
read -r w_rps w_p99 w_err < <(median without)
read -r c_rps c_p99 c_err < <(median with)
printf '%-22s %8s %9s %7s\n' target req/s p99_ms errors
printf '%-22s %8s %9s %7s\n' "no canary" "$w_rps" "$w_p99" "$w_err"
printf '%-22s %8s %9s %7s\n' "canary 50%" "$c_rps" "$c_p99" "$c_err"
echo "with / without: $(echo "$c_rps / $w_rps" | bc -l | xargs printf '%.3f')"
