-- pgbench: the statements of one point use, as settle-api sends them (infra/src/points/ledger.rs spend,
-- infra/src/points/lots.rs take, infra/src/outbox append), without HTTP, JSON, auth or the pool: the
-- floor the point-use benchmark compares against. Each transaction spends 10 points of a random user.
-- Variables (-D): first_user, users.
\set user :first_user + random(0, :users - 1)
BEGIN;
SELECT balance FROM point_balances WHERE user_id = :user FOR UPDATE;
WITH drawn AS (SELECT nextval('points_id_seq') AS id),
  spendable AS (
    SELECT id, remaining, (sum(remaining) OVER (ORDER BY (source <> 'ADMIN'), expires_at, id))::bigint AS through
    FROM point_lots WHERE user_id = :user AND remaining > 0 AND expires_at > now()),
  covered AS (SELECT coalesce(max(through), 0) AS available FROM spendable),
  taken AS (
    SELECT s.id, LEAST(s.remaining, 10 - (s.through - s.remaining)) AS part
    FROM spendable s, covered c WHERE c.available >= 10 AND s.through - s.remaining < 10),
  lowered AS (
    UPDATE point_lots l SET remaining = l.remaining - t.part FROM taken t
    WHERE l.user_id = :user AND l.id = t.id RETURNING l.id, t.part),
  recorded AS (
    INSERT INTO point_allocations (user_id, use_point_id, lot_id, amount)
    SELECT :user, (SELECT id FROM drawn), id, part FROM lowered)
  SELECT (SELECT available FROM covered) AS available, (SELECT id FROM drawn) AS use_id \gset
UPDATE point_balances SET balance = balance - 10, version = version + 1, updated_at = now()
  WHERE user_id = :user RETURNING balance, version;
INSERT INTO points (id, user_id, kind, amount, reason, order_id, cancels_point_id)
  VALUES (:use_id, :user, 'USE', -10, NULL, NULL, NULL) RETURNING id, created_at;
INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
  VALUES (gen_random_uuid(), 'points', CAST(:user AS text), 'PointsUsed',
          jsonb_build_object('pointId', CAST(:use_id AS bigint), 'userId', CAST(:user AS bigint), 'amount', -10,
                             'balance', 0, 'version', 0), NULL);
COMMIT;
