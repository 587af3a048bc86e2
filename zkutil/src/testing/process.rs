//! Processes under test: [`TestProcess`] (a child whose output is recorded
//! line by line, killed on drop) and [`LineRecorder`] (lines with their
//! arrival time, and waits that wake on each write).

use crate::sync::{lock, wait_timeout};
use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::wait::{poll_until, send_signal};

/// A `Write` that records each complete line with the instant it was
/// written, shareable between the writer and the test that reads it. A
/// reader can wait for a condition on the lines: every write wakes it, so
/// no polling.
#[derive(Debug, Clone, Default)]
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let child = zkutil::testing::TestProcess::start("sh", &["-c", "echo one; echo two"], &[]);
/// // Woken by every line, not polled.
/// let second = child
///     .stdout()
///     .wait_for(Duration::from_secs(10), |lines, _closed| lines.get(1).map(|(_, l)| l.clone()));
/// assert_eq!(second.as_deref(), Some("two"));
/// ```
pub struct LineRecorder {
    inner: std::sync::Arc<(std::sync::Mutex<Recorded>, std::sync::Condvar)>,
}

#[derive(Debug, Default)]
struct Recorded {
    /// The last line, until its newline arrives.
    partial: Vec<u8>,
    lines: Vec<(Instant, String)>,
    /// The writer is done (EOF of the pipe it copies).
    closed: bool,
}

impl LineRecorder {
    /// A recorder with nothing in it.
    pub fn new() -> LineRecorder {
        LineRecorder::default()
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        lock(&self.inner.0)
    }

    /// Every complete line so far, with when it was written.
    pub fn lines(&self) -> Vec<(Instant, String)> {
        self.recorded().lines.clone()
    }

    /// How many complete lines so far.
    pub fn len(&self) -> usize {
        self.recorded().lines.len()
    }

    /// Whether no line was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the end of the output and wakes every waiter.
    pub fn close(&self) {
        self.recorded().closed = true;
        self.inner.1.notify_all();
    }

    /// Waits until `accept(lines, closed)` returns `Some`, woken by every
    /// write; `None` when `deadline` passes first.
    pub fn wait_for<T>(
        &self,
        deadline: Duration,
        mut accept: impl FnMut(&[(Instant, String)], bool) -> Option<T>,
    ) -> Option<T> {
        let until = Instant::now() + deadline;
        let mut recorded = self.recorded();
        loop {
            if let Some(value) = accept(&recorded.lines, recorded.closed) {
                return Some(value);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            recorded = wait_timeout(&self.inner.1, recorded, left);
        }
    }
}

impl LineRecorder {
    /// Waits, woken by every write, until `f(lines)` returns `Some`.
    ///
    /// # Panics
    ///
    /// When `deadline` passes first, naming `what`: this is for tests.
    #[track_caller]
    pub fn wait_until<T>(
        &self,
        deadline: Duration,
        what: &str,
        mut f: impl FnMut(&[(Instant, String)]) -> Option<T>,
    ) -> T {
        self.wait_for(deadline, |lines, _| f(lines))
            .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting until {what}"))
    }

    /// Waits until at least `count` lines were written.
    ///
    /// # Panics
    ///
    /// When `deadline` passes first.
    #[track_caller]
    pub fn wait_for_lines(&self, count: usize, deadline: Duration) {
        self.wait_until(deadline, &format!("{count} lines are written"), |lines| {
            (lines.len() >= count).then_some(())
        });
    }
}

impl Write for LineRecorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let now = Instant::now();
        let mut recorded = self.recorded();
        recorded.partial.extend_from_slice(buf);
        while let Some(end) = recorded.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = recorded.partial.drain(..=end).collect();
            recorded
                .lines
                .push((now, String::from_utf8_lossy(&line[..end]).into_owned()));
        }
        drop(recorded);
        self.inner.1.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A program run by a test: stdout and stderr recorded line by line as they
/// come, signals by PID, a bounded wait, and SIGKILL on drop if still
/// running. `ZK_HOSTS` and `ZK_AUTH` are removed from its environment, so
/// only the test's flags count.
#[derive(Debug)]
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use zkutil::testing::TestProcess;
/// let mut child = TestProcess::start("sh", &["-c", "echo ready; echo oops >&2"], &[]);
/// child.stdout().wait_for_lines(1, Duration::from_secs(10));
/// assert_eq!(child.stdout().lines()[0].1, "ready");
/// assert!(child.wait(Duration::from_secs(10)).success());
/// assert_eq!(child.log_count("oops"), 1);
/// ```
pub struct TestProcess {
    child: Child,
    stdout: LineRecorder,
    stderr: LineRecorder,
}

impl TestProcess {
    /// Starts `program` with `args` and the extra environment `envs`.
    ///
    /// # Panics
    ///
    /// When the program cannot be started: this is for tests.
    pub fn start(
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> TestProcess {
        TestProcess::spawn(program.as_ref(), args, envs, Stdio::null())
    }

    /// Like [`TestProcess::start`], with its stdin a pipe kept open until
    /// [`TestProcess::close_stdin`]: for a program that runs until its
    /// input ends.
    ///
    /// # Panics
    ///
    /// When the program cannot be started.
    pub fn start_with_stdin(
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> TestProcess {
        TestProcess::spawn(program.as_ref(), args, envs, Stdio::piped())
    }

    /// Closes its stdin (a program started with
    /// [`TestProcess::start_with_stdin`] then sees the end of its input).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    fn spawn(
        program: &std::ffi::OsStr,
        args: &[&str],
        envs: &[(&str, &str)],
        stdin: Stdio,
    ) -> TestProcess {
        let mut command = Command::new(program);
        command.args(args).envs(envs.iter().copied()).stdin(stdin);
        TestProcess::from_command(command)
    }

    /// Starts a command built by the caller (a network lab host's
    /// `ip netns exec …`, which execs the program: the PID is the
    /// program's), its output recorded; stdin is whatever the command
    /// says (inherited unless set). `ZK_HOSTS` and `ZK_AUTH` are removed
    /// unless the command sets them.
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub fn from_command(mut command: Command) -> TestProcess {
        // The caller's own environment may not leak in; the command may set them.
        for key in ["ZK_HOSTS", "ZK_AUTH"] {
            if !command.get_envs().any(|(k, _)| k == key) {
                command.env_remove(key);
            }
        }
        let program = command.get_program().to_owned();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program:?}: {e}"));
        let (stdout, stderr) = (LineRecorder::new(), LineRecorder::new());
        match child.stdout.take() {
            Some(pipe) => copy_lines(pipe, stdout.clone()),
            None => stdout.close(),
        }
        match child.stderr.take() {
            Some(pipe) => copy_lines(pipe, stderr.clone()),
            None => stderr.close(),
        }
        TestProcess {
            child,
            stdout,
            stderr,
        }
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout, line by line.
    pub fn stdout(&self) -> &LineRecorder {
        &self.stdout
    }

    /// Its stderr, line by line.
    pub fn stderr(&self) -> &LineRecorder {
        &self.stderr
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lines()
            .into_iter()
            .map(|(_, line)| line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many stderr lines contain `text`.
    pub fn log_count(&self, text: &str) -> usize {
        self.stderr
            .lines()
            .iter()
            .filter(|(_, line)| line.contains(text))
            .count()
    }

    /// Waits until stderr has `count` lines containing `text`.
    ///
    /// # Panics
    ///
    /// When `deadline` passes first, with the log.
    #[track_caller]
    pub fn wait_for_log(&self, text: &str, count: usize, deadline: Duration) {
        let found = self.stderr.wait_for(deadline, |lines, _| {
            (lines.iter().filter(|(_, line)| line.contains(text)).count() >= count).then_some(())
        });
        if found.is_none() {
            panic!(
                "no {count}× {text:?} in the log within {deadline:?}; log:\n{}",
                self.stderr_text()
            );
        }
    }

    /// The address it logged as `key=<ip:port>` (e.g. `metrics=`), once
    /// it has.
    ///
    /// # Panics
    ///
    /// When none is logged within 30 s.
    #[track_caller]
    pub fn logged_addr(&self, key: &str) -> std::net::SocketAddr {
        self.stderr
            .wait_until(Duration::from_secs(30), key, |lines| {
                lines
                    .iter()
                    .filter_map(|(_, line)| line.split(key).nth(1))
                    .filter_map(|rest| rest.split_whitespace().next())
                    .find_map(|addr| addr.parse().ok())
            })
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`, `STOP`, `CONT`) by PID.
    ///
    /// # Panics
    ///
    /// When `kill` fails.
    #[track_caller]
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal).unwrap_or_else(|e| panic!("kill -{signal}: {e}"));
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for it to exit, and for its output to be read.
    ///
    /// Exiting closes its pipes: the wait is for both recorders to see EOF,
    /// then the exit status is collected.
    ///
    /// # Panics
    ///
    /// When `deadline` passes first, with its stderr.
    #[track_caller]
    pub fn wait(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        let closed = [&self.stdout, &self.stderr].iter().all(|out| {
            out.wait_for(deadline.saturating_sub(start.elapsed()), |_, closed| {
                closed.then_some(())
            })
            .is_some()
        });
        // Both pipes are closed: the process is exiting; reap it.
        let status = closed
            .then(|| {
                poll_until(
                    deadline.saturating_sub(start.elapsed()),
                    Duration::from_millis(5),
                    || self.child.try_wait().ok().flatten(),
                )
            })
            .flatten();
        status.unwrap_or_else(|| {
            panic!(
                "process {} did not exit within {deadline:?}; stderr:\n{}",
                self.pid(),
                self.stderr_text()
            )
        })
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_lines(pipe: impl std::io::Read + Send + 'static, mut sink: LineRecorder) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::BufReader::new(pipe), &mut sink);
        sink.close();
    });
}
