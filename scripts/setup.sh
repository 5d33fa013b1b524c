#!/usr/bin/env bash
# Installs the Debian packages slot-machine builds and tests with. Idempotent: quiet
# and quick when everything is already there. Every other script calls it first.
# `setup.sh bench` also installs what the benchmarks compare against (wrk, nginx, HAProxy, Caddy).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git curl ca-certificates procps
  libcli11-dev libcpp-httplib-dev nlohmann-json3-dev libgit2-dev libfmt-dev doctest-dev
  libboost-dev libsystemd-dev libssl-dev openssl zlib1g-dev libbrotli-dev
  util-linux systemd
  clang libfuzzer-14-dev
  pebble
  prometheus
  chromium chromium-driver python3-selenium
)
[ "${1:-}" = bench ] && packages+=(wrk nginx haproxy caddy)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
