-- Daily sales settlement (settle-batch settle-sales). A sale is recognised on the business day its order
-- became CONFIRMED, a reversal on the day a confirmed order's money went back; each is one line per order
-- item, written once and never changed (a late refund of a settled day is a reversal on its own day).

CREATE TABLE settlement_lines (
    business_date  DATE        NOT NULL,
    event          TEXT        NOT NULL CHECK (event IN ('SALE', 'REVERSAL')),
    order_id       BIGINT      NOT NULL,
    option_id      BIGINT      NOT NULL,
    product_id     BIGINT      NOT NULL,
    quantity       INTEGER     NOT NULL,
    unit_price     BIGINT      NOT NULL,
    -- Signed: a reversal carries its sale's amounts negated.
    gross          BIGINT      NOT NULL,
    coupon_discount BIGINT     NOT NULL,
    points         BIGINT      NOT NULL,
    paid           BIGINT      NOT NULL,
    payment_method TEXT        NOT NULL,
    -- The provider's key of the order's payment (NULL when coupon and points paid it all).
    payment_key    TEXT,
    -- The fee rate in force when the sale was settled (PAYMENT_FEE_RATES), in basis points: a later change
    -- of the rates never changes a settled line, and the reversal reuses its sale's rate.
    fee_rate_bps   INTEGER     NOT NULL CHECK (fee_rate_bps BETWEEN 0 AND 10000),
    fee            BIGINT      NOT NULL,
    net            BIGINT      NOT NULL,
    execution_id   BIGINT      NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT settlement_lines_item_event_key PRIMARY KEY (order_id, option_id, event),
    CONSTRAINT settlement_lines_add_up CHECK (coupon_discount + points + paid = gross AND paid - fee = net),
    CONSTRAINT settlement_lines_signed CHECK (CASE event
        WHEN 'SALE' THEN gross >= 0 AND coupon_discount >= 0 AND points >= 0 AND paid >= 0 AND fee >= 0
        ELSE gross <= 0 AND coupon_discount <= 0 AND points <= 0 AND paid <= 0 AND fee <= 0 END)
);
CREATE INDEX settlement_lines_day_idx ON settlement_lines (business_date);

-- Append-only: a settled day is never rewritten, whatever code connects.
CREATE FUNCTION settlement_lines_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'settlement lines are append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER settlement_lines_append_only BEFORE UPDATE OR DELETE ON settlement_lines
    FOR EACH ROW EXECUTE FUNCTION settlement_lines_append_only();

-- One row per business day that a settle-sales run reached: OPEN while it runs, CLOSED once every gate
-- held, FAILED when one did not (its discrepancies are in settlement_gate_results). A CLOSED day is final.
CREATE TABLE settlement_days (
    business_date DATE        PRIMARY KEY,
    status        TEXT        NOT NULL CHECK (status IN ('OPEN', 'CLOSED', 'FAILED')),
    timezone      TEXT        NOT NULL,
    execution_id  BIGINT      NOT NULL,
    sales         BIGINT      NOT NULL DEFAULT 0,
    reversals     BIGINT      NOT NULL DEFAULT 0,
    gross         BIGINT      NOT NULL DEFAULT 0,
    coupon_discount BIGINT    NOT NULL DEFAULT 0,
    points        BIGINT      NOT NULL DEFAULT 0,
    paid          BIGINT      NOT NULL DEFAULT 0,
    fee           BIGINT      NOT NULL DEFAULT 0,
    net           BIGINT      NOT NULL DEFAULT 0,
    closed_at     TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT settlement_days_closed_when CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL))
);

-- The day's totals by product option and by payment method (rebuilt until the day closes).
CREATE TABLE settlement_summary_by_option (
    business_date DATE   NOT NULL,
    option_id     BIGINT NOT NULL,
    product_id    BIGINT NOT NULL,
    quantity      BIGINT NOT NULL,
    gross         BIGINT NOT NULL,
    coupon_discount BIGINT NOT NULL,
    points        BIGINT NOT NULL,
    paid          BIGINT NOT NULL,
    fee           BIGINT NOT NULL,
    net           BIGINT NOT NULL,
    PRIMARY KEY (business_date, option_id)
);
CREATE TABLE settlement_summary_by_method (
    business_date  DATE   NOT NULL,
    payment_method TEXT   NOT NULL,
    lines          BIGINT NOT NULL,
    gross          BIGINT NOT NULL,
    coupon_discount BIGINT NOT NULL,
    points         BIGINT NOT NULL,
    paid           BIGINT NOT NULL,
    fee            BIGINT NOT NULL,
    net            BIGINT NOT NULL,
    PRIMARY KEY (business_date, payment_method)
);

-- Every check of a day's gates, each gate with what it expected and found.
CREATE TABLE settlement_gate_results (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    business_date DATE        NOT NULL,
    execution_id  BIGINT      NOT NULL,
    gate          TEXT        NOT NULL,
    passed        BOOLEAN     NOT NULL,
    expected      BIGINT      NOT NULL,
    actual        BIGINT      NOT NULL,
    detail        TEXT,
    checked_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX settlement_gate_results_day_idx ON settlement_gate_results (business_date, id);

-- Recognition reads the day's CONFIRMED and REFUNDED moves by time.
CREATE INDEX order_status_history_recognition_idx ON order_status_history (to_status, changed_at)
    WHERE to_status IN ('CONFIRMED', 'REFUNDED');
