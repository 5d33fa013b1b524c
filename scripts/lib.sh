# Shell helpers shared by scripts/ and bench/ (sourced, not run).

# Sets the variable named $1 to a port in 20000-32000 that nothing listens on and that
# this script has not handed out before (below the kernel's ephemeral range, like the
# spec suite's). A variable, not output: $(...) would forget the ports handed out.
_lib_used_ports=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    case "$_lib_used_ports" in *" $p "*) continue ;; esac
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
    _lib_used_ports="$_lib_used_ports$p "
    printf -v "$1" '%s' "$p"
    return
  done
}

# Waits up to 10 s for something to accept connections on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on port $1 after 10 s" >&2
  exit 1
}

# Makes a git repository at $1 with one commit per further argument, each writing that
# value to VERSION (which testapp reports).
make_app_repo() {
  local dir=$1 v
  shift
  git init -q -b main "$dir"
  for v in "$@"; do
    echo "$v" > "$dir/VERSION"
    git -C "$dir" add VERSION
    git -C "$dir" -c user.email=bench@example.com -c user.name=bench commit -q -m "$v"
  done
}

# Writes slot-machine.json to $1: start_command runs the testapp at $2, on the ports in
# $port, $internal and $api (see free_port).
write_testapp_config() {
  cat > "$1" <<JSON
{"start_command": "exec $2", "port": $port, "internal_port": $internal,
 "api_port": $api, "health_timeout_ms": 10000, "drain_timeout_ms": 5000}
JSON
}
