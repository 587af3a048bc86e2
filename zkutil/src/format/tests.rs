//! Each format's records: written as its readers write them, recognized
//! as its own and no other's, changed in its own fields.

use super::*;

fn endpoint(text: &str) -> Endpoint {
    text.parse().expect("a valid literal")
}

/// The data of a registration of `endpoint` as `time` in `format`.
fn encode(format: Format, endpoint: Endpoint, fields: &Map<String, Value>, ms: i64) -> Vec<u8> {
    format.encode(&New {
        service: "time",
        endpoint,
        fields,
        metrics: None,
        registered_ms: ms,
    })
}

#[test]
fn curator_data_is_byte_for_byte_what_curators_serializer_writes() {
    // Printed by Curator 5.4's JsonInstanceSerializer<Map> (Debian's
    // libcurator-discovery-java) for the same instance.
    let curator = r#"{"name":"time","id":"time-127.0.0.1-8897","address":"127.0.0.1","port":8897,"sslPort":null,"payload":{"@class":"java.util.LinkedHashMap","role":"x"},"registrationTimeUTC":1795812138412,"serviceType":"DYNAMIC","uriSpec":null}"#;
    let fields = Map::from_iter([("role".to_owned(), Value::String("x".into()))]);
    let ours = encode(
        Format::Curator,
        endpoint("127.0.0.1:8897"),
        &fields,
        1_795_812_138_412,
    );
    assert_eq!(String::from_utf8_lossy(&ours), curator);
}

#[test]
fn spring_payload_has_the_zookeeper_instance_shape() {
    let fields = Map::from_iter([("pid".to_owned(), Value::from(42))]);
    let data = encode(Format::Spring, endpoint("10.0.0.1:80"), &fields, 1);
    let value: Value = serde_json::from_slice(&data).expect("JSON");
    let payload = &value["payload"];
    assert_eq!(payload["@class"], spring::CLASS);
    assert_eq!(
        (payload["id"].as_str(), payload["name"].as_str()),
        (Some("time-10.0.0.1-80"), Some("time"))
    );
    assert_eq!(payload["metadata"]["instance_status"], "UP");
    assert_eq!(
        payload["metadata"]["pid"], "42",
        "Spring's metadata is a map of strings"
    );
    let text = String::from_utf8_lossy(&data);
    assert!(
        text.contains(r#""payload":{"@class":"#),
        "@class comes first: {text}"
    );
}

#[test]
fn every_format_decodes_and_out_of_service_is_seen() {
    let e = endpoint("10.0.0.1:80");
    let curator = encode(Format::Curator, e, &Map::new(), 1);
    let spring = encode(Format::Spring, e, &Map::new(), 1);
    for (data, format) in [(curator, Format::Curator), (spring, Format::Spring)] {
        let decoded = decode("id", &data).expect("decodes");
        assert_eq!(
            (decoded.endpoint, decoded.format, decoded.enabled),
            (e, format, true)
        );
    }
    let disabled = br#"{"name":"time","id":"x","address":"10.0.0.1","port":80,"enabled":false}"#;
    assert!(!decode("x", disabled).expect("decodes").enabled);
    let down = br#"{"name":"t","address":"10.0.0.1","port":80,"payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","metadata":{"instance_status":"OUT_OF_SERVICE"}}}"#;
    assert!(!decode("x", down).expect("decodes").enabled);
    let member = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":80},"additionalEndpoints":{},"status":"ALIVE"}"#;
    let decoded = decode("member_0000000001", member).expect("decodes");
    assert_eq!(
        (decoded.endpoint, decoded.format, decoded.enabled),
        (e, Format::Serverset, true)
    );
    let dead = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":80},"status":"DEAD"}"#;
    assert!(!decode("member_0000000002", dead).expect("decodes").enabled);
}

#[test]
fn bad_children_are_refused_with_a_reason() {
    for bad in [
        &b"not json"[..],
        b"[1,2]",
        b"{}",
        br#"{"name":"t","address":"db.example","port":80}"#,
        br#"{"name":"t","address":"10.0.0.1","port":0}"#,
        br#"{"name":"t","address":"0.0.0.0","port":80}"#,
        br#"{"serviceEndpoint":{"host":"10.0.0.1","port":70000}}"#,
    ] {
        assert!(
            decode("x", bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn instance_ids_are_stable_and_not_endpoints() {
    for (text, id) in [
        ("10.0.0.1:80", "time-10.0.0.1-80"),
        ("[::1]:80", "time-[::1]-80"),
    ] {
        let id_now = instance_id("time", endpoint(text));
        assert_eq!(id_now, id);
        assert!(Endpoint::from_node_name(&id_now).is_err());
    }
}

#[test]
fn serverset_members_round_trip() {
    let e = endpoint("10.0.0.1:80");
    let data = encode(Format::Serverset, e, &Map::new(), 1);
    assert_eq!(member_endpoint(&data), Some(e));
    let decoded = decode("member_0000000001", &data).expect("decodes");
    assert_eq!((decoded.format, decoded.enabled), (Format::Serverset, true));
}

#[test]
fn formats_parse_by_name() {
    for format in [
        Format::Plain,
        Format::Curator,
        Format::Spring,
        Format::Serverset,
    ] {
        assert_eq!(format.name().parse::<Format>().ok(), Some(format));
    }
    assert!("zookeeper".parse::<Format>().is_err());
}

/// One record of each format, as we register it, with its child name.
fn records() -> Vec<(Format, &'static str, Vec<u8>)> {
    let e = endpoint("10.0.0.1:80");
    let fields = Map::from_iter([("pid".to_owned(), Value::from(42))]);
    vec![
        (
            Format::Plain,
            "10.0.0.1:80",
            br#"{"address":"10.0.0.1","port":80,"pid":42}"#.to_vec(),
        ),
        (
            Format::Curator,
            "time-10.0.0.1-80",
            encode(Format::Curator, e, &fields, 1),
        ),
        (
            Format::Spring,
            "time-10.0.0.1-80",
            encode(Format::Spring, e, &fields, 1),
        ),
        (
            Format::Serverset,
            "member_0000000001",
            encode(Format::Serverset, e, &fields, 1),
        ),
    ]
}

/// (enabled, weight, reason) as discovery reads them.
fn rotation(format: Format, name: &str, data: &[u8]) -> (bool, Option<u32>, Option<String>) {
    let (read_as, rotation) = read(name, data).expect("still decodes");
    assert_eq!(read_as, format);
    (rotation.enabled, rotation.weight, rotation.reason)
}

#[test]
fn every_record_is_recognized_as_its_own_format_and_no_other() {
    for (format, name, data) in records().into_iter().skip(1) {
        let child = Child::new(name, &data);
        let claimed: Vec<Format> = Format::ALL
            .into_iter()
            .filter(|f| f.codec().recognizes(&child))
            .collect();
        // Spring's records are Curator's too: Spring is tried first.
        assert_eq!(claimed.last(), Some(&format), "{format}: {claimed:?}");
        assert_eq!(decode(name, &data).map(|d| d.format), Ok(format));
    }
}

#[test]
fn disable_and_enable_round_trip_in_every_format_keeping_the_other_fields() {
    for (format, name, data) in records() {
        let reason = Some("kernel upgrade");
        let disabled = format
            .apply(&data, &Change::Out { reason })
            .unwrap_or_else(|err| panic!("{format}: {err}"));
        let (enabled, _, said) = rotation(format, name, &disabled);
        assert!(!enabled, "{format}: {}", String::from_utf8_lossy(&disabled));
        if format != Format::Serverset {
            assert_eq!(said.as_deref(), Some("kernel upgrade"), "{format}");
        }
        let enabled = format.apply(&disabled, &Change::In).expect("enables");
        assert_eq!(
            rotation(format, name, &enabled),
            (true, None, None),
            "{format}"
        );
        let before: Value = serde_json::from_slice(&data).expect("JSON");
        let after: Value = serde_json::from_slice(&enabled).expect("JSON");
        assert_eq!(before, after, "{format}: enable undoes disable exactly");
    }
}

#[test]
fn each_format_is_disabled_in_its_own_field() {
    let off = Change::Out { reason: None };
    let [plain, curator, spring, serverset] = records()
        .into_iter()
        .map(|(format, _, data)| {
            let changed = format.apply(&data, &off).expect("disables");
            serde_json::from_slice::<Value>(&changed).expect("JSON")
        })
        .collect::<Vec<_>>()
        .try_into()
        .expect("four formats");
    assert_eq!(plain["enabled"], false);
    assert_eq!(
        curator["enabled"], false,
        "Curator's ServiceInstance.enabled"
    );
    assert_eq!(
        spring["payload"]["metadata"]["instance_status"],
        "OUT_OF_SERVICE"
    );
    assert_eq!(serverset["status"], "STOPPING");
}

#[test]
fn weights_are_written_where_readers_look_and_serversets_have_none() {
    for (format, name, data) in records() {
        let weighted = format.apply(&data, &Change::Weight(300));
        if format == Format::Serverset {
            assert!(weighted.is_err(), "serverset members have no weight");
            continue;
        }
        let weighted = weighted.unwrap_or_else(|err| panic!("{format}: {err}"));
        assert_eq!(
            rotation(format, name, &weighted),
            (true, Some(300), None),
            "{format}"
        );
    }
}

#[test]
fn a_plain_node_without_data_can_be_disabled_and_garbage_is_refused() {
    let disabled = Format::Plain
        .apply(b"", &Change::Out { reason: None })
        .expect("disables");
    assert_eq!(
        rotation(Format::Plain, "10.0.0.1:80", &disabled),
        (false, None, None)
    );
    assert!(Format::Plain.apply(b"not json", &Change::In).is_err());
    assert!(Format::Plain.apply(b"[1]", &Change::In).is_err());
}

#[test]
fn registering_disabled_makes_a_starting_serverset_member() {
    let data = encode(Format::Serverset, endpoint("10.0.0.1:80"), &Map::new(), 1);
    let starting = Format::Serverset
        .apply(&data, &Change::Starting { reason: None })
        .expect("made");
    let value: Value = serde_json::from_slice(&starting).expect("JSON");
    assert_eq!(value["status"], "STARTING");
    assert_eq!(
        rotation(Format::Serverset, "member_0000000001", &starting),
        (false, None, None)
    );
}

#[test]
fn the_host_is_read_where_each_format_keeps_it() {
    let this = r#""hostname":"here""#;
    for (record, host) in [
        (format!("{{{this}}}"), Some("here")),
        (format!(r#"{{"payload":{{{this}}}}}"#), Some("here")),
        (
            format!(r#"{{"payload":{{"metadata":{{{this}}}}}}}"#),
            Some("here"),
        ),
        (
            r#"{"hostname":"there","payload":{"hostname":"here"}}"#.to_owned(),
            Some("there"),
        ),
        (
            r#"{"serviceEndpoint":{"host":"10.0.0.1","port":80}}"#.to_owned(),
            None,
        ),
    ] {
        assert_eq!(host_of(record.as_bytes()).as_deref(), host, "{record}");
    }
}
