//! Node names come from anyone who can write to ZooKeeper: parsing must be
//! total, and what parses must print back to the same endpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zkutil::Endpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = text.parse::<Endpoint>();
    if let Ok(endpoint) = Endpoint::from_node_name(text) {
        let again = Endpoint::from_node_name(&endpoint.node_name());
        assert_eq!(again.ok(), Some(endpoint), "{text:?} did not round-trip");
    }
});
