#!/usr/bin/env bash
# Before/after for a change to the proxy's request path: two builds' daemons, each in
# proxy mode in front of its own testapp, loaded in turn with the same wrk run, ROUNDS
# times; prints each build's median req/s and daemon CPU per request. Alternating every
# few seconds keeps this machine's drifting neighbours out of the comparison, which
# separate bench/proxy.sh runs cannot (see bench/README.md).
# Usage: bench/proxy_ab.sh BEFORE_BUILD_DIR [AFTER_BUILD_DIR (default: this tree's release
# build)] [SECONDS per run, default 5] [ROUNDS, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
bash scripts/setup.sh bench
before=$(realpath "${1:?usage: bench/proxy_ab.sh BEFORE_BUILD_DIR [AFTER_BUILD_DIR] [SECONDS] [ROUNDS]}")
after=$(realpath "${2:-$(bash scripts/build.sh release | tail -n 1)}")
secs=${3:-5}
rounds=${4:-8}
bench_scratch

make_app_repo "$work/repo" vA
commit=$(git -C "$work/repo" rev-parse HEAD)
declare -A pub pid
for side in before after; do
  bin=$before; [ "$side" = after ] && bin=$after
  free_port api; free_port port; free_port internal
  write_testapp_config "$work/$side.json" "$bin/testapp"
  "$bin/slot-machine" start --config "$work/$side.json" --repo "$work/repo" --data "$work/data-$side" \
    2>"$work/$side.log" &
  pid[$side]=$!
  pids+=($!)
  wait_port "$api"
  "$bin/slot-machine" deploy "$commit" --api-port "$api" >/dev/null
  pub[$side]=$port
done

echo "bench/proxy_ab: $(nproc) cores, wrk -t2 -c32 -d${secs}s GET /, $rounds rounds alternating, $(date -u +%FT%TZ)"
echo "  before: $before"
echo "  after:  $after"
for r in $(seq "$rounds"); do
  for side in before after; do
    [ $((r % 2)) -eq 0 ] && side=$([ "$side" = before ] && echo after || echo before)  # alternate who goes first
    t0=$(cpu_ticks "${pid[$side]}")
    wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:${pub[$side]}/" > "$work/$side.$r.wrk"
    n=$(awk '/requests in/ {print $1}' "$work/$side.$r.wrk")
    echo $(( ($(cpu_ticks "${pid[$side]}") - t0) * 10000000 / n )) >> "$work/$side.cpu"
  done
done
printf "%-8s %10s %10s %16s %8s\n" "" "req/s" "p99 ms" "CPU/request" "errors"
for side in before after; do
  read -r rps p99 err < <(median "$side")
  errs=$(for f in "$work/$side".*.wrk; do parse_wrk "$f"; done | awk '{ e += $3 } END { print e }')
  cpu=$(sort -n "$work/$side.cpu" | awk '{ c[NR] = $1 } END { printf "%.1f us", c[int((NR + 1) / 2)] / 1000 }')
  printf "%-8s %10s %10s %16s %8s\n" "$side" "$rps" "$p99" "$cpu" "$errs"
done
# Each round's after/before ratio (the two runs of a round are seconds apart, so they
# share the neighbours' load): their median is the figure to quote.
paste "$work/before.cpu" "$work/after.cpu" | awk '{ printf "%.4f\n", $2 / $1 }' | sort -n |
  awk '{ r[NR] = $1 } END { m = r[int((NR + 1) / 2)]
    printf "CPU per request, after / before, median of the rounds: %.3f (%+.1f%%)\n", m, (m - 1) * 100 }'
echo "(medians over $rounds rounds; every round per side:)"
for side in before after; do
  printf '  %-7s' "$side"; for f in "$work/$side".*.wrk; do printf '  %s' "$(parse_wrk "$f" | cut -d' ' -f1)"; done; echo
  printf '  %-7s' ""; while read -r c; do printf '  %s' "$(awk -v c="$c" 'BEGIN { printf "%.1fus", c / 1000 }')"; done < "$work/$side.cpu"; echo
done
