//! Operator controls on real ZooKeeper: out of rotation and weights written
//! into each format's own field, kept by the registrant across deletion and
//! session expiry. (Concurrent writers: `control`'s own tests.)

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::wait_until;
use zkutil::{
    BasePath, Control, Discovery, Endpoint, Format, Metadata, Registrar, Registration, Session,
};

use crate::support::{session, zookeeper};

fn endpoint(port: u16) -> Endpoint {
    Endpoint::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

fn register(session: &Arc<Session>, registrar: &Registrar, endpoint: Endpoint) -> Registration {
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    registrar
        .register(session, endpoint, &metadata)
        .expect("registers")
}

/// The instance of `endpoint` in `discovery`'s view, with whether it is in
/// service, once `accept` holds for it.
fn seen(
    discovery: &Discovery,
    endpoint: Endpoint,
    what: &str,
    accept: impl Fn(&zkutil::Instance, bool) -> bool,
) -> zkutil::Instance {
    let found = |snapshot: &zkutil::Snapshot| {
        let up = snapshot.instances().iter().map(|i| (i, true));
        let out = snapshot.out_of_service().iter().map(|i| (i, false));
        up.chain(out)
            .find(|(i, on)| i.endpoint() == endpoint && accept(i, *on))
            .map(|(i, _)| i.clone())
    };
    let snapshot = discovery
        .wait_for(Duration::from_secs(30), |s| found(s).is_some())
        .unwrap_or_else(|| panic!("timed out waiting until discovery sees {endpoint} {what}"));
    found(&snapshot).expect("accepted above")
}

/// Waits until the registration's node is a new one (version 0: the
/// operator's change made it 1 or more), owned by `owner` when given, and
/// returns its data.
fn recreated(
    observer: &Session,
    registration: &Registration,
    owner: Option<zkutil::SessionId>,
) -> Vec<u8> {
    wait_until(Duration::from_secs(30), "the node is re-created", || {
        let (data, stat) = observer.get_data(&registration.path()).ok()?;
        let owned = owner.is_none_or(|owner| stat.ephemeral_owner() == owner);
        (stat.version() == 0 && owned).then_some(data)
    })
}

/// Waits until the registration's keeper has seen a change whose data
/// contains `text` (one watch round trip after it was written).
fn kept(registration: &Registration, text: &str) {
    wait_until(
        Duration::from_secs(30),
        "the keeper has seen the change",
        || {
            String::from_utf8_lossy(&registration.data())
                .contains(text)
                .then_some(())
        },
    );
}

#[test]
fn an_operators_change_survives_deletion_and_session_expiry_in_every_format() {
    let zk = zookeeper();
    let observer = session(&zk);
    for (i, format) in Format::WRITABLE.into_iter().enumerate() {
        let s = session(&zk);
        let base = BasePath::new(&format!("/op_{format}")).expect("a valid base path");
        let registrar = Registrar::new(base.clone())
            .format(format)
            .expect("writable");
        let parent = BasePath::new(&registrar.parent()).expect("a valid parent");
        let e = endpoint(20_000 + i as u16);
        let registration = register(&s, &registrar, e);
        let discovery =
            Discovery::start_with_metadata(observer.clone(), &parent).expect("discovery starts");
        seen(&discovery, e, "in service", |_, up| up);

        let off = Control::Disable {
            reason: Some("kernel upgrade".into()),
        };
        let applied = off.apply_to(&observer, &parent, e).expect("disables");
        assert_eq!(applied.len(), 1, "{format}: {applied:?}");
        assert_eq!(applied[0].format, format);
        let out = seen(&discovery, e, "out of service", |_, up| !up);
        if format != Format::Serverset {
            assert_eq!(out.disabled_reason(), Some("kernel upgrade"), "{format}");
        }

        // An operator deletes the node (once the keeper has seen the
        // change): the keeper re-creates it, disabled.
        let change = match format {
            Format::Serverset => "STOPPING",
            _ => "kernel upgrade",
        };
        kept(&registration, change);
        let deleted_path = registration.path();
        observer.delete(&deleted_path, None).expect("deletes");
        recreated(&observer, &registration, Some(s.id()));
        let again = seen(
            &discovery,
            e,
            "out of service after re-creation",
            |_, up| !up,
        );
        if format != Format::Serverset {
            assert_eq!(again.disabled_reason(), Some("kernel upgrade"), "{format}");
        }

        // The session expires: the node comes back under the new session,
        // still disabled.
        let old = s.id();
        s.expire_for_testing().expect("expires the session");
        let data = wait_until(
            Duration::from_secs(30),
            "re-registered under a new session",
            || {
                let (data, stat) = observer.get_data(&registration.path()).ok()?;
                (stat.ephemeral_owner() != old).then_some(data)
            },
        );
        let text = String::from_utf8_lossy(&data);
        assert!(text.contains(change), "{format}: {text}");
        seen(&discovery, e, "out of service after expiry", |_, up| !up);
        let instance = zkutil::list_instances(&observer, &parent, true)
            .expect("lists")
            .into_iter()
            .find(|i| i.endpoint() == e)
            .expect("still registered");
        assert!(!instance.is_enabled(), "{format}: {text}");

        Control::Enable
            .apply_to(&observer, &parent, e)
            .expect("enables");
        seen(&discovery, e, "back in service", |_, up| up);
        registration.deregister().expect("deregisters");
    }
}

#[test]
fn a_weight_set_live_reaches_discovery_and_survives_re_creation() {
    let zk = zookeeper();
    let (s, observer) = (session(&zk), session(&zk));
    let base = BasePath::from_static("/op_weight");
    let e = endpoint(20_100);
    let registration = register(&s, &Registrar::new(base.clone()), e);
    let discovery = Discovery::start_with_metadata(observer.clone(), &base).expect("starts");
    seen(&discovery, e, "weight 100", |i, _| i.weight() == 100);
    Control::Weight(300)
        .apply_to(&observer, &base, e)
        .expect("sets the weight");
    seen(&discovery, e, "weight 300", |i, _| i.weight() == 300);
    kept(&registration, r#""weight":300"#);
    observer
        .delete(&registration.path(), None)
        .expect("deletes");
    let data = recreated(&observer, &registration, None);
    assert!(String::from_utf8_lossy(&data).contains(r#""weight":300"#));
    seen(&discovery, e, "weight 300 after re-creation", |i, up| {
        up && i.weight() == 300
    });
}

#[test]
fn concurrent_zkutil_weight_and_disable_calls_all_land() {
    let zk = zookeeper();
    let s = session(&zk);
    let base = BasePath::from_static("/op_cli_race");
    let e = endpoint(20_300);
    let _registration = register(&s, &Registrar::new(base.clone()), e);
    let hosts = zk.connect_string();
    let endpoint = e.to_string();
    let zkutil = |args: &[&str]| {
        Command::new(crate::support::zkutil_binary())
            .args(["--zk", &hosts, "--base-path", base.as_str(), "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zkutil starts")
    };
    // Started together; whichever loses a race re-reads and redoes its
    // change (control's own tests force that interleaving).
    let children = [
        zkutil(&["weight", &endpoint, "250"]),
        zkutil(&["weight", &endpoint, "260"]),
        zkutil(&["disable", &endpoint, "--reason", "drain"]),
    ];
    for child in children {
        let out = child.wait_with_output().expect("zkutil ends");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (_, stat) = s.get_data(&base.node_path(&e)).expect("reads");
    assert_eq!(stat.version(), 3, "three writes, each once");
    let instance = zkutil::list_instances(&s, &base, true)
        .expect("lists")
        .pop()
        .expect("registered");
    assert!([250, 260].contains(&instance.weight()), "{instance:?}");
    assert_eq!(
        (instance.is_enabled(), instance.disabled_reason()),
        (false, Some("drain")),
        "the disable is kept whichever weight won"
    );
}

#[test]
fn an_unregistered_endpoint_and_a_serverset_weight_are_clear_errors() {
    let zk = zookeeper();
    let s = session(&zk);
    let base = BasePath::from_static("/op_errors");
    let err = Control::Enable
        .apply_to(&s, &base, endpoint(20_400))
        .expect_err("nothing registered");
    assert_eq!(
        err.to_string(),
        "127.0.0.1:20400 is not registered under /op_errors"
    );
    let registrar = Registrar::new(base.clone())
        .format(Format::Serverset)
        .expect("writable");
    let _member = register(&s, &registrar, endpoint(20_401));
    let err = Control::Weight(5)
        .apply_to(&s, &base, endpoint(20_401))
        .expect_err("a member has no weight");
    assert!(err.to_string().contains("no place for a weight"), "{err}");
}

#[test]
fn a_registration_made_disabled_is_out_of_service_until_enabled() {
    let zk = zookeeper();
    let (s, observer) = (session(&zk), session(&zk));
    for (i, format) in Format::WRITABLE.into_iter().enumerate() {
        let base = BasePath::new(&format!("/op_start_{format}")).expect("valid");
        let registrar = Registrar::new(base)
            .format(format)
            .expect("writable")
            .disabled(Some("warming caches".into()));
        let parent = BasePath::new(&registrar.parent()).expect("valid");
        let e = endpoint(20_500 + i as u16);
        let _registration = register(&s, &registrar, e);
        let discovery = Discovery::start_with_metadata(observer.clone(), &parent).expect("starts");
        seen(&discovery, e, "registered out of service", |_, up| !up);
        Control::Enable
            .apply_to(&observer, &parent, e)
            .expect("enables");
        seen(&discovery, e, "in service", |_, up| up);
    }
}

#[test]
fn a_new_weight_keeps_an_instance_out_of_rotation_in_every_format() {
    let zk = zookeeper();
    let (s, observer) = (session(&zk), session(&zk));
    let weighted = Format::WRITABLE
        .into_iter()
        .filter(|format| *format != Format::Serverset); // no place for a weight
    for (i, format) in weighted.enumerate() {
        let base = BasePath::new(&format!("/op_weight_out_{format}")).expect("valid");
        let registrar = Registrar::new(base).format(format).expect("writable");
        let parent = BasePath::new(&registrar.parent()).expect("valid");
        let e = endpoint(20_600 + i as u16);
        let _registration = register(&s, &registrar, e);
        let discovery = Discovery::start_with_metadata(observer.clone(), &parent).expect("starts");
        Control::Disable {
            reason: Some("drain".into()),
        }
        .apply_to(&observer, &parent, e)
        .expect("disables");
        seen(&discovery, e, "out of service", |_, up| !up);
        Control::Weight(7)
            .apply_to(&observer, &parent, e)
            .expect("sets the weight");
        let instance = seen(&discovery, e, "weight 7", |i, _| i.weight() == 7);
        assert_eq!(
            (instance.is_enabled(), instance.disabled_reason()),
            (false, Some("drain")),
            "{format}: a weight change put a disabled instance back in rotation"
        );
    }
}
