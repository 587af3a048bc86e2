//! The report: what each section measured, and the Markdown written from
//! it (a header, the summary table, then each section's part).

use std::fmt::Write as _;

use zkutil::testing::ZkServer;

use crate::section::Report;
use crate::section::{
    change_cost, console, curator, discovery, failover, fan_out, floor, latency, memory,
    per_instance, picks, region, relist, render, scale, slow_server, throughput, tls, visibility,
};
use crate::summary;

/// The file system holding `path`, from /proc/mounts.
fn file_system(path: &std::path::Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.to_string_lossy();
    mounts
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (_, point, fs) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with(point)
                .then(|| (point.len(), fs.to_owned()))
        })
        .max()
        .map(|(_, fs)| fs)
        .unwrap_or_else(|| "unknown".into())
}

impl Report {
    pub fn new(quick: bool, zk: &ZkServer) -> Report {
        let fs = file_system(zk.dir());
        Report {
            quick,
            storage: format!(
                "standalone ZooKeeper 3.8, data in a temp dir on {fs} ({}), forceSync=no, tickTime=200",
                zk.dir().display()
            ),
            ..Report::default()
        }
    }

    /// The summary table's rows, in the order of the sections.
    pub fn summary(&self) -> Vec<summary::Row> {
        let mut rows = Vec::new();
        rows.extend(self.discovery.iter().flat_map(discovery::summary));
        rows.extend(self.latency.iter().flat_map(latency::summary));
        rows.extend(self.visibility.iter().flat_map(visibility::summary));
        rows.extend(throughput::summary(&self.throughput));
        rows.extend(change_cost::summary(&self.change_cost));
        rows.extend(self.scale.iter().flat_map(scale::summary));
        rows.extend(memory::summary(&self.memory));
        rows.extend(self.slow_server.iter().flat_map(slow_server::summary));
        rows.extend(curator::summary(&self.curator, &self.floor));
        rows.extend(fan_out::summary(&self.fan_out));
        rows.extend(self.region.iter().flat_map(region::summary));
        rows.extend(self.tls.iter().flat_map(tls::summary));
        rows.extend(self.render.iter().flat_map(render::summary));
        rows.extend(self.console.iter().flat_map(console::summary));
        rows.extend(floor::summary(&self.floor));
        rows.extend(per_instance::summary(&self.per_instance));
        rows.extend(self.relist.iter().flat_map(relist::summary));
        rows.extend(self.picks.iter().flat_map(picks::summary));
        rows
    }

    /// The whole report; `name` is the file's, for the link to its plot.
    pub fn markdown(&self, name: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Benchmark results{}\n",
            if self.quick { " (quick run)" } else { "" }
        );
        let _ = writeln!(
            md,
            "Measured by `scripts/bench.sh{}` in {:.0} s on this project's machine (2 cores, shared and noisy: \
             compare ratios, not absolute figures). Every comparison is against a baseline measured in the same run. \
             ZooKeeper: {}. The plot of latency distributions is [`{name}.svg`]({name}.svg).\n",
            if self.quick { " --quick" } else { "" },
            self.duration.as_secs_f64(),
            self.storage
        );
        summary::write(&mut md, &self.summary());
        if let Some(r) = &self.discovery {
            discovery::write(&mut md, r);
        }
        if let Some(r) = &self.latency {
            latency::write(&mut md, r);
        }
        if let Some(r) = &self.visibility {
            visibility::write(&mut md, r);
        }
        if !self.throughput.is_empty() {
            throughput::write(&mut md, &self.throughput);
        }
        if !self.failover.is_empty() {
            failover::write(&mut md, &self.failover);
        }
        if !self.change_cost.is_empty() {
            change_cost::write(&mut md, &self.change_cost);
        }
        if let Some(r) = &self.scale {
            scale::write(&mut md, r);
        }
        if self.memory.measured() {
            memory::write(&mut md, &self.memory);
        }
        if let Some(r) = &self.slow_server {
            slow_server::write(&mut md, r);
        }
        if !self.curator.is_empty() {
            curator::write(&mut md, &self.curator);
        }
        if !self.fan_out.is_empty() {
            fan_out::write(&mut md, &self.fan_out);
        }
        if let Some(r) = &self.region {
            region::write(&mut md, r);
        }
        if let Some(t) = &self.tls {
            tls::write(&mut md, t);
        }
        if let Some(r) = &self.render {
            render::write(&mut md, r);
        }
        if let Some(c) = &self.console {
            console::write(&mut md, c);
        }
        if !self.floor.is_empty() {
            floor::write(&mut md, &self.floor);
        }
        if !self.per_instance.is_empty() {
            per_instance::write(&mut md, &self.per_instance);
        }
        if let Some(r) = &self.relist {
            relist::write(&mut md, r);
        }
        if let Some(p) = &self.picks {
            picks::write(&mut md, p);
        }
        format!("{}\n", md.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::section::latency::Latency;
    use crate::section::memory::Memory;
    use crate::stats::Stats;
    use std::time::Duration;

    fn median(micros: u64) -> Stats {
        Stats {
            n: 1,
            p50: Duration::from_micros(micros),
            p99: Duration::from_micros(micros),
            max: Duration::from_micros(micros),
        }
    }

    /// The summary opens the report, with each target's verdict computed
    /// from the figures, and a section that did not run leaves no trace.
    #[test]
    fn the_summary_table_comes_first_and_judges_the_figures() {
        let report = Report {
            latency: Some(Latency {
                bare: median(100),
                bare_errors: 0,
                client: median(140),
                client_errors: 0,
            }),
            memory: Memory {
                server_idle_kib: 5 * 1024,
                ..Memory::default()
            },
            ..Report::default()
        };
        let md = report.markdown("RESULTS");
        let summary = md.find("## Summary").expect("a summary");
        let section = md.find("## 2. Client request latency").expect("section 2");
        assert!(summary < section, "{md}");
        assert!(
            md.contains("| 140.0 µs | 100.0 µs | 1.40× | ≤ 1.3× | **missed** |"),
            "{md}"
        );
        assert!(md.contains("| 5.0 MiB | — | — | ≤ 10 MiB | met |"), "{md}");
        assert!(!md.contains("## 1."), "{md}");
    }
}
