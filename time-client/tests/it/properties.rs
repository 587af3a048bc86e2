//! Property tests: the reply check never panics, and accepts exactly one
//! line `<address>: <time>`.

use proptest::prelude::*;
use time_client::request::parse_reply;
use zkutil::Endpoint;

fn endpoint() -> Endpoint {
    Endpoint::new(([127, 0, 0, 1], 8897).into())
}

proptest! {
    #[test]
    fn any_bytes_are_checked_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4200)) {
        if let Ok(reply) = parse_reply(endpoint(), &bytes) {
            prop_assert!(!reply.line.contains('\n'));
            prop_assert!(!reply.time.trim().is_empty());
        }
    }

    #[test]
    fn well_formed_replies_are_accepted(port in 1u16.., time in "[0-9A-Za-z:.+ -]{1,60}") {
        prop_assume!(!time.trim().is_empty());
        let line = format!("10.0.0.1:{port}: {time}\n");
        let reply = parse_reply(endpoint(), line.as_bytes());
        prop_assert!(reply.is_ok(), "{:?}", line);
    }
}
