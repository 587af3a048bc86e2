//! Property tests (proptest): endpoint names print and parse back, and no
//! input makes a parser panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use zkutil::{Endpoint, Metadata};

fn concrete_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|bits| IpAddr::V4(Ipv4Addr::from(bits))),
        any::<u128>().prop_map(|bits| IpAddr::V6(Ipv6Addr::from(bits))),
    ]
    .prop_filter("unspecified addresses are not node names", |ip| {
        !ip.is_unspecified()
    })
}

proptest! {
    #[test]
    fn every_endpoint_prints_and_parses_back(ip in concrete_ip(), port in 1u16..) {
        let endpoint = Endpoint::new(SocketAddr::new(ip, port));
        let name = endpoint.node_name();
        let parsed = Endpoint::from_node_name(&name);
        prop_assert_eq!(parsed.ok(), Some(endpoint), "{}", name);
        prop_assert!(name.len() <= 64);
    }

    #[test]
    fn parsing_any_text_never_panics_and_accepted_names_are_canonical(text in ".{0,80}") {
        if let Ok(endpoint) = Endpoint::from_node_name(&text) {
            // What parses prints back to a name that parses to the same endpoint.
            prop_assert_eq!(Endpoint::from_node_name(&endpoint.node_name()).ok(), Some(endpoint));
        }
        let _ = text.parse::<Endpoint>();
    }

    #[test]
    fn ip_port_shaped_text_never_panics(a in any::<u16>(), b in any::<u16>(), c in any::<u32>(), d in any::<u16>(), port in ".{0,8}") {
        for text in [format!("{a}.{b}.{c}.{d}:{port}"), format!("[{a:x}::{b:x}]:{port}"), format!("{a}:{port}")] {
            let _ = Endpoint::from_node_name(&text);
        }
    }

    #[test]
    fn metadata_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metadata::from_json("/go_servers/x", &bytes);
    }
}
