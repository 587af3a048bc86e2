//! `Selector`: which of the registered instances gets the next request.
//!
//! Every strategy picks among **all** instances of the snapshot it is
//! given, however many there are, and an empty snapshot is `None`, never a
//! panic.
//!
//! An instance whose request failed is marked down for a cooldown and
//! skipped meanwhile (`down`). When every instance is down, the one that
//! failed longest ago is tried.
//!
//! The parts: [`Strategy`] (`strategy`), the [`Selector`] that applies it
//! (`selector`), what the load-aware strategy knows of each instance
//! (`load`), smooth weighted round-robin's current weights (`smooth`), the
//! per-thread shards of what every pick writes (`shard`), the
//! random numbers (`rng`) and the down marks (`down`).

mod down;
mod load;
mod rng;
mod selector;
mod shard;
mod smooth;
mod strategy;
#[cfg(test)]
mod tests;

pub use self::selector::Selector;
pub use self::strategy::Strategy;
