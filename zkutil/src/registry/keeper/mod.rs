//! The keeper of one registration: a thread that keeps the node ours until
//! stopped. It re-arms its watch after every event, re-creates the node
//! after a deletion or a session rebuild (replacing only nodes of our own
//! earlier sessions), retries with backoff, and says in its logs what
//! really happened to the node.
//!
//! The parts: what a keeper keeps (`node`), its thread and how it is
//! stopped (`thread`), and creating the node as ours (`create`).

mod create;
mod node;
mod thread;

pub(super) use self::create::{create_owned, replace_stale};
pub(super) use self::node::{Keeper, KeptData, Seen, Target, Wake};
pub(super) use self::thread::Maintainer;
