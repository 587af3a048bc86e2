//! One module per section of the report, in its order. Each measures
//! (`run`, storing its results in the [`Report`]), writes its part of the
//! Markdown (`write`) and gives its rows of the summary table (`summary`),
//! so that a figure, its target and its verdict have one home.

pub mod change_cost;
pub mod console;
pub mod curator;
pub mod discovery;
pub mod failover;
pub mod fan_out;
pub mod floor;
pub mod latency;
pub mod memory;
pub mod per_instance;
pub mod picks;
pub mod region;
pub mod relist;
pub mod render;
pub mod scale;
pub mod slow_server;
pub mod throughput;
pub mod tls;
pub mod visibility;

use std::time::Duration;

use self::change_cost::ChangeCost;
use self::console::Console;
use self::curator::AgainstCurator;
use self::discovery::Cost;
use self::failover::Failover;
use self::fan_out::FanOut;
use self::floor::FloorRow;
use self::latency::Latency;
use self::memory::Memory;
use self::per_instance::PerInstance;
use self::picks::Picks;
use self::region::Region;
use self::relist::Relist;
use self::render::Render;
use self::scale::Scale;
use self::slow_server::SlowServer;
use self::throughput::Throughput;
use self::tls::Tls;
use self::visibility::Visibility;
use crate::Bench;

/// Each section's results, empty for a section that did not run.
#[derive(Default)]
pub struct Report {
    pub quick: bool,
    pub storage: String,
    pub duration: Duration,
    pub discovery: Option<Cost>,
    pub latency: Option<Latency>,
    pub visibility: Option<Visibility>,
    pub throughput: Vec<Throughput>,
    pub failover: Vec<Failover>,
    pub change_cost: Vec<ChangeCost>,
    pub scale: Option<Scale>,
    pub memory: Memory,
    pub slow_server: Option<SlowServer>,
    pub curator: Vec<AgainstCurator>,
    pub fan_out: Vec<FanOut>,
    pub region: Option<Region>,
    pub tls: Option<Tls>,
    pub render: Option<Render>,
    pub console: Option<Console>,
    pub floor: Vec<FloorRow>,
    pub per_instance: Vec<PerInstance>,
    pub relist: Option<Relist>,
    pub picks: Option<Picks>,
    /// Latency samples to plot.
    pub dist: Vec<(String, Vec<Duration>)>,
}

/// A section's measurement.
pub type Run = fn(&Bench, &mut Report) -> anyhow::Result<()>;

/// Every section `--only` can name, in the order they run. Memory (section
/// 8) has no run of its own: its figures come from latency, throughput and
/// scale.
pub const ALL: [(&str, Run); 18] = [
    ("discovery", discovery::run),
    ("latency", latency::run),
    ("visibility", visibility::run),
    ("throughput", throughput::run),
    ("failover", failover::run),
    ("scale", scale::run),
    ("change-cost", change_cost::run),
    ("slow-server", slow_server::run),
    ("curator", curator::run),
    ("fan-out", fan_out::run),
    ("region", region::run),
    ("tls", tls::run),
    ("render", render::run),
    ("console", console::run),
    ("floor", floor::run),
    ("per-instance", per_instance::run),
    ("relist", relist::run),
    ("picks", picks::run),
];

pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|(name, _)| *name).collect()
}
