#!/usr/bin/env bash
# Pause → resume (issue 25, contract §14): N requests (default 1,000, each on its own
# connection) held by a pause while a deploy runs, then resume: how many were answered,
# by which version, how many failed, the time from resume to the last answer, and the
# daemon's RSS while holding them. See bench/README.md.
# Usage: bench/pause.sh [N, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source bench/wrk_lib.sh
bash scripts/setup.sh bench
dir=${BUILD_DIR:-$(bash scripts/build.sh release | tail -n 1)}
testapp=$(realpath "$dir/testapp")
n=${1:-1000}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_scratch
make_app_repo "$work/app" v1 v2
free_port api; free_port port; internal=$port
write_testapp_config "$work/config.json" "$testapp"
# One client address holds them all: no per-address cap for this.
python3 - "$work/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["proxy_max_conns_per_ip"] = 0
json.dump(c, open(sys.argv[1], "w"))
PY
"$dir/slot-machine" start --config "$work/config.json" --repo "$work/app" --data "$work/data" 2>"$work/daemon.log" &
daemon=$!
pids+=($daemon)
wait_port "$api"
"$dir/slot-machine" deploy --api-port "$api" "$(git -C "$work/app" rev-parse HEAD~1)" >/dev/null
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$daemon/status"; }
before_rss=$(rss_kb)

echo "bench/pause: $(nproc) cores, $(uname -r), build $dir, $(date -u +%FT%TZ); $n held requests"
python3 - "$port" "$api" "$n" "$dir/slot-machine" "$(git -C "$work/app" rev-parse HEAD)" "$daemon" <<'PY'
import asyncio, json, subprocess, sys, time, urllib.request
port, api, n, cli, v2, daemon = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]

def post(path, body=b""):
    return urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{api}{path}", data=body, method="POST"), timeout=120)

def status():
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{api}/status", timeout=10))

def rss():
    for line in open(f"/proc/{daemon}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def one(results):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await w.drain()
        data = await r.read()
        results.append((time.monotonic(), data))
        w.close()
    except Exception as e:
        results.append((time.monotonic(), repr(e).encode()))

async def main():
    post("/pause", b'{"timeout_s": 120}')
    results = []
    tasks = [asyncio.create_task(one(results)) for _ in range(n)]
    t0 = time.monotonic()
    while status()["held_requests"] < n and time.monotonic() - t0 < 60:
        await asyncio.sleep(0.05)
    held = status()["held_requests"]
    held_rss = rss()
    await asyncio.get_running_loop().run_in_executor(None, lambda: post("/deploy", json.dumps({"commit": v2}).encode()).read())
    resumed = time.monotonic()
    post("/resume")
    await asyncio.gather(*tasks)
    ok = sum(1 for _, d in results if d.startswith(b"HTTP/1.1 200") and b"hello from v2" in d)
    failed = len(results) - ok
    last = max(t for t, _ in results) - resumed
    print(f"held before resume: {held} of {n} (a deploy ran meanwhile)")
    print(f"answered 200 by the new version: {ok}, failed: {failed}")
    print(f"resume to last answer: {last * 1000:.0f} ms")
    print(f"daemon VmRSS holding them: {held_rss / 1024:.1f} MB")

asyncio.run(main())
PY
echo "daemon VmRSS before: $(echo "$before_rss / 1024" | bc -l | xargs printf '%.1f') MB"
