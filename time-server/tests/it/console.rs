//! `zkutil console` in a real browser (Debian's Chromium over WebDriver):
//! the registry as the page shows it, live, against a real ZooKeeper and
//! real registrants; what a hostile page or registrant can and cannot do.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use zkutil::testing::{TestProcess, ZkServer, http_request, wait_until};

use crate::browser::{Browser, screenshot_path};
use crate::support::{ServerProcess, children, free_ports, observer, zkutil_binary, zookeeper};

/// What a registrant may write into its metadata: it must show as text.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// `zkutil --zk hosts args…`, logging at info.
fn zkutil(hosts: &str, args: &[&str]) -> TestProcess {
    let mut all = vec!["--zk", hosts];
    all.extend_from_slice(args);
    TestProcess::start(zkutil_binary(), &all, &[("RUST_LOG", "info")])
}

/// `zkutil --zk hosts args…`, which must exit 0.
pub(crate) fn zkutil_ok(hosts: &str, args: &[&str]) -> String {
    let mut run = zkutil(hosts, args);
    let status = run.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "zkutil {args:?}: {status}: {}",
        run.stderr_text()
    );
    run.stdout()
        .lines()
        .into_iter()
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `zkutil console` on a free port, with `args`; its address once serving.
pub(crate) fn console(zk: &ZkServer, args: &[&str]) -> (TestProcess, SocketAddr) {
    let hosts = zk.connect_string();
    let mut all = vec!["console", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let process = zkutil(&hosts, &all);
    let addr = process.logged_addr("console=");
    (process, addr)
}

/// A `zkutil register` of `endpoint` with `args`, once its node exists.
fn register(zk: &ZkServer, endpoint: &str, args: &[&str], parent: &str) -> TestProcess {
    let mut all = vec!["register", endpoint];
    all.extend_from_slice(args);
    let process = zkutil(&zk.connect_string(), &all);
    let session = observer(zk);
    wait_until(Duration::from_secs(30), "the registration exists", || {
        (!children(&session, parent).is_empty()).then_some(())
    });
    process
}

/// A script that returns the row of `endpoint` as
/// `[format, state, weight, metadata]`, or `null` while it is not shown.
fn row(endpoint: &str) -> String {
    format!(
        "const r = document.querySelector('tr[data-endpoint=\"{endpoint}\"]');\
         return r ? [r.dataset.format, r.querySelector('.state').textContent, \
         r.querySelector('.weight').textContent, r.querySelector('.metadata').textContent] : null;"
    )
}

fn row_state(browser: &Browser, endpoint: &str) -> Option<String> {
    browser
        .run(&row(endpoint))?
        .get(1)?
        .as_str()
        .map(str::to_owned)
}

/// A free port's loopback endpoint (nothing listens: the console does not
/// connect to instances).
fn endpoint() -> String {
    format!("127.0.0.1:{}", free_ports(1)[0])
}

#[test]
fn the_console_shows_every_format_and_follows_joins_leaves_and_disables_live() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let plain = ServerProcess::start(&["--zk", &hosts, "--listen", "127.0.0.1:0"]);
    let plain_endpoint = plain.registered(1).remove(0);
    let (curator, serverset, hostile) = (endpoint(), endpoint(), endpoint());
    let _curator = register(
        &zk,
        &curator,
        &["--format", "curator", "--service-name", "web"],
        "/services/web",
    );
    let _serverset = register(
        &zk,
        &serverset,
        &["--format", "serverset", "--serverset-path", "/aurora/web"],
        "/aurora/web",
    );
    let metadata = serde_json::json!({ "note": HOSTILE }).to_string();
    let _hostile = register(
        &zk,
        &hostile,
        &["--base-path", "/hostile", "--metadata", &metadata],
        "/hostile",
    );
    let (_console, addr) = console(&zk, &["--rescan", "1s"]);
    let browser = Browser::start(1280, 800);
    browser.open(&format!("http://{addr}/"));

    // Every format, each in rotation, under its own base path.
    for (endpoint, format) in [
        (&plain_endpoint, "plain"),
        (&curator, "curator"),
        (&serverset, "serverset"),
        (&hostile, "plain"),
    ] {
        let shown = browser.wait_for(
            Duration::from_secs(20),
            &format!("{endpoint} is shown"),
            &row(endpoint),
        );
        assert_eq!(shown[0], format, "{endpoint}: {shown}");
        assert_eq!(shown[1], "in rotation", "{endpoint}: {shown}");
        assert_eq!(shown[2], "100", "{endpoint}: {shown}");
    }
    let paths =
        browser.run("return [...document.querySelectorAll('.service')].map(s => s.dataset.path);");
    assert_eq!(
        paths,
        Some(serde_json::json!([
            "/aurora/web",
            "/go_servers",
            "/hostile",
            "/services/web"
        ]))
    );
    // The ensemble: one standalone host.
    let mode = browser.wait_for(Duration::from_secs(10), "the ensemble is shown",
        "const c = document.querySelector('#ensemble tbody tr td:nth-child(2)'); return c && c.textContent;");
    assert_eq!(mode, "standalone");

    // A registrant's markup is text: no element made of it, no alert.
    let shown = browser.run(&row(&hostile)).expect("the row");
    assert!(
        shown[3].as_str().is_some_and(|text| text.contains(HOSTILE)),
        "{shown}"
    );
    assert_eq!(
        browser.run("return document.querySelectorAll('main img').length;"),
        Some(Value::from(0))
    );
    assert_eq!(browser.alert(), None, "an alert fired");
    // Read-only by default: no button.
    assert_eq!(
        browser.run("return document.querySelectorAll('#services button').length;"),
        Some(Value::from(0))
    );

    // A new server shows without a reload.
    let session = observer(&zk);
    let before: Vec<String> = children(&session, "/go_servers");
    let mut second = ServerProcess::start(&["--zk", &hosts, "--listen", "127.0.0.1:0"]);
    let new = wait_until(Duration::from_secs(30), "the new server registers", || {
        children(&session, "/go_servers")
            .into_iter()
            .find(|name| !before.contains(name))
    });
    let registered = Instant::now();
    browser.wait_for(
        Duration::from_secs(10),
        "the new server is shown",
        &row(&new),
    );
    eprintln!(
        "a registration showed in the page {:?} after ZooKeeper had it",
        registered.elapsed()
    );
    // Stopped: it goes.
    second.signal("TERM");
    second.wait(Duration::from_secs(30));
    let gone = Instant::now();
    browser.wait_for(
        Duration::from_secs(10),
        "the stopped server is gone",
        &format!("return !document.querySelector('tr[data-endpoint=\"{new}\"]');"),
    );
    eprintln!(
        "a deregistration showed in the page {:?} after the server stopped",
        gone.elapsed()
    );

    // An operator's disable elsewhere: out of rotation, with its reason.
    zkutil_ok(
        &hosts,
        &[
            "--base-path",
            "/services/web",
            "disable",
            &curator,
            "--reason",
            "kernel upgrade",
        ],
    );
    wait_until(Duration::from_secs(10), "the row shows the disable", || {
        (row_state(&browser, &curator)? == "out of rotation: kernel upgrade").then_some(())
    });
    let kinds = browser.wait_for(
        Duration::from_secs(10),
        "the timeline has the join, the leave and the disable",
        "const k = [...document.querySelectorAll('#timeline li')].map(l => l.dataset.kind);\
         return ['join', 'leave', 'disable'].every(x => k.includes(x)) ? k : null;",
    );
    assert!(kinds.is_array());

    browser.screenshot(&screenshot_path("console-1280x800.png"));
    browser.resize(390, 844);
    browser.wait_for(
        Duration::from_secs(10),
        "the narrow layout",
        "return window.innerWidth <= 400;",
    );
    browser.screenshot(&screenshot_path("console-390x844.png"));
    assert_eq!(browser.alert(), None, "an alert fired");
}

#[test]
fn a_click_with_writes_allowed_takes_an_instance_out_and_the_time_client_stops_picking_it() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
    ]);
    let endpoints = server.registered(2);
    let (console, addr) = console(
        &zk,
        &[
            "--path",
            "/go_servers",
            "--allow-writes",
            "--allow-host",
            "console.example",
        ],
    );
    let browser = Browser::start(1280, 800);
    browser.open(&format!("http://{addr}/"));
    let target = &endpoints[0];
    browser.wait_for(Duration::from_secs(20), "the rows", &row(target));

    browser.click(&format!(
        "tr[data-endpoint=\"{target}\"] button[data-op=\"disable\"]"
    ));
    browser.wait_for(
        Duration::from_secs(5),
        "the confirmation",
        "return !document.getElementById('confirm').hidden;",
    );
    browser.type_into("#confirm-reason", "draining for a test");
    browser.click("#confirm-ok");

    // In ZooKeeper, as zkutil ls says.
    wait_until(
        Duration::from_secs(10),
        "zkutil ls shows it out of rotation",
        || {
            let listed: Value = serde_json::from_str(&zkutil_ok(&hosts, &["ls", "--json"])).ok()?;
            let entry = listed
                .as_array()?
                .iter()
                .find(|e| e["endpoint"] == target.as_str())?
                .clone();
            (entry["in_service"] == false).then_some(entry)
        },
    );
    wait_until(Duration::from_secs(10), "the row shows it", || {
        (row_state(&browser, target)? == "out of rotation: draining for a test").then_some(())
    });
    // The log names who did it, from where, and what.
    console.wait_for_log(
        "console: operator action applied",
        1,
        Duration::from_secs(10),
    );
    let log = console.stderr_text();
    let line = log
        .lines()
        .find(|l| l.contains("operator action applied"))
        .unwrap_or_default();
    for part in [
        "identity=anonymous",
        "browser=127.0.0.1:",
        &format!("endpoint={target}"),
        "out of rotation (draining for a test)",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }

    // The time-client stops picking it.
    let config = time_client::Config {
        count: 30,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!(summary.ok, 30, "{summary:?}");
    let picked: Vec<String> = summary.per_server.keys().map(ToString::to_string).collect();
    assert_eq!(picked, [endpoints[1].clone()], "{summary:?}");

    // Forged writes: from another origin, without the page's token, under a
    // rebinding host name. Each refused, nothing changed.
    let token = browser
        .run("return document.querySelector('meta[name=\"console-token\"]').content;")
        .and_then(|t| t.as_str().map(str::to_owned))
        .expect("the page's token");
    let other = &endpoints[1];
    let action = format!("/api/action?op=disable&path=%2Fgo_servers&endpoint={other}");
    let host = addr.to_string();
    let own_origin = format!("http://{addr}");
    for (why, headers) in [
        ("no token", vec![("Origin", own_origin.as_str())]),
        (
            "another origin",
            vec![
                ("Origin", "http://evil.example"),
                ("X-Console-Token", token.as_str()),
            ],
        ),
        ("no origin", vec![("X-Console-Token", token.as_str())]),
        (
            "a base path the console does not show",
            vec![
                ("Origin", own_origin.as_str()),
                ("X-Console-Token", token.as_str()),
            ],
        ),
        (
            "a rebinding host",
            vec![
                ("Host", "evil.example"),
                ("Origin", "http://evil.example"),
                ("X-Console-Token", token.as_str()),
            ],
        ),
    ] {
        let action = match why {
            "a base path the console does not show" => {
                format!("/api/action?op=disable&path=%2Felsewhere&endpoint={other}")
            }
            _ => action.clone(),
        };
        let (status, body) = http_request(addr, "POST", &action, &headers).expect("an answer");
        assert_eq!(status, 403, "{why}: {body}");
    }
    // A reason that would forge a log line is refused.
    let forged = format!(
        "{action}&reason=maintenance%0A2026-12-04T00:00:00Z%20INFO%20console:%20operator%20action%20applied"
    );
    let (status, body) = http_request(
        addr,
        "POST",
        &forged,
        &[
            ("Origin", own_origin.as_str()),
            ("X-Console-Token", token.as_str()),
        ],
    )
    .expect("an answer");
    assert_eq!(status, 400, "a reason of two lines: {body}");
    assert_eq!(
        console.log_count("operator action applied"),
        1,
        "{}",
        console.stderr_text()
    );
    let (status, _) =
        http_request(addr, "GET", "/", &[("Host", "evil.example:80")]).expect("an answer");
    assert_eq!(status, 403, "a page asked under a rebinding host name");
    let (status, body) = http_request(
        addr,
        "POST",
        &action,
        &[
            ("Host", host.as_str()),
            ("Origin", "https://console.example"),
            ("X-Console-Token", token.as_str()),
        ],
    )
    .expect("an answer");
    assert_eq!(status, 200, "the page behind a proxy that ends TLS: {body}");
}

#[test]
fn with_zookeeper_down_the_page_says_so_keeps_the_last_state_and_goes_live_again() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--session-timeout",
        "20s",
    ]);
    let endpoint = server.registered(1).remove(0);
    let (_console, addr) = console(&zk, &["--path", "/go_servers", "--session-timeout", "4s"]);
    let browser = Browser::start(1280, 800);
    browser.open(&format!("http://{addr}/"));
    browser.wait_for(Duration::from_secs(20), "the row", &row(&endpoint));
    browser.wait_for(
        Duration::from_secs(10),
        "live",
        "return document.getElementById('zk-status').dataset.connected === 'true';",
    );

    zk.kill();
    let killed = Instant::now();
    browser.wait_for(Duration::from_secs(4 + 10), "the page says ZooKeeper is unreachable",
        "return document.getElementById('zk-status').dataset.connected === 'false' && !document.getElementById('banner').hidden;");
    eprintln!(
        "the page said ZooKeeper is unreachable {:?} after it was killed",
        killed.elapsed()
    );
    assert!(
        browser.run(&row(&endpoint)).is_some_and(|r| !r.is_null()),
        "the last state is kept"
    );
    assert_eq!(
        browser.run("return document.body.classList.contains('stale');"),
        Some(Value::Bool(true))
    );

    zk.restart().expect("ZooKeeper restarts");
    browser.wait_for(Duration::from_secs(30), "live again",
        "return document.getElementById('zk-status').dataset.connected === 'true' && document.getElementById('banner').hidden;");
    assert!(browser.run(&row(&endpoint)).is_some_and(|r| !r.is_null()));
}
