# A settle-api of a script's own, sourced after env.sh: its own database, Redis key prefix, topic
# prefix and port, so it runs beside the tests and the main job's binaries and leaves nothing behind.
#   start_isolated_api NAME   build, create and migrate the database, start, wait until ready; sets
#                             ISOLATED_API (base URL); an EXIT trap stops it and drops what it made.
#   start_isolated_app BIN    after it: settle-workers or settle-scheduler on the same database,
#                             prefixes and a port of its own, waited for until ready, stopped by the trap.

ISOLATED_PIDS=()

isolated_cleanup() {
  local pid
  for pid in "${ISOLATED_PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  psql -q "$ISOLATED_BASE_URL" -c "DROP DATABASE IF EXISTS $ISOLATED_RUN_ID WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$ISOLATED_RUN_ID:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
}

# Starts BIN in the background with its log in $SETTLE_LOGS, then waits for URL to answer.
isolated_start() {
  local bin=$1 url=$2 log=$SETTLE_LOGS/$ISOLATED_NAME-$1.log
  "$CARGO_TARGET_DIR/debug/$bin" >"$log" 2>&1 &
  local pid=$!
  ISOLATED_PIDS+=("$pid")
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  fail "$bin did not start: see $log"
}

isolated_port() { echo 127.0.0.1:$((20000 + RANDOM % 20000)); }

start_isolated_api() {
  "$SETTLE_ROOT/scripts/stack" up >/dev/null
  cargo build --quiet --bins --manifest-path "$SETTLE_ROOT/Cargo.toml"
  ISOLATED_NAME=$1
  ISOLATED_RUN_ID=$1_$$_$RANDOM
  ISOLATED_BASE_URL=$DATABASE_URL
  export DATABASE_URL=${ISOLATED_BASE_URL%/*}/$ISOLATED_RUN_ID
  export REDIS_KEY_PREFIX=$ISOLATED_RUN_ID:
  export KAFKA_TOPIC_PREFIX=$ISOLATED_RUN_ID.
  export API_LISTEN_ADDR; API_LISTEN_ADDR=$(isolated_port)
  trap isolated_cleanup EXIT
  psql -q "$ISOLATED_BASE_URL" -c "CREATE DATABASE $ISOLATED_RUN_ID" >/dev/null
  "$CARGO_TARGET_DIR/debug/settle-batch" migrate >/dev/null
  ISOLATED_API=http://$API_LISTEN_ADDR
  isolated_start settle-api "$ISOLATED_API/health/ready"
}

start_isolated_app() {
  case $1 in
    settle-workers) export WORKERS_OPS_ADDR; WORKERS_OPS_ADDR=$(isolated_port)
      isolated_start "$1" "http://$WORKERS_OPS_ADDR/health/ready" ;;
    settle-scheduler) export SCHEDULER_OPS_ADDR; SCHEDULER_OPS_ADDR=$(isolated_port)
      isolated_start "$1" "http://$SCHEDULER_OPS_ADDR/health/ready" ;;
    *) fail "start_isolated_app: unknown binary $1" ;;
  esac
}
