//! `events`: `GET /api/events`, the registry and the ensemble as
//! server-sent events: each as it is now, then each change.
//!
//! Each document is one shared buffer: a stream sends it by reference,
//! never a copy per browser, and a slow browser skips to the latest.
//! At most [`MAX_STREAMS`] live at once; a new one takes the place of the
//! oldest stream of the address that holds the most (its browser
//! reconnects within a second). Streams held open by clients that never
//! read cannot lock browsers out, and a client that keeps opening streams
//! ends its own, not another address's page.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use zkutil::cli::http::{Answer, Body};
use zkutil::cli::lock;

/// Live event streams at once (the server holds 64 connections: the rest
/// stay free for pages, actions and `/api/state`).
pub const MAX_STREAMS: usize = 16;
/// A comment line on an idle stream this often: a proxy keeps it open, and
/// a browser that went away is noticed.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The live streams, oldest first, each with its way to be ended.
#[derive(Default)]
pub struct Streams {
    next: AtomicU64,
    live: Mutex<VecDeque<(u64, IpAddr, Arc<Notify>)>>,
}

impl Streams {
    /// A stream of `registry` and `ensemble` (JSON documents) for `peer`,
    /// taking the place of another when [`MAX_STREAMS`] are live: the
    /// oldest of the address holding the most, `peer`'s own on a tie.
    pub fn open(
        self: &Arc<Self>,
        peer: IpAddr,
        registry: watch::Receiver<Bytes>,
        ensemble: watch::Receiver<Bytes>,
    ) -> Answer {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let ended = Arc::new(Notify::new());
        {
            let mut live = lock(&self.live);
            while live.len() >= MAX_STREAMS {
                let mut held: HashMap<IpAddr, usize> = HashMap::new();
                for (_, ip, _) in live.iter() {
                    *held.entry(*ip).or_default() += 1;
                }
                let most = held.values().copied().max().unwrap_or(0);
                let victim = match held.get(&peer) {
                    Some(&own) if own == most => peer,
                    _ => held
                        .into_iter()
                        .find(|&(_, n)| n == most)
                        .map_or(peer, |(ip, _)| ip),
                };
                let Some(at) = live.iter().position(|(_, ip, _)| *ip == victim) else {
                    break;
                };
                if let Some((oldest, ip, end)) = live.remove(at) {
                    tracing::debug!(stream = oldest, %ip, "console: an event stream ended for a new one");
                    end.notify_one();
                }
            }
            live.push_back((id, peer, ended.clone()));
        }
        let state = Stream {
            registry,
            ensemble,
            first: true,
            pending: VecDeque::new(),
            ended,
            _held: Held {
                streams: self.clone(),
                id,
            },
        };
        Answer {
            status: 200,
            content_type: "text/event-stream",
            headers: vec![("cache-control", "no-store".to_owned())],
            body: Body::Stream(Box::pin(futures_lite::stream::unfold(state, next_chunk))),
        }
    }

    /// Live streams now.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        lock(&self.live).len()
    }
}

/// An event stream's state.
struct Stream {
    registry: watch::Receiver<Bytes>,
    ensemble: watch::Receiver<Bytes>,
    first: bool,
    /// The chunks of the event being sent.
    pending: VecDeque<Bytes>,
    /// Told when a newer stream takes this one's place.
    ended: Arc<Notify>,
    _held: Held,
}

/// A place among the [`MAX_STREAMS`], until the stream ends.
struct Held {
    streams: Arc<Streams>,
    id: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        lock(&self.streams.live).retain(|(id, _, _)| *id != self.id);
    }
}

/// The stream's next chunk; none once it is ended or the console stops.
async fn next_chunk(mut state: Stream) -> Option<(Bytes, Stream)> {
    if let Some(chunk) = state.pending.pop_front() {
        return Some((chunk, state));
    }
    if state.first {
        state.first = false;
        let registry = state.registry.borrow_and_update().clone();
        let ensemble = state.ensemble.borrow_and_update().clone();
        state.pending.extend(event("registry", registry));
        state.pending.extend(event("ensemble", ensemble));
        return Some((Bytes::from_static(b"retry: 1000\n\n"), state));
    }
    tokio::select! {
        changed = state.registry.changed() => {
            changed.ok()?;
            let document = state.registry.borrow_and_update().clone();
            state.pending.extend(event("registry", document));
        }
        changed = state.ensemble.changed() => {
            changed.ok()?;
            let document = state.ensemble.borrow_and_update().clone();
            state.pending.extend(event("ensemble", document));
        }
        () = state.ended.notified() => return None,
        () = tokio::time::sleep(HEARTBEAT) => {
            state.pending.push_back(Bytes::from_static(b": keep-alive\n\n"));
        }
    }
    let chunk = state.pending.pop_front()?;
    Some((chunk, state))
}

/// One server-sent event (`document` is one line of JSON), in three
/// chunks: the document itself is shared, not copied.
fn event(name: &'static str, document: Bytes) -> [Bytes; 3] {
    let head: &'static [u8] = match name {
        "registry" => b"event: registry\ndata: ",
        _ => b"event: ensemble\ndata: ",
    };
    [
        Bytes::from_static(head),
        document,
        Bytes::from_static(b"\n\n"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_over_the_cap_ends_the_oldest_and_a_dropped_one_frees_its_place() {
        let streams = Arc::new(Streams::default());
        let (_registry, registry) = watch::channel(Bytes::from_static(b"{}"));
        let (_ensemble, ensemble) = watch::channel(Bytes::from_static(b"[]"));
        let local: IpAddr = [127, 0, 0, 1].into();
        let mut answers: Vec<Answer> = (0..MAX_STREAMS + 3)
            .map(|_| streams.open(local, registry.clone(), ensemble.clone()))
            .collect();
        assert_eq!(streams.live(), MAX_STREAMS);
        answers.truncate(2);
        assert_eq!(
            streams.live(),
            0,
            "the two oldest were ended, the rest dropped"
        );
    }

    #[test]
    fn a_client_that_keeps_opening_streams_ends_its_own_not_another_addresss() {
        let streams = Arc::new(Streams::default());
        let (_registry, registry) = watch::channel(Bytes::from_static(b"{}"));
        let (_ensemble, ensemble) = watch::channel(Bytes::from_static(b"[]"));
        let (page, flood): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let _page = streams.open(page, registry.clone(), ensemble.clone());
        let _flood: Vec<Answer> = (0..100)
            .map(|_| streams.open(flood, registry.clone(), ensemble.clone()))
            .collect();
        assert_eq!(streams.live(), MAX_STREAMS);
        let pages = lock(&streams.live)
            .iter()
            .filter(|(_, ip, _)| *ip == page)
            .count();
        assert_eq!(pages, 1, "the page keeps its stream");
    }
}
