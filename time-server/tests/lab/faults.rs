//! The lab itself: each fault cuts what it says and nothing else (loss at
//! 100% included), the heal (of one host, or of all) restores it, nothing
//! leaves the lab, and
//! nothing is left behind.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zkutil::testing::TestProcess;
use zkutil::testing::lab::{Fault, Host, Lab};
use zkutil::testing::wait_until;

use crate::support::{TIME_PORT, ask, one_at_a_time};

/// A time-server in `host` with no ZooKeeper to register in: it serves
/// anyway, a listener to connect to.
fn listener(lab: &Lab, host: &Host) -> TestProcess {
    let nowhere = format!("{}:1", lab.control_address());
    let server = host.start(
        env!("CARGO_BIN_EXE_time-server"),
        &[
            "--zk",
            &nowhere,
            "--listen",
            &host.socket(TIME_PORT).to_string(),
        ],
        &[("RUST_LOG", "warn")],
    );
    wait_until(Duration::from_secs(30), "the listener serves", || {
        ask(host.socket(TIME_PORT)).ok()
    });
    server
}

/// A TCP connect from inside `host` (bash's `/dev/tcp`, 3 s at most):
/// `Ok`, or why not (`timed out`, or the error bash printed).
fn connect(host: &Host, to: SocketAddr) -> Result<(), String> {
    let script = format!("exec 3<>/dev/tcp/{}/{}", to.ip(), to.port());
    let output = host
        .command("timeout")
        .args(["3", "bash", "-c", &script])
        .output()
        .expect("running bash in the host");
    match output.status.code() {
        Some(0) => Ok(()),
        Some(124) => Err("timed out".to_owned()),
        _ => Err(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
    }
}

#[test]
fn each_fault_cuts_what_it_names_the_heal_restores_it_and_nothing_leaves_the_lab() {
    let Some(_one) = one_at_a_time() else { return };
    let mut lab = Lab::new().expect("a lab");
    // Labs of other runs may exist at once: each has a /24 of its own.
    let other = Lab::new().expect("a second lab");
    assert_ne!(other.control_address(), lab.control_address());
    drop(other);
    let (a, b, c) = (
        lab.host("a").expect("a"),
        lab.host("b").expect("b"),
        lab.host("c").expect("c"),
    );
    let _listeners = [listener(&lab, &a), listener(&lab, &b), listener(&lab, &c)];
    let port = TIME_PORT;
    let reaches = |from: &Host, to: &Host| connect(from, to.socket(port)).is_ok();
    assert_eq!(connect(&a, b.socket(port)), Ok(()));
    assert_eq!(connect(&b, a.socket(port)), Ok(()));
    // No default route: an address outside the lab is unreachable.
    let outside = connect(&a, "192.0.2.1:80".parse().expect("an address"));
    assert!(
        outside.as_ref().is_err_and(|e| e.contains("unreachable")),
        "{outside:?}"
    );

    lab.cut_one_way(&a, &b);
    let start = Instant::now();
    let cut = connect(&a, b.socket(port));
    assert!(
        cut.as_ref().is_err_and(|e| e.contains("Invalid argument")),
        "{cut:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "a blackhole fails at once"
    );
    assert!(
        !reaches(&b, &a),
        "b's SYN arrives, a's answer does not leave"
    );
    assert!(reaches(&a, &c) && reaches(&c, &b), "only a -> b is cut");
    lab.heal();
    wait_until(Duration::from_secs(10), "a reaches b again", || {
        reaches(&a, &b).then_some(())
    });

    lab.isolate(&b);
    assert_eq!(connect(&a, b.socket(port)), Err("timed out".to_owned()));
    assert!(
        ask(b.socket(port)).is_err(),
        "the control host is cut off too"
    );
    assert!(reaches(&a, &c));
    lab.heal();
    wait_until(Duration::from_secs(10), "a reaches b again", || {
        reaches(&a, &b).then_some(())
    });

    lab.partition(&[&a], &[&b, &c]);
    assert!(!reaches(&a, &b) && !reaches(&b, &a) && !reaches(&c, &a));
    assert!(reaches(&b, &c), "a side reaches itself");
    assert!(
        ask(a.socket(port)).is_ok(),
        "the control host is on neither side"
    );
    // One host at a time: b's links back, a still cut from c.
    lab.heal_host(&b);
    assert!(reaches(&a, &b) && reaches(&b, &a));
    assert!(!reaches(&a, &c) && !reaches(&c, &a), "c still cut");
    lab.heal();
    wait_until(Duration::from_secs(10), "a reaches c again", || {
        reaches(&a, &c).then_some(())
    });

    // Dropped on arrival: a is told nothing, its connect times out (a
    // blackhole fails it at once); b's SYN reaches a, a's answer does not.
    lab.drop_on_arrival(&a, &b);
    assert_eq!(connect(&a, b.socket(port)), Err("timed out".to_owned()));
    assert!(!reaches(&b, &a));
    assert!(reaches(&a, &c) && reaches(&c, &b), "only a -> b is cut");
    lab.heal();
    wait_until(Duration::from_secs(10), "a reaches b again", || {
        reaches(&a, &b).then_some(())
    });

    // Loss at 100% is a silent cut both ways (dropped where it arrives).
    lab.lossy(&a, &b, 100);
    assert_eq!(connect(&a, b.socket(port)), Err("timed out".to_owned()));
    assert_eq!(connect(&b, a.socket(port)), Err("timed out".to_owned()));
    assert!(reaches(&a, &c) && reaches(&c, &b), "only a <-> b loses");
    lab.heal();
    wait_until(Duration::from_secs(10), "a reaches b again", || {
        reaches(&a, &b).then_some(())
    });

    let names = |hosts: &[&str]| hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
    let logged: Vec<Fault> = lab.faults().iter().map(|r| r.fault.clone()).collect();
    assert_eq!(
        logged,
        [
            Fault::CutOneWay {
                from: "a".into(),
                to: "b".into()
            },
            Fault::Heal,
            Fault::Isolate { host: "b".into() },
            Fault::Heal,
            Fault::Partition {
                left: names(&["a"]),
                right: names(&["b", "c"])
            },
            Fault::HealHost { host: "b".into() },
            Fault::Heal,
            Fault::DropOnArrival {
                from: "a".into(),
                to: "b".into()
            },
            Fault::Heal,
            Fault::Lossy {
                between: ["a".into(), "b".into()],
                percent: 100
            },
            Fault::Heal,
        ],
        "{}",
        lab.fault_log()
    );

    let prefix = lab.prefix().to_owned();
    drop(_listeners);
    drop(lab);
    let left = |what: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(what)
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).contains(&prefix)
    };
    assert!(!left(&["netns", "list"]), "a namespace of {prefix} is left");
    assert!(!left(&["-o", "link", "show"]), "a link of {prefix} is left");
}
