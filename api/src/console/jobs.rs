//! Jobs: the batch executions, counters of the last day first, then the latest runs, filtered by job and
//! status through the URL (`?job=settle-sales&status=FAILED`), so a filtered view can be shared.

use super::{
    actions::{confirm, ConfirmedAction},
    live::every_tick,
    page::{live_page, render, ConsoleError, Section},
    session::ConsoleAdmin,
};
use crate::AppState;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, Sse},
        Response,
    },
};
use chrono::{Duration, Utc};
use futures::Stream;
use infra::accounts::console::{ActionOutcome, ConsoleAction};
use infra::jobs::{self, ExecutionFilter, ExecutionSummary, ScheduledEntry};
use maud::{html, Markup};
use serde::Deserialize;
use std::convert::Infallible;

/// The statuses an execution may be in (the repository's CHECK lists the same).
const STATUSES: [&str; 4] = ["STARTED", "COMPLETED", "FAILED", "STOPPED"];
const SHOWN: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    #[serde(default)]
    job: String,
    #[serde(default)]
    status: String,
}

impl JobsQuery {
    /// The filter as a query string again, for the page's stream.
    fn as_query(&self) -> String {
        let encode = |text: &str| {
            text.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        format!("job={}&status={}", encode(&self.job), encode(&self.status))
    }

    fn filter(&self) -> Result<ExecutionFilter, ConsoleError> {
        let given = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        let status = given(&self.status).map(|status| status.to_ascii_uppercase());
        if let Some(status) = status.as_deref().filter(|status| !STATUSES.contains(status)) {
            let message = format!("no such status {status:?}: one of {}", STATUSES.join(", "));
            return Err(ConsoleError::refused(StatusCode::BAD_REQUEST, message));
        }
        Ok(ExecutionFilter { id: None, job: given(&self.job), status })
    }
}

pub async fn jobs_page(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(query): Query<JobsQuery>,
) -> Result<Response, ConsoleError> {
    let filter = query.filter()?;
    let (live, names, entries) =
        tokio::try_join!(live_part(&state, &filter), async { Ok(jobs::job_names(&state.pool).await?) }, async {
            Ok(jobs::schedule(&state.pool).await?)
        })?;
    let stream = format!("/console/jobs/stream?{}", query.as_query());
    let body = html! {
        (filters(&filter, &names))
        div #jobs-live hx-ext="sse" sse-connect=(stream) sse-swap="jobs" { (live) }
        h2 { "Schedule (as the leading settle-scheduler published it)" }
        (schedule_table(&entries))
    };
    Ok(render(live_page("Jobs", &admin, Section::Jobs, body)))
}

/// The counters and the executions, again every tick, for as long as the page stays open.
pub async fn jobs_stream(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
    Query(query): Query<JobsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ConsoleError> {
    let filter = query.filter()?;
    Ok(every_tick("jobs", move || {
        let (state, filter) = (state.clone(), filter.clone());
        async move { live_part(&state, &filter).await }
    }))
}

/// What moves on the Jobs page: the last day's counters and the executions the filter shows.
async fn live_part(state: &AppState, filter: &ExecutionFilter) -> Result<Markup, ConsoleError> {
    let now = Utc::now();
    let (counts, runs) = tokio::try_join!(
        jobs::status_counts(&state.pool, now - Duration::days(1)),
        jobs::recent(&state.pool, filter, SHOWN),
    )?;
    Ok(html! {
        section.counters aria-label="Executions started in the last 24 hours" {
            @for status in STATUSES {
                @let count = counts.iter().find(|(name, _)| name == status).map_or(0, |(_, count)| *count);
                a.counter data-status=(status) href={ "/console/jobs?status=" (status) } {
                    span.count { (count) } span.label { (status.to_lowercase()) " (24 h)" }
                }
            }
        }
        (executions(&runs, now))
    })
}

fn filters(filter: &ExecutionFilter, names: &[String]) -> Markup {
    let chosen = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    html! {
        form.filters method="get" action="/console/jobs" {
            label { "Job "
                select name="job" {
                    option value="" { "any" }
                    @for name in names { option value=(name) selected[chosen(&filter.job, name)] { (name) } }
                }
            }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for status in STATUSES { option value=(status) selected[chosen(&filter.status, status)] { (status) } }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

fn executions(runs: &[ExecutionSummary], now: chrono::DateTime<Utc>) -> Markup {
    html! {
        @if runs.is_empty() {
            p.empty { "No execution matches." }
        } @else {
            table.executions {
                thead { tr {
                    th { "id" } th { "job" } th { "key" } th { "status" } th { "started (UTC)" }
                    th.num { "took" } th.num { "partitions" } th.num { "rows read" } th.num { "rows/s" }
                    th.num { "discrepancies" } th { "message" } th { "" }
                } }
                tbody {
                    @for run in runs {
                        tr data-execution=(run.id) {
                            td { (run.id) } td { (run.job_name) } td { (run.job_key) }
                            td { span.status data-status=(run.status) { (run.status) } }
                            td { (run.started_at.format("%Y-%m-%d %H:%M:%S")) }
                            td.num { (seconds(run.took_ms(now))) }
                            td.num { (run.partitions_done) @if let Some(total) = run.partitions { " / " (total) } }
                            td.num { (run.rows_read) } td.num { (run.rows_per_second(now)) }
                            td.num { (run.discrepancies) }
                            td.message { (run.exit_message.as_deref().unwrap_or("")) }
                            td { @match (run.status.as_str(), run.stop_requested, run.restart_requested) {
                                (_, _, true) => span.stopping { "restart requested…" },
                                ("STARTED", true, _) => span.stopping { "stopping…" },
                                ("STARTED", false, _) => a.action href={ "/console/jobs/" (run.id) "/stop" } { "Stop" },
                                ("FAILED" | "STOPPED", _, _) => a.action href={ "/console/jobs/" (run.id) "/restart" } { "Restart" },
                                _ => {},
                            } }
                        }
                    }
                }
            }
        }
    }
}

/// Milliseconds as seconds with one decimal, in integer arithmetic.
fn seconds(ms: i64) -> String {
    format!("{}.{} s", ms / 1_000, ms % 1_000 / 100)
}

/// Asks before stopping execution `id`.
pub async fn confirm_stop(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<i64>,
) -> Result<Response, ConsoleError> {
    let run = jobs::execution(&state.pool, id).await?.ok_or_else(|| unknown_execution(id))?;
    let question = format!("Stop execution {id}, {} for {} ({})?", run.job_name, run.job_key, run.status);
    let consequence = "It ends within one chunk as STOPPED; `settle-batch restart` or the console runs it on later.";
    Ok(render(confirm(&admin, Section::Jobs, &question, consequence, &format!("/console/jobs/{id}/stop"), "Stop it")))
}

fn unknown_execution(id: i64) -> ConsoleError {
    ConsoleError::refused(StatusCode::NOT_FOUND, format!("there is no execution {id}"))
}

/// Stops execution `id` through the function `settle-batch stop` uses, recorded with who and when.
pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    confirmed: ConfirmedAction,
) -> Result<Response, ConsoleError> {
    let outcome = match jobs::request_stop(&state.pool, id).await? {
        Ok(()) => ActionOutcome::Done,
        Err(None) => return Err(unknown_execution(id)),
        Err(Some(status)) => {
            ActionOutcome::Refused(format!("execution {id} is {status}: only a running one can be stopped"))
        }
    };
    let done = format!("Stop requested: execution {id} ends within one chunk as STOPPED.");
    confirmed.conclude(&state, (ConsoleAction::StopExecution, format!("execution {id}")), outcome, &done).await
}

fn schedule_table(entries: &[ScheduledEntry]) -> Markup {
    let time = |at: Option<chrono::DateTime<Utc>>| at.map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string());
    html! {
        @if entries.is_empty() { p.empty { "No scheduler has published its schedule here yet." } } @else {
            table.schedule {
                thead { tr { th { "entry" } th { "cron" } th { "runs" } th { "next (UTC)" } th { "last firing (UTC)" } th { "" } } }
                tbody { @for entry in entries {
                    tr data-entry=(entry.name) {
                        td { (entry.name) } td { code { (entry.cron) } " " (entry.timezone) } td.message { (entry.runs) }
                        td { (time(entry.next_at).unwrap_or_else(|| "never".to_owned())) }
                        td { @if let Some(status) = &entry.last_status {
                            (time(entry.last_started_at).unwrap_or_default()) " " span.status data-status=(status) { (status) }
                        } }
                        td { @if entry.requests_open > 0 { span.stopping { "requested…" } } @else {
                            a.action href={ "/console/schedule/" (entry.name) "/run" } { "Run now" }
                        } }
                    }
                } }
            }
        }
    }
}

/// Asks before running scheduler entry `name` now.
pub async fn confirm_run(admin: ConsoleAdmin, Path(name): Path<String>) -> Result<Response, ConsoleError> {
    let question = format!("Run the scheduler entry {name:?} now?");
    let consequence = "The leading settle-scheduler fires it within a second, as one more firing beside its schedule.";
    let path = format!("/console/schedule/{name}/run");
    Ok(render(confirm(&admin, Section::Jobs, &question, consequence, &path, "Run it now")))
}

/// Queues a run-now request for the leading scheduler, recorded with who and when.
pub async fn run_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
    confirmed: ConfirmedAction,
) -> Result<Response, ConsoleError> {
    let who = format!("console:{}", confirmed.email());
    let outcome = match jobs::request_run(&state.pool, &name, &who).await? {
        Some(_) => ActionOutcome::Done,
        None => ActionOutcome::Refused(format!("the published schedule has no entry {name:?}")),
    };
    let done = format!("{name} is queued: the leading scheduler fires it within a second.");
    confirmed.conclude(&state, (ConsoleAction::RunEntryNow, format!("entry {name}")), outcome, &done).await
}

/// Asks before restarting execution `id`.
pub async fn confirm_restart(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<i64>,
) -> Result<Response, ConsoleError> {
    let run = jobs::execution(&state.pool, id).await?.ok_or_else(|| unknown_execution(id))?;
    let question = format!("Restart execution {id}, {} for {} ({})?", run.job_name, run.job_key, run.status);
    let consequence = "The leading settle-scheduler runs `settle-batch restart`: only the partitions that did not complete run again.";
    Ok(render(confirm(
        &admin,
        Section::Jobs,
        &question,
        consequence,
        &format!("/console/jobs/{id}/restart"),
        "Restart it",
    )))
}

/// Queues a restart of execution `id` for the leading scheduler, recorded with who and when.
pub async fn restart(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    confirmed: ConfirmedAction,
) -> Result<Response, ConsoleError> {
    let who = format!("console:{}", confirmed.email());
    let outcome = match jobs::request_restart(&state.pool, id, &who).await? {
        Ok(()) => ActionOutcome::Done,
        Err(None) => return Err(unknown_execution(id)),
        Err(Some(status)) => ActionOutcome::Refused(format!(
            "execution {id} is {status}: only a FAILED or STOPPED one is restarted, once at a time"
        )),
    };
    let done = format!("Restart of execution {id} queued: the leading scheduler runs it within a second.");
    confirmed.conclude(&state, (ConsoleAction::RestartExecution, format!("execution {id}")), outcome, &done).await
}
