#!/usr/bin/env bash
# Builds slot-machine. Usage: scripts/build.sh [debug|release|sanitize|fuzz] (default
# release; fuzz builds only the libFuzzer targets, with clang).
# Prints the build directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

kind=${1:-release}
target=()
case "$kind" in
  release)  dir=build;          flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  debug)    dir=build-debug;    flags=(-DCMAKE_BUILD_TYPE=Debug) ;;
  sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=Debug -DSLOT_MACHINE_SANITIZE=ON) ;;
  fuzz)     dir=build-fuzz;     target=(--target fuzzers)
            flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLOT_MACHINE_FUZZ=ON
                   -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang) ;;
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
