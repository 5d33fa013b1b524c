#!/usr/bin/env bash
# Every core (issue 26, contract §15 proxy_workers): HTTP/1.1 keep-alive throughput, p99
# and CPU per request of slot-machine's proxy (default proxy_workers: one loop per CPU,
# and proxy_workers 1) against nginx (worker_processes auto), HAProxy (nbthread = CPUs)
# and Caddy (reverse_proxy), all in front of testapp, rounds interleaved; and the
# daemon's peak RSS under load with the default loops against one. See bench/README.md.
# Usage: bench/cores.sh [SECONDS per wrk run, default 5] [ROUNDS, default 3] [CONNECTIONS, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
bash scripts/setup.sh bench
dir=${BUILD_DIR:-$(bash scripts/build.sh release | tail -n 1)}
secs=${1:-5}
rounds=${2:-3}
conns=${3:-64}
cpus=$(nproc)
bench_scratch
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"


# --- the backend the references proxy to ----------------------------------------------
free_port direct
PORT=$direct VERSION=direct "$dir/testapp" >"$work/direct.log" 2>&1 &
pids+=($!)
wait_port "$direct"

# --- nginx, worker_processes auto ----------------------------------------------------
free_port ngx
mkdir -p "$work/nginx"
{
  nginx_conf_head | sed 's/^worker_processes 1;/worker_processes auto;/'
  nginx_proxy_block app "$direct" "127.0.0.1:$ngx"
  echo "}"
} > "$work/nginx/nginx.conf"
run_nginx "$ngx"
ngx_master=${pids[-1]}

# --- HAProxy, nbthread = CPUs ---------------------------------------------------------
free_port hap
cat > "$work/haproxy.cfg" <<CFG
global
  nbthread $cpus
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  option forwardfor
frontend f
  bind 127.0.0.1:$hap
  default_backend b
backend b
  http-reuse always
  server app 127.0.0.1:$direct
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
hap_pid=$!
wait_port "$hap"

# --- Caddy, reverse_proxy --------------------------------------------------------------
free_port cdy
cat > "$work/Caddyfile" <<CFG
{
  admin off
  auto_https off
}
http://127.0.0.1:$cdy {
  reverse_proxy 127.0.0.1:$direct
}
CFG
XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy caddy run --config "$work/Caddyfile" --adapter caddyfile \
  >"$work/caddy.log" 2>&1 &
pids+=($!)
cdy_pid=$!
wait_port "$cdy"

# --- slot-machine: default proxy_workers, and 1 ---------------------------------------
make_app_repo "$work/repo" vA
start_sm() {  # name [proxy_workers]: a daemon with testapp live; sets <name>_port and <name>_pid
  local name=$1 workers=${2:-}
  free_port api; free_port port; free_port internal
  write_testapp_config "$work/$name.json" "$(realpath "$dir")/testapp"
  if [ -n "$workers" ]; then
    python3 - "$work/$name.json" "$workers" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["proxy_workers"] = int(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"))
PY
  fi
  "$dir/slot-machine" start --config "$work/$name.json" --repo "$work/repo" --data "$work/$name.data" \
    2>"$work/$name.log" &
  pids+=($!)
  printf -v "${name}_pid" '%s' "$!"
  printf -v "${name}_port" '%s' "$port"
  wait_port "$api"
  "$dir/slot-machine" deploy --api-port "$api" -q "$(git -C "$work/repo" rev-parse HEAD)" >/dev/null
}
start_sm smN
start_sm sm1 1

tree_ticks() {  # CPU ticks of a process, and of its children for nginx (its workers; a
  # daemon's children are the apps, not the proxy)
  local t=0 p
  for p in "$1" $([ "$1" = "$ngx_master" ] && pgrep -P "$1" || true); do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}
load() {  # name port round pid
  local t0; t0=$(tree_ticks "$4")
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$2/" > "$work/$1.$3.wrk"
  local n; n=$(awk '/requests in/ {print $1}' "$work/$1.$3.wrk")
  echo $(( ($(tree_ticks "$4") - t0) * 10000000 / n )) >> "$work/$1.cpu"  # ns per request
}
echo "bench/cores: $cpus cores, $(uname -r), $(nginx -v 2>&1 | cut -d' ' -f3), HAProxy $(haproxy -v | head -n 1 | cut -d' ' -f3), Caddy $(caddy version | cut -d' ' -f1), build $dir, $(date -u +%FT%TZ)"
echo "wrk -t2 -c$conns -d${secs}s --latency, GET / (testapp, ~50 bytes); $rounds rounds, targets interleaved, median round"
: > "$work/rss"
for r in $(seq "$rounds"); do
  load nginx "$ngx" "$r" "$ngx_master"
  load haproxy "$hap" "$r" "$hap_pid"
  load caddy "$cdy" "$r" "$cdy_pid"
  daemon=$smN_pid; sample_rss & sampler=$!
  load smN "$smN_port" "$r" "$smN_pid"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  mv "$work/rss" "$work/rss.smN.$r"; : > "$work/rss"
  daemon=$sm1_pid; sample_rss & sampler=$!
  load sm1 "$sm1_port" "$r" "$sm1_pid"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  mv "$work/rss" "$work/rss.sm1.$r"; : > "$work/rss"
done
peak() { cat "$work"/rss."$1".* | sort -n | tail -n 1 | awk '{printf "%.1f", $1 / 1024}'; }
cpu_us() { sort -n "$work/$1.cpu" | awk '{ c[NR] = $1 } END { printf "%.1f", c[int((NR + 1) / 2)] / 1000 }'; }
printf '%-36s %9s %9s %7s %12s\n' target req/s p99_ms errors cpu_us/req
for t in nginx haproxy caddy smN sm1; do
  case $t in
    nginx) label="nginx (worker_processes auto)" ;;
    haproxy) label="HAProxy (nbthread $cpus)" ;;
    caddy) label="Caddy (reverse_proxy)" ;;
    smN) label="slot-machine (proxy_workers default)" ;;
    sm1) label="slot-machine (proxy_workers 1)" ;;
  esac
  read -r rps p99 err < <(median "$t")
  printf '%-36s %9s %9s %7s %12s\n' "$label" "$rps" "$p99" "$err" "$(cpu_us "$t")"
done
echo "every round (req/s/p99/errors):"
for t in nginx haproxy caddy smN sm1; do
  printf '  %-8s' "$t"; for f in "$work/$t".*.wrk; do printf '  %s' "$(parse_wrk "$f" | tr ' ' '/')"; done; echo
done
echo "daemon peak VmRSS under load: default loops $(peak smN) MB, 1 loop $(peak sm1) MB"
