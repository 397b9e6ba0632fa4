#!/usr/bin/env bash
# The Jenkins pipeline's sales-settlement stage: the given business date's confirmed purchases and
# reversals become settlement lines, and the day closes if its gates hold (exit 1 when one fails).
#   jenkins/settle-sales.sh [YYYY-MM-DD]   (see dated-job.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/dated-job.sh" settle-sales "$@"
