-- scripts/bench-settlement's baseline (b): the day's sale lines of settle-sales as ONE statement with window
-- functions, what a DBA would write (psql variables :day, :start, :end; into sql_lines). The same rules as
-- domain::settlement: the coupon pro rata to line totals, the points pro rata to what remains after the
-- coupon, the fee (the method's rate, rounded toward zero) pro rata to what was paid; whole won rounded
-- down, the won left over one each to the largest lost fractions, the earlier item on a tie. Its output is
-- compared equal to the job's.
INSERT INTO sql_lines (business_date, event, order_id, option_id, product_id, quantity, unit_price, gross,
                       coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net, execution_id)
WITH items AS (
    SELECT o.id AS order_id, i.option_id, i.product_id, i.quantity, i.unit_price, i.line_total AS t,
           o.subtotal AS total, o.coupon_discount AS coupon, o.points_used AS points, o.amount_to_pay AS paid_total,
           o.payment_method, pa.payment_key,
           CASE o.payment_method WHEN 'CARD' THEN 250 WHEN 'BANK_TRANSFER' THEN 150
                                 WHEN 'VIRTUAL_ACCOUNT' THEN 100 ELSE 350 END AS bps
    FROM order_status_history h
    JOIN orders o ON o.id = h.order_id
    JOIN order_items i ON i.order_id = o.id
    LEFT JOIN payment_attempts pa ON pa.order_id = o.id AND pa.status = 'APPROVED'
    WHERE h.to_status = 'CONFIRMED' AND h.changed_at >= :'start' AND h.changed_at < :'end'),
coupon_floor AS (
    SELECT *, CASE WHEN total = 0 THEN 0 ELSE coupon * t / total END AS c0,
              CASE WHEN total = 0 THEN 0 ELSE coupon * t % total END AS c_rem
    FROM items),
coupon_split AS (
    SELECT *, c0 + CASE WHEN row_number() OVER (PARTITION BY order_id ORDER BY c_rem DESC, option_id)
                             <= coupon - sum(c0) OVER (PARTITION BY order_id) THEN 1 ELSE 0 END AS c
    FROM coupon_floor),
points_floor AS (
    SELECT *, CASE WHEN total - coupon = 0 THEN 0 ELSE points * (t - c) / (total - coupon) END AS p0,
              CASE WHEN total - coupon = 0 THEN 0 ELSE points * (t - c) % (total - coupon) END AS p_rem
    FROM coupon_split),
points_split AS (
    SELECT *, p0 + CASE WHEN row_number() OVER (PARTITION BY order_id ORDER BY p_rem DESC, option_id)
                             <= points - sum(p0) OVER (PARTITION BY order_id) THEN 1 ELSE 0 END AS p
    FROM points_floor),
fee_floor AS (
    SELECT *, t - c - p AS paid, paid_total * bps / 10000 AS fee_total,
           CASE WHEN paid_total = 0 THEN 0 ELSE (paid_total * bps / 10000) * (t - c - p) / paid_total END AS f0,
           CASE WHEN paid_total = 0 THEN 0 ELSE (paid_total * bps / 10000) * (t - c - p) % paid_total END AS f_rem
    FROM points_split),
fee_split AS (
    SELECT *, f0 + CASE WHEN row_number() OVER (PARTITION BY order_id ORDER BY f_rem DESC, option_id)
                             <= fee_total - sum(f0) OVER (PARTITION BY order_id) THEN 1 ELSE 0 END AS f
    FROM fee_floor)
SELECT :'day'::date, 'SALE', order_id, option_id, product_id, quantity, unit_price, t, c, p, paid, payment_method,
       payment_key, bps, f, paid - f, 0
FROM fee_split;
