#!/usr/bin/env bash
# The Jenkins pipeline's point-expiry stage, also runnable by hand: the lots whose validity ended by the
# end of the given business date leave the balances.
#   jenkins/expire-points.sh [YYYY-MM-DD]      (default: yesterday in $BUSINESS_TIMEZONE)
# Environment: DATABASE_URL, REDIS_URL (read by settle-batch); SETTLE_BATCH; BUSINESS_TIMEZONE (default
# Asia/Seoul); FORCE (default false: a date that already completed exits 3); REPORTS_DIR (reports).
# Exits with settle-batch's status, as reconcile.sh.
set -uo pipefail
zone=${BUSINESS_TIMEZONE:-Asia/Seoul}
date=${1:-$(TZ=$zone date -d yesterday +%F)}
if [[ ! $date =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
  echo "expire-points.sh: the business date must be YYYY-MM-DD, not '$date'" >&2
  exit 2
fi
args=(expire-points --date "$date" --timezone "$zone")
[[ ${FORCE:-false} == true ]] && args+=(--force)
exec "$(dirname "${BASH_SOURCE[0]}")/run-job.sh" "expire-points-$date" "${args[@]}"
