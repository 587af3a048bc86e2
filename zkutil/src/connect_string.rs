//! The connect string (`host:port[,host:port…][/chroot]`): its hosts and
//! its chroot, read the way every ZooKeeper client reads them.
//!
//! Both the session (which creates a missing chroot) and the health checks
//! of [`admin`](crate::admin) (which talk to each host) need them, so they
//! live here, apart from both.

/// ZooKeeper's client port, for a host given without one (as every
/// ZooKeeper client does).
pub const DEFAULT_PORT: u16 = 2181;

/// The `host:port` parts of a connect string (`h1:p1,h2/chroot`), the
/// default port added where none is given.
pub fn connect_string_hosts(hosts: &str) -> Vec<String> {
    split_chroot(hosts)
        .0
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|host| {
            let has_port = match host.rsplit_once(':') {
                Some((name, _)) if host.starts_with('[') => name.ends_with(']'),
                Some((name, _)) => !name.contains(':'),
                None => false,
            };
            if has_port {
                host.to_owned()
            } else {
                format!("{host}:{DEFAULT_PORT}")
            }
        })
        .collect()
}

/// The connect string with the blanks around each host removed
/// (`"zk1:2181, zk2:2181"`, common in YAML, becomes `"zk1:2181,zk2:2181"`):
/// the client crate does not trim, so `" zk2"` would never resolve and that
/// host would be lost without a word.
pub(crate) fn without_blanks(hosts: &str) -> String {
    let (list, chroot) = split_chroot(hosts);
    let list: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    format!("{}{}", list.join(","), chroot.unwrap_or_default().trim())
}

/// Splits a connect string into its hosts and its chroot, if any:
/// `"h1:p1,h2:p2/app"` → `("h1:p1,h2:p2", Some("/app"))`.
pub(crate) fn split_chroot(hosts: &str) -> (&str, Option<&str>) {
    match hosts.find('/') {
        Some(slash) => {
            let chroot = hosts[slash..].trim_end_matches('/');
            (&hosts[..slash], (!chroot.is_empty()).then_some(chroot))
        }
        None => (hosts, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_around_hosts_are_dropped() {
        assert_eq!(
            without_blanks(" zk1:2181, zk2:2181 ,zk3/app "),
            "zk1:2181,zk2:2181,zk3/app"
        );
        assert_eq!(without_blanks("a:1,b:2"), "a:1,b:2");
        assert_eq!(without_blanks("   "), "");
    }

    #[test]
    fn connect_strings_split_into_hosts() {
        assert_eq!(connect_string_hosts("a:1,b:2/app"), ["a:1", "b:2"]);
        assert_eq!(connect_string_hosts("[::1]:2182"), ["[::1]:2182"]);
        assert_eq!(
            connect_string_hosts("a,[::1]/app"),
            ["a:2181", "[::1]:2181"]
        );
        assert!(connect_string_hosts("").is_empty());
    }
}
