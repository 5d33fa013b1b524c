#!/usr/bin/env bash
# Builds slot-machine. Usage: scripts/build.sh [debug|release|sanitize|fuzz] (default
# release). sanitize and fuzz are one build (build-sanitize, clang): slot-machine, testapp
# and the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer, and the
# libFuzzer targets from the same objects (they carry the fuzzer's coverage hooks too);
# -O1 with line tables, so reports name files and lines.
# Prints the build directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# ccache: paths under the clone are hashed relative to it, and the build directory is not
# hashed, so another clone (CI's, a second checkout) hits the same cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}

kind=${1:-release}
target=()
case "$kind" in
  release)  dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  debug)    dir=build-debug;    flags=(-DCMAKE_BUILD_TYPE=Debug) ;;
  # The spec suite runs against this build's slot-machine and testapp with the release
  # build's spec driver, so the driver is not built here.
  sanitize|fuzz)
            dir=build-sanitize; target=(--target slot-machine testapp unit_tests fuzzers)
            flags=(-DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -gline-tables-only"
                   -DSLOT_MACHINE_SANITIZE=ON -DSLOT_MACHINE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "build.sh: unknown build kind '$kind' (use release, debug, sanitize or fuzz)" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" "${flags[@]}" >/dev/null
if ! cmake --build "$dir" "${target[@]}" -j"$(nproc)" >"$dir/build.log" 2>&1; then
  cat "$dir/build.log" >&2
  echo "build.sh: build failed (log: $dir/build.log)" >&2
  exit 1
fi
grep -E 'warning:' "$dir/build.log" >&2 || true
echo "$dir"
