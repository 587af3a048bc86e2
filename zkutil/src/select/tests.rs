//! The selector's tests: every strategy, down marks, warm-up and p2c's
//! load, with time given rather than slept through.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::load::DECAY;
use super::{Selector, Strategy};
use crate::discovery::{Instance, Instances};
use crate::endpoint::Endpoint;

fn instances(n: u16) -> Instances {
    (1..=n)
        .map(|port| Instance::new(Endpoint::new(([127, 0, 0, 1], port).into())))
        .collect()
}

fn port(instance: Option<&Instance>) -> u16 {
    instance.map(|i| i.endpoint().port()).unwrap_or(0)
}

#[test]
fn empty_list_picks_nothing() {
    assert_eq!(
        Selector::with_seed(Strategy::Random, 1).pick(&Instances::default()),
        None
    );
    assert_eq!(
        Selector::new(Strategy::RoundRobin).pick(&Instances::default()),
        None
    );
}

#[test]
fn random_uses_every_instance_of_a_long_list_uniformly() {
    // A fixed `Intn(3)` over the list would never reach instances 4..10.
    let selector = Selector::with_seed(Strategy::Random, 7);
    let list = instances(10);
    let mut counts = [0usize; 11];
    for _ in 0..10_000 {
        counts[usize::from(port(selector.pick(&list)))] += 1;
    }
    // Expected 1000 each; sd ≈ 30. ±150 is 5 sd.
    for (p, count) in counts.iter().enumerate().skip(1) {
        assert!(
            (850..=1150).contains(count),
            "port {p} picked {count} times: {counts:?}"
        );
    }
    assert_eq!(counts[0], 0);
}

#[test]
fn random_works_with_a_single_instance() {
    let selector = Selector::with_seed(Strategy::Random, 3);
    let list = instances(1);
    for _ in 0..100 {
        assert_eq!(port(selector.pick(&list)), 1);
    }
}

#[test]
fn round_robin_visits_each_instance_exactly_once_per_cycle() {
    let selector = Selector::new(Strategy::RoundRobin);
    let list = instances(3);
    let picked: Vec<u16> = (0..9).map(|_| port(selector.pick(&list))).collect();
    assert_eq!(picked, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
}

/// Threads sharing one selector, each picking whole cycles at once: each
/// keeps its own turn (or shares one, past eight threads), and in either
/// case every instance is picked equally often, exactly.
#[test]
fn threads_sharing_a_turn_taking_selector_together_pick_in_exact_proportion() {
    let list = weighted(&[3, 1, 2]);
    for (strategy, per_cycle) in [
        (Strategy::RoundRobin, [1, 1, 1]),
        (Strategy::SmoothWeighted, [3, 1, 2]),
    ] {
        let selector = Selector::new(strategy);
        let cycle: usize = per_cycle.iter().sum();
        let picked: Vec<u16> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..12)
                .map(|_| {
                    s.spawn(|| {
                        (0..cycle * 50)
                            .map(|_| port(selector.pick(&list)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("a picking thread"))
                .collect()
        });
        for (port, share) in (1..).zip(per_cycle) {
            let count = picked.iter().filter(|p| **p == port).count();
            assert_eq!(count, share * 50 * 12, "{strategy:?}: instance {port}");
        }
    }
}

#[test]
fn round_robin_counter_wraps_without_panic() {
    let selector = Selector::new(Strategy::RoundRobin);
    for next in &selector.next {
        next.store(usize::MAX, Ordering::Relaxed);
    }
    let list = instances(3);
    assert_ne!(port(selector.pick(&list)), 0);
    assert_ne!(port(selector.pick(&list)), 0);
}

#[test]
fn instances_marked_down_are_skipped() {
    let list = instances(3);
    for strategy in [Strategy::Random, Strategy::RoundRobin] {
        let selector = Selector::with_seed(strategy, 5);
        selector.mark_down(list[0].endpoint());
        selector.mark_down(list[2].endpoint());
        for _ in 0..100 {
            assert_eq!(port(selector.pick(&list)), 2, "{strategy:?}");
        }
        selector.mark_up(list[0].endpoint());
        assert!(
            (0..100).any(|_| port(selector.pick(&list)) == 1),
            "{strategy:?}"
        );
    }
}

#[test]
fn when_every_instance_is_down_the_one_that_failed_longest_ago_is_tried() {
    let selector = Selector::with_seed(Strategy::Random, 5);
    let list = instances(3);
    let first = Instant::now();
    selector.mark_down_at(list[1].endpoint(), first);
    selector.mark_down_at(list[0].endpoint(), first + Duration::from_millis(5));
    selector.mark_down_at(list[2].endpoint(), first + Duration::from_millis(5));
    assert_eq!(
        port(selector.pick_excluding_at(
            &list,
            &[],
            first + Duration::from_millis(6),
            SystemTime::now()
        )),
        2
    );
}

#[test]
fn the_cooldown_expires() {
    let selector =
        Selector::with_seed(Strategy::Random, 5).with_cooldown(Duration::from_millis(50));
    let list = instances(2);
    let marked = Instant::now();
    selector.mark_down_at(list[0].endpoint(), marked);
    assert!(selector.is_down_at(list[0].endpoint(), marked + Duration::from_millis(49)));
    let later = marked + Duration::from_millis(50);
    assert!(!selector.is_down_at(list[0].endpoint(), later));
    assert!((0..100).any(|_| port(selector.pick_excluding_at(
        &list,
        &[],
        later,
        SystemTime::now()
    )) == 1));
}

fn weighted(weights: &[u32]) -> Instances {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut instance = Instance::new(Endpoint::new(([127, 0, 0, 1], i as u16 + 1).into()));
            instance.weight = *w;
            instance
        })
        .collect()
}

#[test]
fn a_new_instances_share_grows_monotonically_through_warm_up() {
    let warmup = Duration::from_secs(600);
    let registered = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut list = weighted(&[100, 100]).to_vec();
    // The first has run for a day; the second registered at `registered`.
    list[0].registered_ms = 1_000_000_000_000;
    list[1].registered_ms = 1_800_000_000_000;
    let list = Instances::from(list);
    for strategy in [Strategy::Weighted, Strategy::SmoothWeighted] {
        let selector = Selector::with_seed(strategy, 5).with_warmup(warmup);
        let mut shares = Vec::new();
        for tenth in 0..=11 {
            let wall = registered + warmup * tenth / 10;
            let picks = 20_000;
            let new = (0..picks)
                .filter(|_| port(selector.pick_excluding_at(&list, &[], Instant::now(), wall)) == 2)
                .count();
            shares.push(new as f64 / f64::from(picks));
        }
        // From the floor (10 of 110) to an equal share, never down.
        assert!(
            (shares[0] - 10.0 / 110.0).abs() < 0.02,
            "{strategy:?}: {shares:?}"
        );
        assert!((shares[10] - 0.5).abs() < 0.02, "{strategy:?}: {shares:?}");
        assert!(
            shares.windows(2).all(|w| w[1] >= w[0] - 0.01),
            "{strategy:?}: {shares:?}"
        );
        assert!(shares[5] > shares[1] + 0.1, "{strategy:?}: {shares:?}");
    }
    // Without warm-up, a new instance gets its full share at once.
    let selector = Selector::with_seed(Strategy::Weighted, 5);
    let new = (0..20_000)
        .filter(|_| port(selector.pick_excluding_at(&list, &[], Instant::now(), registered)) == 2)
        .count();
    assert!((new as f64 / 20_000.0 - 0.5).abs() < 0.02);
}

#[test]
fn weighted_strategies_share_within_two_percent_of_the_weights() {
    let list = weighted(&[100, 200, 300, 400]);
    for strategy in [Strategy::Weighted, Strategy::SmoothWeighted] {
        let selector = Selector::with_seed(strategy, 11);
        let mut counts = [0usize; 5];
        for _ in 0..100_000 {
            counts[usize::from(port(selector.pick(&list)))] += 1;
        }
        for (i, weight) in [100.0, 200.0, 300.0, 400.0].iter().enumerate() {
            let share = counts[i + 1] as f64 / 100_000.0;
            let want = weight / 1000.0;
            assert!(
                (share - want).abs() <= 0.02 * want,
                "{strategy:?}: {counts:?}"
            );
        }
    }
}

#[test]
fn smooth_weighted_interleaves_equal_weights_and_skips_weight_zero() {
    let selector = Selector::with_seed(Strategy::SmoothWeighted, 1);
    let list = weighted(&[100, 100, 0]);
    let picks: Vec<u16> = (0..1000).map(|_| port(selector.pick(&list))).collect();
    assert!(picks.windows(2).all(|w| w[0] != w[1]), "twice in a row");
    assert!(
        !picks.contains(&3),
        "weight 0 is never picked while others are up"
    );
    let only_zero = weighted(&[0]);
    assert_eq!(
        port(selector.pick(&only_zero)),
        1,
        "unless nothing else is up"
    );
}

#[test]
fn p2c_sends_most_requests_away_from_a_slow_instance() {
    let selector = Selector::with_seed(Strategy::P2c, 3);
    let list = instances(3);
    let latency = |port: u16| Duration::from_millis(if port == 1 { 10 } else { 1 });
    let mut slow = 0;
    for _ in 0..10_000 {
        let picked = selector
            .pick(&list)
            .map(Instance::endpoint)
            .expect("an instance");
        selector.started(picked);
        slow += usize::from(picked.port() == 1);
        selector.finished(picked, latency(picked.port()));
    }
    assert!(
        slow <= 2_000,
        "{slow} of 10000 went to the instance 10x slower"
    );
}

/// `picks` p2c requests over `list` at `now`, each taking what
/// `latency(port)` says; how many went to each port.
fn p2c_run(
    selector: &Selector,
    list: &Instances,
    now: Instant,
    picks: usize,
    latency: impl Fn(u16) -> Duration,
) -> HashMap<u16, usize> {
    let mut counts = HashMap::new();
    for _ in 0..picks {
        let picked = selector
            .pick_excluding_at(list, &[], now, SystemTime::now())
            .map(Instance::endpoint)
            .expect("an instance");
        selector.started(picked);
        *counts.entry(picked.port()).or_default() += 1;
        selector.finished_at(picked, latency(picked.port()), now);
    }
    counts
}

#[test]
fn one_latency_spike_does_not_starve_a_fast_instance() {
    let selector = Selector::with_seed(Strategy::P2c, 7);
    let list = instances(3);
    let now = Instant::now();
    let usual = |port: u16| Duration::from_micros(if port == 1 { 600 } else { 40 });
    p2c_run(&selector, &list, now, 300, usual);
    // A hiccup of the client's machine: one request to port 2 took 5 ms.
    selector.started(list[1].endpoint());
    selector.finished_at(list[1].endpoint(), Duration::from_millis(5), now);
    let after = p2c_run(&selector, &list, now, 3_000, usual);
    let share = |port| *after.get(&port).unwrap_or(&0) as f64 / 3_000.0;
    assert!(
        share(2) > 0.3,
        "the fast instance that spiked is used again: {after:?}"
    );
    assert!(share(1) < 0.05, "the slow one stays avoided: {after:?}");
}

#[test]
fn a_slow_instance_is_tried_again_after_the_decay_and_used_once_fast() {
    let selector = Selector::with_seed(Strategy::P2c, 9);
    let list = instances(3);
    let start = Instant::now();
    let slow_then = |port: u16| Duration::from_micros(if port == 1 { 600 } else { 40 });
    p2c_run(&selector, &list, start, 300, slow_then);
    // Port 1 has recovered; the others are as before. Within a second
    // it is still avoided; after a few decay times it is probed, found
    // fast, and used like the others.
    let recovered = |_: u16| Duration::from_micros(40);
    let soon = p2c_run(
        &selector,
        &list,
        start + Duration::from_secs(1),
        300,
        recovered,
    );
    assert!(soon.get(&1).copied().unwrap_or(0) < 15, "{soon:?}");
    let later = p2c_run(&selector, &list, start + DECAY * 4, 3_000, recovered);
    let share = *later.get(&1).unwrap_or(&0) as f64 / 3_000.0;
    assert!(
        share > 0.2,
        "the recovered instance is used again: {later:?}"
    );
}

/// A long-lived client whose service is redeployed again and again (each
/// time on new addresses) must not keep figures for every address it ever
/// met: p2c's memory is bounded by the endpoints used lately.
#[test]
fn p2c_forgets_the_endpoints_of_instances_long_gone() {
    let selector = Selector::with_seed(Strategy::P2c, 11);
    let start = Instant::now();
    // 2,000 deployments of 45 to 55 instances each, 30 s apart: 100,000
    // addresses met over 17 hours, each deployment used 20 times.
    let mut met = 0;
    for deployment in 0..2_000u32 {
        let size = 45 + (deployment * 7) % 11;
        let list: Instances = (0..size)
            .map(|i| {
                let n = met + i;
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n);
                Instance::new(Endpoint::new((ip, 80).into()))
            })
            .collect();
        met += size;
        let now = start + Duration::from_secs(30 * u64::from(deployment));
        p2c_run(&selector, &list, now, 20, |_| Duration::from_millis(1));
    }
    let known = selector.known_loads();
    assert!(
        known <= 2_100,
        "p2c still keeps figures for {known} endpoints, most gone for hours"
    );
    // What it forgot never costs a pick: a list of them is served at once.
    let list = instances(3);
    let later = start + Duration::from_secs(30 * 2_001);
    assert_eq!(
        p2c_run(&selector, &list, later, 30, |_| Duration::from_millis(1))
            .values()
            .sum::<usize>(),
        30
    );
}

#[test]
fn excluded_instances_are_never_picked_and_all_excluded_is_none() {
    let selector = Selector::with_seed(Strategy::Random, 9);
    let list = instances(3);
    let tried = [list[0].endpoint(), list[1].endpoint()];
    for _ in 0..50 {
        assert_eq!(port(selector.pick_excluding(&list, &tried)), 3);
    }
    let all: Vec<Endpoint> = list.iter().map(Instance::endpoint).collect();
    assert_eq!(selector.pick_excluding(&list, &all), None);
}
