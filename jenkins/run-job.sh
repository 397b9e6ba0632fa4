#!/usr/bin/env bash
# Runs one settle-batch job for a Jenkins stage: streams its JSON log, and leaves the log and a
# summary (the job's own lines and the latest executions) under reports/ for archiving.
#   jenkins/run-job.sh REPORT_NAME SETTLE_BATCH_ARGS...
# Environment: SETTLE_BATCH (default target/release/settle-batch); REPORTS_DIR (default reports).
# Exits with settle-batch's status: 0 done, 1 failed (rerun resumes), 2 bad arguments, 3 already completed.
set -uo pipefail
name=$1
shift
bin=${SETTLE_BATCH:-target/release/settle-batch}
reports=${REPORTS_DIR:-reports}
mkdir -p "$reports"
log=$reports/$name.log
summary=$reports/$name.txt

echo "$(basename "$0"): settle-batch $*"
# JSON log lines for the log shipper; indicatif is off without a terminal, so progress comes as lines.
LOG_JSON=true "$bin" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

{
  echo "settle-batch $*  (exit $status)"
  grep -v '^{' "$log"
  echo
  "$bin" runs --limit 5
} >"$summary" 2>&1
echo "$(basename "$0"): exit $status; summary in $summary"
exit "$status"
