//! `zkutil render`'s promises about its files: a file is replaced only
//! when its bytes change, never from a list the registry did not say
//! (ZooKeeper down, an empty registry), never from a broken template; a
//! burst of changes gives few writes. And the ready-made nginx and JSON
//! templates give what nginx and a JSON reader accept.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use zkutil::testing::{TestProcess, poll_until, wait_until};

use crate::render::{Haproxy, Traffic, render, render_metric, render_once, template, time_server};
use crate::support::{observer, zkutil_binary, zookeeper};

/// The file's inode and bytes: a replacement changes the inode.
fn identity(path: &Path) -> (u64, Vec<u8>) {
    let meta = std::fs::metadata(path).expect("the file is there");
    (meta.ino(), std::fs::read(path).expect("readable"))
}

/// `zkutil render --once args…` that must fail: its stderr.
pub(crate) fn render_once_failing(hosts: &str, args: &[&str]) -> String {
    let mut all = vec!["--once"];
    all.extend_from_slice(args);
    let mut once = render(hosts, &all, &[]);
    let status = once.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", once.stderr_text());
    once.stderr_text()
}

#[test]
fn zookeeper_down_keeps_the_file_and_haproxy_serving_and_its_return_reloads_nothing() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-zk-down";
    let (_server, endpoint) = time_server(&hosts, base);
    let dir = tempfile::tempdir().expect("a folder");
    let config = dir.path().join("haproxy.cfg");
    let env = Haproxy::env(dir.path());
    let spec = format!(
        "{}:{}",
        template("haproxy.cfg.j2").display(),
        config.display()
    );
    let envs = [
        ("HAPROXY_BIND", env.0.as_str()),
        ("HAPROXY_STATS_SOCKET", env.1.as_str()),
    ];
    render_once(&hosts, &["--path", base, "--template", &spec], &envs);
    let haproxy = Haproxy::start(&config, &env);
    let reloads = dir.path().join("reloads");
    let exec = format!(
        "echo reload >> {} && kill -USR2 {}",
        reloads.display(),
        haproxy.pid()
    );
    let follower = render(
        &hosts,
        &[
            "--path",
            base,
            "--template",
            &spec,
            "--exec",
            &exec,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &envs,
    );
    let metrics = follower.logged_addr("metrics=");
    let file = config.display().to_string();
    let unchanged = format!("zkutil_render_unchanged_total{{file=\"{file}\"}}");
    wait_until(
        Duration::from_secs(20),
        "the first render, unchanged",
        || (render_metric(metrics, &unchanged) >= 1.0).then_some(()),
    );
    let before = identity(&config);

    zk.kill();
    follower.wait_for_log("ZooKeeper is unreachable", 1, Duration::from_secs(30));
    let traffic = Traffic::start(&haproxy);
    let made = traffic.count();
    wait_until(
        Duration::from_secs(20),
        "30 requests while ZooKeeper is down",
        || (traffic.count() >= made + 30).then_some(()),
    );
    assert_eq!(
        identity(&config),
        before,
        "the file changed while ZooKeeper was down"
    );

    // Read before ZooKeeper is back: its return may be rendered before
    // `restart` returns. Renders are held while it is down, so the count
    // cannot move until then.
    let seen = render_metric(metrics, &unchanged);
    zk.restart().expect("ZooKeeper starts again");
    wait_until(
        Duration::from_secs(30),
        "a render after ZooKeeper is back",
        || (render_metric(metrics, &unchanged) > seen).then_some(()),
    );
    let answers = traffic.finish();
    let failed = answers.iter().filter(|(_, answer)| answer.is_err()).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed", answers.len());
    assert!(
        answers
            .iter()
            .all(|(_, answer)| answer.as_deref() == Ok(endpoint.as_str()))
    );
    assert_eq!(
        identity(&config),
        before,
        "the file changed after ZooKeeper came back"
    );
    assert!(
        !reloads.exists(),
        "HAProxy was reloaded with nothing changed"
    );
    assert_eq!(
        render_metric(
            metrics,
            &format!("zkutil_render_writes_total{{file=\"{file}\"}}")
        ),
        0.0
    );
}

#[test]
fn a_burst_of_100_registrations_in_a_second_gives_at_most_3_writes() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-burst";
    let session = observer(&zk);
    session.ensure_path(base).expect("the base path");
    session
        .create_ephemeral(&format!("{base}/10.1.0.1:1000"), b"")
        .expect("a first instance");
    let dir = tempfile::tempdir().expect("a folder");
    let out = dir.path().join("instances.json");
    let spec = format!(
        "{}:{}",
        template("instances.json.j2").display(),
        out.display()
    );
    let follower = render(
        &hosts,
        &[
            "--path",
            base,
            "--template",
            &spec,
            "--wait",
            "500ms:2s",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let metrics = follower.logged_addr("metrics=");
    let writes = format!("zkutil_render_writes_total{{file=\"{}\"}}", out.display());
    wait_until(Duration::from_secs(20), "the first write", || {
        (render_metric(metrics, &writes) == 1.0).then_some(())
    });
    for i in 0..100 {
        session
            .create_ephemeral(&format!("{base}/10.1.1.{i}:2000"), b"")
            .expect("an instance of the burst");
        std::thread::sleep(Duration::from_millis(10));
    }
    let instances = |path: &Path| -> Option<usize> {
        let text = std::fs::read_to_string(path).ok()?;
        let services: zkutil::serde_json::Value = zkutil::serde_json::from_str(&text).ok()?;
        services[0]["instances"].as_array().map(Vec::len)
    };
    let all = poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
        (instances(&out)? == 101).then_some(())
    });
    assert!(
        all.is_some(),
        "never all 101 instances in the file, last {:?}:\n{}",
        instances(&out),
        follower.stderr_text()
    );
    // The wait's maximum (2 s) after the last change: any later write would
    // be in. Judged by the file (a write replaces it), not by the count,
    // which a write raises only after its rename and fsync.
    let complete = identity(&out);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        identity(&out),
        complete,
        "a write after the list was complete"
    );
    let burst = render_metric(metrics, &writes) - 1.0;
    eprintln!("the burst of 100 registrations gave {burst} writes");
    assert!(burst <= 3.0, "{burst} writes for one burst");
}

#[test]
fn a_template_syntax_error_names_its_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("a folder");
    let good = dir.path().join("good.j2");
    std::fs::write(&good, "{{ service.path }}\n").expect("written");
    let bad = dir.path().join("bad.cfg.j2");
    std::fs::write(
        &bad,
        "backend b\n  balance roundrobin\n  {% for s in service.instances %}\n",
    )
    .expect("written");
    let (good_out, bad_out) = (dir.path().join("good.out"), dir.path().join("bad.out"));
    let good_spec = format!("{}:{}", good.display(), good_out.display());
    let bad_spec = format!("{}:{}", bad.display(), bad_out.display());
    // No ZooKeeper is needed: the templates are checked before connecting.
    let mut process = TestProcess::start(
        zkutil_binary(),
        &[
            "--zk",
            "127.0.0.1:1",
            "render",
            "--template",
            &good_spec,
            "--template",
            &bad_spec,
        ],
        &[],
    );
    let status = process.wait(Duration::from_secs(10));
    let stderr = process.stderr_text();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("syntax error"), "{stderr}");
    assert!(
        !good_out.exists() && !bad_out.exists(),
        "a file was written"
    );
}

#[test]
fn the_nginx_template_passes_nginx_t_with_instances_and_empty() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render_nginx";
    let session = observer(&zk);
    session.ensure_path(base).expect("the base path");
    let dir = tempfile::tempdir().expect("a folder");
    let upstream = dir.path().join("upstream.conf");
    let spec = format!(
        "{}:{}",
        template("nginx-stream.conf.j2").display(),
        upstream.display()
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\
             error_log stderr;\npid {d}/nginx.pid;\nevents {{}}\n\
             stream {{\n  include {u};\n  server {{ listen 127.0.0.2:1; proxy_pass render_nginx; }}\n}}\n",
            d = dir.path().display(),
            u = upstream.display()
        ),
    )
    .expect("nginx.conf written");
    let nginx_t = || {
        let output = std::process::Command::new("/usr/sbin/nginx")
            .args(["-t", "-q", "-c"])
            .arg(&conf)
            .output()
            .expect("runs nginx -t (scripts/zk.sh install installs it)");
        assert!(
            output.status.success(),
            "nginx -t: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(&upstream).unwrap_or_default()
        );
    };
    // Empty: refused unless asked, and then nginx still accepts it.
    let refused = render_once_failing(&hosts, &["--path", base, "--template", &spec]);
    assert!(refused.contains("no instance in rotation"), "{refused}");
    assert!(!upstream.exists());
    render_once(
        &hosts,
        &["--path", base, "--template", &spec, "--allow-empty"],
        &[],
    );
    nginx_t();
    session
        .create_ephemeral(&format!("{base}/10.3.0.1:80"), b"")
        .expect("an instance");
    session
        .create_ephemeral(&format!("{base}/10.3.0.2:80"), br#"{"weight": 0}"#)
        .expect("a backup instance");
    render_once(&hosts, &["--path", base, "--template", &spec], &[]);
    let text = std::fs::read_to_string(&upstream).expect("rendered");
    assert!(text.contains("server 10.3.0.1:80 weight=100"), "{text}");
    assert!(text.contains("server 10.3.0.2:80 backup"), "{text}");
    nginx_t();
}

#[test]
fn the_json_template_gives_every_instance_with_its_fields_and_once_fails_without_zookeeper() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let base = "/render-json";
    let (_server, endpoint) = time_server(&hosts, base);
    let (_other, disabled) = time_server(&hosts, base);
    let operator = std::process::Command::new(zkutil_binary())
        .args([
            "--zk",
            &hosts,
            "--base-path",
            base,
            "disable",
            &disabled,
            "--reason",
            "kernel upgrade",
        ])
        .output()
        .expect("runs zkutil disable");
    assert!(
        operator.status.success(),
        "{}",
        String::from_utf8_lossy(&operator.stderr)
    );
    let dir = tempfile::tempdir().expect("a folder");
    let out = dir.path().join("instances.json");
    let spec = format!(
        "{}:{}",
        template("instances.json.j2").display(),
        out.display()
    );
    render_once(&hosts, &["--path", base, "--template", &spec], &[]);
    let services: zkutil::serde_json::Value =
        zkutil::serde_json::from_slice(&std::fs::read(&out).expect("rendered")).expect("JSON");
    let service = &services[0];
    assert_eq!(service["path"], base);
    let instance = &service["instances"][0];
    assert_eq!(instance["endpoint"], endpoint.as_str());
    assert_eq!(instance["format"], "plain");
    assert_eq!(instance["weight"], 100);
    assert_eq!(instance["in_rotation"], true);
    assert!(instance["metadata"]["pid"].is_u64(), "{instance}");
    let registered = instance["registered_at"].as_str().expect("a time");
    humantime::parse_rfc3339(registered).expect("RFC 3339");
    let out_of = &service["out_of_rotation"][0];
    assert_eq!(out_of["endpoint"], disabled.as_str());
    assert_eq!(out_of["reason"], "kernel upgrade");

    let before = std::fs::read(&out).expect("rendered");
    drop(zk);
    let failed = render_once_failing(&hosts, &["--path", base, "--template", &spec]);
    assert!(failed.contains("zkutil: error:"), "{failed}");
    assert_eq!(std::fs::read(&out).expect("still there"), before);
}
