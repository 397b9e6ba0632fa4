//! A page's live part: rendered again every `TICK` and sent on one Server-Sent Events stream per open
//! page, which htmx swaps in. A render that fails is skipped (the page keeps its last one) rather than
//! ending the stream; the stream ends when the page is closed.

use super::page::ConsoleError;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{stream, Stream};
use maud::Markup;
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
        let sent = match render().await {
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
