# A settle-api of a script's own, sourced after env.sh: its own database, Redis key prefix, topic
# prefix and port, so it runs beside the tests and the main job's binaries and leaves nothing behind.
#   start_isolated_api NAME   build, create and migrate the database, start, wait until ready; sets
#                             ISOLATED_API (base URL); an EXIT trap stops it and drops what it made.

isolated_cleanup() {
  [[ -n ${ISOLATED_API_PID:-} ]] && kill "$ISOLATED_API_PID" 2>/dev/null && wait "$ISOLATED_API_PID" 2>/dev/null
  psql -q "$ISOLATED_BASE_URL" -c "DROP DATABASE IF EXISTS $ISOLATED_RUN_ID WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$ISOLATED_RUN_ID:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
}

start_isolated_api() {
  local bin=$CARGO_TARGET_DIR/debug log=$SETTLE_LOGS/$1-api.log
  "$SETTLE_ROOT/scripts/stack" up >/dev/null
  cargo build --quiet --bins --manifest-path "$SETTLE_ROOT/Cargo.toml"
  ISOLATED_RUN_ID=$1_$$_$RANDOM
  ISOLATED_BASE_URL=$DATABASE_URL
  export DATABASE_URL=${ISOLATED_BASE_URL%/*}/$ISOLATED_RUN_ID
  export REDIS_KEY_PREFIX=$ISOLATED_RUN_ID:
  export KAFKA_TOPIC_PREFIX=$ISOLATED_RUN_ID.
  export API_LISTEN_ADDR=127.0.0.1:$((20000 + RANDOM % 20000))
  trap isolated_cleanup EXIT
  psql -q "$ISOLATED_BASE_URL" -c "CREATE DATABASE $ISOLATED_RUN_ID" >/dev/null
  "$bin/settle-batch" migrate >/dev/null
  "$bin/settle-api" >"$log" 2>&1 &
  ISOLATED_API_PID=$!
  ISOLATED_API=http://$API_LISTEN_ADDR
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$ISOLATED_API/health/ready" 2>/dev/null && return 0
    kill -0 "$ISOLATED_API_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  fail "settle-api did not start: see $log"
}
