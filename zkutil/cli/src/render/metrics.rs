//! `zkutil render`'s metrics (`--metrics-listen`): per file, writes,
//! renders that changed nothing and refusals; the `--exec` command's runs
//! and failures; the age of the last successful render. `/healthz` is 200
//! while the ZooKeeper session is connected.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use zkutil::Session;
use zkutil::cli::metrics::MetricsServer;
use zkutil::cli::metrics::prometheus_client::encoding::EncodeLabelSet;
use zkutil::cli::metrics::prometheus_client::metrics::counter::Counter;
use zkutil::cli::metrics::prometheus_client::metrics::family::Family;
use zkutil::cli::metrics::prometheus_client::metrics::gauge::Gauge;
use zkutil::cli::metrics::prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileLabel {
    file: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    file: String,
    /// `template`, `check` or `write`.
    stage: String,
}

/// The counts, shared by the render loop and the `--exec` thread.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    written: Family<FileLabel, Counter>,
    unchanged: Family<FileLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    exec_runs: Counter,
    exec_failures: Counter,
    /// When every file was last in place after a render.
    last_success: Arc<Mutex<Option<Instant>>>,
}

impl Metrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "writes",
            "Renders that replaced the file",
            self.written.clone(),
        );
        registry.register(
            "unchanged",
            "Renders whose bytes were the file's already (nothing written, no --exec)",
            self.unchanged.clone(),
        );
        registry.register(
            "failures",
            "Renders that left the file as it was: the template failed, --check refused the new file, or writing it failed",
            self.failures.clone(),
        );
        registry.register(
            "exec_runs",
            "Runs of the --exec command",
            self.exec_runs.clone(),
        );
        registry.register(
            "exec_failures",
            "Runs of the --exec command that failed or timed out",
            self.exec_failures.clone(),
        );
    }

    /// `file` was replaced.
    pub fn written(&self, file: &str) {
        self.written.get_or_create(&label(file)).inc();
    }

    /// `file` already held the rendered bytes.
    pub fn unchanged(&self, file: &str) {
        self.unchanged.get_or_create(&label(file)).inc();
    }

    /// `file` was left as it was after a failure at `stage`.
    pub fn failed(&self, file: &str, stage: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                file: file.to_owned(),
                stage: stage.to_owned(),
            })
            .inc();
    }

    /// Every file is in place as rendered now.
    pub fn succeeded(&self) {
        *zkutil::cli::lock(&self.last_success) = Some(Instant::now());
    }

    /// A run of the `--exec` command ended.
    pub fn exec_ran(&self, passed: bool) {
        self.exec_runs.inc();
        if !passed {
            self.exec_failures.inc();
        }
    }

    /// Serves the metrics on `listen`, `/healthz` 200 while `session` is
    /// connected; the server runs until dropped.
    pub fn serve(
        &self,
        listen: std::net::SocketAddr,
        session: &Arc<Session>,
    ) -> anyhow::Result<MetricsServer> {
        let mut registry = Registry::with_prefix("zkutil_render");
        self.register(&mut registry);
        let age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "last_success_age_seconds",
            "Seconds since every file was last in place after a render (-1: not yet)",
            age.clone(),
        );
        let last_success = self.last_success.clone();
        let server = MetricsServer::start_for_session(
            listen,
            registry,
            session,
            "the files keep their last render",
            Box::new(move || {
                let last = *zkutil::cli::lock(&last_success);
                age.set(last.map_or(-1.0, |at| at.elapsed().as_secs_f64()));
            }),
        )?;
        Ok(server)
    }
}

fn label(file: &str) -> FileLabel {
    FileLabel {
        file: file.to_owned(),
    }
}
