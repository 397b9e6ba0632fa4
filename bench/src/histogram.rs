//! Server-side latency from the API's own histogram: the difference of two `/metrics` scrapes taken
//! around a load run, so only that run's requests count, and the quantile interpolated within its bucket
//! the way Prometheus' `histogram_quantile` does.

use anyhow::{bail, Context};
use std::{collections::BTreeMap, path::PathBuf};

#[derive(clap::Args, Debug)]
pub struct QuantileArgs {
    /// Scrape taken before the run.
    #[arg(long)]
    before: PathBuf,
    /// Scrape taken after the run.
    #[arg(long)]
    after: PathBuf,
    /// The histogram's name.
    #[arg(long, default_value = "http_server_request_duration_seconds")]
    metric: String,
    /// The route label, e.g. /api/v2/points/users/{user_id}/balance: its successful (2xx) answers only.
    #[arg(long)]
    route: Option<String>,
    /// Another label the samples must carry, as name=value (e.g. page=now).
    #[arg(long, value_parser = label_pair)]
    label: Option<(String, String)>,
    /// Quantile between 0 and 1.
    #[arg(long, default_value_t = 0.99)]
    quantile: f64,
}

fn label_pair(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("expected name=value")?;
    Ok((name.to_owned(), value.to_owned()))
}

pub fn run(args: QuantileArgs) -> anyhow::Result<()> {
    let selector = Selector::new(&args.metric, args.route.as_deref(), args.label.as_ref());
    let before = buckets(&std::fs::read_to_string(&args.before)?, &selector)?;
    let after = buckets(&std::fs::read_to_string(&args.after)?, &selector)?;
    let run: Vec<(f64, u64)> =
        after.iter().map(|(le, count)| (le.0, count - before.get(le).copied().unwrap_or(0))).collect();
    let (seconds, total) = quantile(&run, args.quantile)?;
    println!("{:.3} ms p{} of {total} samples", seconds * 1_000.0, args.quantile * 100.0);
    Ok(())
}

/// Which bucket lines count: the histogram's, carrying every label wanted, and a 2xx status when a
/// route is named.
struct Selector {
    prefix: String,
    labels: Vec<String>,
}

impl Selector {
    fn new(metric: &str, route: Option<&str>, label: Option<&(String, String)>) -> Self {
        let mut labels: Vec<String> = route.map(|route| format!("route=\"{route}\"")).into_iter().collect();
        if route.is_some() {
            labels.push("status=\"2".to_owned());
        }
        labels.extend(label.map(|(name, value)| format!("{name}=\"{value}\"")));
        Self { prefix: format!("{metric}_bucket{{"), labels }
    }

    fn wants(&self, line: &str) -> bool {
        line.starts_with(&self.prefix) && self.labels.iter().all(|label| line.contains(label.as_str()))
    }
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

/// Cumulative counts per upper bound of the samples `selector` wants, summed over their other labels.
fn buckets(scrape: &str, selector: &Selector) -> anyhow::Result<BTreeMap<Le, u64>> {
    let mut buckets = BTreeMap::new();
    for line in scrape.lines().filter(|line| selector.wants(line)) {
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
        bail!("no samples of that histogram between the two scrapes");
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
        let selector = Selector::new("http_server_request_duration_seconds", Some("/a"), None);
        let read = buckets(scrape, &selector).expect("parsed");
        assert_eq!(read.into_iter().map(|(le, n)| (le.0, n)).collect::<Vec<_>>(), vec![(0.001, 7), (f64::INFINITY, 9)]);
    }

    #[test]
    fn another_histogram_is_selected_by_a_label() {
        let scrape = "\
console_live_render_duration_seconds_bucket{page=\"now\",le=\"0.01\"} 3
console_live_render_duration_seconds_bucket{page=\"workers\",le=\"0.01\"} 50
http_server_request_duration_seconds_bucket{page=\"now\",le=\"0.01\"} 70";
        let page = ("page".to_owned(), "now".to_owned());
        let selector = Selector::new("console_live_render_duration_seconds", None, Some(&page));
        let read = buckets(scrape, &selector).expect("parsed");
        assert_eq!(read.into_iter().map(|(le, n)| (le.0, n)).collect::<Vec<_>>(), vec![(0.01, 3)]);
    }
}
