-- Stopping and restarting runs. `settle-batch stop ID` (or SIGTERM to the run) asks an execution to stop:
-- it ends within one chunk as STOPPED. `settle-batch restart ID` runs a FAILED or STOPPED execution again
-- with the arguments it recorded, at its unfinished partitions only. Secrets never go into `arguments`:
-- each job records its own options (date, zone, sizes), not the command line.
ALTER TABLE batch_job_executions
    DROP CONSTRAINT batch_job_executions_status_check,
    ADD CONSTRAINT batch_job_executions_status_check CHECK (status IN ('STARTED', 'COMPLETED', 'FAILED', 'STOPPED')),
    ADD COLUMN stop_requested_at TIMESTAMPTZ,
    ADD COLUMN arguments TEXT[] NOT NULL DEFAULT '{}';
