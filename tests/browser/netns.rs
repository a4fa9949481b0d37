//! A network namespace for one test, standing for a family's home network: the library's
//! namespace with its veth pair to the host (10.77.N.0/30: the host side is .1, the family's
//! side .2), nftables rules inside it (a network that drops UDP) or a slow link (a rate limit
//! both ways), and a Chromium that runs in it. Dropping the value removes the veth pair and the
//! namespace with its rules, also when the test panics. Needs root, `ip` and `tc` (iproute2)
//! and `nft` (nftables).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use homeroom::client::netns::Namespace;

pub struct NetNs(Namespace);

impl Deref for NetNs {
    type Target = Namespace;

    fn deref(&self) -> &Namespace {
        &self.0
    }
}

fn tries(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl NetNs {
    /// A namespace joined to the host by a veth pair, with loopback up and nothing filtered.
    pub fn new() -> NetNs {
        assert!(
            tries(&["nft", "--version"]),
            "network tests need nftables: `apt-get install -y nftables` (scripts/test.sh does it)"
        );
        let ns = Namespace::create().unwrap_or_else(|e| panic!("a network namespace: {e}"));
        // Let the host's network settle before any browser starts: a new interface is a
        // network change to every Chromium on the host.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        NetNs(ns)
    }

    /// Drops every UDP datagram leaving the namespace except DNS, as strict school and office
    /// firewalls do: video calls must then go over TCP or through a TURN relay over TCP.
    pub fn drop_outbound_udp(&self) {
        let rules = "table inet homeroom_test {\n\
                     \tchain output {\n\
                     \t\ttype filter hook output priority 0; policy accept;\n\
                     \t\tudp dport != 53 counter drop\n\
                     \t}\n\
                     }\n";
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&path, rules).expect("write the nftables rules");
        let loaded = self.exec(&["nft", "-f", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(path);
        loaded.expect("the nftables rules load");
    }

    /// UDP datagrams the rule dropped so far (proof that the browser tried UDP and was stopped).
    pub fn dropped_udp_packets(&self) -> u64 {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "nft",
                "list",
                "table",
                "inet",
                "homeroom_test",
            ])
            .output()
            .expect("nft runs");
        let text = String::from_utf8_lossy(&output.stdout);
        text.split("counter packets ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// A slow home link: what leaves the namespace (the family's uploads) and what the host
    /// sends into it (the server's media) each pass a token bucket of `rate` (tc's notation,
    /// `60kbit`), which queues at most 400 ms and drops the rest, as a congested line does.
    pub fn shape(&self, rate: &str) {
        self.0
            .shape_bucket(rate, "8kb", "400ms")
            .expect("the link is shaped");
    }

    /// The link at full speed again: the limits of `shape` go.
    pub fn unshape(&self) {
        self.0.unshape().expect("the link is free");
    }

    /// A script that starts `chromium` inside the namespace with the arguments it is given,
    /// for playwright's `executablePath` (the pipe to the browser passes through `ip netns exec`).
    pub fn chromium_wrapper(&self, dir: &Path, chromium: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("chromium-in-{}", self.name));
        let script = format!(
            "#!/bin/sh\nexec ip netns exec {} {} \"$@\"\n",
            self.name,
            chromium.display()
        );
        std::fs::write(&path, script).expect("write the wrapper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

/// The namespace, its veth pair and its rules are gone after a test that panics while using them.
#[test]
fn a_panicking_test_leaves_no_namespace_behind() {
    let mut names = (String::new(), String::new());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = NetNs::new();
        ns.drop_outbound_udp();
        names = (ns.name.clone(), ns.host_if.clone());
        assert_eq!(ns.dropped_udp_packets(), 0);
        panic!("the test fails while the namespace is up");
    }));
    assert!(outcome.is_err());
    let (name, host_if) = names;
    assert!(!name.is_empty());
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !listed.split_whitespace().any(|n| n == name),
        "{name} is still there: {listed}"
    );
    assert!(
        !tries(&["ip", "link", "show", &host_if]),
        "{host_if} is still there"
    );
}
