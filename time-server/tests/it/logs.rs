//! `--log-format json` (or `ZK_LOG_FORMAT=json`): every log line a JSON
//! object, with the same fields as the text, for log shippers.

use std::collections::BTreeSet;
use std::time::Duration;

use zkutil::serde_json::Value;
use zkutil::testing::TestProcess;

use crate::support::{ServerProcess, zkutil_binary, zookeeper};

/// The field names of a text log line (`key=value` words after the message).
fn text_fields(line: &str) -> BTreeSet<String> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('=').map(|(key, _)| key.to_owned()))
        .collect()
}

/// Every stderr line of `process` as a JSON object, or a panic naming the
/// line that is not one.
fn objects(process: &TestProcess) -> Vec<Value> {
    process
        .stderr()
        .lines()
        .into_iter()
        .map(|(_, line)| {
            zkutil::serde_json::from_str::<Value>(&line)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| panic!("not a JSON object: {line:?}"))
        })
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_the_fields_of_the_text_logs() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let args = [
        "--zk",
        &hosts,
        "--base-path",
        "/logs",
        "--listen",
        "127.0.0.1:0",
    ];
    let text = ServerProcess::start(&args);
    text.registered(1);
    let json = ServerProcess::start(&[&args[..], &["--log-format", "json"]].concat());
    TestProcess::stderr(&json).wait_until(
        Duration::from_secs(30),
        "a JSON registered line",
        |lines| {
            lines
                .iter()
                .any(|(_, line)| line.contains("\"message\":\"registered\""))
                .then_some(())
        },
    );
    let objects = objects(&json);
    for object in &objects {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(object.get(key).is_some(), "no {key}: {object}");
        }
    }
    let listening_json = objects
        .iter()
        .find(|object| object["message"] == "listening")
        .expect("a listening line");
    let json_fields: BTreeSet<String> = listening_json
        .as_object()
        .map(|fields| {
            fields
                .keys()
                .filter(|key| !["timestamp", "level", "target", "message"].contains(&key.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let text_log = text.stderr();
    let listening_text = text_log
        .lines()
        .find(|line| line.contains(" listening "))
        .expect("a text listening line");
    assert_eq!(
        json_fields,
        text_fields(listening_text),
        "{listening_json}\n{listening_text}"
    );
    assert_eq!(listening_json["level"], "INFO");
}

#[test]
fn zk_log_format_in_the_environment_makes_zkutil_log_json() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let mut register = TestProcess::start(
        zkutil_binary(),
        &[
            "--zk",
            &hosts,
            "--base-path",
            "/logs-env",
            "register",
            "127.0.0.1:9",
        ],
        &[("ZK_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    );
    register.wait_for_log("holding until SIGINT/SIGTERM", 1, Duration::from_secs(30));
    register.signal("TERM");
    assert!(
        register.wait(Duration::from_secs(15)).success(),
        "{}",
        register.stderr_text()
    );
    let objects = objects(&register);
    let registered = objects
        .iter()
        .find(|object| object["message"] == "registered; holding until SIGINT/SIGTERM")
        .expect("the registered line");
    assert_eq!(registered["path"], "/logs-env/127.0.0.1:9");
    assert!(
        objects
            .iter()
            .any(|object| object["message"] == "deregistered")
    );
}

#[test]
fn with_json_logs_the_last_error_line_is_json_too() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    zk.kill();
    let mut server = TestProcess::start(
        env!("CARGO_BIN_EXE_time-server"),
        &[
            "--zk",
            &hosts,
            "--listen",
            "127.0.0.1:0",
            "--startup-timeout",
            "1s",
        ],
        &[("ZK_LOG_FORMAT", "JSON")],
    );
    assert_eq!(server.wait(Duration::from_secs(20)).code(), Some(1));
    let objects = objects(&server);
    let last = objects.last().expect("a line");
    assert_eq!(last["level"], "ERROR", "{last}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|message| message.contains("--startup-timeout")),
        "{last}"
    );
}
