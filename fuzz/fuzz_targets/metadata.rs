//! Registration data comes from anyone who can write to ZooKeeper.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zkutil::Metadata;

fuzz_target!(|data: &[u8]| {
    if let Ok(metadata) = Metadata::from_json("/go_servers/x", data) {
        let again = Metadata::from_json("/go_servers/x", &metadata.to_json());
        assert_eq!(again.ok(), Some(metadata));
    }
});
