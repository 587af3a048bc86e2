//! Discovery: a watch-driven cache that lists once, then follows changes.

mod listing;
mod reconnect;
mod watches;

use std::sync::Arc;
use std::time::SystemTime;

use zkutil::{BasePath, Discovery, Endpoint, Metadata, Registration};

fn endpoint(text: &str) -> Endpoint {
    text.parse().expect("a valid literal")
}

fn register(s: &Arc<zkutil::Session>, text: &str) -> Registration {
    let e = endpoint(text);
    let metadata = Metadata::for_this_process(e, SystemTime::now(), "test");
    Registration::register(s, &BasePath::from_static("/go_servers"), e, &metadata)
        .expect("registers")
}

fn endpoints(discovery: &Discovery) -> Vec<String> {
    discovery
        .snapshot()
        .instances()
        .iter()
        .map(|i| i.endpoint().to_string())
        .collect()
}
