//! The observer: this binary's child mode, a `Discovery` in its own process
//! printing each change it sees with the wall-clock time it saw it. The
//! visibility and Curator sections time a change from the writer's
//! acknowledgement to that line, as another process on the machine would
//! see it.

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use zkutil::{BasePath, Change, Discovery, SessionConfig, SessionId};

/// Wall-clock nanoseconds: the one clock two processes share.
pub fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Child mode: `ready <session>` once `expect` instances are listed, then
/// `<added|removed> <endpoint> <unix nanos>` per change.
pub fn observe(hosts: &str, base: &BasePath, expect: usize) -> anyhow::Result<()> {
    let session = Arc::new(SessionConfig::new(hosts).connect()?);
    let id = session.id();
    let discovery = Discovery::start(session, base)?;
    let changes = discovery.subscribe();
    discovery
        .wait_for(Duration::from_secs(120), |s| s.instances().len() >= expect)
        .context("the first listing")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {id}")?;
    out.flush()?;
    while let Ok(change) = changes.recv() {
        let now = unix_nanos();
        let line = match change {
            Change::Added(i) => format!("added {} {now}", i.endpoint()),
            Change::Removed(i) => format!("removed {} {now}", i.endpoint()),
            _ => continue,
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

/// A running observer process, killed on drop.
pub struct Observer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Its ZooKeeper session, to count its packets.
    pub session: SessionId,
}

impl Observer {
    /// Starts one on `base` and waits until it lists `expect` instances.
    pub fn start(hosts: &str, base: &str, expect: usize) -> anyhow::Result<Observer> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["observe", hosts, base, "--expect", &expect.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("observer stdout")?;
        let mut observer = Observer {
            child,
            lines: BufReader::new(stdout).lines(),
            session: SessionId::new(0),
        };
        let ready = observer.lines.next().transpose()?.unwrap_or_default();
        observer.session = ready
            .strip_prefix("ready 0x")
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .map(SessionId::new)
            .context("the observer did not start")?;
        Ok(observer)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When (unix nanos) it saw the next change `kind` (`added` or
    /// `removed`) of `endpoint`.
    pub fn seen(&mut self, kind: &str, endpoint: &str) -> anyhow::Result<u128> {
        for line in self.lines.by_ref() {
            let line = line?;
            let mut parts = line.split(' ');
            if (parts.next(), parts.next()) == (Some(kind), Some(endpoint)) {
                return parts
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("the observer's line");
            }
        }
        anyhow::bail!("the observer stopped")
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Child mode of section 17: one `Discovery` per base path, `ready` once
/// they list `expect` instances between them; then it holds them until
/// its stdin closes, so that its memory can be read.
pub fn hold(hosts: &str, bases: &[BasePath], expect: usize) -> anyhow::Result<()> {
    let session = Arc::new(SessionConfig::new(hosts).connect()?);
    let discoveries = bases
        .iter()
        .map(|base| Discovery::start(session.clone(), base))
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while discoveries
        .iter()
        .map(|d| d.snapshot().instances().len())
        .sum::<usize>()
        < expect
    {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{expect} instances not listed within 300 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("ready");
    std::io::stdout().flush()?;
    // Held until the parent closes stdin (or kills it).
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    drop(discoveries);
    Ok(())
}

/// A running holder process, killed on drop.
pub struct Holder {
    child: Child,
}

impl Holder {
    /// Starts one on `bases`, and waits until they list `expect`.
    pub fn start(hosts: &str, bases: &[String], expect: usize) -> anyhow::Result<Holder> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("hold")
            .arg(hosts)
            .args(bases)
            .args(["--expect", &expect.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("holder stdout")?;
        let holder = Holder { child };
        let ready = BufReader::new(stdout).lines().next().transpose()?;
        anyhow::ensure!(
            ready.as_deref() == Some("ready"),
            "the holder did not start"
        );
        Ok(holder)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
