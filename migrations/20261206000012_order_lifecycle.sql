-- Orders become purchases: PENDING_PAYMENT → PAID → SHIPPED → DELIVERED → CONFIRMED, or CANCELLED, EXPIRED,
-- REFUNDED (domain::shop::lifecycle holds the table of moves). Every move is written to
-- order_status_history in the transaction that makes it.
--
-- Existing rows: a PLACED order took its stock, coupon and points and nobody paid for it, so it becomes
-- PENDING_PAYMENT with a payment window that opens now (15 minutes, the default window). That keeps every
-- invariant: it still holds what it took (as it did), it holds no money (it never did), and if nobody
-- pays, the expiry gives everything back once. CANCELLED orders stay CANCELLED.

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
DROP INDEX orders_coupon_placed_key;

UPDATE orders SET status = 'PENDING_PAYMENT' WHERE status = 'PLACED';

ALTER TABLE orders
    ADD CONSTRAINT orders_status_check CHECK (status IN ('PENDING_PAYMENT', 'PAID', 'SHIPPED', 'DELIVERED',
        'CONFIRMED', 'CANCELLED', 'EXPIRED', 'REFUNDED')),
    -- Unpaid past this instant, the order expires (it is set at placement from ORDER_PAYMENT_WINDOW_MINUTES).
    ADD COLUMN payment_due_at    TIMESTAMPTZ,
    ADD COLUMN paid_at           TIMESTAMPTZ,
    ADD COLUMN carrier           TEXT CHECK (length(carrier) BETWEEN 1 AND 50),
    ADD COLUMN tracking_number   TEXT CHECK (length(tracking_number) BETWEEN 1 AND 100),
    ADD COLUMN delivered_at      TIMESTAMPTZ,
    ADD COLUMN status_changed_at TIMESTAMPTZ NOT NULL DEFAULT now();

UPDATE orders SET payment_due_at = now() + interval '15 minutes', status_changed_at = created_at;
UPDATE orders SET status_changed_at = cancelled_at WHERE status = 'CANCELLED';
ALTER TABLE orders ALTER COLUMN payment_due_at SET NOT NULL;

ALTER TABLE orders
    -- Paid from PAID on (a cancel may come before or after payment); never while waiting or once expired.
    ADD CONSTRAINT orders_paid_when CHECK (CASE status
        WHEN 'PENDING_PAYMENT' THEN paid_at IS NULL
        WHEN 'EXPIRED' THEN paid_at IS NULL
        WHEN 'CANCELLED' THEN true
        ELSE paid_at IS NOT NULL END),
    ADD CONSTRAINT orders_shipped_has_tracking CHECK (
        status NOT IN ('SHIPPED', 'DELIVERED', 'CONFIRMED', 'REFUNDED')
        OR (carrier IS NOT NULL AND tracking_number IS NOT NULL)),
    ADD CONSTRAINT orders_delivered_when CHECK (
        status NOT IN ('DELIVERED', 'CONFIRMED', 'REFUNDED') OR delivered_at IS NOT NULL);

-- A coupon serves at most one order that still holds what it took, whatever code writes orders.
CREATE UNIQUE INDEX orders_coupon_held_key ON orders (coupon_id)
    WHERE status IN ('PENDING_PAYMENT', 'PAID', 'SHIPPED', 'DELIVERED', 'CONFIRMED');
-- The expiry pass: unpaid orders by due time.
CREATE INDEX orders_payment_due_idx ON orders (payment_due_at) WHERE status = 'PENDING_PAYMENT';
-- The auto-confirmation job: delivered orders by delivery time.
CREATE INDEX orders_delivered_idx ON orders (delivered_at) WHERE status = 'DELIVERED';

CREATE TABLE order_status_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    BIGINT      NOT NULL REFERENCES orders (id),
    -- NULL for the placement.
    from_status TEXT,
    to_status   TEXT        NOT NULL,
    -- Who asked: 'user:<id>', 'admin:<id>' or 'system:<what>' (a background pass, the migration).
    actor       TEXT        NOT NULL CHECK (length(actor) BETWEEN 1 AND 100),
    reason      TEXT        CHECK (length(reason) <= 500),
    trace_id    TEXT,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);

INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, changed_at)
SELECT id, NULL, 'PENDING_PAYMENT', 'system:migration', 'placed before payments existed', created_at FROM orders;
INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, changed_at)
SELECT id, 'PENDING_PAYMENT', 'CANCELLED', 'system:migration', 'cancelled before payments existed', cancelled_at
FROM orders WHERE status = 'CANCELLED';
