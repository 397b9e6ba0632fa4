#!/usr/bin/env bash
# A Jenkins stage for a job keyed by a business date, also runnable by hand:
#   jenkins/dated-job.sh JOB [YYYY-MM-DD]      (default: yesterday in $BUSINESS_TIMEZONE)
# e.g. expire-points, settle-sales. Environment: DATABASE_URL, REDIS_URL (read by settle-batch);
# SETTLE_BATCH; BUSINESS_TIMEZONE (default Asia/Seoul); FORCE (default false: a date that already
# completed exits 3); REPORTS_DIR (reports). Exits with settle-batch's status, as reconcile.sh.
set -uo pipefail
job=${1:?"usage: dated-job.sh JOB [YYYY-MM-DD]"}
zone=${BUSINESS_TIMEZONE:-Asia/Seoul}
date=${2:-$(TZ=$zone date -d yesterday +%F)}
if [[ ! $date =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]]; then
  echo "$job: the business date must be YYYY-MM-DD, not '$date'" >&2
  exit 2
fi
args=("$job" --date "$date" --timezone "$zone")
[[ ${FORCE:-false} == true ]] && args+=(--force)
exec "$(dirname "${BASH_SOURCE[0]}")/run-job.sh" "$job-$date" "${args[@]}"
