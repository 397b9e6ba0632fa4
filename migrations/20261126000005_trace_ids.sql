-- Trace ids on batch executions and scheduler firings: a firing hands its trace id to the batch run it
-- starts, so the two records (and every log line of both processes) can be joined on it.
ALTER TABLE batch_job_executions ADD COLUMN trace_id TEXT;
CREATE INDEX batch_job_executions_trace_idx ON batch_job_executions (trace_id) WHERE trace_id IS NOT NULL;

ALTER TABLE scheduler_firings ADD COLUMN trace_id TEXT;
-- Overlap checks and abandoned-run clean-up look for an entry's unfinished firings.
CREATE INDEX scheduler_firings_running_idx ON scheduler_firings (entry_name) WHERE status = 'RUNNING';
