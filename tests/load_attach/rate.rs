//! A rate limit under real traffic (part of `tests/load_attach.rs`, issue 14): a bounded
//! sender streams UDP through a veth pair at about four times a `rate <= 50/s burst 20`
//! limit for three seconds; the packets the limit accepts match the token bucket's
//! arithmetic within ±10 %. The expected count comes from the sender's own clock (the
//! time from its first to its last packet), not from a wall-clock limit on the test, so a
//! slow or loaded machine changes the expectation, not the verdict.

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
