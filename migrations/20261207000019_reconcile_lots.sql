-- reconcile-points also checks each balance against the sum of the user's lots' remaining amounts: a
-- discrepancy row records that sum too (NULL on rows of runs before lots were checked), and a row is a
-- discrepancy when the stored balance differs from the ledger or from the lots.
ALTER TABLE reconciliation_discrepancies ADD COLUMN lots_balance BIGINT;
ALTER TABLE reconciliation_discrepancies DROP CONSTRAINT reconciliation_discrepancies_differ;
ALTER TABLE reconciliation_discrepancies ADD CONSTRAINT reconciliation_discrepancies_differ
    CHECK (stored_balance <> ledger_balance OR stored_balance <> lots_balance);
