//! Replies come from any server listed in the registry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time_client::request::parse_reply;
use zkutil::Endpoint;

fuzz_target!(|data: &[u8]| {
    let endpoint = Endpoint::new(([127, 0, 0, 1], 8897).into());
    if let Ok(reply) = parse_reply(endpoint, data) {
        assert!(!reply.line.contains('\n'));
        assert_eq!(format!("{}\n", reply.line).len() <= data.len(), true);
    }
});
