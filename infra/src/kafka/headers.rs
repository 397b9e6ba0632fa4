use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The Kafka header that carries a request's trace id to whoever consumes the record.
pub const TRACE_ID_HEADER: &str = "trace_id";

pub fn with_trace_id(headers: OwnedHeaders, trace_id: &str) -> OwnedHeaders {
    headers.insert(Header { key: TRACE_ID_HEADER, value: Some(trace_id) })
}

/// The trace id a record carries, if any and if it is valid UTF-8.
pub fn trace_id_from<H: Headers>(headers: Option<&H>) -> Option<String> {
    let headers = headers?;
    headers
        .iter()
        .find(|header| header.key == TRACE_ID_HEADER)
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
        .map(str::to_owned)
}
