//! Registrations: ephemeral nodes with metadata, owner-aware.

mod acl;
mod create;
mod recreate;
mod serverset;

use std::time::SystemTime;

use zkutil::{Endpoint, Metadata};

fn endpoint(text: &str) -> Endpoint {
    text.parse().expect("a valid literal")
}

fn metadata(e: Endpoint) -> Metadata {
    Metadata::for_this_process(e, SystemTime::now(), "test")
}
