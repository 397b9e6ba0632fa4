use anyhow::Context;
use futures::{stream, StreamExt};
use std::{collections::BTreeMap, path::PathBuf, time::Instant};

#[derive(clap::Args, Debug)]
pub struct RushArgs {
    /// Base URL of settle-api.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// v1, v2 or v3.
    #[arg(long, default_value = "v3")]
    version: String,
    /// "token policy" lines from seed-rush.
    #[arg(long)]
    requests: PathBuf,
    /// How many times each line is sent (a second ask by the same user must be refused).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

pub async fn run(args: RushArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.requests).with_context(|| format!("reading {:?}", args.requests))?;
    let lines: Vec<(String, String)> =
        text.lines().filter_map(|line| line.split_once(' ').map(|(t, p)| (t.to_owned(), p.to_owned()))).collect();
    let client = reqwest::Client::new();
    let url = format!("{}/api/{}/coupons", args.url, args.version);
    let started = Instant::now();
    let answers: Vec<String> = stream::iter((0..args.repeat).flat_map(|_| lines.iter()))
        .map(|(token, policy)| {
            let request = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(format!("{{\"couponPolicyId\":{policy}}}"));
            async move { crate::latency::outcome(request.send().await).await }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for answer in answers {
        *tally.entry(answer).or_default() += 1;
    }
    let total: usize = tally.values().sum();
    println!(
        "{total} {} requests in {:.2} s ({:.0}/s):",
        args.version,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    for (answer, count) in tally {
        println!("  {count:>7}  {answer}");
    }
    Ok(())
}
