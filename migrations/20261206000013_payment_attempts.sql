-- Payment attempts: an order's payment is recorded before the provider is called and settled after, so
-- no transaction (and no row lock) is held across the call. An attempt whose answer never came stays
-- IN_FLIGHT or becomes UNKNOWN until the provider's look-up settles it; it is never guessed.

CREATE TABLE payment_attempts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        BIGINT      NOT NULL REFERENCES orders (id),
    -- The provider's key of the buyer's payment (from its payment window).
    payment_key     TEXT        NOT NULL CHECK (length(payment_key) BETWEEN 1 AND 200),
    amount          BIGINT      NOT NULL CHECK (amount > 0),
    status          TEXT        NOT NULL CHECK (status IN ('IN_FLIGHT', 'APPROVED', 'DECLINED', 'FAILED', 'UNKNOWN')),
    -- Sent as the provider's Idempotency-Key: a repeated confirm of this attempt is answered as the first.
    idempotency_key UUID        NOT NULL UNIQUE,
    -- The provider's refusal, for DECLINED and FAILED (and why an outcome is UNKNOWN).
    failure_code    TEXT,
    failure_message TEXT,
    method          TEXT,
    approved_at     TIMESTAMPTZ,
    trace_id        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payment_attempts_approved_when CHECK ((status = 'APPROVED') = (approved_at IS NOT NULL))
);
-- A payment key is one attempt: a retry with it is answered with the attempt's recorded outcome.
CREATE UNIQUE INDEX payment_attempts_key ON payment_attempts (payment_key);
-- One attempt in flight per order: twenty racing requests make one provider call.
CREATE UNIQUE INDEX payment_attempts_one_open ON payment_attempts (order_id) WHERE status IN ('IN_FLIGHT', 'UNKNOWN');
-- An order is paid once.
CREATE UNIQUE INDEX payment_attempts_one_approved ON payment_attempts (order_id) WHERE status = 'APPROVED';
-- The resolution pass: open attempts, oldest first.
CREATE INDEX payment_attempts_open_idx ON payment_attempts (updated_at) WHERE status IN ('IN_FLIGHT', 'UNKNOWN');

-- Giving an approved payment back (a cancel of a PAID order, a refund): recorded before the provider is
-- asked, like the payment itself. While a refund is open the order makes no other move.
ALTER TABLE payment_attempts
    ADD COLUMN refund_status          TEXT CHECK (refund_status IN ('IN_FLIGHT', 'UNKNOWN', 'DONE')),
    ADD COLUMN refund_idempotency_key UUID UNIQUE,
    ADD COLUMN refund_reason          TEXT CHECK (length(refund_reason) <= 200),
    ADD COLUMN refunded_at            TIMESTAMPTZ,
    ADD CONSTRAINT payment_attempts_refund_of_approved CHECK (refund_status IS NULL OR status = 'APPROVED'),
    ADD CONSTRAINT payment_attempts_refunded_when CHECK ((refund_status = 'DONE') = (refunded_at IS NOT NULL));
CREATE INDEX payment_attempts_open_refund_idx ON payment_attempts (updated_at) WHERE refund_status IN ('IN_FLIGHT', 'UNKNOWN');
