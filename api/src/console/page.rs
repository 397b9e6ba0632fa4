//! The frame every console page shares, and its error pages.

use super::{
    assets::{CHART_STYLESHEET, LIVE_SCRIPTS},
    session::ConsoleAdmin,
};
use crate::http::ApiError;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use maud::{html, Markup, DOCTYPE};

/// The console's pages, in the order its navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Now,
    Workers,
    Jobs,
    Settlement,
    Lookup,
}

impl Section {
    const ALL: [Section; 5] = [Section::Now, Section::Workers, Section::Jobs, Section::Settlement, Section::Lookup];

    fn title(self) -> &'static str {
        match self {
            Section::Now => "Now",
            Section::Workers => "Workers",
            Section::Jobs => "Jobs",
            Section::Settlement => "Settlement",
            Section::Lookup => "Orders and users",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Section::Now => "/console/now",
            Section::Workers => "/console/workers",
            Section::Jobs => "/console/jobs",
            Section::Settlement => "/console/settlement",
            Section::Lookup => "/console/lookup",
        }
    }
}

/// A whole page: `body` inside the frame, with the navigation and the admin's sign-out form when signed in.
pub fn page(title: &str, admin: Option<&ConsoleAdmin>, current: Option<Section>, body: Markup) -> Markup {
    frame(title, admin, current, body, false)
}

/// A page whose live parts update over Server-Sent Events (htmx) and draw charts (uPlot); without
/// JavaScript it is the same page, as of when it was loaded.
pub fn live_page(title: &str, admin: &ConsoleAdmin, current: Section, body: Markup) -> Markup {
    frame(title, Some(admin), Some(current), body, true)
}

fn frame(title: &str, admin: Option<&ConsoleAdmin>, current: Option<Section>, body: Markup, live: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · settle console" }
                link rel="stylesheet" href="/console/assets/console.css";
                link rel="icon" href="/console/assets/favicon.svg" type="image/svg+xml";
                @if live {
                    // No inline <style> from htmx: the CSP allows none.
                    meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                    link rel="stylesheet" href={ "/console/assets/" (CHART_STYLESHEET) };
                    @for script in LIVE_SCRIPTS { script src={ "/console/assets/" (script) } defer {} }
                }
            }
            body {
                header {
                    a.brand href="/console" { "settle" }
                    @if let Some(admin) = admin {
                        nav {
                            @for section in Section::ALL {
                                a href=(section.path()) aria-current=[(Some(section) == current).then_some("page")] {
                                    (section.title())
                                }
                            }
                        }
                        form.sign-out method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(admin.session.csrf);
                            span { (admin.session.email) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub fn render(markup: Markup) -> Response {
    Html(markup.into_string()).into_response()
}

/// What a console request may end in besides its page.
#[derive(Debug)]
pub enum ConsoleError {
    /// No live admin session: to the sign-in page.
    SignIn,
    /// A refusal the admin can act on, shown on a page with its status.
    Refused(StatusCode, String),
    Internal(anyhow::Error),
}

impl ConsoleError {
    pub fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        ConsoleError::Refused(status, message.into())
    }
}

impl From<sqlx::Error> for ConsoleError {
    fn from(error: sqlx::Error) -> Self {
        ConsoleError::Internal(error.into())
    }
}

impl From<anyhow::Error> for ConsoleError {
    fn from(error: anyhow::Error) -> Self {
        ConsoleError::Internal(error)
    }
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Internal(error) => ConsoleError::Internal(error),
            refusal => ConsoleError::Refused(refusal.status(), refusal.problem().detail),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ConsoleError::SignIn => return Redirect::to("/console/login").into_response(),
            ConsoleError::Refused(status, message) => (status, message),
            ConsoleError::Internal(error) => {
                tracing::error!(error = ?error, "console request failed");
                let message = "internal error; quote the x-trace-id response header when reporting it";
                (StatusCode::INTERNAL_SERVER_ERROR, message.to_owned())
            }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! { p.error role="alert" { (message) } p { a href="/console" { "Back to the console" } } };
        (status, render(page(title, None, None, body))).into_response()
    }
}
