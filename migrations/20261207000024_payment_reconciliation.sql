-- Payment reconciliation (settle-batch reconcile-payments): each difference between the provider's
-- settlement lines of a business day and the payments we recorded for it, with both sides.

CREATE TABLE payment_reconciliation_mismatches (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date   DATE        NOT NULL,
    execution_id    BIGINT      NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('MISSING_HERE', 'MISSING_THERE', 'AMOUNT_DIFFERS',
                                                         'STATUS_DIFFERS', 'FEE_DIFFERS', 'PAYOUT_DATE_DIFFERS')),
    payment_key     TEXT        NOT NULL,
    -- SALE: the money taken; CANCEL: the money given back (negative amounts, as the provider's lines).
    event           TEXT        NOT NULL CHECK (event IN ('SALE', 'CANCEL')),
    -- Ours (NULL when we have no record of it).
    order_id        BIGINT,
    our_amount      BIGINT,
    expected_fee    BIGINT,
    expected_payout DATE,
    -- The provider's (NULL when its lines do not show it).
    their_amount    BIGINT,
    their_fee       BIGINT,
    their_payout    DATE,
    found_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_reconciliation_mismatches_day_idx ON payment_reconciliation_mismatches (business_date, execution_id);

-- The day's payments and refunds, by the instant they happened.
CREATE INDEX payment_attempts_approved_at_idx ON payment_attempts (approved_at) WHERE status = 'APPROVED';
CREATE INDEX payment_attempts_refunded_at_idx ON payment_attempts (refunded_at) WHERE refund_status = 'DONE';
