//! `zkutil console` with thousands of instances, in a real browser.

use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::console::console;
use crate::support::{observer, zookeeper};

#[test]
fn three_thousand_instances_are_counted_500_drawn_and_the_filter_finds_the_last_one() {
    let zk = zookeeper();
    let session = observer(&zk);
    session.ensure_path("/many").expect("the base path");
    for port in 20_000..23_000 {
        let node = format!("/many/127.0.0.1:{port}");
        session.create_ephemeral(&node, b"").expect("an instance");
    }
    let (_console, addr) = console(&zk, &["--path", "/many"]);
    let browser = Browser::start(1280, 800);
    let opened = Instant::now();
    browser.open(&format!("http://{addr}/"));
    browser.wait_for(
        Duration::from_secs(30),
        "3,000 instances are counted",
        "return document.getElementById('counts').textContent.includes('3000 instances');",
    );
    eprintln!(
        "3,000 instances shown {:?} after the page was opened",
        opened.elapsed()
    );
    let rows = browser.run("return [document.querySelectorAll('tr[data-endpoint]').length, document.querySelector('.more').textContent];");
    assert_eq!(
        rows,
        Some(serde_json::json!([500, "2500 more: narrow the filter"]))
    );
    browser.type_into("#filter", "127.0.0.1:22999");
    browser.wait_for(Duration::from_secs(10), "the filter finds the last one",
        "const r = document.querySelectorAll('tr[data-endpoint]'); return r.length === 1 && r[0].dataset.endpoint === '127.0.0.1:22999';");
    // A change among them shows as fast as among a few.
    session
        .delete("/many/127.0.0.1:22999", None)
        .expect("deleted");
    let deleted = Instant::now();
    browser.wait_for(
        Duration::from_secs(10),
        "the deleted one goes",
        "return document.querySelectorAll('tr[data-endpoint]').length === 0;",
    );
    eprintln!(
        "a deletion among 3,000 showed {:?} after it",
        deleted.elapsed()
    );
}
