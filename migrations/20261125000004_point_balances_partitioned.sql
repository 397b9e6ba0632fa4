-- Balances partitioned exactly like the ledger (hash of user_id, 16 ways): the reconciliation batch reads
-- partition k of both tables sequentially, in one snapshot, and holds only that partition's users in
-- memory. Same key type and modulus, so a user's balance and ledger rows share the remainder.
ALTER TABLE point_balances RENAME TO point_balances_unpartitioned;
ALTER INDEX point_balances_pkey RENAME TO point_balances_unpartitioned_pkey;
ALTER TABLE point_balances_unpartitioned
    RENAME CONSTRAINT point_balances_not_negative TO point_balances_unpartitioned_not_negative;
ALTER TABLE point_balances_unpartitioned
    RENAME CONSTRAINT point_balances_user_id_fkey TO point_balances_unpartitioned_user_id_fkey;

CREATE TABLE point_balances (
    user_id    BIGINT      NOT NULL REFERENCES users (id),
    balance    BIGINT      NOT NULL DEFAULT 0,
    -- Bumped on every change so a cache never replaces a newer value with an older one.
    version    BIGINT      NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT point_balances_pkey PRIMARY KEY (user_id),
    CONSTRAINT point_balances_not_negative CHECK (balance >= 0)
) PARTITION BY HASH (user_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE point_balances_p%s PARTITION OF point_balances '
                       'FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;

INSERT INTO point_balances (user_id, balance, version, updated_at)
SELECT user_id, balance, version, updated_at FROM point_balances_unpartitioned;
DROP TABLE point_balances_unpartitioned;
