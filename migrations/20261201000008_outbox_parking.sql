-- A row whose delivery failed OUTBOX_MAX_ATTEMPTS times is parked: kept, but no longer claimed, and the
-- later rows of its aggregate wait behind it (per-aggregate order) until an operator re-drives it with
-- `settle-batch outbox retry ID`. Parked rows are few; the claim reads them through this index.
ALTER TABLE outbox_events ADD COLUMN parked_at TIMESTAMPTZ;
CREATE INDEX outbox_events_parked_idx ON outbox_events (aggregate_type, aggregate_id) WHERE parked_at IS NOT NULL;
