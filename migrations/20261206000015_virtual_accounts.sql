-- Virtual accounts (가상계좌): the provider's confirm hands out an account and the order waits for the
-- buyer's deposit, which the provider announces with a callback carrying the payment's secret. The
-- attempt stays open (WAITING_FOR_DEPOSIT) until the deposit arrives or the account's due time passes;
-- like any open attempt it holds back another payment, a cancel and the order's expiry.
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_status_check;
ALTER TABLE payment_attempts
    ADD CONSTRAINT payment_attempts_status_check
        CHECK (status IN ('IN_FLIGHT', 'APPROVED', 'DECLINED', 'FAILED', 'UNKNOWN', 'WAITING_FOR_DEPOSIT')),
    -- What the deposit callback must carry (compared in constant time), and the account's due time.
    ADD COLUMN deposit_secret TEXT CHECK (length(deposit_secret) BETWEEN 1 AND 200),
    ADD COLUMN deposit_due_at TIMESTAMPTZ,
    ADD COLUMN account_number TEXT CHECK (length(account_number) BETWEEN 1 AND 50),
    ADD COLUMN account_bank   TEXT CHECK (length(account_bank) BETWEEN 1 AND 50),
    ADD CONSTRAINT payment_attempts_waiting_has_account
        CHECK (status <> 'WAITING_FOR_DEPOSIT' OR (deposit_secret IS NOT NULL AND deposit_due_at IS NOT NULL));
DROP INDEX payment_attempts_one_open;
CREATE UNIQUE INDEX payment_attempts_one_open ON payment_attempts (order_id)
    WHERE status IN ('IN_FLIGHT', 'UNKNOWN', 'WAITING_FOR_DEPOSIT');
-- The resolution pass: accounts past their due time.
CREATE INDEX payment_attempts_deposit_due_idx ON payment_attempts (deposit_due_at) WHERE status = 'WAITING_FOR_DEPOSIT';
