#!/usr/bin/env bash
# The Jenkins pipeline's payment-reconciliation stage: the provider's settlement lines of the given
# business date against our payments (exit 1 when any mismatch remains).
#   jenkins/reconcile-payments.sh [YYYY-MM-DD]   (see dated-job.sh; PAYMENT_GATEWAY_URL, PAYMENT_SECRET_KEY)
exec "$(dirname "${BASH_SOURCE[0]}")/dated-job.sh" reconcile-payments "$@"
