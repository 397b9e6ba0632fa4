-- Points that expire. Every earn makes a lot (how much, how much is left, until when, where it came
-- from); every use records which lots it took and how much, so an order's points are traceable to the won;
-- a cancelled use puts each part back into its lot, or into a new REGRANT lot where that lot has expired.
-- Invariant: a user's balance = the sum of their lots' remaining amounts. Lots and allocations are written
-- only under the user's point_balances row lock, like the ledger, so they need no locks of their own.
-- Hash-partitioned by user like the ledger: the expiry job reads a partition at a time.
CREATE SEQUENCE point_lots_id_seq AS BIGINT;
CREATE TABLE point_lots (
    id            BIGINT      NOT NULL DEFAULT nextval('point_lots_id_seq'),
    user_id       BIGINT      NOT NULL,
    source        TEXT        NOT NULL CHECK (source IN ('ADMIN', 'PURCHASE', 'REGRANT')),
    amount        BIGINT      NOT NULL CHECK (amount > 0),
    remaining     BIGINT      NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    -- The ledger entry that made the lot: its EARN, or the CANCEL of a use whose lot had expired.
    point_id      BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the lot stops counting: the expiry job took what was left, or its earn was cancelled.
    closed_at     TIMESTAMPTZ,
    PRIMARY KEY (user_id, id),
    CONSTRAINT point_lots_remaining_within CHECK (remaining BETWEEN 0 AND amount),
    CONSTRAINT point_lots_closed_is_empty CHECK (closed_at IS NULL OR remaining = 0)
) PARTITION BY HASH (user_id);

CREATE TABLE point_allocations (
    user_id      BIGINT NOT NULL,
    use_point_id BIGINT NOT NULL,
    lot_id       BIGINT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    PRIMARY KEY (user_id, use_point_id, lot_id)
) PARTITION BY HASH (user_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE point_lots_p%s PARTITION OF point_lots FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE point_allocations_p%s PARTITION OF point_allocations FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;
ALTER SEQUENCE point_lots_id_seq OWNED BY point_lots.id;

-- The spending order: admin grants first, then the soonest expiry, then the oldest.
CREATE INDEX point_lots_spending_idx ON point_lots (user_id, (source <> 'ADMIN'), expires_at, id) WHERE remaining > 0;
CREATE INDEX point_lots_expiry_idx ON point_lots (expires_at) WHERE remaining > 0;
CREATE INDEX point_lots_point_idx ON point_lots (user_id, point_id);

-- Existing earns become lots valid 365 days from when they were earned (purchase points are PURCHASE,
-- the rest ADMIN); an earn that was cancelled makes none. What the users spent since (their live earns
-- less their balance) is taken from the lots in the spending order, so every balance equals its lots.
-- Uses made before lots have no allocations: cancelling one regrants its amount as a new lot.
-- One statement over the ledger: about a minute per ten million entries on two cores.
WITH live_earns AS (
    SELECT e.user_id, e.id, e.amount, e.created_at,
           CASE WHEN pp.point_id IS NULL THEN 'ADMIN' ELSE 'PURCHASE' END AS source
    FROM points e
    LEFT JOIN purchase_points pp ON pp.point_id = e.id
    WHERE e.kind = 'EARN'
      AND NOT EXISTS (SELECT 1 FROM points c WHERE c.user_id = e.user_id AND c.cancels_point_id = e.id)
), ordered AS (
    SELECT l.*,
           sum(l.amount) OVER (PARTITION BY l.user_id ORDER BY (l.source <> 'ADMIN'), l.created_at, l.id
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
           sum(l.amount) OVER (PARTITION BY l.user_id) - coalesce(b.balance, 0) AS spent
    FROM live_earns l
    LEFT JOIN point_balances b ON b.user_id = l.user_id
)
INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id, created_at)
SELECT user_id, source, amount,
       LEAST(amount, GREATEST(0, amount - GREATEST(0, spent - coalesce(before, 0)))),
       created_at + interval '365 days', id, created_at
FROM ordered;
