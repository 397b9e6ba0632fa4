#!/usr/bin/env bash
# The Jenkins pipeline's point-expiry stage: the lots whose validity ended by the end of the given
# business date leave the balances.   jenkins/expire-points.sh [YYYY-MM-DD]   (see dated-job.sh)
exec "$(dirname "${BASH_SOURCE[0]}")/dated-job.sh" expire-points "$@"
