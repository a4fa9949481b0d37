//! `[turn]`: the built-in TURN relay, off by default.

use serde::Deserialize;

use crate::config::PortRange;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// Run the relay. Off by default: most families reach the media ports directly or over
    /// ICE-TCP, and a relay is one more port to open.
    pub enabled: bool,
    /// UDP port of the TURN listener (0: any free port, told to clients; for tests). The
    /// listeners bind the first of `media.interfaces`, or every address when none is listed.
    pub udp_port: u16,
    /// TCP port of the TURN listener, for networks that block UDP (0: any free port).
    pub tcp_port: u16,
    /// TURN over TLS with the server's certificate, e.g. 443 when the school can give it;
    /// off when absent (0: any free port).
    pub tls_port: Option<u16>,
    /// The host name or address clients are told to reach the relay at. Defaults to the host
    /// of `public_url`, else `media.public_ip`, else the host of the address printed at start.
    pub public_host: Option<String>,
    /// UDP ports relayed traffic leaves from, e.g. "49160-49200"; any free port when absent.
    /// Relays only ever talk to this server's own media ports, so this range needs no
    /// opening in a firewall.
    pub relay_ports: Option<PortRange>,
    /// Relay allocations at once, all users together. Browsers allocate on every TURN URL
    /// while gathering candidates, even when they then connect directly: count about six per
    /// participant. Each one holds a UDP socket.
    pub max_allocations: usize,
    /// Relay allocations at once per user of credentials: a participant (each join, WHIP or
    /// WHEP session is one) or a signed-in page, however many credentials it fetched. A
    /// browser allocates once per TURN URL, network interface and connection, and a
    /// participant has two connections: 2 × 3 URLs × 2 interfaces is 12.
    pub max_allocations_per_user: usize,
    /// How long a handed-out credential is accepted, for new allocations and for refreshing
    /// them: a relayed connection lasts at most this long (plus an allocation's lifetime)
    /// unless the client fetches a fresh credential.
    pub credential_ttl_secs: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            enabled: false,
            udp_port: 3478,
            tcp_port: 3478,
            tls_port: None,
            public_host: None,
            relay_ports: None,
            max_allocations: 1000,
            max_allocations_per_user: 16,
            credential_ttl_secs: 6 * 3600,
        }
    }
}

impl TurnConfig {
    /// The first key that is wrong, with why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_allocations == 0 {
            return Err(("turn.max_allocations", "must be at least 1".into()));
        }
        if self.max_allocations_per_user == 0 {
            return Err(("turn.max_allocations_per_user", "must be at least 1".into()));
        }
        if self.credential_ttl_secs < 60 {
            return Err(("turn.credential_ttl_secs", "must be at least 60".into()));
        }
        if let Some(host) = &self.public_host {
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
            if !ok {
                return Err((
                    "turn.public_host",
                    "must be a host name or an address".into(),
                ));
            }
        }
        Ok(())
    }
}
