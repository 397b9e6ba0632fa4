//! What every console action shares: a confirmation page first, then one POST carrying the session's CSRF
//! token, recorded with who and when whether it was done or refused, and a page saying which.

use super::{
    page::{page, render, ConsoleError, Section},
    session::{stale_form, ConsoleAdmin, CsrfForm},
};
use crate::{http::middleware::TraceId, AppState};
use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};
use infra::accounts::console::{record_action, ActionOutcome, ConsoleAction};
use maud::{html, Markup};

/// The confirmation every action asks for first: what it will do, and one form that posts it.
pub fn confirm(
    admin: &ConsoleAdmin,
    section: Section,
    question: &str,
    consequence: &str,
    path: &str,
    button: &str,
) -> Markup {
    let body = html! {
        p.question { (question) }
        p { (consequence) }
        form.confirm method="post" action=(path) {
            input type="hidden" name="csrf" value=(admin.session.csrf);
            button type="submit" { (button) }
            " " a href=(section.path()) { "Cancel" }
        }
    };
    page("Confirm", Some(admin), Some(section), body)
}

/// The page an action ends on: what was done, or why it was refused (409).
fn action_result(admin: &ConsoleAdmin, section: Section, outcome: &ActionOutcome, done: &str) -> Response {
    let (status, title, message) = match outcome {
        ActionOutcome::Done => (StatusCode::OK, "Done", done),
        ActionOutcome::Refused(why) => (StatusCode::CONFLICT, "Refused", why.as_str()),
    };
    let body = html! {
        p.outcome role="status" data-outcome=(title) { (message) }
        p { a href=(section.path()) { "Back" } }
    };
    (status, render(page(title, Some(admin), Some(section), body))).into_response()
}

/// The POST that takes a confirmed action: a signed-in admin whose form carried the session's CSRF token.
pub struct ConfirmedAction {
    admin: ConsoleAdmin,
    trace_id: String,
}

impl FromRequest<AppState> for ConfirmedAction {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ConsoleError> {
        let (mut parts, body) = request.into_parts();
        let admin = ConsoleAdmin::from_request_parts(&mut parts, state).await?;
        let trace_id = parts.extensions.get::<TraceId>().map(|TraceId(id)| id.clone()).unwrap_or_default();
        let request = Request::from_parts(parts, body);
        let Form(form) = Form::<CsrfForm>::from_request(request, state).await.map_err(|_| stale_form())?;
        admin.check_csrf(&form.csrf)?;
        Ok(ConfirmedAction { admin, trace_id })
    }
}

impl ConfirmedAction {
    /// Who confirmed it.
    pub fn email(&self) -> &str {
        &self.admin.session.email
    }

    /// Records what `action` on `target` came to, with who and when, and answers with its page (`done`
    /// says what was done).
    pub async fn conclude(
        self,
        state: &AppState,
        (action, target): (ConsoleAction, String),
        outcome: ActionOutcome,
        done: &str,
    ) -> Result<Response, ConsoleError> {
        let (admin, trace_id) = (&self.admin, Some(self.trace_id.as_str()));
        record_action(&state.pool, admin.session.user, action, &target, &outcome, trace_id).await?;
        tracing::info!(user = %admin.session.user, ?action, target, ?outcome, "console action");
        let section = match action {
            ConsoleAction::StopExecution | ConsoleAction::RunEntryNow | ConsoleAction::RestartExecution => {
                Section::Jobs
            }
            ConsoleAction::RedriveOutboxRow => Section::Workers,
        };
        Ok(action_result(admin, section, &outcome, done))
    }
}
