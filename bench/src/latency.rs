//! What the load tools share: how an answer is named, and quantiles of latencies.

/// An answer as "STATUS" or "STATUS CODE" (the problem body's code), or the transport error.
pub async fn outcome(sent: reqwest::Result<reqwest::Response>) -> String {
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            match body["code"].as_str() {
                Some(code) => format!("{status} {code}"),
                None => status.to_string(),
            }
        }
        Err(error) => format!("transport error: {error}"),
    }
}

/// The `q` quantile of latencies in microseconds, in milliseconds (0 for none); sorts `micros`.
pub fn quantile(micros: &mut [u64], q: f64) -> f64 {
    if micros.is_empty() {
        return 0.0;
    }
    micros.sort_unstable();
    let index = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
    micros[index] as f64 / 1_000.0
}
