# Shared settings for the scripts: sourced, never run. Every value can be overridden from the
# environment; the README lists them.
SETTLE_ROOT=${SETTLE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SETTLE_STATE=${SETTLE_STATE:-$SETTLE_ROOT/.stack}
SETTLE_LOGS=$SETTLE_STATE/logs

PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-settle}
PG_PASSWORD=${PG_PASSWORD:-settle}
PG_DATABASE=${PG_DATABASE:-settle}
REDIS_PORT=${REDIS_PORT:-6379}
# single: one Redis on REDIS_PORT. sentinel: a master there, a replica on REDIS_REPLICA_PORT and three
# sentinels; every binary then finds the master through them and follows its failovers.
REDIS_MODE=${REDIS_MODE:-single}
REDIS_REPLICA_PORT=${REDIS_REPLICA_PORT:-6380}
REDIS_SENTINEL_PORTS=${REDIS_SENTINEL_PORTS:-26379 26380 26381}
KAFKA_PORT=${KAFKA_PORT:-9092}
# The payment sandbox (settle-sandbox): the provider's protocol on loopback, for development and tests.
SANDBOX_PORT=${SANDBOX_PORT:-18400}

TANSU_VERSION=${TANSU_VERSION:-0.6.0}
# libsql gives the sqlite:// engine (persistent), the only storage the stack uses; the other engines
# (dynostore: object stores, postgres) add minutes to the one-time build and nothing the stack needs.
TANSU_FEATURES=${TANSU_FEATURES:-libsql}
# What the build compiles with those features (cargo tree), for its progress lines.
TANSU_CRATES=${TANSU_CRATES:-420}
TANSU_HOME=${TANSU_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/settle/tansu-$TANSU_VERSION}

export DATABASE_URL=${DATABASE_URL:-postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DATABASE}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}
case $REDIS_MODE in
  single) ;;
  sentinel)
    export REDIS_MASTER_NAME=${REDIS_MASTER_NAME:-settle}
    sentinel_list=
    for port in $REDIS_SENTINEL_PORTS; do sentinel_list+=${sentinel_list:+,}127.0.0.1:$port; done
    export REDIS_SENTINELS=${REDIS_SENTINELS:-$sentinel_list}
    unset sentinel_list port
    ;;
  *) printf 'REDIS_MODE must be single or sentinel, not %s\n' "$REDIS_MODE" >&2; exit 2 ;;
esac
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
# The payment provider settle talks to: by default the sandbox, with its development key. For the provider
# itself: PAYMENT_GATEWAY_URL=https://api.tosspayments.com and its secret key in PAYMENT_SECRET_KEY.
export PAYMENT_GATEWAY_URL=${PAYMENT_GATEWAY_URL:-http://127.0.0.1:$SANDBOX_PORT}
export PAYMENT_SECRET_KEY=${PAYMENT_SECRET_KEY:-test_sk_settle_sandbox}
# Development-only secret: set your own JWT_SECRET anywhere that matters.
export JWT_SECRET=${JWT_SECRET:-settle-local-development-secret-change-me}
export API_LISTEN_ADDR=${API_LISTEN_ADDR:-127.0.0.1:8080}
export WORKERS_OPS_ADDR=${WORKERS_OPS_ADDR:-127.0.0.1:9101}
export SCHEDULER_OPS_ADDR=${SCHEDULER_OPS_ADDR:-127.0.0.1:9102}
export SCHEDULE_FILE=${SCHEDULE_FILE:-$SETTLE_ROOT/scheduler/schedule.toml}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$SETTLE_ROOT/target}
# settle-api's allocator (mimalloc) keeps the pages a rush freed instead of handing them back to the
# kernel after a second and faulting them in again on the next burst: V3 answered ~20% more with it.
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:--1}
# Builds check their SQL against the committed query data (.sqlx/), not the live database, so the
# database need not be migrated before a build; scripts/sqlx check proves that data current.
export SQLX_OFFLINE=${SQLX_OFFLINE:-true}

say() { printf '\033[1m[%s]\033[0m %s\n' "${SCRIPT_NAME:-settle}" "$*"; }
fail() { printf '\033[1;31m[%s] error:\033[0m %s\n' "${SCRIPT_NAME:-settle}" "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds for port $1; false if it never opens.
wait_for_port() {
  local deadline=$((SECONDS + $2))
  until port_open "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
