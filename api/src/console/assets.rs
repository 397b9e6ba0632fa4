//! The console's files, compiled in: it loads nothing from the network, at build time or in the browser.
//! Vendored files carry their version in their name and are cached for a year; the console's own for
//! five minutes.

use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};

/// (name, content type, content, versioned).
const FILES: [(&str, &str, &str, bool); 7] = [
    ("console.css", "text/css; charset=utf-8", include_str!("assets/console.css"), false),
    ("console.js", "text/javascript; charset=utf-8", include_str!("assets/console.js"), false),
    ("favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg"), false),
    ("htmx-2.0.11.min.js", "text/javascript; charset=utf-8", include_str!("assets/vendor/htmx-2.0.11.min.js"), true),
    (
        "htmx-ext-sse-2.2.4.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/htmx-ext-sse-2.2.4.min.js"),
        true,
    ),
    ("uPlot-1.6.32.min.js", "text/javascript; charset=utf-8", include_str!("assets/vendor/uPlot-1.6.32.min.js"), true),
    ("uPlot-1.6.32.min.css", "text/css; charset=utf-8", include_str!("assets/vendor/uPlot-1.6.32.min.css"), true),
];

/// The scripts a live page loads, in order (htmx, its SSE extension, the chart library, the console's own).
pub const LIVE_SCRIPTS: [&str; 4] =
    ["htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.min.js", "uPlot-1.6.32.min.js", "console.js"];
pub const CHART_STYLESHEET: &str = "uPlot-1.6.32.min.css";

pub async fn asset(Path(name): Path<String>) -> Response {
    let Some((_, content_type, content, versioned)) = FILES.iter().find(|(file, ..)| *file == name) else {
        return (StatusCode::NOT_FOUND, "no such console asset").into_response();
    };
    let cache = if *versioned { "public, max-age=31536000, immutable" } else { "max-age=300" };
    ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, cache)], *content).into_response()
}
