//! A page's live part: rendered again every `TICK` and sent on one Server-Sent Events stream per open
//! page, which htmx swaps in. A render that fails is skipped (the page keeps its last one) rather than
//! ending the stream; the stream ends when the page is closed.

use super::page::ConsoleError;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{stream, Stream};
use maud::{html, Markup, PreEscaped};
use serde::Serialize;
use std::{
    convert::Infallible,
    future::Future,
    time::{Duration, Instant},
};
use tokio::sync::Mutex;

/// How often a live part is sent again: a page shows a change within this (the issue asks for 2 s).
pub const TICK: Duration = Duration::from_secs(1);

/// A reading younger than this is shared instead of read again: just under a tick, so every stream's
/// tick still shows a reading of that second.
const FRESH: Duration = Duration::from_millis(900);

/// The latest reading of a live part, shared by every page that shows it, so what the console costs the
/// database and the broker does not grow with the number of operators watching.
pub struct SharedReading<T> {
    latest: Mutex<Option<(Instant, T)>>,
}

impl<T: Clone> SharedReading<T> {
    pub fn new() -> Self {
        Self { latest: Mutex::new(None) }
    }

    /// The latest reading if it is fresh; else `read` makes one (given the previous, for rates). Pages
    /// that ask at once wait for that one read. A failed read is not kept: the next page tries again.
    pub async fn get<E, Fut>(&self, read: impl FnOnce(Option<T>) -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let mut latest = self.latest.lock().await;
        if let Some((at, reading)) = latest.as_ref() {
            if at.elapsed() < FRESH {
                return Ok(reading.clone());
            }
        }
        let reading = read(latest.as_ref().map(|(_, reading)| reading.clone())).await?;
        *latest = Some((Instant::now(), reading.clone()));
        Ok(reading)
    }
}

pub fn every_tick<F, Fut>(event: &'static str, render: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Markup, ConsoleError>> + Send,
{
    let ticks = stream::unfold((render, tokio::time::interval(TICK)), move |(mut render, mut interval)| async move {
        interval.tick().await;
        let started = Instant::now();
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
