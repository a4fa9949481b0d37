//! Property tests of the signalling parser: whatever arrives on the socket, `parse` answers
//! with a message or an error and never panics; what it accepts survives a round trip.
//! Runs a bounded number of cases in the ordinary test suite.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::connection::{parse, KNOWN_TYPES};
use super::protocol::ClientMessage;

/// The protocol's types, and two that are not.
fn any_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![prop::sample::select(KNOWN_TYPES), Just("bogus"), Just(""),]
}

const FIELDS: &[&str] = &[
    "id",
    "room_id",
    "sdp",
    "candidate",
    "text",
    "raised",
    "on",
    "participant_id",
    "track_id",
    "sdpMid",
    "sdpMLineIndex",
    "kind",
    "source",
    "target",
    "reason",
];

/// Any JSON value, nested a few levels, with the extremes a fuzzer likes.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        Just(json!("\u{0}")),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Messages shaped like the protocol's: a known (or unknown) type and plausible field names
/// with values of any type.
fn message_like() -> impl Strategy<Value = Value> {
    (
        any_type(),
        prop::collection::btree_map(prop::sample::select(FIELDS), any_json(), 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            object.insert("type".into(), kind.into());
            Value::Object(object)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn protocol_shaped_messages_parse_or_are_refused(message in message_like()) {
        match parse(&message.to_string()) {
            Ok(parsed) => {
                let again = serde_json::to_string(&parsed).expect("serializes");
                let reparsed: ClientMessage = serde_json::from_str(&again).expect("round trip");
                prop_assert_eq!(reparsed.id(), parsed.id());
            }
            Err((_, error)) => prop_assert!(!error.code().is_empty()),
        }
    }

    #[test]
    fn truncated_and_spliced_messages_never_panic(message in message_like(), cut in 0usize..400) {
        let text = message.to_string();
        let cut = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let _ = parse(&text[..cut]);
        let _ = parse(&format!("{}{}", &text[..cut], text));
    }
}
