//! `pfc load / unload / status / stats` end to end on real interfaces: two network
//! namespaces joined by a veth pair that each test creates and always removes, real
//! UDP and TCP traffic from std sockets (on threads that `setns(2)` into a namespace),
//! the `pfc` binary run inside the namespaces (a `pre_exec` `setns`, so bpffs and /run
//! stay the host's, as `ip netns exec` would not keep them).
//!
//! Proves, for XDP generic, XDP native (veth), TC ingress and TC egress: what arrives
//! and what is dropped; `pfc stats` counts exactly the packets sent per rule; 50
//! replaces while a sender streams packets both rule sets drop let none through; a
//! broken rule set leaves the old filter working; `unload` leaves no pins, links,
//! programs or state. Also prints load/replace timings for 10, 1k and 10k rules.
//!
//! Tests print `skipped: <reason>` and pass when the process cannot load BPF programs
//! or `ip`/`bpftool` are missing.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[macro_use]
extern crate pfc_test_support;

mod support;

use support::kernel::{missing_tool, run, run_ok, NetNs, RemoveOnDrop};

const PFC: &str = env!("CARGO_BIN_EXE_pfc");
const SENDER_IP: &str = "10.77.0.1";
const RECEIVER_IP: &str = "10.77.0.2";
const PAYLOAD: usize = 64;
/// Ethernet + IPv4 + UDP headers + payload: what an XDP or TC counter adds per packet.
const FRAME_BYTES: u64 = 14 + 20 + 8 + PAYLOAD as u64;

/// Why these tests cannot run here, if they cannot: no privileges or a missing tool.
fn no_kernel() -> Option<String> {
    support::kernel::no_kernel().or_else(|| missing_tool(&[("ip", "-V"), ("bpftool", "version")]))
}

/// Moves the calling thread into a named network namespace.
fn enter(ns: &str) {
    let file = File::open(format!("/run/netns/{ns}")).expect("netns file");
    // SAFETY: a valid namespace fd; setns affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a thread inside `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
}

/// A `pfc ARGS` command that runs inside `ns` (a `pre_exec` `setns`).
fn pfc_command(ns: &str, args: &[&str]) -> Command {
    let file = File::open(format!("/run/netns/{ns}")).expect("netns file");
    let mut command = Command::new(PFC);
    command.args(args);
    // SAFETY: setns is async-signal-safe; the closure owns the namespace file, so its fd
    // is valid in the child.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command
}

/// `pfc ARGS` run inside `ns`.
fn pfc(ns: &str, args: &[&str]) -> Output {
    pfc_command(ns, args).output().expect("pfc runs")
}

fn pfc_ok(ns: &str, args: &[&str]) -> String {
    let output = pfc(ns, args);
    assert!(
        output.status.success(),
        "pfc {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Sender namespace `a` with `veth_a` (10.77.0.1), receiver namespace `b` with `veth_b`
/// (10.77.0.2); deleted on drop with every pfc pin and record of both interfaces.
///
/// The guards drop in field order: namespaces first (which detaches and frees their
/// filters), then the pin and record directories, then the rule files.
struct Topology {
    /// The namespaces `a` and `b`.
    _ns: [NetNs; 2],
    /// pfc's bpffs pins and `/run/pfc` records of both interfaces.
    _state: [RemoveOnDrop; 4],
    files: Vec<RemoveOnDrop>,
    a: String,
    b: String,
    veth_a: String,
    veth_b: String,
    /// Held until the namespaces are gone: these tests attach real filters and read
    /// `pfc status` and bpftool's lists, so they run one at a time.
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// Serializes the tests of this binary (see [`Topology`]).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Topology {
    fn new(tag: &str) -> Topology {
        let pid = std::process::id();
        let serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (veth_a, veth_b) = (format!("pa{}{tag}", pid % 100_000), format!("pb{}{tag}", pid % 100_000));
        let state = |root: &str, iface: &str| RemoveOnDrop(PathBuf::from(format!("{root}/{iface}")));
        let topology = Topology {
            _serial: serial,
            _ns: [NetNs::new(format!("pfc-la-{pid}-{tag}")), NetNs::new(format!("pfc-lb-{pid}-{tag}"))],
            a: format!("pfc-la-{pid}-{tag}"),
            b: format!("pfc-lb-{pid}-{tag}"),
            _state: [
                state("/sys/fs/bpf/pfc", &veth_a),
                state("/sys/fs/bpf/pfc", &veth_b),
                state("/run/pfc", &veth_a),
                state("/run/pfc", &veth_b),
            ],
            files: Vec::new(),
            veth_a,
            veth_b,
        };
        let (a, b, va, vb) = (&topology.a, &topology.b, &topology.veth_a, &topology.veth_b);
        run_ok("ip", &["-n", a, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", b]);
        run_ok("ip", &["-n", a, "addr", "add", &format!("{SENDER_IP}/24"), "dev", va]);
        run_ok("ip", &["-n", b, "addr", "add", &format!("{RECEIVER_IP}/24"), "dev", vb]);
        for (ns, dev) in [(a, va), (b, vb)] {
            run_ok("ip", &["-n", ns, "link", "set", "dev", dev, "up"]);
        }
        // A permanent neighbour entry: no datagram waits for (or is lost to) ARP, so the
        // counters can be compared with what was sent exactly.
        let json: Value =
            serde_json::from_str(&run_ok("ip", &["-n", b, "-j", "link", "show", "dev", vb])).expect("ip json");
        let mac = json[0]["address"].as_str().expect("receiver MAC").to_string();
        run_ok("ip", &["-n", a, "neigh", "replace", RECEIVER_IP, "lladdr", &mac, "dev", va, "nud", "permanent"]);
        topology
    }

    /// Writes a rule file removed on drop.
    fn rules(&mut self, name: &str, text: &str) -> String {
        let path = std::env::temp_dir().join(format!("pfc-load-{}-{}-{name}.pf", std::process::id(), self.veth_a));
        std::fs::write(&path, text).expect("rule file written");
        self.files.push(RemoveOnDrop(path.clone()));
        path.display().to_string()
    }

    /// (namespace, interface) where a hook filters traffic from a to b.
    fn place(&self, hook: &str) -> (&str, &str) {
        if hook == "tc-egress" {
            (&self.a, &self.veth_a)
        } else {
            (&self.b, &self.veth_b)
        }
    }
}

/// A UDP receiver in `ns` on `port`, counting datagrams until `stop` and a quiet 200 ms.
fn udp_receiver(ns: &str, port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = in_ns(ns, move || {
        let socket = UdpSocket::bind((RECEIVER_IP, port)).expect("receiver binds");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        ready_tx.send(()).expect("ready");
        let mut received = 0;
        let mut buffer = [0u8; 2048];
        loop {
            match socket.recv(&mut buffer) {
                Ok(_) => received += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stop.load(Ordering::SeqCst) {
                        return received;
                    }
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    });
    ready_rx.recv().expect("receiver ready");
    handle
}

/// Sends `count` datagrams of [`PAYLOAD`] bytes from `ns` to the receiver's `port`.
fn send_udp(ns: &str, port: u16, count: u64) {
    in_ns(ns, move || {
        let socket = UdpSocket::bind((SENDER_IP, 0)).expect("sender binds");
        for _ in 0..count {
            socket.send_to(&[0x55; PAYLOAD], (RECEIVER_IP, port)).expect("send");
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .join()
    .expect("sender thread");
}

/// Whether a TCP connection from `ns` to the receiver's `port` completes within `wait`.
/// A port that must connect gets a wait no loaded machine reaches (the SYN is answered in
/// microseconds on a veth); a port whose SYN is dropped never connects, so a short wait
/// decides it.
fn tcp_connects(ns: &str, port: u16, wait: Duration) -> bool {
    let addr: SocketAddr = format!("{RECEIVER_IP}:{port}").parse().expect("address");
    in_ns(ns, move || TcpStream::connect_timeout(&addr, wait).is_ok()).join().expect("thread")
}

fn rule_set(hook: &str) -> String {
    let hook = hook.replace('-', " ");
    format!(
        "hook {hook}\ndefault pass\nrule udp_drop: drop if udp.dport == 7001\nrule tcp_drop: drop if tcp.dport == 7002\n\
         rule udp_pass: pass if udp.dport == 7003\n"
    )
}

/// `pfc stats --format json`: one document, of the shape pinned for its schema.
fn stats_json(ns: &str, iface: &str, hook: &str) -> Value {
    let text = pfc_ok(ns, &["stats", "--iface", iface, "--hook", hook, "--format", "json"]);
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if json["labels"].is_null() {
        support::shapes::assert_pinned(&json);
    } else {
        // Unlabelled counters claim no verdict.
        let rules = json["rules"].as_array().expect("rules");
        assert!(rules.iter().chain([&json["default"]]).all(|r| r["verdict"].is_null()), "{json}");
    }
    json
}

/// `pfc status --format json`'s `filters`; each attached and labelled one has the shape
/// pinned for the schema (other tests' filters may be in any state).
fn status_filters(ns: &str) -> Vec<Value> {
    let text = pfc_ok(ns, &["status", "--format", "json"]);
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let filters = json["filters"].as_array().unwrap_or_else(|| panic!("no filters array: {text}")).clone();
    for filter in filters.iter().filter(|filter| filter["labels"].is_null() && filter["state"] == "attached") {
        support::shapes::assert_pinned(&serde_json::json!({ "schema": json["schema"], "filters": [filter] }));
    }
    filters
}

/// `pfc stats --format json` as (rule name → (packets, bytes)).
fn stats(ns: &str, iface: &str, hook: &str) -> Vec<(String, u64, u64)> {
    let json = stats_json(ns, iface, hook);
    let mut rows: Vec<(String, u64, u64)> = json["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_string(),
                r["packets"].as_u64().unwrap_or(0),
                r["bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    rows.push((
        "(default)".to_string(),
        json["default"]["packets"].as_u64().unwrap_or(0),
        json["default"]["bytes"].as_u64().unwrap_or(0),
    ));
    rows
}

fn counter(rows: &[(String, u64, u64)], name: &str) -> (u64, u64) {
    rows.iter().find(|r| r.0 == name).map(|r| (r.1, r.2)).unwrap_or_else(|| panic!("no rule {name}: {rows:?}"))
}

/// Loads the UDP/TCP rule set at `hook`, sends traffic, checks arrivals and counters.
fn check_traffic(hook: &str, mode: &str, tag: &str) {
    let mut topology = Topology::new(tag);
    let rules = topology.rules("traffic", &rule_set(hook));
    let (ns, iface) = topology.place(hook);
    let mut args = vec!["load", rules.as_str(), "--iface", iface, "--hook", hook];
    if hook == "xdp" {
        args.extend(["--mode", mode]);
    }
    let loaded = pfc_ok(ns, &args);
    let expected_mode = if hook == "xdp" { mode } else { "tcx" };
    assert!(loaded.contains(&format!("({expected_mode})")), "{loaded}");

    let listener_pass =
        in_ns(&topology.b, || TcpListener::bind((RECEIVER_IP, 7004)).expect("listen 7004")).join().expect("listener");
    let listener_drop =
        in_ns(&topology.b, || TcpListener::bind((RECEIVER_IP, 7002)).expect("listen 7002")).join().expect("listener");
    let stop = Arc::new(AtomicBool::new(false));
    let dropped = udp_receiver(&topology.b, 7001, stop.clone());
    let passed = udp_receiver(&topology.b, 7003, stop.clone());
    const SENT: u64 = 40;
    send_udp(&topology.a, 7001, SENT);
    send_udp(&topology.a, 7003, SENT);
    let tcp_blocked = !tcp_connects(&topology.a, 7002, Duration::from_millis(500));
    let tcp_open = tcp_connects(&topology.a, 7004, Duration::from_secs(30));
    stop.store(true, Ordering::SeqCst);
    let (dropped, passed) = (dropped.join().expect("receiver"), passed.join().expect("receiver"));
    drop((listener_pass, listener_drop));

    let rows = stats(ns, iface, hook);
    // Each rule's verdict comes from the manifest recorded at load (the names say it).
    let json = stats_json(ns, iface, hook);
    for rule in json["rules"].as_array().expect("rules") {
        let (name, verdict) = (rule["name"].as_str().unwrap_or("?"), rule["verdict"].as_str().unwrap_or("?"));
        assert!(name.ends_with(&format!("_{verdict}")), "{hook}: {name} has verdict {verdict}");
    }
    assert_eq!(json["default"]["verdict"], "pass", "{hook}: {json}");
    println!("{hook} {expected_mode}: udp 7001 received {dropped}/{SENT}, udp 7003 received {passed}/{SENT}, tcp 7002 blocked {tcp_blocked}, tcp 7004 open {tcp_open}; stats {rows:?}");
    assert_eq!((dropped, passed), (0, SENT), "{hook}: UDP to 7001 is dropped, to 7003 passes");
    assert!(tcp_blocked && tcp_open, "{hook}: TCP to 7002 is dropped, to 7004 passes");
    assert_eq!(counter(&rows, "udp_drop"), (SENT, SENT * FRAME_BYTES), "{hook}: udp_drop counts every packet");
    assert_eq!(counter(&rows, "udp_pass"), (SENT, SENT * FRAME_BYTES), "{hook}: udp_pass counts every packet");
    // A blocked connect sends one SYN, or two if the kernel retransmits within 500 ms.
    let syns = counter(&rows, "tcp_drop").0;
    assert!((1..=2).contains(&syns), "{hook}: tcp_drop counted {syns} SYNs");
    pfc_ok(ns, &["unload", "--iface", iface, "--hook", hook]);
}

#[test]
fn xdp_generic_drops_and_counts_real_traffic() {
    skip_unless!(no_kernel());
    check_traffic("xdp", "generic", "g");
}

#[test]
fn xdp_native_on_veth_drops_and_counts_real_traffic() {
    skip_unless!(no_kernel());
    check_traffic("xdp", "native", "n");
}

#[test]
fn tc_ingress_drops_and_counts_real_traffic() {
    skip_unless!(no_kernel());
    check_traffic("tc-ingress", "auto", "i");
}

#[test]
fn tc_egress_drops_and_counts_real_traffic() {
    skip_unless!(no_kernel());
    check_traffic("tc-egress", "auto", "e");
}

#[path = "load_attach/replace.rs"]
mod replace;

#[path = "load_attach/names.rs"]
mod names;

#[path = "load_attach/concurrent.rs"]
mod concurrent;

#[path = "load_attach/crash.rs"]
mod crash;

#[path = "load_attach/ownership.rs"]
mod ownership;

#[path = "load_attach/escaping.rs"]
mod escaping;

#[path = "load_attach/systemd.rs"]
mod systemd;

#[path = "load_attach/objects.rs"]
mod objects;
#[path = "load_attach/sets.rs"]
mod sets;

#[path = "load_attach/watch.rs"]
mod watch;

#[path = "load_attach/rate.rs"]
mod rate;

#[path = "load_attach/set_replace.rs"]
mod set_replace;

#[path = "load_attach/set_files.rs"]
mod set_files;

#[path = "load_attach/set_kill.rs"]
mod set_kill;

#[path = "load_attach/set_pins.rs"]
mod set_pins;

#[path = "load_attach/vlan.rs"]
mod vlan;
