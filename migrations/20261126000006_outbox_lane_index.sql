-- The relay claims unsent rows lane by lane (lane = hashtext(aggregate_id) & 15; see the workers'
-- outbox_relay/claim.rs, whose LANES must stay 16 to match). Without this index a claim of one lane read
-- every unsent row of every lane to find its own: a sequential scan that grew with the backlog.
CREATE INDEX outbox_events_unsent_lane_idx ON outbox_events ((hashtext(aggregate_id) & 15), id)
    WHERE sent_at IS NULL;
