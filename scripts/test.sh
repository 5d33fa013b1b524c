#!/usr/bin/env bash
# Runs every test: unit tests and the black-box spec suite on a normal build, the Debian
# package's checks (scripts/check_package.sh), the include layering (scripts/layers.sh),
# the docs' links (scripts/doc_links.sh), the README's quick start as written
# (scripts/quickstart.sh), then the unit tests and the spec suite again against an
# AddressSanitizer + UndefinedBehaviorSanitizer build (any sanitizer report fails the
# run), then every fuzz target briefly (scripts/fuzz.sh, FUZZ_SECONDS each, default 15).
#
# Usage: scripts/test.sh            everything (what CI runs)
#        scripts/test.sh --quick    unit tests and the release spec only: the edit-compile-test loop
#        scripts/test.sh --no-sanitize   everything but the sanitizer build and the fuzz run
#
# The spec suite runs as parallel processes (scripts/spec.sh, SPEC_JOBS at a time,
# default 2 per core). Builds go through ccache, whose cache lives outside the clone
# (ccache's default, ~/.cache/ccache), so a second run and CI on the same machine reuse it.
# Ends with the time each stage took and the plain line `tests: N passed, N failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

mode=full
case "${1:-}" in
  "") ;;
  --quick) mode=quick ;;
  --no-sanitize) mode=no-sanitize ;;
  *) echo "test.sh: unknown option '$1' (use --quick or --no-sanitize)" >&2; exit 2 ;;
esac
jobs=${SPEC_JOBS:-$(( $(nproc) * 2 ))}

counts=$(mktemp)
reports=$(mktemp -d)
trap 'rm -rf "$counts" "$reports"' EXIT
began=$SECONDS
stage_began=$SECONDS
timings=()
stage() {  # ends the running stage (if any) and names the next
  [ -n "${stage_name:-}" ] && timings+=("$(printf '%-24s %5d s' "$stage_name" $(( SECONDS - stage_began )))")
  stage_name=${1:-}
  stage_began=$SECONDS
  [ -n "$stage_name" ] && echo "== $stage_name"
  return 0
}

stage "release build"
dir=$(bash scripts/build.sh release | tail -n 1)
stage "unit tests (release)"
"$dir/unit_tests" | tee -a "$counts"
stage "spec (release)"
bash scripts/spec.sh "$dir/spec" "$dir/slot-machine" "$dir/testapp" "$jobs" "$counts"
# The suite ran with the proxy's default event loops (one per CPU); its proxy files again
# with one (contract §15: both must hold).
stage "spec (release, proxy_workers 1)"
SPEC_PROXY_WORKERS=1 SPEC_FILES="proxy_spec.cpp proxy_stream_spec.cpp proxy_hostile_spec.cpp upgrade_spec.cpp pause_spec.cpp canary_spec.cpp" \
  bash scripts/spec.sh "$dir/spec" "$dir/slot-machine" "$dir/testapp" "$jobs" "$counts"

if [ "$mode" != quick ]; then
  stage "Debian package"
  bash scripts/check_package.sh
  stage "include layering, doc links"
  bash scripts/layers.sh
  bash scripts/doc_links.sh
  stage "README quick start"
  # Counted as one test in the closing line (the script fails the run when it fails).
  bash scripts/quickstart.sh
  echo "[doctest] test cases: 1 | 1 passed | 0 failed | quickstart" >>"$counts"
fi

if [ "$mode" = full ]; then
  stage "sanitizer build"
  sdir=$(bash scripts/build.sh sanitize | tail -n 1)
  # Every process (daemon, testapp, the suites) writes any report to $reports; the run
  # fails when one appears, even from a process whose exit code nobody checks.
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
  stage "unit tests (sanitizer)"
  "$sdir/unit_tests" | tee -a "$counts"
  stage "spec (sanitizer)"
  # The suite's own driver is the release one: it drives the sanitizer build's binaries.
  bash scripts/spec.sh "$dir/spec" "$sdir/slot-machine" "$sdir/testapp" "$jobs" "$counts"
  unset ASAN_OPTIONS UBSAN_OPTIONS
  if compgen -G "$reports/*" >/dev/null; then
    echo "sanitizer reports:" >&2
    cat "$reports"/* >&2
    exit 1
  fi
  echo "== sanitizer build: no reports"

  # Each libFuzzer target for a short run from its corpus: regressions in the parsers
  # of outside input (config, env file, revisions, state, journal, API, proxy, webhooks).
  stage "fuzz smoke (${FUZZ_SECONDS:-15} s a target)"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
fi
stage ""

left=$( (ps -C testapp -o pid=,stat= || true) | awk '$2 !~ /^Z/ { print $1 }')  # zombies are not running
if [ -n "$left" ]; then
  echo "test.sh: testapp processes left running: $left" >&2
  exit 1
fi
echo "== time per stage ($mode run)"
printf '  %s\n' "${timings[@]}"
printf '  %-24s %5d s\n' "total" $(( SECONDS - began ))
# doctest's "test cases: N | N passed | N failed" lines, summed into the plain closing line.
awk -F'|' '/test cases:/ { gsub(/[^0-9]/, "", $2); gsub(/[^0-9]/, "", $3); p += $2; f += $3 }
           END { printf "tests: %d passed, %d failed\n", p, f }' "$counts"
