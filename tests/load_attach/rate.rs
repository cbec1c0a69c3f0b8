//! A rate limit under real traffic (part of `tests/load_attach.rs`, issue 14): a bounded
//! sender streams UDP through a veth pair at about four times a `rate <= 50/s burst 20`
//! limit for three seconds; the packets the limit accepts match the token bucket's
//! arithmetic within ±10 %. The expected count comes from the sender's own clock (the
//! time from its first to its last packet), not from a wall-clock limit on the test, so a
//! slow or loaded machine changes the expectation, not the verdict. Also `pfc stats`'s
//! per-limit counts (over and within the rate), exactly, with per-minute limits.

use super::*;

/// Packets a second the limit accepts, and its burst.
const RATE: u64 = 50;
const BURST: u64 = 20;
/// Packets a second the sender aims at (it catches up after late wake-ups).
const SEND_RATE: f64 = 200.0;
const SECONDS: f64 = 3.0;

/// Streams UDP from `ns` to the receiver's `port` on a schedule of [`SEND_RATE`] packets
/// a second for [`SECONDS`]; returns (packets sent, seconds from the first to the last).
fn paced_udp(ns: &str, port: u16) -> (u64, f64) {
    in_ns(ns, move || {
        let socket = UdpSocket::bind((SENDER_IP, 0)).expect("sender binds");
        let start = Instant::now();
        let mut sent = 0u64;
        let mut last = start;
        loop {
            let elapsed = start.elapsed().as_secs_f64();
            if elapsed >= SECONDS {
                break;
            }
            // Behind schedule after a late wake-up: send what is due, then sleep again.
            while (sent as f64) < elapsed * SEND_RATE + 1.0 {
                socket.send_to(&[0x55; PAYLOAD], (RECEIVER_IP, port)).expect("send");
                sent += 1;
                last = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        (sent, last.duration_since(start).as_secs_f64())
    })
    .join()
    .expect("sender thread")
}

#[test]
fn a_rate_limit_accepts_its_rate_under_real_traffic() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("t");
    let rules = topology.rules(
        "rate",
        &format!(
            "hook xdp\ndefault pass\nrule within: pass if udp.dport == 7201 and rate <= {RATE}/s burst {BURST}\n\
             rule over: drop if udp.dport == 7201\n"
        ),
    );
    let (ns, iface) = topology.place("xdp");
    pfc_ok(ns, &["load", &rules, "--iface", iface, "--hook", "xdp"]);
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = udp_receiver(&topology.b, 7201, stop.clone());
    let (sent, seconds) = paced_udp(&topology.a, 7201);
    stop.store(true, Ordering::SeqCst);
    let received = receiver.join().expect("receiver");
    let rows = stats(ns, iface, "xdp");
    let (within, over) = (counter(&rows, "within").0, counter(&rows, "over").0);
    // The limit counted every packet: those within its rate matched its rule, those over
    // it went on to `over`.
    let limit = limit_of(&stats_json(ns, iface, "xdp"), "within");
    assert_eq!(limit, Some((over, within)), "the limit's own counts are the two rules' matches");
    // A full bucket at the first packet, then RATE tokens a second until the last one.
    let expected = (BURST as f64 + RATE as f64 * seconds).min(sent as f64);
    println!(
        "rate: sent {sent} in {seconds:.3} s ({:.0}/s); accepted {within} (expected {expected:.1}, {:+.1} %), \
         dropped {over}, received {received}",
        sent as f64 / seconds,
        (within as f64 / expected - 1.0) * 100.0
    );
    assert_eq!(within + over, sent, "every packet sent is decided by one of the two rules");
    assert_eq!(received, within, "what the limit accepts arrives");
    assert!(
        sent as f64 > 2.0 * expected,
        "the sender must outrun the limit to test it ({sent} packets in {seconds:.3} s)"
    );
    assert!(
        (within as f64 - expected).abs() <= 0.1 * expected,
        "{within} packets accepted; the bucket allows {expected:.1} in {seconds:.3} s (±10 %)"
    );
    pfc_ok(ns, &["unload", "--iface", iface, "--hook", "xdp"]);
}

/// `limit` of rule `name` in a `pfc.stats/2` document: (over, within), `None` for null.
fn limit_of(json: &Value, name: &str) -> Option<(u64, u64)> {
    let rules = json["rules"].as_array().expect("rules");
    let rule = rules.iter().find(|rule| rule["name"] == name).unwrap_or_else(|| panic!("no rule {name}: {json}"));
    let limit = &rule["limit"];
    (!limit.is_null()).then(|| (limit["over"].as_u64().expect("over"), limit["within"].as_u64().expect("within")))
}

/// `pfc stats` shows each limited rule's packets over and within its rate apart from its
/// matches, exactly: per-minute limits, so no token comes back while the test runs.
#[test]
fn stats_show_each_limit_over_and_within_its_rate() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("lq");
    let rules = topology.rules(
        "limits",
        "hook xdp\ndefault pass\nrule flood: drop if udp.dport == 7211 and rate > 1/m burst 5\n\
         rule some: pass if udp.dport == 7212 and rate <= 1/m burst 3\nrule rest: drop if udp.dport == 7212\n\
         rule plain: drop if udp.dport == 7213\n",
    );
    let (ns, iface) = topology.place("xdp");
    pfc_ok(ns, &["load", &rules, "--iface", iface, "--hook", "xdp"]);
    send_udp(&topology.a, 7211, 20);
    send_udp(&topology.a, 7212, 20);
    send_udp(&topology.a, 7213, 4);
    let json = stats_json(ns, iface, "xdp");
    let rows = stats(ns, iface, "xdp");
    // `rate >` matches the packets over its rate; the 5 within went on (to the default).
    assert_eq!(counter(&rows, "flood").0, 15);
    assert_eq!(limit_of(&json, "flood"), Some((15, 5)), "{json}");
    // `rate <=` matches the packets within; the 17 over reached `rest`.
    assert_eq!((counter(&rows, "some").0, counter(&rows, "rest").0), (3, 17));
    assert_eq!(limit_of(&json, "some"), Some((17, 3)), "{json}");
    assert_eq!((limit_of(&json, "rest"), limit_of(&json, "plain")), (None, None), "rules without a limit: {json}");
    assert!(json["default"].get("limit").is_none(), "the default has no limit: {json}");
    let human = pfc_ok(ns, &["stats", "--iface", iface, "--hook", "xdp"]);
    let line = |name: &str| human.lines().find(|line| line.trim_start().starts_with(name)).unwrap_or("").to_string();
    assert!(line("flood").ends_with("rate limit: 15 over, 5 within"), "{human}");
    assert!(line("some").ends_with("rate limit: 17 over, 3 within"), "{human}");
    assert!(!line("rest").contains("rate limit") && !line("plain").contains("rate limit"), "{human}");

    // A replace carries the counters and the buckets (same rules, same keys), not the
    // limit statistics: they count what the new program's limits saw.
    pfc_ok(ns, &["load", &rules, "--iface", iface, "--hook", "xdp"]);
    assert_eq!(limit_of(&stats_json(ns, iface, "xdp"), "flood"), Some((0, 0)));
    send_udp(&topology.a, 7211, 2);
    let json = stats_json(ns, iface, "xdp");
    assert_eq!(counter(&stats(ns, iface, "xdp"), "flood").0, 17, "counters carried: {json}");
    assert_eq!(limit_of(&json, "flood"), Some((2, 0)), "the carried bucket is empty: {json}");
    pfc_ok(ns, &["unload", "--iface", iface, "--hook", "xdp"]);
}
