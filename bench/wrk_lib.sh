# wrk helpers shared by bench/proxy.sh and bench/https.sh (sourced, not run). They use
# $work (a scratch directory) and $daemon (the pid whose RSS is sampled).

# Makes $work (readable by nginx's workers, which may run as another user) and $pids;
# when the script exits, every process in $pids is stopped and $work removed.
bench_scratch() {
  work=$(mktemp -d)
  chmod 755 "$work"
  pids=()
  trap _bench_cleanup EXIT
}
_bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

# Samples the daemon's RSS every 100 ms into $work/rss until killed, without forking a
# process per sample (that would take CPU from what is measured).
sample_rss() {
  local sfd k v _
  exec {sfd}<> <(:)
  while :; do
    while read -r k v _; do [ "$k" = VmRSS: ] && echo "$v" >> "$work/rss"; done < "/proc/$daemon/status"
    read -rt 0.1 -u "$sfd" || true
  done
}
cpu_ticks() { local f; read -ra f < "/proc/$1/stat"; echo $(( f[13] + f[14] )); }
peak_rss_mb() { sort -n "$work/rss" | tail -n 1 | awk '{printf "%.1f", $1 / 1024}'; }

# Prints "req/s p99_ms errors" from a wrk --latency report.
parse_wrk() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
               p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
    /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $5 }
    END { printf "%.0f %.2f %d\n", rps, p99, err }' "$1"
}
# The median round of a target by req/s, as "req/s p99 errors".
median() {
  for f in "$work/$1".*.wrk; do parse_wrk "$f"; done | sort -n | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}


# The head of an nginx.conf in $work/nginx: 1 worker (as many as the proxy has event
# loops), no access log, its temporary files in $work; the caller adds its upstream and
# server blocks and closes the http block.
nginx_conf_head() {
  cat <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
CONF
}

# Runs nginx with $work/nginx/nginx.conf and waits for it on port $1; its master joins
# $pids and $ngx_worker is its worker's pid.
run_nginx() {
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
  pids+=($!)
  wait_port "$1"
  ngx_worker=$(pgrep -P "${pids[-1]}" | head -n 1)
}

# An upstream named $1 (keep-alive to 127.0.0.1:$2) and a server block listening on
# "$3" that proxies to it as the benchmarks compare: HTTP/1.1 upstream, Host and
# X-Forwarded-* set. $4 (optional) is added to the server block (server_name,
# ssl_certificate ...).
nginx_proxy_block() {
  cat <<CONF
  upstream $1 { server 127.0.0.1:$2; keepalive 64; }
  server {
    listen $3;
    ${4:-}
    location / {
      proxy_pass http://$1;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
CONF
}

# Starts nginx as the reference: 1 worker, keep-alive upstream to 127.0.0.1:$2, listening
# on 127.0.0.1:$1; $3 (optional) follows the port on the listen line ("ssl") and $4 is
# added to the server block (ssl_certificate ...).
start_nginx() {
  mkdir -p "$work/nginx"
  {
    nginx_conf_head
    nginx_proxy_block app "$2" "127.0.0.1:$1 ${3:-}" "${4:-}"
    echo "}"
  } > "$work/nginx/nginx.conf"
  run_nginx "$1"
}
