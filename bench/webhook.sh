#!/usr/bin/env bash
# Webhook-to-live and notification latency: a signed generic webhook for a commit just
# pushed to the forge (a local bare repository the daemon fetches from) until the new
# version serves, against `slot-machine deploy` of such a commit (which fetches it the
# same way); and, for every deploy, the time from the deploy having finished (the API
# answered, or the version served for webhooks) to its deploy_succeeded notification
# arriving at a local receiver. Under wrk load on the public port, counting failed
# requests. See bench/README.md.
# Usage: bench/webhook.sh [N]   (default 10 of each; LOAD=0: without wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh bench
source scripts/lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
root=$PWD
n=${1:-10}

work=$(mktemp -d)
daemon_pid=""; wrk_pid=""; rx_pid=""
cleanup() {
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null || true
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

make_app_repo "$work/app" v0
git clone -q --bare "$work/app" "$work/forge.git"
git -C "$work/app" remote add origin "$work/forge.git"
git clone -q "$work/forge.git" "$work/dev"
git -C "$work/dev" config user.email bench@example.com
git -C "$work/dev" config user.name bench
free_port api; free_port port; free_port internal; free_port rx
openssl rand -hex 32 > "$work/webhook.secret"; chmod 600 "$work/webhook.secret"

# The notification receiver: appends "<CLOCK_MONOTONIC ns> <commit>" per deploy_succeeded.
/usr/bin/python3 - "$rx" "$work/notified" <<'PY' &
import http.server, json, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        t = time.monotonic_ns()
        with open(out, "a") as f:
            f.write("%d %s\n" % (t, json.loads(body)["commit"]))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
rx_pid=$!
wait_port "$rx"

write_testapp_config "$work/base.json" "$root/$dir/testapp"
/usr/bin/python3 - "$work/base.json" "$work/slot-machine.json" "$work/webhook.secret" "$rx" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["webhooks"] = {"secret_file": sys.argv[3], "branch": "main"}
c["notify"] = [{"url": "http://127.0.0.1:%s/n" % sys.argv[4], "events": ["deploy_succeeded"]}]
json.dump(c, open(sys.argv[2], "w"))
PY
"$dir/slot-machine" start --config "$work/slot-machine.json" --repo "$work/app" --data "$work/data" \
  2>"$work/daemon.log" &
daemon_pid=$!
wait_port "$api"
curl -sf -X POST -d "{\"commit\":\"$(git -C "$work/app" rev-parse HEAD)\"}" "http://127.0.0.1:$api/deploy" >/dev/null

# Triggers one deploy of version $2 (commit $3) by $1 ("webhook" or "deploy") and prints
# "<ms to serving> <ms from finished to notified>".
measure() {
  /usr/bin/python3 - "$port" "$work" "$root/$dir/slot-machine" "$@" <<'PY'
import hashlib, hmac, http.client, json, os, subprocess, sys, time
port, work, binary, how, want, commit = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
c.request("GET", "/"); c.getresponse().read()
t0 = time.monotonic_ns()
if how == "webhook":
    body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
    sig = hmac.new(open(work + "/webhook.secret").read().strip().encode(), body, hashlib.sha256).hexdigest()
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    h.request("POST", "/.slot-machine/hooks/generic", body, {"X-Slot-Machine-Signature": "sha256=" + sig,
                                                             "Content-Type": "application/json"})
    r = h.getresponse(); r.read()
    if r.status != 202: sys.exit("webhook answered %d" % r.status)
else:
    p = subprocess.Popen([binary, "deploy", "-q", commit], cwd=work, stdout=subprocess.DEVNULL)
while True:
    try:
        c.request("GET", "/"); text = c.getresponse().read().decode()
    except Exception:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); continue
    if "hello from " + want + " " in text: break
t1 = time.monotonic_ns()
done = t1
if how != "webhook":
    if p.wait() != 0: sys.exit("deploy failed")
    done = time.monotonic_ns()
notified = None
while notified is None:
    if os.path.exists(work + "/notified"):
        for line in open(work + "/notified"):
            t, c2 = line.split()
            if c2 == commit: notified = int(t)
    if time.monotonic_ns() - t0 > 120e9: sys.exit("no notification for " + commit)
    time.sleep(0.001)
print("%.1f %.1f" % ((t1 - t0) / 1e6, (notified - done) / 1e6))
PY
}

if [ "${LOAD:-1}" = 1 ]; then
  wrk -t1 -c8 -d600s "http://127.0.0.1:$port/" > "$work/wrk.out" 2>&1 &
  wrk_pid=$!
fi
hook_ms=(); deploy_ms=(); note_ms=()
for i in $(seq "$n"); do
  for how in webhook deploy; do
    v="${how:0:1}$i"
    echo "$v" > "$work/dev/VERSION"; git -C "$work/dev" commit -qam "$v"
    git -C "$work/dev" push -q origin HEAD:refs/heads/main
    read -r live note < <(measure "$how" "$v" "$(git -C "$work/dev" rev-parse HEAD)")
    if [ "$how" = webhook ]; then hook_ms+=("$live"); else deploy_ms+=("$live"); fi
    note_ms+=("$note")
  done
done
if [ -n "$wrk_pid" ]; then kill -INT "$wrk_pid"; wait "$wrk_pid" 2>/dev/null || true; wrk_pid=""; fi

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
max() { printf '%s\n' "$@" | sort -n | tail -n 1; }
echo "bench/webhook: $(nproc) cores, $(uname -r), build $dir, $(date -u +%FT%TZ); proxy mode, testapp, no setup"
echo "signed webhook (commit on the forge, fetched) to serving: median $(median "${hook_ms[@]}") ms (all: ${hook_ms[*]})"
echo "slot-machine deploy (same, fetched) to serving:           median $(median "${deploy_ms[@]}") ms (all: ${deploy_ms[*]})"
echo "deploy_succeeded notification after the deploy finished:  median $(median "${note_ms[@]}") ms, max $(max "${note_ms[@]}") ms"
if [ -f "$work/wrk.out" ]; then
  grep -E "requests in|Non-2xx|Socket errors" "$work/wrk.out" | sed 's/^ */wrk meanwhile: /'
  grep -qE "Non-2xx|Socket errors" "$work/wrk.out" || echo "wrk meanwhile: 0 failed requests (no non-2xx, no socket errors)"
else
  echo "no load (LOAD=0)"
fi
