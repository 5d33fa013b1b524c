#!/usr/bin/env bash
# Runs the README's quick start as written: the ```sh block under "## Quick start", line
# by line, in a throwaway app (a git repository with a Procfile and a small Python web
# app), with the slot-machine just built first on PATH. Where the block says "after a
# change", the script makes one (a new line in the page). A line that fails fails the
# run, with what it printed. The quick start uses the ports `init` writes (3000 and
# 9100): they must be free. Run by scripts/test.sh; also after a README change.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
dir=$(bash scripts/build.sh release | tail -n 1)

block=$(awk '/^## Quick start/ {on=1; next} on && /^```sh/ {inside=1; next} inside && /^```/ {exit} inside' README.md)
[ -n "$block" ] || { echo "quickstart: README.md has no \`\`\`sh block under \"## Quick start\"" >&2; exit 1; }
for p in 3000 9100; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
    echo "quickstart: port $p is in use here; the quick start uses init's defaults (port 3000, api_port 9100)" >&2
    exit 1
  fi
done

work=$(mktemp -d)
cleanup() {
  # What the block left running when it failed before `stop` (the daemon, perhaps still
  # starting, and its app): every process whose working directory is in $work.
  local pids=() p
  cd /
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/cwd" 2>/dev/null)" == "$work"* ]] && pids+=("${p#/proc/}")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 100); do
      local alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The app: what a user brings. A Procfile's web line is its start command.
mkdir "$work/my-app"
cd "$work/my-app"
git init -q -b main
git config user.email quickstart@example.com
git config user.name quickstart
cat > app.py <<'PY'
import http.server, os

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/healthz" else open("page.txt", "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
PY
echo "web: python3 app.py" > Procfile
echo "hello, version 1" > page.txt
git add -A && git commit -qm "version 1"

export PATH="$root/$dir:$PATH"
script="$work/quickstart.sh"
{
  echo 'set -euo pipefail'
  echo 'deploys=0'
  echo 'serves() { curl -fsS http://127.0.0.1:3000/ | grep -q "$1" || { echo "the site does not say \"$1\"" >&2; exit 1; }; echo "(the site says: $1)"; }'
  while IFS= read -r line; do
    [ "$line" = "cd my-app" ] || [[ "$line" == "cd my-app "* ]] && continue  # we are in it
    case "$line" in
      git\ commit*"after a change"*) echo 'echo "hello, version 2" > page.txt  # the change' ;;
    esac
    printf 'echo "\$ %s"\n%s\n' "${line//\"/\\\"}" "$line"
    # What the site serves after each step the block says changes it.
    case "$line" in
      "slot-machine deploy "*) echo 'serves "version $((++deploys))"' ;;
      "slot-machine rollback "*) echo 'serves "version 1"' ;;
    esac
  done <<<"$block"
} >"$script"
log="$work/quickstart.log"
if ! bash "$script" >"$log" 2>&1; then
  cat "$log" >&2
  echo "quickstart: the README's quick start failed at the last command above" >&2
  exit 1
fi
grep -q "^\$ slot-machine stop" "$log" || { cat "$log" >&2; echo "quickstart: it did not reach 'stop'" >&2; exit 1; }
[ -z "${QUICKSTART_VERBOSE:-}" ] || cat "$log"
echo "quickstart: the README's quick start ran as written ($(grep -c '^\$ ' "$log") commands)"
