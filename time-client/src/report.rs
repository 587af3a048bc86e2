//! What the client tells the user.
//!
//! Text (default): per request, on stdout, the post's two lines,
//! `connect host: <ip:port>` and the server's reply, so the output can be
//! piped; failures, retries and the summary go to stderr.
//!
//! JSON (`--json`): one object per request and a final summary object on
//! stdout, one per line, for scripts.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use zkutil::Endpoint;

/// How the results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The post's lines on stdout, the summary on stderr.
    #[default]
    Text,
    /// JSON objects on stdout, one per line.
    Json,
}

/// The result of one request, after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestReport {
    /// 1-based request number.
    pub seq: u64,
    /// The server that answered, or the error of the last attempt.
    pub result: Result<(Endpoint, String), String>,
    /// Attempts made (1 when no retry was needed).
    pub attempts: u32,
    /// From the first attempt to the answer (or the final failure).
    pub latency: Duration,
}

/// Latencies of a run in a fixed-size histogram: microseconds from 1 µs to
/// one hour, 3 significant digits (0.1 %). Its memory is fixed when it is
/// made (no auto-resize), so a client that runs for 100 million requests
/// uses no more than one that runs for 100; a list of every latency grew by
/// 16 bytes per request.
#[derive(Debug, Clone)]
pub struct Latencies(hdrhistogram::Histogram<u64>);

/// The largest latency recorded exactly; longer ones count as this.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies(
            hdrhistogram::Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .expect("constant bounds and 3 significant digits are valid"),
        )
    }
}

impl PartialEq for Latencies {
    fn eq(&self, other: &Latencies) -> bool {
        self.0 == other.0
    }
}

impl Eq for Latencies {}

impl Latencies {
    /// Adds one latency (clamped to the histogram's range).
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0
            .saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The latency at quantile `q` (0.0–1.0); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let micros = if q >= 1.0 {
            self.0.max()
        } else {
            self.0.value_at_quantile(q)
        };
        Some(Duration::from_micros(micros))
    }
}

/// Counts and latencies of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Requests answered correctly.
    pub ok: usize,
    /// Requests that failed after every retry.
    pub failed: usize,
    /// Attempts beyond the first, over all requests.
    pub retries: usize,
    /// Answered requests per server.
    pub per_server: BTreeMap<Endpoint, usize>,
    /// Latency of every request, as a histogram.
    pub latencies: Latencies,
    /// The discovery snapshot version at the end.
    pub discovery_version: u64,
}

impl Summary {
    /// Adds one request's result.
    pub fn record(&mut self, report: &RequestReport) {
        match &report.result {
            Ok((endpoint, _)) => {
                self.ok += 1;
                *self.per_server.entry(*endpoint).or_default() += 1;
            }
            Err(_) => self.failed += 1,
        }
        self.retries += report.attempts.saturating_sub(1) as usize;
        self.latencies.record(report.latency);
    }

    /// All requests made.
    pub fn total(&self) -> usize {
        self.ok + self.failed
    }

    /// The latency at quantile `q` (0.0–1.0), nearest rank (to the
    /// histogram's precision, 0.1 %).
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        self.latencies.quantile(q)
    }

    /// The summary as one line of text.
    pub fn line(&self) -> String {
        let servers: Vec<String> = self
            .per_server
            .iter()
            .map(|(e, n)| format!("{e}={n}"))
            .collect();
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "-".to_owned(),
                |d| format!("{:.2}ms", d.as_secs_f64() * 1e3),
            )
        };
        format!(
            "summary: {} requests, {} ok, {} failed, {} retries; latency p50 {} p99 {} max {}; \
             discovery version {}; per server: {}",
            self.total(),
            self.ok,
            self.failed,
            self.retries,
            ms(self.latency_quantile(0.5)),
            ms(self.latency_quantile(0.99)),
            ms(self.latency_quantile(1.0)),
            self.discovery_version,
            if servers.is_empty() {
                "none".to_owned()
            } else {
                servers.join(" ")
            }
        )
    }
}

#[derive(Serialize)]
struct JsonRequest<'a> {
    r#type: &'static str,
    seq: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    attempts: u32,
    latency_ms: f64,
}

#[derive(Serialize)]
struct JsonLatency {
    p50: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

#[derive(Serialize)]
struct JsonSummary {
    r#type: &'static str,
    requests: usize,
    ok: usize,
    failed: usize,
    retries: usize,
    per_server: BTreeMap<String, usize>,
    latency_ms: JsonLatency,
    discovery_version: u64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Writes one request's result. Write errors (a closed pipe) are ignored:
/// they must not stop the run.
pub fn request(out: &mut impl Write, format: Format, report: &RequestReport) {
    if let Err(err) = &report.result {
        tracing::warn!("request {} failed: {err}", report.seq);
    }
    match format {
        Format::Text => {
            if let Ok((endpoint, reply)) = &report.result {
                let _ = writeln!(out, "connect host: {endpoint}\n{reply}");
            }
        }
        Format::Json => {
            let (server, reply, error) = match &report.result {
                Ok((endpoint, reply)) => (Some(endpoint.to_string()), Some(reply.as_str()), None),
                Err(err) => (None, None, Some(err.as_str())),
            };
            let line = JsonRequest {
                r#type: "request",
                seq: report.seq,
                ok: report.result.is_ok(),
                server,
                reply,
                error,
                attempts: report.attempts,
                latency_ms: ms(report.latency),
            };
            let _ = serde_json::to_writer(&mut *out, &line);
            let _ = writeln!(out);
        }
    }
    let _ = out.flush();
}

/// Writes the summary: on stderr as text, or on `out` as JSON.
pub fn summary(out: &mut impl Write, format: Format, summary: &Summary) {
    match format {
        Format::Text => eprintln!("{}", summary.line()),
        Format::Json => {
            let line = JsonSummary {
                r#type: "summary",
                requests: summary.total(),
                ok: summary.ok,
                failed: summary.failed,
                retries: summary.retries,
                per_server: summary
                    .per_server
                    .iter()
                    .map(|(e, n)| (e.to_string(), *n))
                    .collect(),
                latency_ms: JsonLatency {
                    p50: summary.latency_quantile(0.5).map(ms),
                    p99: summary.latency_quantile(0.99).map(ms),
                    max: summary.latency_quantile(1.0).map(ms),
                },
                discovery_version: summary.discovery_version,
            };
            let _ = serde_json::to_writer(&mut *out, &line);
            let _ = writeln!(out);
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank_within_a_tenth_of_a_percent() {
        let mut summary = Summary::default();
        for ms in 1..=100 {
            summary.latencies.record(Duration::from_millis(ms));
        }
        let near = |q: f64, ms: u64| {
            let got = summary.latency_quantile(q).expect("a quantile");
            let want = Duration::from_millis(ms);
            assert!(
                got.abs_diff(want) <= want / 1000,
                "q{q}: {got:?}, expected {want:?}"
            );
        };
        near(0.5, 50);
        near(0.99, 99);
        near(1.0, 100);
        assert_eq!(Summary::default().latency_quantile(0.5), None);
    }

    #[test]
    fn a_million_latencies_fit_in_the_same_histogram() {
        let mut latencies = Latencies::default();
        for i in 0..1_000_000u64 {
            latencies.record(Duration::from_micros(1 + (i * 7919) % 5_000_000));
        }
        latencies.record(Duration::from_secs(1_000_000));
        assert_eq!(latencies.len(), 1_000_001);
        assert!(!latencies.0.is_auto_resize(), "its memory is fixed");
        let max = latencies.quantile(1.0).expect("a maximum");
        assert!(
            max.abs_diff(Duration::from_secs(3600)) <= Duration::from_secs(4),
            "clamped to an hour, not lost: {max:?}"
        );
    }

    #[test]
    fn json_lines_parse_back() {
        let endpoint: Endpoint = "127.0.0.1:1".parse().expect("a valid literal");
        let report = RequestReport {
            seq: 1,
            result: Ok((endpoint, "127.0.0.1:1: now".into())),
            attempts: 2,
            latency: Duration::from_micros(1500),
        };
        let mut out = Vec::new();
        request(&mut out, Format::Json, &report);
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(value["server"], "127.0.0.1:1");
        assert_eq!(value["attempts"], 2);
        assert_eq!(value["latency_ms"], 1.5);
    }
}
