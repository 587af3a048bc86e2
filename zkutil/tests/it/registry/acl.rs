//! With auth, a registration is made only under a parent closed to
//! strangers: an open parent is refused or tightened, also after an expiry.

use std::sync::Arc;
use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{BasePath, OpenParent, Registrar, Registration, SessionConfig};

use crate::support::{proxy_to, session, zookeeper};

use super::{endpoint, metadata};

/// A session with digest auth on `hosts`.
fn with_auth(hosts: String, session_timeout: Duration) -> Arc<zkutil::Session> {
    Arc::new(
        SessionConfig::new(hosts)
            .with_session_timeout(session_timeout)
            .with_digest_auth(zkutil::Secret::new("svc:pw"))
            .connect()
            .expect("an authenticated session"),
    )
}

/// A stranger (no auth) can neither add an instance under `parent` nor
/// delete `ours`.
#[track_caller]
fn closed_to_strangers(stranger: &zkutil::Session, parent: &str, ours: &str) {
    let fake = format!("{parent}/10.6.6.6:80");
    match stranger.create_ephemeral(&fake, b"") {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger creating {fake}: {other:?}"),
    }
    match stranger.delete(ours, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger deleting {ours}: {other:?}"),
    }
}

/// With auth and `OpenParent::Tighten`, a parent that a stranger re-created
/// open while our session was expired (our node gone, the parent empty) is
/// tightened before the keeper re-registers: the re-registration is as
/// closed to strangers as the first one.
#[test]
fn a_parent_recreated_open_during_an_expiry_is_tightened_before_re_registering() {
    let zk = zookeeper();
    let proxy = proxy_to(&zk, Duration::ZERO);
    let owner = with_auth(proxy.addr().to_string(), Duration::from_secs(2));
    let stranger = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let reg = Registrar::new(BasePath::from_static("/go_servers"))
        .open_parent(OpenParent::Tighten)
        .register(&owner, e, &metadata(e))
        .expect("registers under a fresh (tight) parent");
    let path = reg.path();
    closed_to_strangers(&stranger, "/go_servers", &path);
    // Cut off until ZooKeeper expires the session and deletes our node.
    proxy.hold();
    wait_until(
        Duration::from_secs(20),
        "our node went with the session",
        || stranger.stat(&path).ok()?.is_none().then_some(()),
    );
    stranger
        .delete("/go_servers", None)
        .expect("deletes the empty parent");
    stranger
        .ensure_path("/go_servers")
        .expect("re-creates it open");
    proxy.release();
    wait_until(Duration::from_secs(30), "re-registered", || {
        stranger.stat(&path).ok().flatten()
    });
    closed_to_strangers(&stranger, "/go_servers", &path);
    reg.deregister().expect("deregisters");
}

/// With auth, a parent open to every address through the `ip` scheme
/// (`ip:0.0.0.0/0:cdrwa`: no `world:anyone` in sight) is as open as the
/// world's: refused by default with one line naming that ACL, tightened
/// with `OpenParent::Tighten`.
#[test]
fn a_parent_open_through_the_ip_scheme_is_refused_or_tightened_like_an_open_world() {
    let zk = zookeeper();
    let stranger = session(&zk);
    stranger.ensure_path("/go_servers").expect("creates");
    let out = zkutil::testing::zk_cli(
        &zk.connect_string(),
        &["setAcl", "/go_servers", "ip:0.0.0.0/0:cdrwa"],
    );
    let owner = with_auth(zk.connect_string(), Duration::from_secs(10));
    let e = endpoint("127.0.0.1:8897");
    match Registration::register(
        &owner,
        &BasePath::from_static("/go_servers"),
        e,
        &metadata(e),
    ) {
        Err(err @ zkutil::Error::OpenAcl { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains("/go_servers has the open ACL ip:0.0.0.0/0:cdrwa")
                    && !message.contains('\n'),
                "{message}"
            );
        }
        Err(err) => panic!("{err} (setAcl said: {out})"),
        Ok(reg) => panic!(
            "registered {} under a parent open through the ip scheme (setAcl said: {out})",
            reg.path()
        ),
    }
    assert_eq!(
        stranger.children("/go_servers").expect("lists"),
        Vec::<String>::new()
    );
    let reg = Registrar::new(BasePath::from_static("/go_servers"))
        .open_parent(OpenParent::Tighten)
        .register(&owner, e, &metadata(e))
        .expect("tightens, then registers");
    closed_to_strangers(&stranger, "/go_servers", &reg.path());
    reg.deregister().expect("deregisters");
}
