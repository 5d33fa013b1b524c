#!/usr/bin/env bash
# HTTPS: slot-machine's proxy terminating TLS (config "tls", certificate files) against
# nginx (1 worker) terminating TLS with the same certificate, both in front of the same
# testapp: req/s and p99 with keep-alive, new TLS handshakes per second (every request
# on a new connection: Connection: close), and the daemon's RSS under HTTPS load.
# See bench/README.md. Usage: bench/https.sh [SECONDS per wrk run, default 5] [ROUNDS, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
bash scripts/setup.sh bench
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
secs=${1:-5}
rounds=${2:-3}

bench_scratch

# One certificate for both: ECDSA P-256, the common choice (and Let's Encrypt's default).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem"

free_port direct
PORT=$direct VERSION=direct "$dir/testapp" >"$work/direct.log" 2>&1 &
pids+=($!)
wait_port "$direct"

free_port ngx
start_nginx "$ngx" "$direct" ssl "ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"

make_app_repo "$work/repo" vA
free_port api; free_port port; free_port internal; free_port tls
write_testapp_config "$work/plain.json" "$root/$dir/testapp"
# The same config with "tls" added.
sed "s#}\$#, \"tls\": {\"port\": $tls, \"cert\": \"$work/cert.pem\", \"key\": \"$work/key.pem\"}}#" \
  "$work/plain.json" > "$work/slot-machine.json"
"$dir/slot-machine" start --config "$work/slot-machine.json" --repo "$work/repo" \
  --data "$work/data" 2>"$work/daemon.log" &
daemon=$!
pids+=($daemon)
wait_port "$api"
"$dir/slot-machine" deploy "$(git -C "$work/repo" rev-parse HEAD)" --api-port "$api" >/dev/null
wait_port "$tls"

run() {  # name port round mode(keepalive|handshake) pid: wrk run; CPU of pid per request
  local extra=() t0 n
  [ "$4" = handshake ] && extra=(-H "Connection: close")
  t0=$(cpu_ticks "$5")
  wrk -t2 -c32 -d"${secs}s" --latency "${extra[@]}" "https://127.0.0.1:$2/" > "$work/$1-$4.$3.wrk"
  n=$(awk '/requests in/ {print $1}' "$work/$1-$4.$3.wrk")
  echo $(( ($(cpu_ticks "$5") - t0) * 10000000 / n )) >> "$work/$1-$4.cpu"  # ns per request
}
cpu_us() { sort -n "$work/$1.cpu" | awk '{ c[NR] = $1 } END { printf "%.1f", c[int((NR + 1) / 2)] / 1000 }'; }

echo "bench/https: $(nproc) cores, $(uname -r), $(nginx -v 2>&1), $(openssl version), build $dir, $(date -u +%FT%TZ)"
echo "wrk -t2 -c32 -d${secs}s --latency https://..., GET / (testapp, ~50 bytes), ECDSA P-256 certificate;"
echo "$rounds rounds, targets interleaved, median round shown; handshake = every request on a new connection"
: > "$work/rss"
for r in $(seq "$rounds"); do
  for mode in keepalive handshake; do
    run nginx "$ngx" "$r" "$mode" "$ngx_worker"
    sample_rss & sampler=$!
    run proxy "$tls" "$r" "$mode" "$daemon"
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
  done
done
rss=$(peak_rss_mb)

echo "every round (req/s p99_ms errors):"
for t in nginx-keepalive proxy-keepalive nginx-handshake proxy-handshake; do
  printf '  %-16s' "$t"; for f in "$work/$t".*.wrk; do printf '  %s' "$(parse_wrk "$f" | tr ' ' '/')"; done; echo
done
read -r nk_rps nk_p99 nk_err < <(median nginx-keepalive)
read -r pk_rps pk_p99 pk_err < <(median proxy-keepalive)
read -r nh_rps nh_p99 nh_err < <(median nginx-handshake)
read -r ph_rps ph_p99 ph_err < <(median proxy-handshake)
echo
printf "%-40s %12s %12s %8s\n" "" "req/s" "p99" "errors"
printf "%-40s %12s %9s ms %8s\n" "nginx HTTPS keep-alive (1 worker)" "$nk_rps" "$nk_p99" "$nk_err"
printf "%-40s %12s %9s ms %8s\n" "slot-machine HTTPS keep-alive" "$pk_rps" "$pk_p99" "$pk_err"
printf "%-40s %12s %9s ms %8s\n" "nginx new TLS connection per request" "$nh_rps" "$nh_p99" "$nh_err"
printf "%-40s %12s %9s ms %8s\n" "slot-machine new TLS connection per req" "$ph_rps" "$ph_p99" "$ph_err"
echo "CPU per request (median round): keep-alive nginx worker $(cpu_us nginx-keepalive) us, daemon $(cpu_us proxy-keepalive) us;"
echo "  new connection per request: nginx worker $(cpu_us nginx-handshake) us, daemon $(cpu_us proxy-handshake) us"
echo "daemon peak RSS under HTTPS load: $rss MB ($(grep -E 'RssAnon|RssFile' /proc/$daemon/status | tr -s ' \n' ' ') at the end)"
echo
awk -v pk="$pk_rps" -v nk="$nk_rps" -v pkp="$pk_p99" -v nkp="$nk_p99" -v ph="$ph_rps" -v nh="$nh_rps" \
    -v php="$ph_p99" -v nhp="$nh_p99" -v r="$rss" 'BEGIN {
  printf "%-40s %-22s %s\n", "target", "measured", "met"
  printf "%-40s %-22s %s\n", "keep-alive req/s >= nginx", sprintf("%.0f vs %.0f", pk, nk), (pk >= nk ? "yes" : "NO")
  printf "%-40s %-22s %s\n", "keep-alive p99 <= 1.5 x nginx", sprintf("%.2f vs %.2f ms", pkp, 1.5 * nkp), (pkp <= 1.5 * nkp ? "yes" : "NO")
  printf "%-40s %-22s %s\n", "handshakes/s >= nginx", sprintf("%.0f vs %.0f", ph, nh), (ph >= nh ? "yes" : "NO")
  printf "%-40s %-22s %s\n", "handshake p99 <= 1.5 x nginx", sprintf("%.2f vs %.2f ms", php, 1.5 * nhp), (php <= 1.5 * nhp ? "yes" : "NO")
  printf "%-40s %-22s %s\n", "daemon RSS <= 20 MB under HTTPS load", r " MB", (r <= 20 ? "yes" : "NO")
}'
