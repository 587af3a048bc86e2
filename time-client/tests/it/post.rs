//! The post's own Go servers write the time and close without reading: a
//! client that sends `timestamp` first has its reply destroyed by the reset
//! the unread request causes. Ours reads first.

use std::time::{Duration, Instant, SystemTime};

use time_client::request::{RequestLimits, request};
use zkutil::testing::{Behaviour, Responder};
use zkutil::{BasePath, Endpoint, Metadata, Registration};

use crate::support::zookeeper;

#[test]
fn a_server_that_writes_and_closes_without_reading_loses_no_request() {
    let go = Responder::start(Behaviour::WriteAndClose).expect("a Go-like server");
    let endpoint = Endpoint::new(go.addr());
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(10));
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "go");
    let _registration = Registration::register(
        &session,
        &BasePath::from_static("/go_servers"),
        endpoint,
        &metadata,
    )
    .expect("registers");
    let config = time_client::Config {
        count: 1000,
        interval: Duration::ZERO,
        ..time_client::Config::new(zk.connect_string())
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!(
        (summary.ok, summary.failed, summary.retries),
        (1000, 0, 0),
        "{}",
        summary.line()
    );

    // For the record (not asserted: it is a race): the post's way, the
    // request written first.
    let write_first = RequestLimits {
        grace: Duration::ZERO,
        ..RequestLimits::default()
    };
    let failed = (0..1000)
        .filter(|_| request(endpoint, &write_first).is_err())
        .count();
    eprintln!("writing `timestamp` first: {failed} of 1000 requests failed");
}

#[test]
fn a_server_that_waits_for_the_request_gets_it_after_the_grace() {
    let asking = Responder::start(Behaviour::AnswerWhenAsked).expect("a server");
    let endpoint = Endpoint::new(asking.addr());
    let limits = RequestLimits {
        grace: Duration::from_millis(50),
        ..RequestLimits::default()
    };
    for _ in 0..5 {
        let started = Instant::now();
        let reply = request(endpoint, &limits).expect("answered");
        assert_eq!(reply.address, endpoint);
        assert!(
            started.elapsed() >= limits.grace,
            "the grace was waited first"
        );
    }
}
