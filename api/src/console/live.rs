//! A page's live part: rendered again every `TICK` and sent on one Server-Sent Events stream per open
//! page, which htmx swaps in. A render that fails is skipped (the page keeps its last one) rather than
//! ending the stream; the stream ends when the page is closed.

use super::page::ConsoleError;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{stream, Stream};
use maud::{html, Markup, PreEscaped};
use serde::Serialize;
use std::{convert::Infallible, future::Future, time::Duration};

/// How often a live part is sent again: a page shows a change within this (the issue asks for 2 s).
pub const TICK: Duration = Duration::from_secs(1);

pub fn every_tick<F, Fut>(event: &'static str, render: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Markup, ConsoleError>> + Send,
{
    let ticks = stream::unfold((render, tokio::time::interval(TICK)), move |(mut render, mut interval)| async move {
        interval.tick().await;
        let started = std::time::Instant::now();
        let rendered = render().await;
        // What a live page costs the server per tick (the benchmark holds the Now page's p99 under 50 ms).
        metrics::histogram!("console_live_render_duration_seconds", "page" => event)
            .record(started.elapsed().as_secs_f64());
        let sent = match rendered {
            Ok(markup) => Event::default().event(event).data(markup.into_string()),
            Err(error) => {
                tracing::warn!(?error, event, "console: rendering a live part failed");
                Event::default().comment("rendering failed")
            }
        };
        Some((Ok(sent), (render, interval)))
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}

/// One series' value in a live chart's reading: console.js appends it to the series named `key`.
#[derive(Debug, Serialize)]
pub struct ChartPoint<'a> {
    pub key: &'a str,
    pub label: &'a str,
    pub value: i64,
}

/// A chart's numbers for this reading, as a JSON script block with id `id` that the chart element's
/// `data-chart-from` names. A JSON block runs nothing, so the CSP allows it; it is raw (a browser decodes
/// no entities there) with `<` escaped inside the JSON strings, so no label can close the block.
pub fn chart_data(id: &str, points: &[ChartPoint<'_>]) -> Markup {
    let json = serde_json::to_string(points).unwrap_or_else(|_| "[]".to_owned()).replace('<', "\\u003c");
    html! { script id=(id) type="application/json" { (PreEscaped(json)) } }
}
