//! Server-side latency from the API's own histogram: the difference of two `/metrics` scrapes taken
//! around a load run, so only that run's requests count, and the quantile interpolated within its bucket
//! the way Prometheus' `histogram_quantile` does.

use anyhow::{bail, Context};
use std::{collections::BTreeMap, path::PathBuf};

const METRIC: &str = "http_server_request_duration_seconds_bucket{";

#[derive(clap::Args, Debug)]
pub struct QuantileArgs {
    /// Scrape taken before the run.
    #[arg(long)]
    before: PathBuf,
    /// Scrape taken after the run.
    #[arg(long)]
    after: PathBuf,
    /// The route label, e.g. /api/v2/points/users/{user_id}/balance.
    #[arg(long)]
    route: String,
    /// Quantile between 0 and 1.
    #[arg(long, default_value_t = 0.99)]
    quantile: f64,
}

pub fn run(args: QuantileArgs) -> anyhow::Result<()> {
    let before = buckets(&std::fs::read_to_string(&args.before)?, &args.route)?;
    let after = buckets(&std::fs::read_to_string(&args.after)?, &args.route)?;
    let run: Vec<(f64, u64)> =
        after.iter().map(|(le, count)| (le.0, count - before.get(le).copied().unwrap_or(0))).collect();
    let (seconds, total) = quantile(&run, args.quantile)?;
    println!("{:.3} ms p{} of {total} requests", seconds * 1_000.0, args.quantile * 100.0);
    Ok(())
}

/// Upper bounds are f64 in the exposition format; ordered by a wrapper so they can key a map.
#[derive(Debug, Clone, Copy)]
struct Le(f64);
impl PartialEq for Le {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Le {}
impl PartialOrd for Le {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Le {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Cumulative counts per upper bound for successful (2xx) requests of `route`, summed over methods.
fn buckets(scrape: &str, route: &str) -> anyhow::Result<BTreeMap<Le, u64>> {
    let route_label = format!("route=\"{route}\"");
    let mut buckets = BTreeMap::new();
    for line in scrape.lines().filter(|l| l.starts_with(METRIC) && l.contains(&route_label) && l.contains("status=\"2"))
    {
        let (labels, value) = line.rsplit_once(' ').context("a sample line has a value")?;
        let le = labels.split("le=\"").nth(1).and_then(|rest| rest.split('"').next()).context("le label")?;
        let le = if le == "+Inf" { f64::INFINITY } else { le.parse()? };
        *buckets.entry(Le(le)).or_insert(0) += value.parse::<u64>()?;
    }
    Ok(buckets)
}

/// The `q` quantile of cumulative buckets, interpolated linearly inside the bucket that holds it.
fn quantile(buckets: &[(f64, u64)], q: f64) -> anyhow::Result<(f64, u64)> {
    let total = buckets.last().map_or(0, |(_, count)| *count);
    if total == 0 {
        bail!("no requests of that route between the two scrapes");
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0);
    for &(le, count) in buckets {
        if count as f64 >= rank {
            if le.is_infinite() {
                return Ok((lower, total));
            }
            let inside = (count - below) as f64;
            return Ok((lower + (le - lower) * (rank - below as f64) / inside.max(1.0), total));
        }
        (lower, below) = (le, count);
    }
    Ok((lower, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_is_interpolated_inside_its_bucket() {
        // 100 requests: 90 under 0.5 ms, 10 between 0.5 and 1 ms.
        let buckets = [(0.0005, 90), (0.001, 100), (f64::INFINITY, 100)];
        let (p99, total) = quantile(&buckets, 0.99).expect("quantile");
        assert_eq!(total, 100);
        assert!((p99 - 0.00095).abs() < 1e-9, "{p99}");
    }

    #[test]
    fn buckets_of_one_route_are_read_and_other_routes_ignored() {
        let scrape = "\
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status=\"200\",le=\"0.001\"} 7
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status=\"200\",le=\"+Inf\"} 9
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/b\",status=\"200\",le=\"0.001\"} 100
http_server_request_duration_seconds_bucket{method=\"GET\",route=\"/a\",status=\"404\",le=\"0.001\"} 100";
        let read = buckets(scrape, "/a").expect("parsed");
        assert_eq!(read.into_iter().map(|(le, n)| (le.0, n)).collect::<Vec<_>>(), vec![(0.001, 7), (f64::INFINITY, 9)]);
    }
}
