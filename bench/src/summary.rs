//! The summary table that opens the report: one row per headline figure,
//! each from the section that measured it, with its baseline, its target
//! and whether the run met it.

use std::fmt::Write as _;

use crate::stats::verdict;

/// One headline figure.
pub struct Row {
    pub metric: String,
    pub ours: String,
    /// The same run's baseline; "—" for a target that is absolute.
    pub baseline: String,
    /// As the metric names it (ours : baseline unless it says otherwise).
    pub ratio: String,
    pub target: String,
    /// `None` when no target is set: the figure is there to be read.
    pub met: Option<bool>,
}

impl Row {
    /// A figure against a baseline of the same run.
    pub fn against(
        metric: impl Into<String>,
        ours: String,
        baseline: String,
        ratio: String,
        target: &str,
        met: Option<bool>,
    ) -> Row {
        Row {
            metric: metric.into(),
            ours,
            baseline,
            ratio,
            target: target.to_owned(),
            met,
        }
    }

    /// A figure against an absolute target.
    pub fn absolute(metric: impl Into<String>, ours: String, target: &str, met: bool) -> Row {
        Row::against(metric, ours, "—".into(), "—".into(), target, Some(met))
    }
}

pub fn write(md: &mut String, rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Summary\n\n\
         The headline figure of each section, against its baseline in the same run; the sections below give \
         the samples and how each was measured.\n\n\
         | metric | ours | baseline | ratio | target | met? |\n|---|---:|---:|---:|---:|---|"
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            row.metric,
            row.ours,
            row.baseline,
            row.ratio,
            row.target,
            row.met.map_or("—", verdict)
        );
    }
    let _ = writeln!(md);
}
