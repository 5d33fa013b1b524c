#!/usr/bin/env bash
# Builds the Debian package (CPack; Depends: computed by dpkg-shlibdeps from the
# libraries the binary loads). Prints the .deb's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dir=$(bash scripts/build.sh release | tail -n 1)
out="$PWD/$dir/package"
mkdir -p "$out"
(cd "$dir" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) || { cat "$out/cpack.log" >&2; exit 1; }
ls -t "$out"/slot-machine_*.deb | head -n 1
