//! The floor: this binary's second child mode, the least a client can do
//! to see a change. It holds one persistent recursive watch through
//! `zookeeper-client` used directly (no zkutil session, no cache, no
//! decode, no snapshot, no thread hand-off) and prints each notification
//! as it arrives, from the task that received it. With `--read` it first
//! reads a created child's data (one round trip), as any client must for a
//! format whose instances are described in their data (Curator's).
//! Section 16 times our `Discovery` and Curator's cache against it.

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use zkutil::SessionId;
use zookeeper_client::{AddWatchMode, Client, EventType};

use crate::observe::unix_nanos;

/// Child mode: `ready <session>` once the watch is in place, then
/// `<added|removed> <child name> <unix nanos>` per child created or
/// deleted under `base`.
pub fn floor(hosts: &str, base: &str, read: bool) -> anyhow::Result<()> {
    let executor = std::sync::Arc::new(async_executor::Executor::new());
    let spawner = Spawner(executor.clone());
    let _scope = spawns_core::enter(&spawner);
    futures_lite::future::block_on(executor.run(watch(hosts, base, read)))
}

/// Runs `zookeeper-client`'s session task on the floor's one thread.
struct Spawner(std::sync::Arc<async_executor::Executor<'static>>);

impl spawns_core::Spawn for Spawner {
    fn spawn(&self, task: spawns_core::Task) {
        self.0.spawn(Box::into_pin(task.future)).detach();
    }
}

async fn watch(hosts: &str, base: &str, read: bool) -> anyhow::Result<()> {
    let timeout = async {
        async_io::Timer::after(Duration::from_secs(30)).await;
        Err(anyhow::anyhow!("not connected within 30 s"))
    };
    let client =
        futures_lite::future::or(async { Ok(Client::connect(hosts).await?) }, timeout).await?;
    let mut watcher = client
        .watch(base, AddWatchMode::PersistentRecursive)
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", client.session().id())?;
    out.flush()?;
    loop {
        let event = watcher.changed().await;
        let kind = match event.event_type {
            EventType::NodeCreated => "added",
            EventType::NodeDeleted => "removed",
            EventType::Session if event.session_state.is_terminated() => break,
            _ => continue,
        };
        if read && kind == "added" {
            // A child deleted before its read is gone again: no line.
            if client.get_data(&event.path).await.is_err() {
                continue;
            }
        }
        let now = unix_nanos();
        let name = event.path.rsplit('/').next().unwrap_or_default();
        if writeln!(out, "{kind} {name} {now}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// A running floor process, killed on drop.
pub struct Floor {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Its ZooKeeper session, to count its packets.
    pub session: SessionId,
}

impl Floor {
    /// Starts one on `base`, reading created children's data when `read`.
    pub fn start(hosts: &str, base: &str, read: bool) -> anyhow::Result<Floor> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["floor", hosts, base]);
        if read {
            command.arg("--read");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("floor stdout")?;
        let mut floor = Floor {
            child,
            lines: BufReader::new(stdout).lines(),
            session: SessionId::new(0),
        };
        let ready = floor.lines.next().transpose()?.unwrap_or_default();
        floor.session = ready
            .strip_prefix("ready 0x")
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .map(SessionId::new)
            .context("the floor process did not start")?;
        Ok(floor)
    }

    /// When (unix nanos) it saw the next change `kind` (`added` or
    /// `removed`) of the child `name`.
    pub fn seen(&mut self, kind: &str, name: &str) -> anyhow::Result<u128> {
        for line in self.lines.by_ref() {
            let line = line?;
            let mut parts = line.split(' ');
            if (parts.next(), parts.next()) == (Some(kind), Some(name)) {
                return parts
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("the floor's line");
            }
        }
        anyhow::bail!("the floor process stopped")
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
