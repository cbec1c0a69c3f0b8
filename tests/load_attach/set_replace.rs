//! `pfc set replace` under traffic (part of `tests/load_attach.rs`): a sender streams
//! about 10,000 UDP datagrams a second, alternately from two sources, while the set is
//! replaced back and forth between two disjoint lists of 20,000 prefixes: the old list
//! holds the first source, the new list the second. Every datagram carries its sequence
//! number, so its fate says which list judged it (old list: a datagram from the first
//! source is dropped, one from the second delivered; new list: the reverse). A set seen
//! half-built would judge by neither list (both delivered) or by both (both dropped), and
//! the judged list would then change more often than the set was replaced: the test
//! counts the changes along the stream and wants exactly one per replace. pfc's own
//! counters account for every datagram not delivered (dropped by the rule, not lost),
//! so the inference from each fate is sound.

use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;

use super::*;

/// The source only the old list holds.
const OLD_SOURCE: &str = "10.77.0.11";
/// The source only the new list holds.
const NEW_SOURCE: &str = "10.77.0.12";
const PORT: u16 = 7005;
/// Prefixes of each list besides its source.
const PREFIXES: usize = 20_000;
/// Replaces while the stream runs: old → new → old …
const REPLACES: usize = 6;
/// Datagrams the receiver must see between two replaces, so each list judges some.
const BETWEEN: usize = 300;

/// A deterministic generator (xorshift64*).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A set file: `source/32` and [`PREFIXES`] prefixes /16–/32 from `seed`, none in
/// 10.0.0.0/8 (so none holds either source) and none in `avoid`.
fn set_file(seed: u64, source: &str, avoid: &HashSet<String>) -> (String, HashSet<String>) {
    let mut state = seed;
    let mut lines = HashSet::from([format!("{source}/32")]);
    while lines.len() <= PREFIXES {
        let bits = next(&mut state);
        let length = 16 + (bits % 17) as u32;
        let address = ((bits >> 32) as u32) & (u32::MAX << (32 - length));
        if address >> 24 == 10 {
            continue;
        }
        let line = format!("{}/{length}", std::net::Ipv4Addr::from(address));
        if !avoid.contains(&line) {
            lines.insert(line);
        }
    }
    let mut text: Vec<&String> = lines.iter().collect();
    text.sort();
    (text.iter().map(|line| format!("{line}\n")).collect(), lines)
}

/// Receives datagrams on [`PORT`] in `ns` (a large buffer: none may be lost to a slow
/// reader), counting them in `seen`, until `stop` and a quiet 200 ms; their numbers.
fn receiver(ns: &str, seen: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u64>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = in_ns(ns, move || {
        let socket = UdpSocket::bind((RECEIVER_IP, PORT)).expect("receiver binds");
        let size: libc::c_int = 64 << 20;
        // SAFETY: setsockopt reads one c_int from `size`; root may exceed rmem_max.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        ready_tx.send(()).expect("ready");
        let mut numbers = Vec::new();
        let mut buffer = [0u8; 2048];
        loop {
            match socket.recv(&mut buffer) {
                Ok(len) if len >= 8 => {
                    numbers.push(u64::from_le_bytes(buffer[..8].try_into().expect("8 bytes")));
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stop.load(Ordering::SeqCst) {
                        return numbers;
                    }
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    });
    ready_rx.recv().expect("receiver ready");
    handle
}

/// Sends numbered datagrams from `ns`, even numbers from [`OLD_SOURCE`] and odd ones
/// from [`NEW_SOURCE`], 10 a millisecond at most, until `stop`; how many.
fn sender(ns: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    in_ns(ns, move || {
        let sockets = [OLD_SOURCE, NEW_SOURCE].map(|source| UdpSocket::bind((source, 0)).expect("sender binds"));
        let mut number = 0u64;
        while !stop.load(Ordering::SeqCst) {
            for _ in 0..10 {
                let mut payload = [0x55; PAYLOAD];
                payload[..8].copy_from_slice(&number.to_le_bytes());
                sockets[(number % 2) as usize].send_to(&payload, (RECEIVER_IP, PORT)).expect("send");
                number += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        number
    })
}

/// Waits until the receiver has seen `count` datagrams.
fn wait_for(seen: &AtomicUsize, count: usize) {
    while seen.load(Ordering::SeqCst) < count {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Which list judged each datagram, from its source and fate: `true` for the new list.
fn judged_by_new(sent: u64, delivered: &HashSet<u64>) -> Vec<bool> {
    (0..sent)
        .map(|number| {
            let from_old_source = number % 2 == 0;
            // The old list drops the old source; the new list drops the new source.
            from_old_source == delivered.contains(&number)
        })
        .collect()
}

#[test]
fn replace_under_traffic_judges_every_packet_by_the_old_or_the_new_list() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sr");
    for source in [OLD_SOURCE, NEW_SOURCE] {
        run_ok("ip", &["-n", &topology.a, "addr", "add", &format!("{source}/24"), "dev", &topology.veth_a]);
    }
    let (old_text, old_lines) = set_file(0x9e37_79b9_7f4a_7c15, OLD_SOURCE, &HashSet::new());
    let (new_text, new_lines) = set_file(0x51ed_270b_27d4_b3a9, NEW_SOURCE, &old_lines);
    assert!(old_lines.is_disjoint(&new_lines), "the lists are disjoint");
    let old_file = topology.rules("old-list", &old_text);
    let new_file = topology.rules("new-list", &new_text);
    let rules = topology.rules(
        "replace-traffic",
        &format!(
            "hook xdp\ndefault pass\nset banned: ip dynamic size {} = file \"{old_file}\"\n\
             rule ban: drop if ip.src in banned\n",
            PREFIXES + 1
        ),
    );
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &rules, "--iface", &vb]);

    let (seen, stop_receiver, stop_sender) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let receiving = receiver(&b, seen.clone(), stop_receiver.clone());
    let sending = sender(&topology.a, stop_sender.clone());
    wait_for(&seen, BETWEEN);
    for round in 0..REPLACES {
        let file = if round % 2 == 0 { &new_file } else { &old_file };
        pfc_ok(&b, &["set", "replace", "--iface", &vb, "banned", "--file", file]);
        wait_for(&seen, seen.load(Ordering::SeqCst) + BETWEEN);
    }
    stop_sender.store(true, Ordering::SeqCst);
    let sent = sending.join().expect("sender");
    stop_receiver.store(true, Ordering::SeqCst);
    let delivered: HashSet<u64> = receiving.join().expect("receiver").into_iter().collect();

    // Every datagram not delivered was dropped by the rule (pfc's counter), none lost.
    let dropped = counter(&stats(&b, &vb, "xdp"), "ban").0;
    assert_eq!(dropped + delivered.len() as u64, sent, "sent {sent}: each one delivered or dropped by `ban`");

    let judged = judged_by_new(sent, &delivered);
    let changes = judged.windows(2).filter(|pair| pair[0] != pair[1]).count();
    let delivered_from = |parity: u64| delivered.iter().filter(|number| *number % 2 == parity).count();
    let by_new = judged.iter().filter(|new| **new).count();
    println!(
        "set replace under traffic: {sent} datagrams, {} from {OLD_SOURCE} delivered, {} from {NEW_SOURCE} delivered; \
         judged by the old list {}, by the new list {by_new}; {changes} changes of list over {REPLACES} replaces",
        delivered_from(0),
        delivered_from(1),
        judged.len() - by_new,
    );
    assert!(!judged[0], "the stream starts under the old list");
    assert_eq!(changes, REPLACES, "one change of list per replace: no datagram judged by a half-built set");
    assert_eq!(judged[judged.len() - 1], REPLACES % 2 == 1, "the stream ends under the last list written");
    let listed = pfc_ok(&b, &["set", "list", "--iface", &vb, "banned"]);
    let expected = if REPLACES % 2 == 1 { &new_lines } else { &old_lines };
    // `pfc set list` writes a /32 as the bare address.
    let expected: HashSet<String> = expected.iter().map(|line| line.trim_end_matches("/32").to_string()).collect();
    assert_eq!(listed.lines().map(str::to_string).collect::<HashSet<_>>(), expected, "the set holds the last list");
    pfc_ok(&b, &["unload", "--iface", &vb]);
}
