//! The gate in front of the `turn` crate's server: every packet a TURN listener receives
//! passes here first, and every answer the server sends passes on its way out. The crate
//! does the TURN work; the gate applies what it has no hooks for:
//!
//! - never an open relay: CreatePermission and ChannelBind requests and Send indications
//!   that name a peer other than this server's own media sockets are refused (403) or
//!   dropped (`peers.rs`);
//! - allocation limits per user and in total (486, 508; `limits.rs`);
//! - refusals counted by reason for `/metrics` (the crate itself refuses expired and forged
//!   credentials through `credentials.rs`; the gate only counts them).
//!
//! Its own error answers carry MESSAGE-INTEGRITY and FINGERPRINT, as the server's do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS};
use stun::error_code::{
    ErrorCode, ErrorCodeAttribute, CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN,
    CODE_INSUFFICIENT_CAPACITY,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Setter, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST,
    METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_SEND,
};
use stun::textattrs::Username;
use webrtc_util::Conn;

use super::credentials::Credentials;
use super::limits::{Allocations, Flow, OverLimit, Transport};
use super::peers::OwnAddresses;

/// STUN's magic cookie, which XOR-PEER-ADDRESS is masked with.
const MAGIC_COOKIE: u32 = 0x2112_A442;

/// What happens to one received packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
    /// Answer the sender with this and do not pass the packet on.
    Answer(Vec<u8>),
}

pub struct Gate {
    pub credentials: Arc<Credentials>,
    pub own: OwnAddresses,
    pub allocations: Arc<Allocations>,
}

impl Gate {
    /// Decides on a packet from a client on `flow`.
    pub fn inbound(&self, packet: &[u8], flow: Flow) -> Verdict {
        // ChannelData (first two bits 01) goes to a peer a ChannelBind already named.
        if packet.len() < 20 || packet[0] & 0xC0 != 0 {
            return Verdict::Pass;
        }
        let mut m = Message::new();
        m.raw = packet.to_vec();
        if m.decode().is_err() {
            return Verdict::Pass;
        }
        let method = m.typ.method;
        if m.typ.class == CLASS_INDICATION && method == METHOD_SEND {
            if peers(&m).iter().all(|p| self.own.allows(*p)) {
                return Verdict::Pass;
            }
            self.allocations.refuse("peer_not_allowed");
            return Verdict::Drop;
        }
        let watched = [
            METHOD_ALLOCATE,
            METHOD_CREATE_PERMISSION,
            METHOD_CHANNEL_BIND,
        ];
        if m.typ.class != CLASS_REQUEST || !watched.contains(&method) {
            return Verdict::Pass;
        }
        // Unauthenticated requests get the server's 401 with a nonce.
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            return Verdict::Pass;
        }
        let mut username = Username::new(ATTR_USERNAME, String::new());
        if username.get_from(&m).is_err() {
            return Verdict::Pass;
        }
        let username = username.to_string();
        // Refused by the server itself; counted here.
        let key = match self.credentials.key(&username, SystemTime::now()) {
            Ok(key) => key,
            Err(refusal) => {
                self.allocations.refuse(refusal.reason());
                return Verdict::Pass;
            }
        };
        if MessageIntegrity(key.clone()).check(&mut m.clone()).is_err() {
            self.allocations.refuse("forged");
            return Verdict::Pass;
        }
        let refusal = match method {
            METHOD_ALLOCATE => {
                match self
                    .allocations
                    .request(m.transaction_id.0, flow, &username)
                {
                    Ok(()) => None,
                    Err(OverLimit::User) => Some(("user_limit", CODE_ALLOC_QUOTA_REACHED)),
                    Err(OverLimit::Total) => Some(("total_limit", CODE_INSUFFICIENT_CAPACITY)),
                }
            }
            // A permission is per IP address (RFC 8656 section 9); the port is checked on
            // each packet (`relay.rs`).
            METHOD_CREATE_PERMISSION => {
                let peers = peers(&m);
                let ok = !peers.is_empty() && peers.iter().all(|p| self.own.allows_ip(p.ip()));
                (!ok).then_some(("peer_not_allowed", CODE_FORBIDDEN))
            }
            _ => {
                let peers = peers(&m);
                let ok = !peers.is_empty() && peers.iter().all(|p| self.own.allows(*p));
                (!ok).then_some(("peer_not_allowed", CODE_FORBIDDEN))
            }
        };
        match refusal {
            None => Verdict::Pass,
            Some((reason, code)) => {
                self.allocations.refuse(reason);
                match error_answer(&m, code, key) {
                    Some(answer) => Verdict::Answer(answer),
                    None => Verdict::Drop,
                }
            }
        }
    }

    /// Watches the server's answers to Allocate requests, to book allocations.
    pub fn outbound(&self, packet: &[u8]) {
        if packet.len() < 20 || packet[0] & 0xC0 != 0 {
            return;
        }
        let typ = u16::from_be_bytes([packet[0], packet[1]]);
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&packet[8..20]);
        match typ {
            0x0103 => self.allocations.answered(transaction, true),
            0x0113 => self.allocations.answered(transaction, false),
            _ => {}
        }
    }
}

/// An error answer to `request`, signed with the requester's key.
fn error_answer(request: &Message, code: ErrorCode, key: Vec<u8>) -> Option<Vec<u8>> {
    let mut answer = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(request.transaction_id),
        Box::new(MessageType::new(request.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: Vec::new(),
        }),
        Box::new(MessageIntegrity(key)),
        Box::new(FINGERPRINT),
    ];
    answer.build(&setters).ok()?;
    Some(answer.raw)
}

/// Every XOR-PEER-ADDRESS of the message (CreatePermission may carry several).
fn peers(m: &Message) -> Vec<SocketAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| xor_address(&a.value, &m.transaction_id.0))
        .collect()
}

/// RFC 8489 section 14.2: family, port and address, masked with the cookie (and, for IPv6,
/// the transaction id). A value that does not parse names no peer (and so is refused).
fn xor_address(value: &[u8], transaction: &[u8; 12]) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match value.get(1)? {
        1 => {
            let raw: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            let mut octets = [0u8; 4];
            for i in 0..4 {
                octets[i] = raw[i] ^ cookie[i];
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        2 => {
            let raw: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            let mask: Vec<u8> = cookie.iter().chain(transaction.iter()).copied().collect();
            let mut octets = [0u8; 16];
            for i in 0..16 {
                octets[i] = raw[i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A listener's socket (UDP, or the TCP/TLS multiplexer) with the gate in front.
pub struct GateConn {
    inner: Arc<dyn Conn + Send + Sync>,
    transport: Transport,
    gate: Arc<Gate>,
}

impl GateConn {
    pub fn new(inner: Arc<dyn Conn + Send + Sync>, transport: Transport, gate: Arc<Gate>) -> Self {
        GateConn {
            inner,
            transport,
            gate,
        }
    }
}

#[async_trait]
impl Conn for GateConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.inner.recv(buf).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let local = self.inner.local_addr()?;
        loop {
            let (n, remote) = self.inner.recv_from(buf).await?;
            let flow = Flow {
                transport: self.transport,
                local,
                remote,
            };
            match self.gate.inbound(&buf[..n], flow) {
                Verdict::Pass => return Ok((n, remote)),
                Verdict::Drop => {}
                Verdict::Answer(answer) => {
                    let _ = self.inner.send_to(&answer, remote).await;
                }
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.gate.outbound(buf);
        self.inner.send_to(buf, target).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// The server closes its listener's socket when one allocation ends; the listener stays.
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use stun::agent::TransactionId;
    use turn::proto::peeraddr::PeerAddress;

    fn gate() -> Gate {
        Gate {
            credentials: Arc::new(Credentials::new("k", Duration::from_secs(600), "homeroom")),
            own: OwnAddresses::new(vec!["127.0.0.1".parse().unwrap()], None, 50000),
            allocations: Arc::new(Allocations::new(10, 2)),
        }
    }

    fn flow() -> Flow {
        Flow {
            transport: Transport::Udp,
            local: "127.0.0.1:3478".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
        }
    }

    /// A signed request as a TURN client sends it.
    fn request(
        gate: &Gate,
        method: stun::message::Method,
        peer: &str,
        password: Option<&str>,
    ) -> Vec<u8> {
        let (username, good, _) = gate.credentials.mint("p1", SystemTime::now());
        let password = password.map(str::to_owned).unwrap_or(good);
        let peer: SocketAddr = peer.parse().unwrap();
        let mut m = Message::new();
        let setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
            Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            }),
            Box::new(Username::new(ATTR_USERNAME, username.clone())),
            Box::new(stun::textattrs::Realm::new(
                stun::attributes::ATTR_REALM,
                "homeroom".into(),
            )),
            Box::new(stun::textattrs::Nonce::new(
                stun::attributes::ATTR_NONCE,
                "n".into(),
            )),
            Box::new(MessageIntegrity::new_long_term_integrity(
                username,
                "homeroom".into(),
                password,
            )),
        ];
        m.build(&setters).unwrap();
        m.raw
    }

    fn error_code(answer: &[u8]) -> u16 {
        let mut m = Message::new();
        m.raw = answer.to_vec();
        m.decode().unwrap();
        let mut code = ErrorCodeAttribute::default();
        code.get_from(&m).unwrap();
        code.code.0
    }

    #[test]
    fn permissions_only_for_own_addresses() {
        let gate = gate();
        let ok = request(&gate, METHOD_CREATE_PERMISSION, "127.0.0.1:9", None);
        assert_eq!(gate.inbound(&ok, flow()), Verdict::Pass);
        let outside = request(&gate, METHOD_CREATE_PERMISSION, "127.0.0.2:50000", None);
        match gate.inbound(&outside, flow()) {
            Verdict::Answer(answer) => assert_eq!(error_code(&answer), 403),
            other => panic!("{other:?}"),
        }
        // A channel names a port too: only media ports.
        let bind = request(&gate, METHOD_CHANNEL_BIND, "127.0.0.1:9", None);
        assert!(matches!(gate.inbound(&bind, flow()), Verdict::Answer(_)));
        let bind = request(&gate, METHOD_CHANNEL_BIND, "127.0.0.1:50000", None);
        assert_eq!(gate.inbound(&bind, flow()), Verdict::Pass);
        assert_eq!(gate.allocations.refusals()["peer_not_allowed"], 2);
    }

    #[test]
    fn forged_requests_are_counted_and_left_to_the_server() {
        let gate = gate();
        let forged = request(&gate, METHOD_ALLOCATE, "127.0.0.1:50001", Some("guess"));
        assert_eq!(gate.inbound(&forged, flow()), Verdict::Pass);
        assert_eq!(gate.allocations.refusals()["forged"], 1);
        assert_eq!(gate.allocations.live(), 0);
    }

    #[test]
    fn xor_addresses_of_both_families_parse() {
        for text in ["192.0.2.7:3478", "[2001:db8::7]:50000"] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut m = Message::new();
            let setters: Vec<Box<dyn Setter>> = vec![
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
                Box::new(PeerAddress {
                    ip: addr.ip(),
                    port: addr.port(),
                }),
            ];
            m.build(&setters).unwrap();
            let mut decoded = Message::new();
            decoded.raw = m.raw.clone();
            decoded.decode().unwrap();
            assert_eq!(peers(&decoded), vec![addr]);
        }
    }
}
