# wrk helpers shared by bench/proxy.sh and bench/https.sh (sourced, not run). They use
# $work (a scratch directory) and $daemon (the pid whose RSS is sampled).

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

