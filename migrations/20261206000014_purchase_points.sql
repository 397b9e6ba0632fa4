-- Points earned for confirmed purchases: one row per order, so the consumer that awards them (on the
-- order's OrderConfirmed event, delivered at least once) earns each order's points once, whatever the
-- redelivery. The ledger entry is linked for the audit; an order whose share rounds to 0 has none.
CREATE TABLE purchase_points (
    order_id  BIGINT      PRIMARY KEY REFERENCES orders (id),
    user_id   BIGINT      NOT NULL REFERENCES users (id),
    -- The amount paid the points were computed from, and the rate in basis points (100 = 1%).
    paid      BIGINT      NOT NULL CHECK (paid >= 0),
    rate_bps  INTEGER     NOT NULL CHECK (rate_bps BETWEEN 0 AND 10000),
    amount    BIGINT      NOT NULL CHECK (amount >= 0),
    point_id  BIGINT,
    earned_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Filled in the transaction that records the row, once the ledger entry exists.
    CONSTRAINT purchase_points_no_entry_for_nothing CHECK (amount > 0 OR point_id IS NULL)
);
CREATE INDEX purchase_points_user_idx ON purchase_points (user_id, earned_at DESC);
