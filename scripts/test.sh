#!/usr/bin/env bash
# Runs every test: unit tests and the black-box spec suite on a normal build, the Debian
# package's checks (scripts/check_package.sh), then the
# same again on an AddressSanitizer + UndefinedBehaviorSanitizer build. Any sanitizer
# report fails the run; then every fuzz target briefly (scripts/fuzz.sh, FUZZ_SECONDS
# each, default 20). Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
run_suite() {  # $1 = build dir
  echo "== unit tests ($1)"
  "$1/unit_tests" | tee -a "$counts"
  echo "== spec suite ($1)"
  SLOT_MACHINE_BIN="$PWD/$1/slot-machine" TESTAPP_BIN="$PWD/$1/testapp" "$1/spec" | tee -a "$counts"
}

dir=$(bash scripts/build.sh release | tail -n 1)
run_suite "$dir"
echo "== Debian package"
bash scripts/check_package.sh

if [ "${1:-}" != "--no-sanitize" ]; then
  sdir=$(bash scripts/build.sh sanitize | tail -n 1)
  reports=$(mktemp -d)
  trap 'rm -rf "$reports" "$counts"' EXIT
  # Every process (daemon, testapp, the suites) writes any report to $reports; the run
  # fails when one appears, even from a process whose exit code nobody checks.
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
  run_suite "$sdir"
  if compgen -G "$reports/*" >/dev/null; then
    echo "sanitizer reports:" >&2
    cat "$reports"/* >&2
    exit 1
  fi
  echo "== sanitizer build: no reports"
fi

if [ "${1:-}" != "--no-sanitize" ]; then
  # Each libFuzzer target for a short run from its corpus: regressions in the parsers
  # of outside input (config, env file, revisions, state, journal, API, proxy).
  echo "== fuzz smoke (${FUZZ_SECONDS:-20} s per target)"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi

left=$( (ps -C testapp -o pid=,stat= || true) | awk '$2 !~ /^Z/ { print $1 }')  # zombies are not running
if [ -n "$left" ]; then
  echo "test.sh: testapp processes left running: $left" >&2
  exit 1
fi
# doctest's "test cases: N | N passed | N failed" lines, summed into the plain closing line.
awk -F'|' '/test cases:/ { gsub(/[^0-9]/, "", $2); gsub(/[^0-9]/, "", $3); p += $2; f += $3 }
           END { printf "tests: %d passed, %d failed\n", p, f }' "$counts"
