#!/usr/bin/env bash
# Runs the black-box spec suite as parallel doctest processes, one spec file each, at most
# JOBS at a time (default: 2 per core; the cases mostly wait on daemons, apps and
# timeouts, not the CPU), each with a port range of its own. Prints one line per file as
# it ends, then every failing file's output, then doctest's summary lines summed. Exits 1
# when any file failed or did not run to its summary.
#
# Usage: scripts/spec.sh SPEC_BINARY SLOT_MACHINE_BINARY TESTAPP_BINARY [JOBS] [COUNTS_FILE]
# COUNTS_FILE, when given, gets each file's "test cases:" summary line appended (test.sh
# sums them into its closing line). SPEC_FILES="a_spec.cpp b_spec.cpp" runs only those.
set -uo pipefail
cd "$(dirname "$0")/.."
# Absolute: the suite starts them from other directories.
spec=$(realpath "$1") bin=$(realpath "$2") app=$(realpath "$3")
jobs=${4:-$(( $(nproc) * 2 ))}
counts=${5:-/dev/null}
[ "$jobs" -ge 1 ] && [ "$jobs" -le 12 ] || { echo "spec.sh: JOBS must be 1-12, got $jobs" >&2; exit 2; }

# The files that take longest start first, so the pool ends evenly (measured 2026-12-03,
# bench/README.md "Where the test run's time goes"); files not named here follow.
first=(acme notify self_heal standby ui cancel logs deploy metrics proxy_stream)
files=()
for f in "${first[@]}"; do [ -f "spec/${f}_spec.cpp" ] && files+=("${f}_spec.cpp"); done
for path in spec/*_spec.cpp; do
  f=$(basename "$path")
  [[ " ${files[*]} " == *" $f "* ]] || files+=("$f")
done
if [ -n "${SPEC_FILES:-}" ]; then read -r -a files <<<"$SPEC_FILES"; fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
range=$(( 12000 / jobs ))  # ports 20000-32000, split into one range per slot
started=$SECONDS
declare -A slot_of   # pid -> slot
declare -A file_of   # pid -> spec file
free_slots=()
for ((s = 0; s < jobs; s++)); do free_slots+=("$s"); done
failed=()

finish() {  # $1 = pid that ended, $2 = its exit status
  local pid=$1 rc=$2 f=${file_of[$1]} summary
  summary=$(grep -E '^\[doctest\] test cases:' "$logs/$f.log" | tail -n 1)
  if [ "$rc" -ne 0 ] || [ -z "$summary" ]; then
    failed+=("$f")
    printf 'spec %-24s FAILED (exit %s) after %s s\n' "$f" "$rc" "$(( SECONDS - ${start_of[$f]} ))"
  else
    printf 'spec %-24s %s  %s s\n' "$f" "$(sed 's/\[doctest\] test cases: *//' <<<"$summary")" \
      "$(( SECONDS - ${start_of[$f]} ))"
  fi
  [ -n "$summary" ] && echo "$summary" >>"$counts"
  free_slots+=("${slot_of[$pid]}")
  unset "slot_of[$pid]" "file_of[$pid]"
}

declare -A start_of
for f in "${files[@]}"; do
  while [ ${#free_slots[@]} -eq 0 ]; do
    wait -n -p done_pid; rc=$?
    finish "$done_pid" "$rc"
  done
  s=${free_slots[0]}
  free_slots=("${free_slots[@]:1}")
  low=$(( 20000 + s * range ))
  start_of[$f]=$SECONDS
  # A file that hangs fails the run instead of holding it until CI's limit.
  SPEC_PORTS="$low-$(( low + range - 1 ))" SLOT_MACHINE_BIN="$bin" TESTAPP_BIN="$app" \
    timeout --kill-after=10 "${SPEC_FILE_TIMEOUT:-600}" "$spec" -sf="*/$f" >"$logs/$f.log" 2>&1 &
  slot_of[$!]=$s
  file_of[$!]=$f
done
while [ ${#slot_of[@]} -gt 0 ]; do
  wait -n -p done_pid; rc=$?
  finish "$done_pid" "$rc"
done

for f in "${failed[@]}"; do
  echo "===== $f =====" >&2
  cat "$logs/$f.log" >&2
done
echo "spec: ${#files[@]} files, $jobs at a time, $(( SECONDS - started )) s; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
