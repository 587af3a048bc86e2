//! What a sample of durations comes down to in the report, and how a
//! figure is written there.

use std::time::Duration;

/// Median, p99, max and count of a sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Stats {
    pub fn of(sample: &[Duration]) -> Stats {
        let mut sorted = sample.to_vec();
        sorted.sort();
        let at = |q: f64| {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
            sorted.get(rank - 1).copied().unwrap_or_default()
        };
        Stats {
            n: sorted.len(),
            p50: at(0.5),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Median and p99 of a sample of signed times in nanoseconds: a watcher's
/// line can come before the writer saw its acknowledgement.
#[derive(Debug, Clone, Default)]
pub struct Signed {
    pub p50_ns: i64,
    pub p99_ns: i64,
}

impl Signed {
    pub fn of(sample: &[i64]) -> Signed {
        let mut sorted = sample.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
            sorted.get(rank - 1).copied().unwrap_or_default()
        };
        Signed {
            p50_ns: at(0.5),
            p99_ns: at(0.99),
        }
    }

    pub fn p50(&self) -> String {
        signed(self.p50_ns)
    }

    pub fn p99(&self) -> String {
        signed(self.p99_ns)
    }

    /// Median : `other`'s median; `None` unless both are positive (a ratio
    /// to nothing, or to less, says nothing).
    pub fn median_ratio(&self, other: &Signed) -> Option<f64> {
        (self.p50_ns > 0 && other.p50_ns > 0).then(|| self.p50_ns as f64 / other.p50_ns as f64)
    }

    /// [`Signed::median_ratio`] written as `1.23×`, or `—`.
    pub fn ratio_to(&self, other: &Signed) -> String {
        self.median_ratio(other)
            .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}×"))
    }
}

/// Formats signed nanoseconds as [`d`] does, with a minus sign when
/// negative.
pub fn signed(ns: i64) -> String {
    let magnitude = d(Duration::from_nanos(ns.unsigned_abs()));
    if ns < 0 {
        format!("−{magnitude}")
    } else {
        magnitude
    }
}

/// Formats a duration with a unit that suits it.
pub fn d(duration: Duration) -> String {
    let ns = duration.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `a : b`, NaN when `b` is zero (a section that measured nothing says so
/// rather than dividing by zero).
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

/// `a : b` of two durations, `b` at least a nanosecond.
pub fn ratio_of(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// A table of `rows` (name, stats): n, median, p99, max.
pub fn stats_table(md: &mut String, first_column: &str, rows: &[(String, Stats)]) {
    use std::fmt::Write as _;
    let _ = writeln!(
        md,
        "| {first_column} | n | median | p99 | max |\n|---|---:|---:|---:|---:|"
    );
    for (name, s) in rows {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            s.n,
            d(s.p50),
            d(s.p99),
            d(s.max)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let s = Stats::of(&sample);
        assert_eq!(
            (s.n, s.p50, s.p99, s.max),
            (
                100,
                Duration::from_micros(50),
                Duration::from_micros(99),
                Duration::from_micros(100)
            )
        );
        assert_eq!(Stats::of(&[]).p50, Duration::ZERO);
    }

    #[test]
    fn durations_get_a_unit_that_suits_them() {
        assert_eq!(d(Duration::from_nanos(127)), "127 ns");
        assert_eq!(d(Duration::from_nanos(86_800)), "86.8 µs");
        assert_eq!(d(Duration::from_micros(2_640)), "2.64 ms");
        assert_eq!(d(Duration::from_millis(4_610)), "4.61 s");
    }
}
