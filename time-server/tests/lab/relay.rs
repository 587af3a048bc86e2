//! A relay inside a host (`Host::relay`): it listens on the host's own
//! loopback and connects out from the host, so the host's faults cut it as
//! they cut the host's programs; it turns slow on demand, and its drop
//! stops it even though it lives in another namespace.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zkutil::testing::lab::{Host, Lab};
use zkutil::testing::wait_until;

use crate::support::{TIME_PORT, one_at_a_time};

/// What a time-server answers to a connection from inside `host` to `to`
/// (bash's `/dev/tcp`, 5 s at most), and how long the whole took.
fn answer_from(host: &Host, to: SocketAddr) -> (String, Duration) {
    let script = format!("exec 3<>/dev/tcp/{}/{} && cat <&3", to.ip(), to.port());
    let started = Instant::now();
    let output = host
        .command("timeout")
        .args(["5", "bash", "-c", &script])
        .output()
        .expect("running bash in the host");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_relay_inside_a_host_is_cut_with_it_turns_slow_on_demand_and_stops_when_dropped() {
    let Some(_one) = one_at_a_time() else { return };
    let mut lab = Lab::new().expect("a lab");
    let (a, b) = (lab.host("a").expect("a"), lab.host("b").expect("b"));
    let nowhere = format!("{}:1", lab.control_address());
    let target = b.socket(TIME_PORT);
    let _server = b.start(
        env!("CARGO_BIN_EXE_time-server"),
        &["--zk", &nowhere, "--listen", &target.to_string()],
        &[("RUST_LOG", "warn")],
    );
    let relay = a.relay(target).expect("a relay in a");
    let through = relay.addr();
    assert!(through.ip().is_loopback(), "{through}");
    let answered = |what: &str| {
        wait_until(Duration::from_secs(30), what, || {
            let (reply, took) = answer_from(&a, through);
            reply.starts_with(&format!("{target}: ")).then_some(took)
        })
    };
    answered("b answers through a's relay");
    // The relay is a's: the control host's loopback has no such listener.
    assert!(
        std::net::TcpStream::connect_timeout(&through, Duration::from_millis(500)).is_err(),
        "{through} answered outside host a"
    );

    let late = Duration::from_secs(1);
    relay.set_delay(late, Duration::ZERO);
    let took = answered("b answers through the slow relay");
    assert!(took >= late, "a 1 s relay answered in {took:?}");
    relay.set_delay(Duration::ZERO, Duration::ZERO);

    // Cut with its host: a's link down, the relay cannot reach b either.
    lab.isolate(&a);
    let (reply, _) = answer_from(&a, through);
    assert_eq!(reply, "", "an isolated host's relay still reached b");
    lab.heal();
    answered("b answers through the relay after the heal");

    // Its listener lives in a's namespace: the drop must close it from
    // there (a wake-up sent from here would go to the wrong loopback).
    let listening = || {
        let output = a
            .command("ss")
            .args(["-Hltn", &format!("sport = :{}", through.port())])
            .output()
            .expect("running ss in the host");
        !String::from_utf8_lossy(&output.stdout).trim().is_empty()
    };
    assert!(listening(), "ss does not see the relay listening");
    drop(relay);
    wait_until(
        Duration::from_secs(10),
        "the dropped relay stops listening",
        || (!listening()).then_some(()),
    );
}
