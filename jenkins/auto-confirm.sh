#!/usr/bin/env bash
# The Jenkins pipeline's auto-confirm stage, also runnable by hand: confirms the purchases delivered
# AUTO_CONFIRM_DAYS (default 7) before the given instant that their buyers did not confirm.
#   jenkins/auto-confirm.sh [AS_OF]      (RFC 3339, e.g. 2026-12-06T16:00:00Z; default: now)
# Environment: DATABASE_URL (read by settle-batch); SETTLE_BATCH; FORCE (default false: an instant that
# already completed exits 3); REPORTS_DIR (reports). Exits with settle-batch's status, as reconcile.sh.
set -uo pipefail
as_of=${1:-$(date -u +%FT%TZ)}
if [[ ! $as_of =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$ ]]; then
  echo "auto-confirm.sh: the instant must be RFC 3339 (2026-12-06T16:00:00Z), not '$as_of'" >&2
  exit 2
fi
args=(auto-confirm --as-of "$as_of")
[[ ${FORCE:-false} == true ]] && args+=(--force)
exec "$(dirname "${BASH_SOURCE[0]}")/run-job.sh" "auto-confirm-${as_of//:/}" "${args[@]}"
