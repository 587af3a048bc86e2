//! Section 3, visibility of a change to a running client: a registration
//! created or deleted, from the writer's acknowledgement to the snapshot of
//! an observer in another process, against one write + two round trips
//! measured in the same run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::Report;
use crate::Bench;
use crate::observe::{Observer, unix_nanos};
use crate::stats::{Stats, d, ratio_of, stats_table, verdict};
use crate::summary::Row;

pub struct Visibility {
    pub created: Stats,
    pub deleted: Stats,
    pub write: Stats,
    pub read: Stats,
}

impl Visibility {
    /// The worse of the two visibility p99s.
    fn worst(&self) -> Duration {
        self.created.p99.max(self.deleted.p99)
    }

    /// The target: one write + two round trips, at their p99s.
    fn budget_p99(&self) -> Duration {
        self.write.p99 + self.read.p99 * 2
    }
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let mut observer = Observer::start(&bench.zk.connect_string(), "/visibility", 0)?;
    let writer = bench.session()?;
    writer.ensure_path("/visibility")?;
    let (mut created, mut deleted, mut writes, mut reads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut expect = |kind: &str, endpoint: &str, acked: u128| -> anyhow::Result<Duration> {
        let seen = observer.seen(kind, endpoint)?;
        Ok(Duration::from_nanos(seen.saturating_sub(acked) as u64))
    };
    for i in 0..bench.sizes.visibility {
        let endpoint = format!("127.0.0.2:{}", 1000 + i);
        let path = format!("/visibility/{endpoint}");
        let t = Instant::now();
        writer.create_ephemeral(&path, b"{}")?;
        writes.push(t.elapsed());
        created.push(expect("added", &endpoint, unix_nanos())?);
        let t = Instant::now();
        std::hint::black_box(writer.children("/visibility")?);
        reads.push(t.elapsed());
        writer.delete(&path, None)?;
        deleted.push(expect("removed", &endpoint, unix_nanos())?);
    }
    drop(observer);
    report.visibility = Some(Visibility {
        created: Stats::of(&created),
        deleted: Stats::of(&deleted),
        write: Stats::of(&writes),
        read: Stats::of(&reads),
    });
    report.dist.push(("visibility: create".into(), created));
    report.dist.push(("visibility: delete".into(), deleted));
    Ok(())
}

pub fn write(md: &mut String, r: &Visibility) {
    let _ = writeln!(md, "## 3. Visibility of a change to a running client\n");
    stats_table(
        md,
        "what",
        &[
            (
                "create acknowledged → snapshot in another process".into(),
                r.created,
            ),
            (
                "delete acknowledged → snapshot in another process".into(),
                r.deleted,
            ),
            (
                "one ZooKeeper write (create), for reference".into(),
                r.write,
            ),
            (
                "one ZooKeeper round trip (getChildren), for reference".into(),
                r.read,
            ),
        ],
    );
    let budget_p50 = r.write.p50 + r.read.p50 * 2;
    let worst = r.worst();
    let _ = writeln!(
        md,
        "\nTimes run from the writer's acknowledgement to the observer process's snapshot (wall clocks of \
         one machine). Visibility p99 {} against one write + two round trips measured in the same run: {} at \
         their p99s (target: within: {}), {} at their medians ({}).\n",
        d(worst),
        d(r.budget_p99()),
        verdict(worst <= r.budget_p99()),
        d(budget_p50),
        if worst <= budget_p50 {
            "within too"
        } else {
            "the median budget is exceeded"
        }
    );
}

pub fn summary(r: &Visibility) -> Vec<Row> {
    vec![Row::against(
        "visibility of a change in another process, p99 : one write + two round trips (their p99s)",
        d(r.worst()),
        d(r.budget_p99()),
        format!("{:.2}×", ratio_of(r.worst(), r.budget_p99())),
        "≤ 1×",
        Some(r.worst() <= r.budget_p99()),
    )]
}
