//! Whom a relay may talk to: only this server's own media sockets, never anyone else, so the
//! relay cannot be used to reach other hosts (an open relay). A peer is allowed when its
//! address is one the SFU offers host candidates on (`media.interfaces`, or every local
//! address when none are listed, and `media.public_ip`) and its port is the media port.
//!
//! Behind a 1:1 NAT the SFU's candidates carry the public address, which the relay on the
//! same machine may not reach (routers often do not hairpin). Relayed packets for the public
//! address are therefore sent to the local media address instead, and answers from it are
//! shown to the client as coming from the public one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::config::MediaConfig;

#[derive(Debug, Clone)]
pub struct OwnAddresses {
    ips: Vec<IpAddr>,
    /// The one media port (see `sfu/media_port`).
    port: u16,
    /// (public, local): relayed packets for the public address go to the local one.
    public_to_local: Option<(IpAddr, IpAddr)>,
    /// Where relay sockets bind, and the address reported to clients for them: the address
    /// the SFU's sockets bind to (the first of `media.interfaces`), or the machine's first
    /// IPv4 address; the SFU reaches it directly, and its packets to it come from an address
    /// the client has a permission for.
    relay_ip: IpAddr,
}

impl OwnAddresses {
    /// From `[media]`, with the machine's addresses where it lists none, and the media port
    /// the SFU bound.
    pub fn from_config(media: &MediaConfig, port: u16) -> OwnAddresses {
        let local = match media.interfaces.is_empty() {
            true => machine_addresses(),
            false => media.interfaces.clone(),
        };
        OwnAddresses::new(local, media.public_ip, port)
    }

    pub fn new(local: Vec<IpAddr>, public_ip: Option<IpAddr>, port: u16) -> OwnAddresses {
        let relay_ip = local
            .first()
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut ips = local;
        let public_to_local = match public_ip {
            Some(public) if !ips.contains(&public) => {
                ips.push(public);
                Some((public, relay_ip))
            }
            _ => None,
        };
        OwnAddresses {
            ips,
            port,
            public_to_local,
            relay_ip,
        }
    }

    /// A permission (which is per IP address, RFC 8656 section 9) may name this address.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ips.contains(&canonical(ip))
    }

    /// Relayed data may go to (and come from) this address: one of ours, on a media port.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        self.allows_ip(addr.ip()) && addr.port() == self.port
    }

    /// Where a packet for `peer` is actually sent.
    pub fn to_local(&self, peer: SocketAddr) -> SocketAddr {
        match self.public_to_local {
            Some((public, local)) if canonical(peer.ip()) == public => {
                SocketAddr::new(local, peer.port())
            }
            _ => peer,
        }
    }

    /// What the client is told a packet from `source` came from.
    pub fn shown_to_client(&self, source: SocketAddr) -> SocketAddr {
        match self.public_to_local {
            Some((public, local)) if canonical(source.ip()) == local => {
                SocketAddr::new(public, source.port())
            }
            _ => SocketAddr::new(canonical(source.ip()), source.port()),
        }
    }

    pub fn relay_ip(&self) -> IpAddr {
        self.relay_ip
    }
}

/// An IPv4 address written as IPv4-mapped IPv6 is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The machine's own addresses, IPv4 first, loopback and link-local left out (the SFU offers
/// neither when it listens on all interfaces).
fn machine_addresses() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = webrtc_util::ifaces::ifaces()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|interface| interface.addr.map(|a| a.ip()))
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> u16 {
        50000
    }

    #[test]
    fn only_own_addresses_on_media_ports_are_allowed() {
        let own = OwnAddresses::new(vec!["127.0.0.1".parse().unwrap()], None, ports());
        assert!(own.allows("127.0.0.1:50000".parse().unwrap()));
        assert!(own.allows("[::ffff:127.0.0.1]:50000".parse().unwrap()));
        assert!(!own.allows("127.0.0.1:50001".parse().unwrap()));
        assert!(!own.allows("127.0.0.1:51000".parse().unwrap()));
        assert!(!own.allows("127.0.0.2:50000".parse().unwrap()));
        assert!(!own.allows("192.0.2.1:50000".parse().unwrap()));
        assert!(own.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!own.allows_ip("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn public_address_is_relayed_to_the_local_one() {
        let own = OwnAddresses::new(
            vec!["192.168.1.20".parse().unwrap()],
            Some("203.0.113.10".parse().unwrap()),
            ports(),
        );
        let public: SocketAddr = "203.0.113.10:50000".parse().unwrap();
        assert!(own.allows(public));
        assert_eq!(
            own.to_local(public),
            "192.168.1.20:50000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            own.shown_to_client("192.168.1.20:50000".parse().unwrap()),
            public
        );
        assert_eq!(own.relay_ip(), "192.168.1.20".parse::<IpAddr>().unwrap());
    }
}
