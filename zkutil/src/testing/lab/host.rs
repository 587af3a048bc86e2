//! One host of the lab: a network namespace with one veth on the lab's
//! bridge and one address, and the programs started in it.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};

use super::ip::ip;
use crate::testing::{DelayProxy, TestProcess};

/// A named host of a [`Lab`](super::Lab): its own network namespace, its
/// own address, loopback up, no default route (nothing it sends can leave
/// the lab). Cheap to clone: it names the host, the [`Lab`](super::Lab)
/// owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    name: String,
    namespace: String,
    /// The root namespace's end of the host's veth, on the bridge:
    /// setting it down cuts the host off.
    veth: String,
    /// The namespace's end, until it is renamed `eth0` there.
    inner: String,
    address: Ipv4Addr,
}

impl Host {
    /// The host `name`, number `number` of the lab `prefix`: its names and
    /// address, nothing created yet.
    pub(super) fn new(prefix: &str, number: usize, name: &str, address: Ipv4Addr) -> Host {
        Host {
            name: name.to_owned(),
            namespace: format!("{prefix}-{name}"),
            veth: format!("{prefix}v{number}"),
            inner: format!("{prefix}p{number}"),
            address,
        }
    }

    /// Creates the namespace, a veth pair with one end on `bridge` and the
    /// other, renamed `eth0`, in the namespace with the address/24, and
    /// brings loopback up.
    pub(super) fn create(&self, bridge: &str) -> std::io::Result<()> {
        let inner = self.inner.as_str();
        let ns = self.namespace.as_str();
        let cidr = format!("{}/24", self.address);
        ip(&["netns", "add", ns])?;
        ip(&[
            "link", "add", &self.veth, "type", "veth", "peer", "name", inner, "netns", ns,
        ])?;
        ip(&["link", "set", &self.veth, "master", bridge])?;
        ip(&["link", "set", &self.veth, "up"])?;
        ip(&["-n", ns, "link", "set", inner, "name", "eth0"])?;
        ip(&["-n", ns, "addr", "add", &cidr, "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // One segment per packet, both ends: without it TCP hands the veth
        // 64 KB bursts as one buffer, and a loss rule drops them whole
        // (tens of segments) where a real link loses one packet.
        ip(&["-n", ns, "link", "set", "eth0", "gso_max_segs", "1"])?;
        ip(&["link", "set", &self.veth, "gso_max_segs", "1"])?;
        Ok(())
    }

    /// The name the test gave it (`zk1`, `server`, `client`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace (`ip netns exec` takes it).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its address on the lab's /24.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// `address:port`.
    pub fn socket(&self, port: u16) -> SocketAddr {
        (self.address, port).into()
    }

    pub(super) fn veth(&self) -> &str {
        &self.veth
    }

    /// The command line that runs a program in this host: `ip netns exec`
    /// (which execs it: the PID is the program's) and `setpriv
    /// --pdeathsig KILL`, so that the program dies with the thread that
    /// started it even when the test is killed with SIGKILL.
    pub(super) fn launcher(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.namespace]
            .into_iter()
            .chain(["setpriv", "--pdeathsig", "KILL", "--"])
            .map(str::to_owned)
            .collect()
    }

    /// A [`Command`] running `program` in this host; add arguments and
    /// spawn it as any other. It dies with the thread that spawns it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let launcher = self.launcher();
        let mut command = Command::new(&launcher[0]);
        command.args(&launcher[1..]).arg(program);
        command
    }

    /// Starts `program` with `args` and the extra environment `envs` in
    /// this host, as a [`TestProcess`] (output recorded, killed on drop).
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub fn start(
        &self,
        program: impl AsRef<OsStr>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> TestProcess {
        let mut command = self.command(program);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null());
        TestProcess::from_command(command)
    }

    /// A relay inside this host to `target`: a [`DelayProxy`] listening on
    /// the host's own loopback, that connects out from the host, so that
    /// every fault of the host cuts it as it cuts the host's programs. A
    /// program of the host given the relay's address instead of the
    /// target's can be slowed at any time ([`DelayProxy::set_delay`]).
    ///
    /// # Errors
    ///
    /// When the namespace cannot be entered (not root) or no port bound.
    pub fn relay(&self, target: SocketAddr) -> std::io::Result<DelayProxy> {
        let path = format!("/run/netns/{}", self.namespace);
        // setns(2) moves the calling thread only: a thread of its own
        // enters the namespace, binds there, and the relay's threads,
        // spawned from it, stay there.
        std::thread::spawn(move || {
            crate::testing::netns::enter(&path)?;
            let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let none = std::time::Duration::ZERO;
            DelayProxy::start_on(bind, target, none, none).map(|relay| relay.in_namespace(path))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the relay's thread panicked")))
    }
}
