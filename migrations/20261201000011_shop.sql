-- The shop: products that can be stopped, options whose stock is the one guarded counter, carts of
-- options, and orders whose price breakdown adds up by construction. No code wrote carts or orders before
-- this migration, so the order tables are recreated in their final shape instead of altered.

ALTER TABLE products
    ADD COLUMN status     TEXT        NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'STOPPED')),
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- Every line names an option: a product sold "as is" has one option (e.g. "standard").
ALTER TABLE cart_items ALTER COLUMN option_id SET NOT NULL;
ALTER TABLE cart_items DROP CONSTRAINT cart_items_user_product_option_key;
ALTER TABLE cart_items ADD CONSTRAINT cart_items_user_option_key UNIQUE (user_id, option_id);
CREATE INDEX product_options_product_idx ON product_options (product_id, id);

DROP TABLE order_items;
DROP TABLE orders;

CREATE TABLE orders (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id),
    status          TEXT        NOT NULL CHECK (status IN ('PLACED', 'CANCELLED')),
    subtotal        BIGINT      NOT NULL CHECK (subtotal >= 0),
    coupon_id       BIGINT      REFERENCES coupons (id),
    coupon_discount BIGINT      NOT NULL CHECK (coupon_discount >= 0),
    points_used     BIGINT      NOT NULL CHECK (points_used >= 0),
    -- The ledger's USE entry (the ledger is partitioned by user, so no foreign key).
    point_use_id    BIGINT,
    amount_to_pay   BIGINT      NOT NULL CHECK (amount_to_pay >= 0),
    receiver_name   TEXT        NOT NULL CHECK (length(receiver_name) BETWEEN 1 AND 100),
    phone           TEXT        NOT NULL CHECK (length(phone) BETWEEN 1 AND 30),
    address         TEXT        NOT NULL CHECK (length(address) BETWEEN 1 AND 500),
    payment_method  TEXT        NOT NULL CHECK (payment_method IN ('CARD', 'BANK_TRANSFER', 'VIRTUAL_ACCOUNT', 'MOBILE')),
    trace_id        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at    TIMESTAMPTZ,
    CONSTRAINT orders_amounts_add_up CHECK (amount_to_pay = subtotal - coupon_discount - points_used),
    CONSTRAINT orders_discount_needs_coupon CHECK (coupon_id IS NOT NULL OR coupon_discount = 0),
    CONSTRAINT orders_points_have_entry CHECK ((points_used > 0) = (point_use_id IS NOT NULL)),
    CONSTRAINT orders_cancelled_when CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL))
);
-- A coupon serves at most one placed order, whatever code writes orders.
CREATE UNIQUE INDEX orders_coupon_placed_key ON orders (coupon_id) WHERE status = 'PLACED';
CREATE INDEX orders_user_idx ON orders (user_id, id DESC);

CREATE TABLE order_items (
    order_id     BIGINT  NOT NULL REFERENCES orders (id),
    option_id    BIGINT  NOT NULL REFERENCES product_options (id),
    product_id   BIGINT  NOT NULL REFERENCES products (id),
    -- Snapshots: what the buyer saw and paid, whatever the catalogue says later.
    product_name TEXT    NOT NULL,
    option_name  TEXT    NOT NULL,
    quantity     INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    unit_price   BIGINT  NOT NULL CHECK (unit_price >= 0),
    line_total   BIGINT  NOT NULL,
    CONSTRAINT order_items_pkey PRIMARY KEY (order_id, option_id),
    CONSTRAINT order_items_line_total CHECK (line_total = unit_price * quantity)
);
CREATE INDEX order_items_option_idx ON order_items (option_id);
-- "Does this ledger entry belong to an order?" (direct point cancels refuse those).
CREATE INDEX orders_point_use_idx ON orders (point_use_id) WHERE point_use_id IS NOT NULL;
