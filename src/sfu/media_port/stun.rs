//! Just enough STUN to route a datagram: whether it is a binding request and, if so, the ICE
//! username fragments in it (RFC 8445 §7.2.2: USERNAME is "receiver:sender").

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::{Message, BINDING_REQUEST};

/// STUN messages start with two zero bits and carry the magic cookie at bytes 4..8; RTP,
/// RTCP and DTLS never do (RFC 7983), so this check is all the demultiplexing needs.
pub fn is_stun(packet: &[u8]) -> bool {
    packet.len() >= 20 && packet[0] < 4 && packet[4..8] == [0x21, 0x12, 0xA4, 0x42]
}

/// The USERNAME of a binding request, split at its colon: (receiver's, sender's) fragment.
pub fn binding_usernames(packet: &[u8]) -> Option<(String, String)> {
    if !is_stun(packet) {
        return None;
    }
    let mut message = Message::new();
    message.unmarshal_binary(packet).ok()?;
    if message.typ != BINDING_REQUEST {
        return None;
    }
    let username = String::from_utf8(message.get(ATTR_USERNAME).ok()?).ok()?;
    let (receiver, sender) = username.split_once(':')?;
    Some((receiver.to_owned(), sender.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::{Setter, TransactionId};
    use rtc::stun::textattrs::TextAttribute;

    #[test]
    fn a_binding_request_names_both_fragments_and_media_is_not_stun() {
        let mut message = Message::new();
        message
            .build(&[
                Box::new(BINDING_REQUEST),
                Box::new(TransactionId::new()),
                Box::new(TextAttribute::new(ATTR_USERNAME, "server:client".into()))
                    as Box<dyn Setter>,
            ])
            .unwrap();
        assert_eq!(
            binding_usernames(&message.raw),
            Some(("server".into(), "client".into()))
        );
        let rtp = [
            0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0,
        ];
        assert!(!is_stun(&rtp));
        assert_eq!(binding_usernames(&rtp), None);
    }
}
