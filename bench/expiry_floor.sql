-- The floor of the expiry's bulk step: one chunk's statements (infra::shop::orders::expire_unattempted),
-- server-side, for orders with no coupon nor points (what scripts/bench-orders seeds). pgbench -D chunk=N;
-- run until nothing is due. The event payload is built in SQL here (the job builds it in Rust).
BEGIN;
SELECT coalesce(array_agg(id), '{}') AS claimed FROM (
    SELECT o.id FROM orders o
    WHERE o.status = 'PENDING_PAYMENT' AND o.payment_due_at <= now()
      AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)
    ORDER BY o.payment_due_at LIMIT :chunk FOR UPDATE SKIP LOCKED) AS c \gset
WITH moved AS (
    UPDATE orders o SET status = 'EXPIRED', status_changed_at = now()
    WHERE o.id = ANY(:claimed::bigint[]) AND o.status = 'PENDING_PAYMENT'
      AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)
    RETURNING o.id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM moved \gset
SELECT order_id, option_id, quantity FROM order_items WHERE order_id = ANY(:ids::bigint[]) ORDER BY order_id, option_id;
INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, trace_id)
SELECT id, 'PENDING_PAYMENT', 'EXPIRED', 'pgbench floor', 'floor', NULL FROM unnest(:ids::bigint[]) AS id;
INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
SELECT gen_random_uuid(), 'order', o.id::text, 'OrderExpired',
       jsonb_build_object('orderId', o.id, 'userId', o.user_id, 'from', 'PENDING_PAYMENT', 'status', o.status,
                          'amountToPay', o.amount_to_pay, 'couponId', o.coupon_id, 'pointsRefunded', o.points_used,
                          'items', (SELECT jsonb_agg(jsonb_build_object('optionId', i.option_id, 'quantity', i.quantity))
                                    FROM order_items i WHERE i.order_id = o.id),
                          'at', o.status_changed_at), NULL
FROM orders o WHERE o.id = ANY(:ids::bigint[]) ORDER BY o.id;
SELECT id FROM product_options
WHERE id IN (SELECT option_id FROM order_items WHERE order_id = ANY(:ids::bigint[])) ORDER BY id FOR UPDATE;
UPDATE product_options p SET stock = p.stock + u.quantity
FROM (SELECT option_id, sum(quantity)::int AS quantity FROM order_items WHERE order_id = ANY(:ids::bigint[])
      GROUP BY option_id) AS u
WHERE p.id = u.option_id;
END;
