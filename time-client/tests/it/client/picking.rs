//! Which server each request goes to: every one of five, the only one,
//! by registered weight, and away from a slow one (p2c).

use std::collections::BTreeSet;
use std::time::Duration;

use time_client::{Config, run};
use zkutil::Endpoint;

use crate::support::{Servers, zookeeper};

use super::{config, run_all};

#[test]
fn the_client_reaches_each_of_five_servers_within_sixty_requests() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/go_servers", 5);
    let mut out = Vec::new();
    let summary = run_all(&config(&zk.connect_string(), 60), &mut out);
    assert_eq!((summary.ok, summary.failed), (60, 0));
    let reached: BTreeSet<Endpoint> = summary.per_server.keys().copied().collect();
    let expected: BTreeSet<Endpoint> = servers.endpoints().into_iter().collect();
    // P(missing one of 5 in 60 uniform picks) = 5 * 0.8^60 ≈ 7e-6.
    assert_eq!(reached, expected);
}

#[test]
fn the_client_works_with_exactly_one_server() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/go_servers", 1);
    let mut out = Vec::new();
    let summary = run_all(&config(&zk.connect_string(), 10), &mut out);
    assert_eq!((summary.ok, summary.failed), (10, 0));
    assert_eq!(summary.per_server.get(&servers.endpoints()[0]), Some(&10));
}

#[test]
fn weighted_picking_follows_the_weights_the_servers_registered() {
    let zk = zookeeper();
    let servers = Servers::weighted(&zk, "/go_servers", &[Some(100), Some(300)]);
    let (light, heavy) = (servers.endpoints()[0], servers.endpoints()[1]);
    for strategy in [zkutil::Strategy::Weighted, zkutil::Strategy::SmoothWeighted] {
        let config = Config {
            count: 1000,
            interval: Duration::ZERO,
            strategy,
            ..config(&zk.connect_string(), 1000)
        };
        let (_keep, stop) = std::sync::mpsc::channel();
        let summary = run(&config, &mut std::io::sink(), &stop).expect("the client runs");
        assert_eq!(summary.ok, 1000, "{}", summary.line());
        let share = summary.per_server.get(&heavy).copied().unwrap_or(0) as f64 / 1000.0;
        // 0.75 expected; 5 standard deviations of 1000 draws is 0.07.
        assert!(
            (0.68..=0.82).contains(&share),
            "{strategy:?}: {}",
            summary.line()
        );
        assert!(summary.per_server.contains_key(&light));
    }
}

#[test]
fn p2c_sends_most_requests_away_from_a_slow_server() {
    use time_server::listener::{ServeOptions, Serving, bind_all};
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(10));
    // The real server code: two listeners as they are, one slowed by the
    // time-server's --reply-delay.
    let any = || {
        vec![Endpoint::new(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        )))]
    };
    let serve = |n: usize, reply_delay: Duration| {
        let listeners = bind_all(&any().repeat(n), None).expect("binds");
        Serving::start(
            listeners,
            ServeOptions {
                reply_delay,
                ..ServeOptions::default()
            },
        )
    };
    let fast = serve(2, Duration::ZERO);
    let slow = serve(1, Duration::from_millis(20));
    let slow_endpoint = slow.listeners()[0].advertised();
    let _registrations: Vec<_> = fast
        .listeners()
        .iter()
        .chain(slow.listeners())
        .map(|bound| {
            let endpoint = bound.advertised();
            let metadata =
                zkutil::Metadata::for_this_process(endpoint, std::time::SystemTime::now(), "test");
            zkutil::Registration::register(
                &session,
                &zkutil::BasePath::from_static("/go_servers"),
                endpoint,
                &metadata,
            )
            .expect("registers")
        })
        .collect();
    let config = Config {
        strategy: zkutil::Strategy::P2c,
        ..config(&zk.connect_string(), 300)
    };
    let summary = run_all(&config, &mut std::io::sink());
    assert_eq!(summary.ok, 300, "{}", summary.line());
    let to_slow = summary.per_server.get(&slow_endpoint).copied().unwrap_or(0);
    eprintln!("p2c: {to_slow} of 300 requests to the server 20 ms slower");
    // At most 20 % (random: a third).
    assert!(to_slow <= 60, "{}", summary.line());
}
