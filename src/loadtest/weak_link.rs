//! `--throttle N:RATE`: the first N subscribers on a weak link. They open their sockets inside
//! one network namespace whose veth pair to the host is shaped to RATE both ways
//! (`client::netns`), on a runtime of their own there, and reach the server at the host's end
//! of the pair. The namespace goes when the value is dropped, at the end of the run however it
//! ends (its duration, a signal, an error), and on a panic too.
//!
//! The server must offer media where the namespace reaches it: on every address (no
//! `media.interfaces`), and listening on every address for the signalling.

use std::net::SocketAddr;

use anyhow::Context;

use crate::client::netns::{Namespace, NsRuntime};

/// What `--throttle` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttling {
    /// How many subscribers, counted from the first to start.
    pub viewers: usize,
    /// The link's rate in tc's units (`400kbit`, `2mbit`).
    pub rate: String,
}

impl std::str::FromStr for Throttling {
    type Err = String;

    fn from_str(text: &str) -> Result<Throttling, String> {
        let (viewers, rate) = text.split_once(':').ok_or("N:RATE, e.g. 10:400kbit")?;
        let viewers = viewers
            .parse()
            .map_err(|_| format!("{viewers} is not a number of subscribers"))?;
        let digits = rate.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &rate[digits.len()..];
        let known = ["bit", "kbit", "mbit", "gbit", "bps", "kbps", "mbps"];
        if digits.parse::<f64>().is_err() || !known.contains(&unit.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{rate} is not a rate: a number and one of {}",
                known.join(", ")
            ));
        }
        Ok(Throttling {
            viewers,
            rate: rate.to_owned(),
        })
    }
}

/// The shaped namespace and the runtime its subscribers' sockets live on.
pub(super) struct WeakLink {
    // Fields drop in order: the runtime (and the sockets on it) before the namespace.
    runtime: NsRuntime,
    namespace: Namespace,
    viewers: usize,
}

impl WeakLink {
    pub(super) fn open(throttling: &Throttling) -> anyhow::Result<WeakLink> {
        let namespace = Namespace::create()
            .map_err(anyhow::Error::msg)
            .context("--throttle needs root")?;
        namespace
            .shape(&throttling.rate)
            .map_err(anyhow::Error::msg)
            .context("--throttle")?;
        let runtime = namespace.runtime().map_err(anyhow::Error::msg)?;
        Ok(WeakLink {
            runtime,
            namespace,
            viewers: throttling.viewers,
        })
    }

    /// Whether subscriber number `index` is on this link.
    pub(super) fn holds(&self, index: usize) -> bool {
        index < self.viewers
    }

    /// Where a subscriber on this link binds its media sockets.
    pub(super) fn bind(&self) -> String {
        format!("{}:0", self.namespace.ns_ip)
    }

    /// The server's `port` as reached from the link.
    pub(super) fn via(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.namespace.host_ip, port))
    }

    /// The namespace's name (`hrtest<N>`).
    pub(super) fn name(&self) -> &str {
        &self.namespace.name
    }

    pub(super) fn runtime(&self) -> &NsRuntime {
        &self.runtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_is_a_count_and_a_rate() {
        assert_eq!(
            "10:400kbit".parse(),
            Ok(Throttling {
                viewers: 10,
                rate: "400kbit".into()
            })
        );
        assert!("1:2.5mbit".parse::<Throttling>().is_ok());
        for bad in ["10", "x:400kbit", "10:fast", "10:400", "10:400kb"] {
            assert!(bad.parse::<Throttling>().is_err(), "{bad}");
        }
    }
}
