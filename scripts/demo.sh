#!/usr/bin/env bash
# A scripted tour of slot-machine on a throwaway git repository: start the daemon,
# deploy v1, request it, deploy v2, roll back, a failed deploy, upgrade the daemon in
# place, kill and restart it (it adopts the app), history, logs, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$(bash scripts/build.sh release | tail -n 1)
bin="$PWD/$dir/slot-machine"
app="$PWD/$dir/testapp"

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "A throwaway app repository in $work/app"
git init -q -b main "$work/app"
cd "$work/app"
git config user.email demo@example.com; git config user.name demo
free_port port; free_port api
# The example app is the project's testapp: it says which VERSION it runs.
cat > slot-machine.json <<JSON
{
  "setup_command": "echo installing dependencies for \$(cat VERSION)",
  "start_command": "exec $app \$(cat flags 2>/dev/null)",
  "port": $port,
  "health_endpoint": "/healthz",
  "api_port": $api,
  "health_timeout_ms": 2000,
  "drain_timeout_ms": 2000
}
JSON
echo v1 > VERSION
printf '.slot-machine\n' > .gitignore
git add -A && git commit -q -m "v1"
v1=$(git rev-parse --short HEAD)
cat slot-machine.json

step "Start the daemon (proxy mode: it owns port $port and routes to the live slot)"
"$bin" start > "$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.05; done
show "$bin" status

step "Deploy v1 ($v1)"
show "$bin" deploy
show curl -s "http://127.0.0.1:$port/"

step "Commit v2 and deploy it: v2 starts in slot b beside v1, traffic switches, v1 is drained"
echo v2 > VERSION && git commit -q -am "v2"
show "$bin" deploy
show curl -s "http://127.0.0.1:$port/"

step "Roll back: slot a starts again, no checkout, no setup"
show "$bin" rollback
show curl -s "http://127.0.0.1:$port/"

step "Status, for people and for scripts"
show "$bin" status
show "$bin" status --json

step "A broken v3 (its health check answers 503) never takes the site down"
echo v3 > VERSION && echo --start-unhealthy > flags && git add -A && git commit -q -m "v3 (broken)"
printf '$ %s\n' "$bin deploy"
"$bin" deploy || echo "(deploy failed as expected, exit code $?; the live version kept serving)"
show curl -s "http://127.0.0.1:$port/"
show "$bin" status

step "Upgrade the daemon in place: the binary now installed takes over its sockets and the app"
pid_before=$("$bin" status --json | grep -o '"live_pid": [0-9]*')
show "$bin" upgrade
# The new daemon is not this script's child; it is the one to stop from now on.
daemon_pid=$("$bin" status --json | grep -o '"daemon_pid": [0-9]*' | grep -o '[0-9]*$')
echo "app before: $pid_before, after: $("$bin" status --json | grep -o '"live_pid": [0-9]*')"
show curl -s "http://127.0.0.1:$port/"

step "The daemon dies (SIGKILL); started again, it adopts the running app: same pid, no restart"
pid_before=$("$bin" status --json | grep -o '"live_pid": [0-9]*')
kill -KILL "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
show curl -s "http://127.0.0.1:$port/" || echo "(the public port belongs to the daemon: down for a moment; under systemd its socket unit holds it and nothing is refused)"
"$bin" start >> "$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.05; done
show "$bin" status
echo "before: $pid_before, after: $("$bin" status --json | grep -o '"live_pid": [0-9]*')"
show curl -s "http://127.0.0.1:$port/"

step "History: every deploy, rollback, failure and adoption"
show "$bin" history

step "Logs: each slot's app + setup output (logs -f follows), and the daemon's own"
show "$bin" logs -n 6
show "$bin" logs --slot b -n 4
show tail -n 8 "$work/daemon.log"

step "Stop: SIGTERM drains every slot; nothing is left running"
kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=""
tail -n 2 "$work/daemon.log"
if pgrep -f "$app" >/dev/null; then echo "left running: $(pgrep -af "$app")"; exit 1; fi
echo "no app process left"
