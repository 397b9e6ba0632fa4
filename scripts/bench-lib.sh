# Pieces the benchmark scripts share: sourced after env.sh, never run. Expects $out (the run's folder)
# and $API_LISTEN_ADDR.

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
last_pid=
start() { # name, then the command: started in the background, logs in $out/NAME.log, pid in $last_pid
  local name=$1; shift
  "$@" >"$out/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}
# Waits until the API's answer count for a route stops moving (wrk's last in-flight requests are done).
wait_idle() {
  local previous=-1 current
  for _ in $(seq 50); do
    current=$(curl -fsS "http://$API_LISTEN_ADDR/metrics" | awk -v route="route=\"$1\"" \
      '/^http_server_request_duration_seconds_count/ && index($0, route) {n += $NF} END {print n + 0}')
    [[ $current == "$previous" ]] && return 0
    previous=$current
    sleep 0.2
  done
  fail "the API kept answering $1 for 10 s after wrk stopped"
}
wait_ready() {
  for _ in $(seq 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  fail "$1 never became ready"
}

field() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" <<<" $2"; }
calc() { awk "BEGIN {printf \"$1\", $2}"; }
# Responses of one route by status during a drive, from the API's request counters (before, after).
status_counts() { # route, metrics before, metrics after -> "status count" lines
  awk -v route="route=\"$1\"" '/^http_server_request_duration_seconds_count/ && index($0, route) {
      match($0, /status="[0-9]+"/); status = substr($0, RSTART + 8, 3)
      if (FILENAME == ARGV[1]) before[status] = $NF; else after[status] = $NF
    } END { for (s in after) print s, after[s] - before[s] }' "$2" "$3"
}
status_count() { awk -v s="$1" '$1 == s {n += $2} END {print n + 0}' <<<"$2"; }
