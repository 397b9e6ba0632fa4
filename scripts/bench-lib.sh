# Pieces the benchmark scripts share: sourced after env.sh, never run. `bench_setup` makes the run's
# folder ($out), binaries ($BIN) and database; the rest expects those and $API_LISTEN_ADDR.
#
# BENCH_SMOKE=1 is the smoke run the test command makes of every benchmark: the binaries of the tests'
# (dev) build, every size scaled down to seconds (`sized SMOKE FULL`), and the table written under
# $SETTLE_STATE/bench/smoke instead of bench/results. It proves the script still runs and writes its
# table; its figures mean nothing.
SMOKE=${BENCH_SMOKE:-0}
sized() { if [[ $SMOKE == 1 ]]; then echo "$1"; else echo "$2"; fi; }

# Stack up, binaries built, the run's folder, and (with a name) a database of the benchmark's own with a
# Redis prefix and topic prefix of its own, so the benchmark never touches other data.
bench_setup() { # [database name]
  "$SETTLE_ROOT/scripts/stack" up >/dev/null
  if [[ $SMOKE == 1 ]]; then
    say "smoke run: building the dev binaries"
    cargo build --quiet --bins --manifest-path "$SETTLE_ROOT/Cargo.toml"
    BIN=$CARGO_TARGET_DIR/debug
    RESULTS=$SETTLE_STATE/bench/smoke
  else
    say "building release binaries"
    cargo build --release --quiet --bins --manifest-path "$SETTLE_ROOT/Cargo.toml"
    BIN=$CARGO_TARGET_DIR/release
    RESULTS=$SETTLE_ROOT/bench/results
  fi
  run_id=$(date +%Y%m%d-%H%M%S)
  out=$SETTLE_STATE/bench/$run_id-$$
  mkdir -p "$out" "$RESULTS"
  admin_url=$DATABASE_URL
  export REDIS_KEY_PREFIX="bench-$run_id-$$:" KAFKA_TOPIC_PREFIX="bench-$run_id-$$." RUST_LOG=warn
  [[ -z ${1:-} ]] || bench_database "$1"
}

# A fresh database of that name (dropped first; a copy of the template database if one is named),
# migrated, in $DATABASE_URL.
bench_database() { # name [template]
  export DATABASE_URL=${admin_url%/*}/$1
  # An autovacuum worker on an earlier run's tables can refuse FORCE for a moment: retry.
  for attempt in $(seq 30); do
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" 2>/dev/null && break
    ((attempt < 30)) || fail "could not drop $1"
    sleep 2
  done
  # FILE_COPY: a copy of a large template by files, not block by block through the WAL.
  psql -q "$admin_url" -c "CREATE DATABASE $1${2:+ TEMPLATE $2 STRATEGY FILE_COPY}"
  "$BIN/settle-batch" migrate >/dev/null
}

# Prints the table written to $1 and says where it is.
publish() {
  echo
  cat "$1"
  say "written to $1 (raw output in $out)"
}

pids=()
# On every way out: the processes started, then the run's Redis keys (a full run leaves hundreds of
# thousands of reservations and markers; its database stays for a look until the next run replaces it).
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ ${REDIS_KEY_PREFIX:-} == bench-* ]] || return 0
  redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_KEY_PREFIX*" \
    | xargs -r -n 10000 redis-cli -u "$REDIS_URL" UNLINK >/dev/null 2>&1 || true
}
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
# wrk sends the issue requests of $out/SET.requests to /api/VERSION/coupons for SECONDS, one per user;
# its output goes to $out/wrk-SET.txt and the API's /metrics before and after to $out/metrics-SET-*.txt.
rush() { # set name, API version, seconds
  local set=$1 version=$2 duration=$3
  say "wrk: $version for ${duration}s, $CONNECTIONS connections"
  curl -fsS "http://$API_LISTEN_ADDR/metrics" >"$out/metrics-$set-before.txt"
  RUSH_REQUESTS="$out/$set.requests" RUSH_PATH="/api/$version/coupons" RUSH_THREADS=$THREADS \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${duration}s" --timeout 10s -s "$SETTLE_ROOT/bench/coupon_rush.lua" \
    "http://$API_LISTEN_ADDR" >"$out/wrk-$set.txt"
  # Requests still in flight when wrk stops are answered too: the API's counters include them.
  wait_idle "/api/$version/coupons"
  curl -fsS "http://$API_LISTEN_ADDR/metrics" >"$out/metrics-$set-after.txt"
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
