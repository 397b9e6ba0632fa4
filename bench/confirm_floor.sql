-- The floor of settle-batch auto-confirm: one chunk's statements (infra::shop::orders::confirm_delivered),
-- server-side. pgbench -D chunk=N; run until nothing is due. The event payload is built in SQL here
-- (the job builds it in Rust from the UPDATE's RETURNING, with the same fields).
BEGIN;
SELECT coalesce(array_agg(id), '{}') AS claimed FROM (
    SELECT id FROM orders WHERE status = 'DELIVERED' AND delivered_at <= now() - interval '7 days'
    ORDER BY delivered_at LIMIT :chunk FOR UPDATE SKIP LOCKED) AS c \gset
WITH moved AS (
    UPDATE orders o SET status = 'CONFIRMED', status_changed_at = now()
    WHERE o.id = ANY(:claimed::bigint[]) AND o.status = 'DELIVERED'
      AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id
                      AND (a.status IN ('IN_FLIGHT', 'UNKNOWN', 'WAITING_FOR_DEPOSIT')
                           OR a.refund_status IN ('IN_FLIGHT', 'UNKNOWN')))
    RETURNING o.id)
SELECT coalesce(array_agg(id), '{}') AS ids FROM moved \gset
INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, trace_id)
SELECT id, 'DELIVERED', 'CONFIRMED', 'pgbench floor', 'floor', NULL FROM unnest(:ids::bigint[]) AS id;
INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
SELECT gen_random_uuid(), 'order', o.id::text, 'OrderConfirmed',
       jsonb_build_object('orderId', o.id, 'userId', o.user_id, 'from', 'DELIVERED', 'status', o.status,
                          'amountToPay', o.amount_to_pay, 'couponId', o.coupon_id, 'pointsRefunded', 0,
                          'items', '[]'::jsonb, 'at', o.status_changed_at), NULL
FROM orders o WHERE o.id = ANY(:ids::bigint[]) ORDER BY o.id;
END;
