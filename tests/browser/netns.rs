//! A network namespace for one test, standing for a family's home network: a veth pair to the
//! host with a /30 of its own (10.77.N.0/30: the host side is .1, the family's side .2), and
//! nftables rules inside it (a network that drops UDP) or a slow link (a rate limit both ways). Tests run in parallel, also in other
//! test processes, so each claims a free N by creating its namespace (`ip netns add` refuses a
//! name in use). Dropping the value removes the veth pair and the namespace with its rules,
//! also when the test panics. Needs root, `ip` and `tc` (iproute2) and `nft` (nftables).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct NetNs {
    pub name: String,
    host_if: String,
    /// The namespace's end of the veth pair.
    ns_if: String,
    /// The host's end of the veth pair: the server serves pages and media here.
    pub host_ip: Ipv4Addr,
    /// The namespace's end: the family's browser.
    pub ns_ip: Ipv4Addr,
}

/// Runs a command that must succeed; the panic names it and its output.
fn run(args: &[&str]) {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (network tests need iproute2 and nftables)",
                args[0]
            )
        });
    assert!(
        output.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
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
        let start = std::process::id() as usize + rand_index();
        for offset in 0..250 {
            let n = (start + offset) % 250 + 1;
            let name = format!("hrtest{n}");
            if !tries(&["ip", "netns", "add", &name]) {
                continue;
            }
            let (host_if, peer) = (format!("hrt{n}h"), format!("hrt{n}n"));
            // A veth left by a killed run may hold the name: then that index is taken too.
            if !tries(&[
                "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &peer,
            ]) {
                let _ = Command::new("ip").args(["netns", "del", &name]).output();
                continue;
            }
            let ns = NetNs {
                host_if,
                ns_if: peer,
                host_ip: Ipv4Addr::new(10, 77, n as u8, 1),
                ns_ip: Ipv4Addr::new(10, 77, n as u8, 2),
                name,
            };
            run(&["ip", "link", "set", &ns.ns_if, "netns", &ns.name]);
            run(&[
                "ip",
                "addr",
                "add",
                &format!("{}/30", ns.host_ip),
                "dev",
                &ns.host_if,
            ]);
            // No IPv6 link-local address on the host side: one appearing a second after the
            // link comes up is a network change that makes every Chromium on the host abort
            // its page loads (ERR_NETWORK_CHANGED).
            let _ = std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", ns.host_if),
                "1",
            );
            run(&["ip", "link", "set", &ns.host_if, "up"]);
            let inside = |args: &[&str]| {
                let mut all = vec!["ip", "-n", &ns.name];
                all.extend_from_slice(args);
                run(&all);
            };
            inside(&["addr", "add", &format!("{}/30", ns.ns_ip), "dev", &ns.ns_if]);
            inside(&["link", "set", &ns.ns_if, "up"]);
            inside(&["link", "set", "lo", "up"]);
            // Let the host's network settle before any browser starts (see above).
            std::thread::sleep(std::time::Duration::from_millis(1500));
            return ns;
        }
        panic!("no free network namespace index (hrtest1 to hrtest250 are all taken)");
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
        run(&[
            "ip",
            "netns",
            "exec",
            &self.name,
            "nft",
            "-f",
            path.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(path);
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
        self.qdisc_both_ends(
            "replace",
            &format!("root tbf rate {rate} burst 8kb latency 400ms"),
        );
    }

    /// The link at full speed again: the limits of `shape` go.
    pub fn unshape(&self) {
        self.qdisc_both_ends("del", "root");
    }

    /// `tc qdisc <verb> dev <end> <args>` on the namespace's end and on the host's end.
    fn qdisc_both_ends(&self, verb: &str, args: &str) {
        let inside = format!("tc -n {} qdisc {verb} dev {} {args}", self.name, self.ns_if);
        let host = format!("tc qdisc {verb} dev {} {args}", self.host_if);
        for command in [inside, host] {
            run(&command.split_whitespace().collect::<Vec<_>>());
        }
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

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; deleting the namespace takes its rules with it.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn rand_index() -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0)
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
