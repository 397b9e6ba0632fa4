-- A request may also ask the leading scheduler to restart a FAILED or STOPPED batch execution (the
-- console's Restart): the leader runs `settle-batch restart EXECUTION` and records how it ended.
ALTER TABLE scheduler_run_requests
    ALTER COLUMN entry_name DROP NOT NULL,
    ADD COLUMN execution_id BIGINT REFERENCES batch_job_executions (id),
    ADD CONSTRAINT scheduler_run_requests_one_target CHECK ((entry_name IS NULL) <> (execution_id IS NULL));

ALTER TABLE console_actions DROP CONSTRAINT console_actions_action_check,
    ADD CONSTRAINT console_actions_action_check
        CHECK (action IN ('STOP_EXECUTION', 'REDRIVE_OUTBOX_ROW', 'RUN_ENTRY_NOW', 'RESTART_EXECUTION'));
