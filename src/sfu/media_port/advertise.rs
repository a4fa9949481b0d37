//! ICE over TCP arrives on the HTTPS port, but the `webrtc` crate names a connection's passive
//! TCP candidate after the listener it bound itself, an ephemeral port, before the runtime
//! swapped that listener for the streams the HTTPS listener routes to it (`runtime.rs`,
//! `tcp.rs`). Inside the connection that name stays: its ICE agent finds the local candidate
//! of an incoming check by it, so the routed streams carry it as their local address. What
//! the server tells clients, its descriptions and trickled candidates, carries the HTTPS port
//! instead, where clients can reach it: descriptions here, trickled candidates in the
//! connection's handler (`sfu/paths.rs`, `PathWatch`).

/// `text`, an SDP or one candidate, with the port of every passive TCP candidate set to
/// `port`.
pub fn advertise_tcp_port(text: &str, port: u16) -> String {
    text.split("\r\n")
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let passive_tcp = line.contains("candidate:")
                && fields.len() > 9
                && fields[2].eq_ignore_ascii_case("tcp")
                && fields.windows(2).any(|w| w == ["tcptype", "passive"]);
            if !passive_tcp {
                return line.to_owned();
            }
            let port = port.to_string();
            let mut fields = fields;
            fields[5] = &port;
            fields.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passive_tcp_candidates_name_the_https_port() {
        let sdp = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
            a=candidate:1 1 udp 2130706431 10.0.0.1 40000 typ host\r\n\
            a=candidate:2 1 tcp 2124414975 10.0.0.1 45007 typ host tcptype passive\r\n\
            a=candidate:2 1 tcp 2128609279 10.0.0.1 9 typ host tcptype active\r\n";
        let advertised = advertise_tcp_port(sdp, 8443);
        assert!(advertised.contains("tcp 2124414975 10.0.0.1 8443 typ host tcptype passive\r\n"));
        assert!(advertised.contains("udp 2130706431 10.0.0.1 40000 typ host\r\n"));
        assert!(advertised.contains("10.0.0.1 9 typ host tcptype active\r\n"));
        let trickled = "candidate:2 1 tcp 2124414975 10.0.0.1 45007 typ host tcptype passive";
        assert_eq!(
            advertise_tcp_port(trickled, 8443),
            "candidate:2 1 tcp 2124414975 10.0.0.1 8443 typ host tcptype passive"
        );
    }
}
