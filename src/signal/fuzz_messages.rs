//! Signalling messages for fuzzing, made from the protocol's types: messages shaped like the
//! protocol's (a known or unknown type, plausible field names, values of any JSON type), the
//! documented messages with one thing broken, and text that is not JSON at all. Shared by the
//! parser's property tests (`signal::fuzz`) and the fuzzing over a real socket
//! (`tests/api/live_room.rs`, which includes this file), so it names nothing of the crate: the
//! message types and examples come in as arguments.

use proptest::prelude::*;
use serde_json::{json, Value};

/// Field names of the protocol's messages, and a few that are not.
pub const FIELDS: &[&str] = &[
    "id",
    "room_id",
    "sdp",
    "candidate",
    "text",
    "raised",
    "on",
    "enabled",
    "muted",
    "presenter",
    "participant_id",
    "track_id",
    "sdpMid",
    "sdpMLineIndex",
    "kind",
    "source",
    "sources",
    "target",
    "reason",
];

/// The protocol's types, and two that are not.
pub fn any_type(types: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop_oneof![prop::sample::select(types), Just("bogus"), Just(""),]
}

/// Any JSON value, nested a few levels, with the extremes a fuzzer likes.
pub fn any_json() -> impl Strategy<Value = Value> {
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
pub fn message_like(types: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        any_type(types),
        prop::collection::btree_map(prop::sample::select(FIELDS), any_json(), 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            object.insert("type".into(), kind.into());
            Value::Object(object)
        })
}

/// A valid message (one of `examples`) with one thing broken: a field dropped, a field's value
/// replaced by anything, a field no message has, another type with the same fields, or the
/// text cut short.
pub fn broken(
    examples: Vec<Value>,
    types: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (
        prop::sample::select(examples),
        0usize..5,
        any::<prop::sample::Index>(),
        any_json(),
        prop::sample::select(types),
    )
        .prop_map(|(example, how, at, value, other_type)| {
            let mut object = example.as_object().cloned().unwrap_or_default();
            let keys: Vec<String> = object.keys().filter(|k| *k != "type").cloned().collect();
            let key = (!keys.is_empty()).then(|| keys[at.index(keys.len())].clone());
            match (how, key) {
                (0, Some(key)) => {
                    object.remove(&key);
                }
                (1, Some(key)) => {
                    object.insert(key, value);
                }
                (2, _) => {
                    object.insert("unexpected".into(), value);
                }
                (3, _) => {
                    object.insert("type".into(), other_type.into());
                }
                _ => {
                    let text = Value::Object(object).to_string();
                    let cut = at.index(text.len().max(1));
                    let cut = (0..=cut)
                        .rev()
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(0);
                    return text[..cut].to_owned();
                }
            }
            Value::Object(object).to_string()
        })
}

/// The client messages `docs/signalling.md` shows (its text is `doc`).
pub fn documented_client_messages(doc: &str) -> Vec<Value> {
    let client_part = doc
        .split("## Client → server")
        .nth(1)
        .and_then(|rest| rest.split("## Server → client").next())
        .unwrap_or("");
    client_part
        .split("```json")
        .skip(1)
        .filter_map(|block| serde_json::from_str(block.split("```").next()?).ok())
        .collect()
}

/// Any of the above as text, or text that is not JSON at all.
pub fn any_message(
    examples: Vec<Value>,
    types: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop_oneof![
        message_like(types).prop_map(|m| m.to_string()),
        broken(examples, types),
        ".{0,200}",
    ]
}
