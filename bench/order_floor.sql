-- pgbench: the statements of one placed order, as settle-api sends them (infra/src/shop/orders/place.rs),
-- without HTTP, JSON, the stock gate or the pool: the floor the orders benchmark compares against.
-- A third of the orders use a coupon, a third spend points, like the spread load. Each client walks its
-- own coupons (coupon = first + client + clients * n), so no coupon serves two orders.
-- Variables (-D): first_option, options, first_user, holders (buyers per kind), first_coupon, clients, n.
\set option :first_option + random(0, :options - 1)
\set kind random(0, 2)
\set k random(0, :holders - 1)
\set n :n + 1
\set coupon :first_coupon + :client_id + :clients * :n
\set coupon_user :first_user + 3 * ((:coupon - :first_coupon) % :holders)
\set points_user :first_user + 1 + 3 * :k
\set plain_user :first_user + 2 + 3 * :k
BEGIN;
SELECT o.id, o.product_id, p.name AS product_name, o.name AS option_name, p.status, p.price + o.extra_price AS unit_price, o.stock
  FROM product_options o JOIN products p ON p.id = o.product_id WHERE o.id = ANY(ARRAY[:option]::bigint[]);
\if :kind = 0
SELECT c.user_id, c.order_id, c.valid_until, p.discount_type, p.discount_value, p.minimum_order_amount, p.maximum_discount_amount
  FROM coupons c JOIN coupon_policies p ON p.id = c.policy_id WHERE c.id = :coupon FOR UPDATE OF c;
\endif
SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS order_id \gset
\if :kind = 1
SELECT balance FROM point_balances WHERE user_id = :points_user FOR UPDATE;
WITH drawn AS (SELECT nextval('points_id_seq') AS id),
  spendable AS (
    SELECT id, remaining, (sum(remaining) OVER (ORDER BY (source <> 'ADMIN'), expires_at, id))::bigint AS through
    FROM point_lots WHERE user_id = :points_user AND remaining > 0 AND expires_at > now()),
  covered AS (SELECT coalesce(max(through), 0) AS available FROM spendable),
  taken AS (
    SELECT s.id, LEAST(s.remaining, 200 - (s.through - s.remaining)) AS part
    FROM spendable s, covered c WHERE c.available >= 200 AND s.through - s.remaining < 200),
  lowered AS (
    UPDATE point_lots l SET remaining = l.remaining - t.part FROM taken t
    WHERE l.user_id = :points_user AND l.id = t.id RETURNING l.id, t.part),
  recorded AS (
    INSERT INTO point_allocations (user_id, use_point_id, lot_id, amount)
    SELECT :points_user, (SELECT id FROM drawn), id, part FROM lowered)
  SELECT (SELECT available FROM covered) AS available, (SELECT id FROM drawn) AS use_id \gset
UPDATE point_balances SET balance = balance - 200, version = version + 1, updated_at = now()
  WHERE user_id = :points_user RETURNING balance, version;
INSERT INTO points (id, user_id, kind, amount, reason, order_id, cancels_point_id)
  VALUES (:use_id, :points_user, 'USE', -200, NULL, :order_id, NULL) RETURNING id AS point_id, created_at \gset
INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
  VALUES (gen_random_uuid(), 'points', :points_user, 'PointsUsed',
          '{"pointId": 1, "userId": 1, "amount": -200, "balance": 800, "version": 2}', 'pgbench');
INSERT INTO orders (id, user_id, status, subtotal, coupon_id, coupon_discount, points_used, point_use_id, amount_to_pay,
                    receiver_name, phone, address, payment_method, trace_id, payment_due_at, paid_at)
  OVERRIDING SYSTEM VALUE SELECT :order_id, :points_user, 'PENDING_PAYMENT', unit_price, NULL, 0, 200, :point_id, unit_price - 200,
                    'Bench Buyer', '010-0000-0000', '1 Bench-ro', 'CARD', 'pgbench', now() + interval '15 minutes', NULL
  FROM (SELECT p.price + o.extra_price AS unit_price FROM product_options o JOIN products p ON p.id = o.product_id WHERE o.id = :option) x
  RETURNING id, created_at, payment_due_at;
\elif :kind = 0
UPDATE coupons SET status = 'USED', order_id = :order_id, used_at = now() WHERE id = :coupon
  RETURNING id, policy_id, user_id, request_id, status, order_id, issued_at, valid_until, used_at, cancelled_order_id;
INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
  VALUES (gen_random_uuid(), 'coupon', :coupon, 'CouponUsed', '{"couponId": 1, "policyId": 1, "userId": 1, "orderId": 1}', 'pgbench');
INSERT INTO orders (id, user_id, status, subtotal, coupon_id, coupon_discount, points_used, point_use_id, amount_to_pay,
                    receiver_name, phone, address, payment_method, trace_id, payment_due_at, paid_at)
  OVERRIDING SYSTEM VALUE SELECT :order_id, :coupon_user, 'PENDING_PAYMENT', unit_price, :coupon, 1000, 0, NULL, unit_price - 1000,
                    'Bench Buyer', '010-0000-0000', '1 Bench-ro', 'CARD', 'pgbench', now() + interval '15 minutes', NULL
  FROM (SELECT p.price + o.extra_price AS unit_price FROM product_options o JOIN products p ON p.id = o.product_id WHERE o.id = :option) x
  RETURNING id, created_at, payment_due_at;
\else
INSERT INTO orders (id, user_id, status, subtotal, coupon_id, coupon_discount, points_used, point_use_id, amount_to_pay,
                    receiver_name, phone, address, payment_method, trace_id, payment_due_at, paid_at)
  OVERRIDING SYSTEM VALUE SELECT :order_id, :plain_user, 'PENDING_PAYMENT', unit_price, NULL, 0, 0, NULL, unit_price,
                    'Bench Buyer', '010-0000-0000', '1 Bench-ro', 'CARD', 'pgbench', now() + interval '15 minutes', NULL
  FROM (SELECT p.price + o.extra_price AS unit_price FROM product_options o JOIN products p ON p.id = o.product_id WHERE o.id = :option) x
  RETURNING id, created_at, payment_due_at;
\endif
INSERT INTO order_items (order_id, option_id, product_id, product_name, option_name, quantity, unit_price, line_total)
  SELECT :order_id, o.id, o.product_id, p.name, o.name, 1, p.price + o.extra_price, p.price + o.extra_price
  FROM product_options o JOIN products p ON p.id = o.product_id WHERE o.id = :option
  RETURNING option_id, product_id, product_name, option_name, quantity, unit_price, line_total;
INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, trace_id)
  VALUES (:order_id, NULL, 'PENDING_PAYMENT', 'user:1', NULL, 'pgbench');
INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
  VALUES (gen_random_uuid(), 'order', :order_id, 'OrderPlaced',
          '{"orderId": 1, "userId": 1, "subtotal": 10000, "couponId": null, "couponDiscount": 0, "pointsUsed": 0, "amountToPay": 10000, "items": [{"optionId": 1, "quantity": 1, "unitPrice": 10000}], "placedAt": "2026-12-01T00:00:00Z", "paymentDueAt": "2026-12-01T00:15:00Z"}',
          'pgbench');
UPDATE product_options SET stock = stock - 1 WHERE id = :option AND stock >= 1 RETURNING stock;
END;
