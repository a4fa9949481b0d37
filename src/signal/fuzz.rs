//! Property tests of the signalling parser: whatever arrives on the socket, `parse` answers
//! with a message or an error and never panics; what it accepts survives a round trip.
//! Runs a bounded number of cases in the ordinary test suite.

use proptest::prelude::*;

use super::connection::{parse, KNOWN_TYPES};
use super::fuzz_messages::{any_message, documented_client_messages, message_like};
use super::protocol::ClientMessage;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn protocol_shaped_messages_parse_or_are_refused(message in message_like(KNOWN_TYPES)) {
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
    fn truncated_and_spliced_messages_never_panic(message in message_like(KNOWN_TYPES), cut in 0usize..400) {
        let text = message.to_string();
        let cut = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let _ = parse(&text[..cut]);
        let _ = parse(&format!("{}{}", &text[..cut], text));
    }

    #[test]
    fn documented_messages_broken_never_panic(text in any_message(documented(), KNOWN_TYPES)) {
        if let Ok(parsed) = parse(&text) {
            prop_assert_eq!(serde_json::from_str::<ClientMessage>(&text).ok(), Some(parsed));
        }
    }
}

fn documented() -> Vec<serde_json::Value> {
    documented_client_messages(include_str!("../../docs/signalling.md"))
}
