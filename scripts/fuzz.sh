#!/usr/bin/env bash
# Runs every libFuzzer target (fuzz/*_fuzz.cpp) for SECONDS each (default 60), starting
# from its committed seed corpus (fuzz/corpus/<target>/), and prints executions per
# second and coverage for each. A crash, leak, sanitizer report or hang fails the run;
# the input that caused it is kept under fuzz/findings/ (add it to the corpus once fixed).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (FUZZ_JOBS targets at a time, default one per core)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config env_file revision state journal api prefer hosts proxy webhook cron)

dir=$(bash scripts/build.sh fuzz | tail -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p fuzz/findings

# FUZZ_JOBS targets at a time (default: one per core); each is single-threaded.
jobs=${FUZZ_JOBS:-$(nproc)}
run_target() {
  local t=$1
  mkdir -p "$work/$t"
  # New inputs go to a scratch corpus; the committed seeds stay as they are.
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$dir/fuzz_$t" "$work/$t" "fuzz/corpus/$t" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="fuzz/findings/$t-" \
    >"$work/$t.log" 2>&1
  echo $? >"$work/$t.rc"
}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
  rc=$(cat "$work/$t.rc")
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/$t.log")
  per_s=$(awk '/stat::average_exec_per_sec/ {print $2}' "$work/$t.log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -n 1 || true)
  corpus=$(ls "$work/$t" | wc -l)
  printf 'fuzz %-9s %6s s  %9s execs  %6s exec/s  %-20s new inputs %s  %s\n' "$t" "$secs" \
    "${execs:-?}" "${per_s:-?}" "${cov:-cov: ?}" "$corpus" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    tail -n 60 "$work/$t.log" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (inputs in fuzz/findings/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no findings"
