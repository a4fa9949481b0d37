//! A client's own network, for viewers on a weak link: a network namespace joined to the host
//! by a veth pair with a /30 of its own (10.77.N.0/30: the host's end is .1, the namespace's
//! .2), its bandwidth shaped with tc, and a way to run client code inside it.
//!
//! Tests and load runs on one machine (other checkouts' too) claim a free N by creating the
//! namespace `hrtest<N>` (`ip netns add` refuses a name in use): the name is what reserves the
//! subnet, so every user keeps this naming. Dropping the value removes the veth pair and the
//! namespace, also when a test panics. Needs root and `ip` and `tc` (iproute2).
//!
//! `Namespace::runtime` runs client code in the namespace without a subprocess: a thread of
//! its own enters the namespace (`setns(2)` changes only the calling thread's) and runs a
//! current-thread runtime, so every socket the code opens, and every task it spawns, lives in
//! the namespace, while the caller keeps using the values the code made (a participant's
//! channels work across runtimes).

use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;

use tokio::sync::oneshot;

/// The namespace and its veth pair.
#[derive(Debug)]
pub struct Namespace {
    pub name: String,
    /// The host's end of the veth pair, by interface name.
    pub host_if: String,
    inner_if: String,
    /// The host's end of the veth pair: servers are reached here from inside.
    pub host_ip: Ipv4Addr,
    /// The namespace's end.
    pub ns_ip: Ipv4Addr,
}

/// Runs a command; an error names it and says what it printed.
fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {} (install iproute2): {e}", args[0]))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

impl Namespace {
    /// A namespace joined to the host by a veth pair, with loopback up and nothing shaped.
    pub fn create() -> Result<Namespace, String> {
        let start = std::process::id() as usize + clock_nanos();
        for offset in 0..250 {
            let n = (start + offset) % 250 + 1;
            let name = format!("hrtest{n}");
            if run(&["ip", "netns", "add", &name]).is_err() {
                continue;
            }
            let (host_if, inner_if) = (format!("hrt{n}h"), format!("hrt{n}n"));
            // A veth left by a killed run may hold the name: then that index is taken too.
            let veth = [
                "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &inner_if,
            ];
            if run(&veth).is_err() {
                let _ = run(&["ip", "netns", "del", &name]);
                continue;
            }
            let namespace = Namespace {
                host_if,
                inner_if,
                host_ip: Ipv4Addr::new(10, 77, n as u8, 1),
                ns_ip: Ipv4Addr::new(10, 77, n as u8, 2),
                name,
            };
            // On failure from here on, dropping `namespace` removes what was made.
            namespace.configure()?;
            return Ok(namespace);
        }
        Err("no free network namespace (hrtest1 to hrtest250 are all taken)".into())
    }

    fn configure(&self) -> Result<(), String> {
        run(&["ip", "link", "set", &self.inner_if, "netns", &self.name])?;
        let host = format!("{}/30", self.host_ip);
        run(&["ip", "addr", "add", &host, "dev", &self.host_if])?;
        // No IPv6 link-local address on the host side: one appearing a second after the link
        // comes up is a network change that makes every Chromium on the host abort its page
        // loads (ERR_NETWORK_CHANGED).
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", self.host_if),
            "1",
        );
        run(&["ip", "link", "set", &self.host_if, "up"])?;
        let inner = format!("{}/30", self.ns_ip);
        self.ip(&["addr", "add", &inner, "dev", &self.inner_if])?;
        self.ip(&["link", "set", &self.inner_if, "up"])?;
        self.ip(&["link", "set", "lo", "up"])?;
        // The host is the namespace's gateway, as a home router is: its clients reach every
        // address of the host (a server offering media on all of them), and multicast has a
        // way out (without one, joining a group fails with ENODEV, and with it a WebRTC
        // stack's mDNS socket).
        let host = self.host_ip.to_string();
        self.ip(&["route", "add", "default", "via", &host])
    }

    /// `ip` inside the namespace.
    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Limits the link to `rate` (tc's units: `400kbit`, `2mbit`) both ways: a token bucket
    /// on each end of the veth pair, so the host's end shapes what servers send in and the
    /// namespace's end what its clients send out. Queued packets wait at most 300 ms, then
    /// the link drops, as a congested home link does.
    pub fn shape(&self, rate: &str) -> Result<(), String> {
        self.shape_bucket(rate, "16kb", "300ms")
    }

    /// `shape` with a bucket of `burst` bytes and a queue of at most `latency` (tc's units).
    pub fn shape_bucket(&self, rate: &str, burst: &str, latency: &str) -> Result<(), String> {
        let tbf = |dev| {
            [
                "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", burst,
                "latency", latency,
            ]
        };
        run(&tbf(&self.host_if))?;
        self.exec(&tbf(&self.inner_if))
    }

    /// Drops `percent` % of the UDP datagrams that arrive in the namespace, at random (an
    /// nftables rule inside it; tc's netem is not in every kernel): a lossy home link,
    /// without a queue.
    pub fn lose(&self, percent: u32) -> Result<(), String> {
        let below = percent.to_string();
        self.exec(&["nft", "add", "table", "inet", "lossy"])?;
        self.exec(&[
            "nft",
            "add",
            "chain",
            "inet",
            "lossy",
            "in",
            "{ type filter hook input priority 0; }",
        ])?;
        self.exec(&[
            "nft", "add", "rule", "inet", "lossy", "in", "meta", "l4proto", "udp", "numgen",
            "random", "mod", "100", "<", &below, "drop",
        ])
    }

    /// Lifts the limit `shape` set.
    pub fn unshape(&self) -> Result<(), String> {
        run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"])?;
        self.exec(&["tc", "qdisc", "del", "dev", &self.inner_if, "root"])
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; deleting the namespace takes the rest with it.
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

fn clock_nanos() -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0)
}

/// A runtime on a thread of its own inside a namespace: whatever it runs opens its sockets
/// there. It runs until dropped; what it spawned ends with it.
pub struct NsRuntime {
    handle: tokio::runtime::Handle,
    /// Dropping it ends the runtime.
    _stop: oneshot::Sender<()>,
}

impl NsRuntime {
    /// Runs `future` inside; await the handle from anywhere for its output.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Namespace {
    /// A runtime inside this namespace (see the module's doc).
    pub fn runtime(&self) -> Result<NsRuntime, String> {
        let path = format!("/var/run/netns/{}", self.name);
        let (handle_tx, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("in-{}", self.name))
            .spawn(move || {
                let runtime = enter(&path).and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("a runtime: {e}"))
                });
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                // Spawned tasks run while this waits.
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| format!("a thread: {e}"))?;
        let handle = handle
            .recv()
            .map_err(|_| "the namespace's thread ended".to_owned())??;
        Ok(NsRuntime {
            handle,
            _stop: stop,
        })
    }
}

/// Moves the calling thread into the network namespace mounted at `path`.
fn enter(path: &str) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: `setns` takes a file descriptor that stays open for the call, and changes only
    // the calling thread's network namespace.
    let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    match done {
        0 => Ok(()),
        _ => Err(format!(
            "setns {path}: {} (needs root)",
            std::io::Error::last_os_error()
        )),
    }
}
