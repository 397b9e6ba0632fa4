-- The provider takes one approved payment per order id, even once it is cancelled (DUPLICATED_ORDER_ID),
-- so an order whose late approval was given back is paid under a new one: the provider knows an order by
-- `settle-order-<id>` in round 0 and `settle-order-<id>-<round>` after (infra's `payment_order_id`).
-- Existing orders and attempts stay in round 0, the id they were paid under.
ALTER TABLE orders ADD COLUMN payment_round INT NOT NULL DEFAULT 0 CHECK (payment_round >= 0);
-- The round an attempt was made in: its look-ups and callbacks use that round's order id.
ALTER TABLE payment_attempts ADD COLUMN payment_round INT NOT NULL DEFAULT 0 CHECK (payment_round >= 0);
