//! `timeline`: what changed between two views of a base path (joins,
//! leaves, disables, enables, weights), and the samples of its instance
//! count that the page draws as a chart.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde_json::{Value, json};
use zkutil::Instance;

/// How long the timeline and the charts look back.
pub const LOOK_BACK: Duration = Duration::from_secs(3600);
/// A chart's samples per base path, at most (a burst of changes adds one
/// each; the oldest go first).
const HISTORY_MAX: usize = 4_000;
/// A chart gets a sample at least this often, change or not.
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// The timeline's events between two listings of `path`.
pub fn changes(
    path: &str,
    before: &BTreeMap<String, Instance>,
    after: &BTreeMap<String, Instance>,
    at: u64,
) -> Vec<Value> {
    let event = |kind: &str, instance: &Instance, detail: String| {
        json!({
            "at": at,
            "path": path,
            "endpoint": instance.endpoint().to_string(),
            "kind": kind,
            "detail": detail,
        })
    };
    let mut events = Vec::new();
    for (node, old) in before {
        if !after.contains_key(node) {
            events.push(event("leave", old, format!("{} left", old.format().name())));
        }
    }
    for (node, new) in after {
        let Some(old) = before.get(node) else {
            events.push(event(
                "join",
                new,
                format!("{} joined", new.format().name()),
            ));
            continue;
        };
        if old.is_enabled() && !new.is_enabled()
            || !new.is_enabled() && old.disabled_reason() != new.disabled_reason()
        {
            let why = new.disabled_reason().unwrap_or("no reason given");
            events.push(event("disable", new, format!("out of rotation: {why}")));
        } else if !old.is_enabled() && new.is_enabled() {
            events.push(event("enable", new, "back in rotation".to_owned()));
        }
        if old.weight() != new.weight() {
            let detail = format!("weight {} → {}", old.weight(), new.weight());
            events.push(event("weight", new, detail));
        }
    }
    events
}

/// Adds a chart sample when the counts changed or [`SAMPLE_EVERY`] passed;
/// drops what is older than [`LOOK_BACK`].
pub fn sample(
    history: &mut VecDeque<(u64, usize, usize)>,
    now_ms: u64,
    in_rotation: usize,
    all: usize,
) {
    let due = history.back().is_none_or(|&(at, last_in, last_all)| {
        (last_in, last_all) != (in_rotation, all)
            || now_ms.saturating_sub(at) >= SAMPLE_EVERY.as_millis() as u64
    });
    if due {
        history.push_back((now_ms, in_rotation, all));
    }
    let oldest = now_ms.saturating_sub(LOOK_BACK.as_millis() as u64);
    // Keep one sample from before the window: the chart's line starts at
    // its left edge.
    while history.len() > HISTORY_MAX || history.get(1).is_some_and(|&(at, _, _)| at < oldest) {
        history.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(endpoint: &str) -> Instance {
        Instance::new(endpoint.parse().expect("an endpoint"))
    }

    #[test]
    fn a_join_and_a_leave_are_events_and_an_unchanged_instance_is_none() {
        let (a, b, c) = (
            instance("10.0.0.1:80"),
            instance("10.0.0.2:80"),
            instance("10.0.0.3:80"),
        );
        let before = BTreeMap::from([("a".to_owned(), a.clone()), ("b".to_owned(), b)]);
        let after = BTreeMap::from([("a".to_owned(), a), ("c".to_owned(), c)]);
        let events = changes("/s", &before, &after, 7);
        let kinds: Vec<(&str, &str)> = events
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap_or_default(),
                    e["endpoint"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(kinds, [("leave", "10.0.0.2:80"), ("join", "10.0.0.3:80")]);
        assert_eq!(events[0]["at"], 7);
    }

    #[test]
    fn a_chart_samples_changes_and_keeps_one_point_before_the_hour() {
        let mut history = VecDeque::new();
        sample(&mut history, 1_000, 1, 1);
        sample(&mut history, 2_000, 1, 1);
        assert_eq!(history.len(), 1, "no change, no minute passed");
        sample(&mut history, 3_000, 2, 2);
        assert_eq!(history.len(), 2);
        let later = 3_000 + LOOK_BACK.as_millis() as u64 + 10_000;
        sample(&mut history, later, 2, 2);
        assert_eq!(
            history.front(),
            Some(&(3_000, 2, 2)),
            "the line starts at the left edge"
        );
        assert_eq!(history.len(), 2);
    }
}
