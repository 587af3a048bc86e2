//! What the client tells the user.
//!
//! Text (default): one line per request on stdout, numbered, with the
//! server, the latency and the reply (`[ 37/100] 127.0.0.1:8898 0.21ms
//! 127.0.0.1:8898: 2026-…`), a failure on the same stream (`[ 38/100]
//! FAILED …`); the summary on stderr, a few short lines.
//!
//! Plain (`--plain`): the seed Go client's two lines per answered request,
//! `connect host: <ip:port>` and the reply; failures are logged.
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
    /// A numbered line per request on stdout, the summary on stderr.
    #[default]
    Text,
    /// The seed Go client's two lines per answered request on stdout.
    Plain,
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
    /// The requests the run was asked to make.
    pub planned: u64,
    /// Whether a stop (Ctrl-C) ended the run before `planned` requests.
    pub interrupted: bool,
    /// Whether stdout was closed (`| head -1`): the run stopped quietly.
    pub output_closed: bool,
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

    /// The summary as a few short lines of text: counts, latency (when
    /// something succeeded), requests per server.
    pub fn line(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), format_ms);
        let mut text = if self.interrupted {
            format!(
                "interrupted after {} of {} requests: ",
                self.total(),
                self.planned
            )
        } else {
            format!("{} requests: ", self.total())
        };
        text.push_str(&format!("{} ok, {} failed", self.ok, self.failed));
        if self.retries > 0 {
            text.push_str(&format!(" ({} retried)", self.retries));
        }
        if self.ok > 0 {
            text.push_str(&format!(
                "\nlatency: p50 {}, p99 {}, max {}",
                ms(self.latency_quantile(0.5)),
                ms(self.latency_quantile(0.99)),
                ms(self.latency_quantile(1.0)),
            ));
            let servers: Vec<String> = self
                .per_server
                .iter()
                .map(|(e, n)| format!("{e} {n}"))
                .collect();
            text.push_str(&format!("\nservers: {}", servers.join(", ")));
        }
        text
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line())
    }
}

/// A latency as people read it: `0.21ms`, `12.3ms`, `1.20s`.
fn format_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1e3)
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
    planned: u64,
    interrupted: bool,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Writes one request's result; `count` is the run's number of requests
/// (for the width of the numbering).
///
/// # Errors
///
/// When `out` fails (a closed pipe): the caller stops the run.
pub fn request(
    out: &mut impl Write,
    format: Format,
    report: &RequestReport,
    count: u64,
) -> std::io::Result<()> {
    match format {
        Format::Text => {
            let width = count.to_string().len();
            let seq = report.seq;
            match &report.result {
                Ok((endpoint, reply)) => writeln!(
                    out,
                    "[{seq:>width$}/{count}] {endpoint} {} {reply}",
                    format_ms(report.latency)
                )?,
                Err(err) => writeln!(out, "[{seq:>width$}/{count}] FAILED {err}")?,
            }
        }
        Format::Plain => match &report.result {
            Ok((endpoint, reply)) => writeln!(out, "connect host: {endpoint}\n{reply}")?,
            Err(err) => tracing::warn!("request {} failed: {err}", report.seq),
        },
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
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        }
    }
    out.flush()
}

/// Writes the summary: on stderr as text, or on `out` as JSON.
pub fn summary(out: &mut impl Write, format: Format, summary: &Summary) {
    match format {
        Format::Text | Format::Plain => eprintln!("{}", summary.line()),
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
                planned: summary.planned,
                interrupted: summary.interrupted,
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
    fn text_lines_are_numbered_with_server_latency_and_reply() {
        let endpoint: Endpoint = "127.0.0.1:8898".parse().expect("a valid literal");
        let mut out = Vec::new();
        let ok = RequestReport {
            seq: 37,
            result: Ok((endpoint, "127.0.0.1:8898: 2026-11-27T20:00:00Z".into())),
            attempts: 1,
            latency: Duration::from_micros(210),
        };
        let failed = RequestReport {
            seq: 38,
            result: Err("no servers registered under /go_servers".into()),
            ..ok.clone()
        };
        request(&mut out, Format::Text, &ok, 100).expect("writes to a Vec");
        request(&mut out, Format::Text, &failed, 100).expect("writes to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "[ 37/100] 127.0.0.1:8898 0.21ms 127.0.0.1:8898: 2026-11-27T20:00:00Z\n\
             [ 38/100] FAILED no servers registered under /go_servers\n"
        );
    }

    #[test]
    fn the_summary_leaves_out_latency_when_nothing_succeeded_and_says_interrupted() {
        let failed = RequestReport {
            seq: 1,
            result: Err("down".into()),
            attempts: 1,
            latency: Duration::from_millis(1),
        };
        let mut summary = Summary {
            planned: 100,
            interrupted: true,
            ..Summary::default()
        };
        summary.record(&failed);
        assert_eq!(
            summary.line(),
            "interrupted after 1 of 100 requests: 0 ok, 1 failed"
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
        request(&mut out, Format::Json, &report, 1).expect("writes to a Vec");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(value["server"], "127.0.0.1:1");
        assert_eq!(value["attempts"], 2);
        assert_eq!(value["latency_ms"], 1.5);
    }
}
