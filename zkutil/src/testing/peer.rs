//! The Curator peer: Apache Curator's own service discovery, run as a JVM,
//! for interop tests against the real thing rather than our idea of it.
//!
//! The peer's source is `zkutil/tests/peers/CuratorPeer.java` (with a
//! class of Spring Cloud Zookeeper's `ZookeeperInstance` shape). It is
//! compiled once with `javac` against Debian's jars in `/usr/share/java`
//! (`scripts/zk.sh install` installs `libcurator-discovery-java` and
//! `libcurator-recipes-java`) and cached under the target directory, keyed
//! by a hash of its sources. It runs with the Netty jars on its classpath,
//! so that system properties alone ([`CuratorPeer::with_system_properties`],
//! [`ZkServer::jvm_client_properties`](super::ZkServer::jvm_client_properties))
//! make it a TLS client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::process::TestProcess;
use super::security::with_netty_jars;

/// The jars the peer runs on (Curator 5.4 and what it needs).
const JARS: &[&str] = &[
    "curator-x-discovery",
    "curator-recipes",
    "curator-framework",
    "curator-client",
    "zookeeper",
    "jackson-core",
    "jackson-databind",
    "jackson-annotations",
    "guava",
    "slf4j-api",
];

/// The peer's sources, relative to the zkutil crate.
const SOURCES: &[&str] = &[
    "tests/peers/CuratorPeer.java",
    "tests/peers/org/springframework/cloud/zookeeper/discovery/ZookeeperInstance.java",
];

/// A compiled Curator peer.
#[derive(Debug, Clone)]
///
/// # Example
///
/// ```
/// # let zk = zkutil::testing::zookeeper();
/// // Compiled once per source version with javac against Debian's Curator jars.
/// let peer = zkutil::testing::CuratorPeer::get().expect("Curator and a JDK are installed");
/// let listed = peer.run(&["list", &zk.connect_string(), "/services", "time"]).expect("runs");
/// assert_eq!(listed, "", "no instances yet");
/// ```
pub struct CuratorPeer {
    classpath: String,
    /// `-Dkey=value` arguments of the JVM, before the class name.
    system_properties: Vec<String>,
}

impl CuratorPeer {
    /// The peer, compiled on first use.
    ///
    /// # Errors
    ///
    /// When Curator's jars are missing (with the command that installs
    /// them) or `javac` fails (with its output).
    pub fn get() -> Result<CuratorPeer, String> {
        static PEER: OnceLock<Result<CuratorPeer, String>> = OnceLock::new();
        PEER.get_or_init(compile).clone()
    }

    /// This peer with the JVM system properties `properties` (each
    /// `-Dkey=value`) on every run and start: the ZooKeeper client's
    /// settings, as [`ZkServer::jvm_client_properties`](super::ZkServer::jvm_client_properties)
    /// makes them for TLS.
    pub fn with_system_properties(
        mut self,
        properties: impl IntoIterator<Item = String>,
    ) -> CuratorPeer {
        self.system_properties.extend(properties);
        self
    }

    /// Runs `args` (`list HOSTS BASE SERVICE`, `provider …`, `children …`) to completion:
    /// its stdout, or its stderr as the error when it fails.
    ///
    /// # Errors
    ///
    /// A failed run: the peer's exception.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(java())
            .args(&self.system_properties)
            .arg("-cp")
            .arg(&self.classpath)
            .arg("CuratorPeer")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("running java: {err}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(quiet(&String::from_utf8_lossy(&output.stderr)))
        }
    }

    /// Starts `args` (`cache …`, `register …`), which run until
    /// [`TestProcess::close_stdin`].
    pub fn start(&self, args: &[&str]) -> TestProcess {
        let mut all: Vec<&str> = self.system_properties.iter().map(String::as_str).collect();
        all.extend(["-cp", self.classpath.as_str(), "CuratorPeer"]);
        all.extend_from_slice(args);
        TestProcess::start_with_stdin(java(), &all, &[])
    }
}

fn java() -> String {
    std::env::var("ZK_JAVA").unwrap_or_else(|_| "java".to_owned())
}

/// The peer's stderr without SLF4J's "no provider" notice.
fn quiet(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.starts_with("SLF4J"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn compile() -> Result<CuratorPeer, String> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut jars = Vec::new();
    for jar in JARS {
        let path = PathBuf::from(format!("/usr/share/java/{jar}.jar"));
        if !path.exists() {
            return Err(format!(
                "{} is missing: Curator is not installed (run `scripts/zk.sh install`)",
                path.display()
            ));
        }
        jars.push(path.display().to_string());
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut sources = Vec::new();
    for source in SOURCES {
        let path = crate_dir.join(source);
        let text = std::fs::read(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        for byte in text {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        sources.push(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate_dir.join("../target"), PathBuf::from);
    let out = target.join(format!("curator-peer/{hash:016x}"));
    if !out.join("CuratorPeer.class").exists() {
        // Compiled aside, then renamed: a concurrent test never sees half.
        let building = target.join(format!("curator-peer/{hash:016x}.{}", std::process::id()));
        std::fs::create_dir_all(&building)
            .map_err(|err| format!("{}: {err}", building.display()))?;
        let output = Command::new("javac")
            .arg("-nowarn")
            .arg("-d")
            .arg(&building)
            .arg("-cp")
            .arg(jars.join(":"))
            .args(&sources)
            .output()
            .map_err(|err| format!("running javac (is a JDK installed?): {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "javac failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if std::fs::rename(&building, &out).is_err() {
            // Another process won the race: its build is as good.
            let _ = std::fs::remove_dir_all(&building);
        }
    }
    jars.push(out.display().to_string());
    Ok(CuratorPeer {
        classpath: with_netty_jars(&jars.join(":")),
        system_properties: Vec::new(),
    })
}
