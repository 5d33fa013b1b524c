#!/usr/bin/env bash
# Push-to-live: `git push` of a one-line change (start of the push to the new version
# serving) against `slot-machine deploy` of the same kind of change, under wrk load on
# the public port (proxy mode), counting failed requests. See bench/README.md.
# Usage: bench/push.sh [N]   (default 10 of each; LOAD=0: without wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh bench
source scripts/lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
n=${1:-10}

work=$(mktemp -d)
daemon_pid=""; wrk_pid=""
cleanup() {
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null || true
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

make_app_repo "$work/app" v0
git -C "$work/app" config receive.denyCurrentBranch updateInstead
free_port api; free_port port; free_port internal
write_testapp_config "$work/slot-machine.json" "$root/$dir/testapp"
"$dir/slot-machine" start --config "$work/slot-machine.json" --repo "$work/app" --data "$work/data" \
  2>"$work/daemon.log" &
daemon_pid=$!
wait_port "$api"
curl -sf -X POST -d "{\"commit\":\"$(git -C "$work/app" rev-parse HEAD)\"}" "http://127.0.0.1:$api/deploy" >/dev/null
(cd "$work/app" && "$root/$dir/slot-machine" hook install --config "$work/slot-machine.json" >/dev/null)
git clone -q "$work/app" "$work/dev"
git -C "$work/dev" config user.email bench@example.com
git -C "$work/dev" config user.name bench

# Runs the command after $1 (from directory $2) and prints the ms from its start until
# GET / on the public port answers with version $1 (polling back to back, keep-alive).
time_to_serving() {
  /usr/bin/python3 - "$port" "$@" <<'PY'
import http.client, subprocess, sys, time
port, want, cwd, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
c.request("GET", "/"); c.getresponse().read()
t0 = time.monotonic_ns()
p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        c.request("GET", "/"); body = c.getresponse().read().decode()
    except Exception:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); continue
    if "hello from " + want + " " in body:
        print("%.1f" % ((time.monotonic_ns() - t0) / 1e6)); break
if p.wait() != 0: sys.exit("%s failed" % " ".join(cmd))
PY
}

if [ "${LOAD:-1}" = 1 ]; then
  wrk -t1 -c8 -d600s "http://127.0.0.1:$port/" > "$work/wrk.out" 2>&1 &
  wrk_pid=$!
fi
push_ms=(); deploy_ms=()
for i in $(seq "$n"); do
  echo "p$i" > "$work/dev/VERSION"; git -C "$work/dev" commit -qam "p$i"
  push_ms+=("$(time_to_serving "p$i" "$work/dev" git push -q origin main)")
  echo "d$i" > "$work/dev/VERSION"; git -C "$work/dev" commit -qam "d$i"
  git -C "$work/dev" push -q origin HEAD:refs/heads/staging 2>/dev/null  # objects there, not deployed
  c=$(git -C "$work/dev" rev-parse HEAD)
  deploy_ms+=("$(time_to_serving "d$i" "$work" "$root/$dir/slot-machine" deploy -q "$c")")
done
if [ -n "$wrk_pid" ]; then kill -INT "$wrk_pid"; wait "$wrk_pid" 2>/dev/null || true; wrk_pid=""; fi

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "bench/push: $(nproc) cores, $(uname -r), build $dir, $(date -u +%FT%TZ); proxy mode, testapp, no setup"
echo "git push (one-line change) to the new version serving: median $(median "${push_ms[@]}") ms (all: ${push_ms[*]})"
echo "slot-machine deploy (same kind of change) to serving:  median $(median "${deploy_ms[@]}") ms (all: ${deploy_ms[*]})"
if [ -f "$work/wrk.out" ]; then
  grep -E "requests in|Non-2xx|Socket errors" "$work/wrk.out" | sed 's/^ */wrk meanwhile: /'
  grep -qE "Non-2xx|Socket errors" "$work/wrk.out" || echo "wrk meanwhile: 0 failed requests (no non-2xx, no socket errors)"
else
  echo "no load (LOAD=0)"
fi
