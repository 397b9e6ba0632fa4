#!/usr/bin/env bash
# The Jenkins pipeline's reconcile stage, also runnable by hand: closes one business date with
# settle-batch, streams its log, and leaves the log and a summary under reports/ for archiving.
#   jenkins/reconcile.sh [YYYY-MM-DD]      (default: yesterday in $BUSINESS_TIMEZONE)
# Environment: DATABASE_URL, REDIS_URL (read by settle-batch); SETTLE_BATCH (default
# target/release/settle-batch); BUSINESS_TIMEZONE (default Asia/Seoul); FIX (default true);
# FORCE (default false: a date that already completed exits 3); THREADS (default 2); REPORTS_DIR (reports).
# Exits with settle-batch's status: 0 done, 1 failed (rerun resumes), 2 bad arguments, 3 already completed.
set -uo pipefail
zone=${BUSINESS_TIMEZONE:-Asia/Seoul}
date=${1:-$(TZ=$zone date -d yesterday +%F)}
if [[ ! $date =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
  echo "reconcile.sh: the business date must be YYYY-MM-DD, not '$date'" >&2
  exit 2
fi
args=(reconcile-points --date "$date" --timezone "$zone" --threads "${THREADS:-2}")
[[ ${FIX:-true} == true ]] && args+=(--fix)
[[ ${FORCE:-false} == true ]] && args+=(--force)
exec "$(dirname "${BASH_SOURCE[0]}")/run-job.sh" "reconcile-$date" "${args[@]}"
