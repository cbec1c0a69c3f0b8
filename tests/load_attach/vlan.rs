//! VLAN-tagged traffic on real interfaces (part of `tests/load_attach.rs`): tagged
//! frames (802.1Q id 5 PCP 3, and 802.1ad id 7 around it) written to `veth_a` through
//! an `AF_PACKET` socket (this kernel has no 8021q module for VLAN devices), untagged UDP
//! beside them. At tc ingress the kernel takes the outermost tag out of the frame into
//! the skb before the filter runs; pfc reads it back, so under every hook the rules see
//! the frame as on the wire (docs/language.md §2): `vlan.id`, `vlan.pcp`, the headers
//! after the tags and `pkt.len` with their bytes, as `pfc stats` counts show. (No socket
//! takes a tagged frame in `b`, which has no VLAN device: the untagged datagrams prove
//! the verdicts are applied, the counters that the tagged frames are read right.)

use super::*;

use pfc_compiler::packet::{Eth, Packet, Vlan};

const VLAN_ID: u16 = 5;
const OUTER_ID: u16 = 7;
const PCP: u8 = 3;
/// A tagged datagram's frame: the untagged one and the tag's 4 bytes.
const TAGGED_FRAME_BYTES: u64 = FRAME_BYTES + 4;
const SENT: u64 = 20;

fn vlan_rules(hook: &str) -> String {
    let hook = hook.replace('-', " ");
    format!(
        "hook {hook}\ndefault pass\n\
         rule tagged_pass: pass if vlan.id == {VLAN_ID} and vlan.pcp == {PCP} and udp.dport == 7101 and pkt.len == {TAGGED_FRAME_BYTES}\n\
         rule tagged_drop: drop if vlan.id == {VLAN_ID} and ipv4.dst == {RECEIVER_IP} and udp.dport == 7102\n\
         rule qinq_pass: pass if vlan.id == {OUTER_ID} and vlan.pcp == 0 and udp.dport == 7101 and pkt.len == {}\n\
         rule untagged_pass: pass if not vlan and udp.dport == 7101 and pkt.len == {FRAME_BYTES}\n\
         rule stray_drop: drop if udp.dport in {{ 7101, 7102 }}\n",
        TAGGED_FRAME_BYTES + 4
    )
}

/// The MAC address of `dev` in `ns`.
fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let json: Value =
        serde_json::from_str(&run_ok("ip", &["-n", ns, "-j", "link", "show", "dev", dev])).expect("ip json");
    pfc_compiler::packet::mac(json[0]["address"].as_str().expect("MAC"))
}

/// A UDP datagram of [`PAYLOAD`] bytes from the sender to the receiver's `port` under
/// `tags` (outermost first), Ethernet addressed from `src` to `dst`.
fn tagged_frame((src, dst): ([u8; 6], [u8; 6]), tags: &[Vlan], port: u16) -> Vec<u8> {
    let mut packet = Packet::new().push(Eth { src, dst, ethertype: None });
    for tag in tags {
        packet = packet.push(tag.clone());
    }
    packet.ipv4(SENDER_IP, RECEIVER_IP).udp(40000, port).payload(vec![0x55; PAYLOAD]).build()
}

/// Writes each frame `count` times to `dev` in `ns` through an `AF_PACKET` socket (a
/// frame the filter drops at tc egress fails with ENOBUFS, and counts as written).
fn send_frames(ns: &str, dev: &str, frames: Vec<Vec<u8>>, count: u64) {
    let dev = std::ffi::CString::new(dev).expect("device name");
    in_ns(ns, move || {
        // SAFETY: plain socket calls on a socket this closure owns and closes.
        unsafe {
            let index = libc::if_nametoindex(dev.as_ptr());
            assert!(index > 0, "if_nametoindex: {}", std::io::Error::last_os_error());
            let socket = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(socket >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let mut address: libc::sockaddr_ll = std::mem::zeroed();
            address.sll_family = libc::AF_PACKET as u16;
            address.sll_ifindex = index as i32;
            address.sll_halen = 6;
            for _ in 0..count {
                for frame in &frames {
                    let sent = libc::sendto(
                        socket,
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        std::ptr::addr_of!(address).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                    // A drop at tc egress comes back to the sender as ENOBUFS.
                    let error = std::io::Error::last_os_error();
                    let dropped = sent < 0 && error.raw_os_error() == Some(libc::ENOBUFS);
                    assert!(dropped || sent == frame.len() as isize, "sendto: {error}");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            libc::close(socket);
        }
    })
    .join()
    .expect("sender thread");
}

/// Loads `rules` at `hook`, sends [`SENT`] of each tagged frame (802.1Q id 5 to ports
/// 7101 and 7102, and 802.1ad id 7 around it to 7101) and of the untagged datagram to
/// 7101, and gives the untagged datagrams received and the rules' counters.
fn tagged_traffic(hook: &str, tag: &str, rules: &str) -> (u64, Vec<(String, u64, u64)>) {
    let mut topology = Topology::new(tag);
    let (a, b) = (topology.a.clone(), topology.b.clone());
    let macs = (mac_of(&a, &topology.veth_a), mac_of(&b, &topology.veth_b));
    let inner = Vlan { id: VLAN_ID, pcp: PCP, ..Vlan::default() };
    let outer = Vlan { id: OUTER_ID, tpid: 0x88a8, ..Vlan::default() };
    let frames = vec![
        tagged_frame(macs, std::slice::from_ref(&inner), 7101),
        tagged_frame(macs, std::slice::from_ref(&inner), 7102),
        tagged_frame(macs, &[outer, inner], 7101),
    ];
    let rules = topology.rules("vlan", rules);
    let (ns, iface) = topology.place(hook);
    let (ns, iface) = (ns.to_string(), iface.to_string());
    pfc_ok(&ns, &["load", rules.as_str(), "--iface", &iface, "--hook", hook]);

    let stop = Arc::new(AtomicBool::new(false));
    let untagged = udp_receiver(&b, 7101, stop.clone());
    send_frames(&a, &topology.veth_a, frames, SENT);
    send_udp(&a, 7101, SENT);
    stop.store(true, Ordering::SeqCst);
    let received = untagged.join().expect("receiver");

    let rows = stats(&ns, &iface, hook);
    pfc_ok(&ns, &["unload", "--iface", &iface, "--hook", hook]);
    (received, rows)
}

fn check_vlan_traffic(hook: &str, tag: &str) {
    let (received, rows) = tagged_traffic(hook, tag, &vlan_rules(hook));
    println!("{hook} vlan: untagged 7101 received {received}/{SENT}; stats {rows:?}");
    assert_eq!(received, SENT, "{hook}: untagged 7101 passes");
    assert_eq!(
        counter(&rows, "tagged_pass"),
        (SENT, SENT * TAGGED_FRAME_BYTES),
        "{hook}: vlan.id, vlan.pcp, udp.dport and pkt.len of the tagged frames as on the wire"
    );
    assert_eq!(counter(&rows, "tagged_drop"), (SENT, SENT * TAGGED_FRAME_BYTES), "{hook}: ipv4.dst after the tag");
    assert_eq!(counter(&rows, "qinq_pass"), (SENT, SENT * (TAGGED_FRAME_BYTES + 4)), "{hook}: the outer of two tags");
    assert_eq!(counter(&rows, "untagged_pass"), (SENT, SENT * FRAME_BYTES), "{hook}: untagged frames have no vlan");
    assert_eq!(counter(&rows, "stray_drop"), (0, 0), "{hook}: no datagram escapes the rules above");
}

/// A `pcap` atom reads the frame's bytes only (language.md §4.1, W0008): where the kernel
/// took the outer tag out (tc ingress), `vlan 5` misses the singly tagged frames and
/// finds the QinQ frames' inner tag, and `vlan 7` finds nothing; on the wire's bytes
/// (xdp on a veth) each finds its own frames.
fn check_pcap_vlan(hook: &str, tag: &str) {
    let rules = format!(
        "hook {}\ndefault pass\n\
         rule pcap_vlan5: pass if pcap \"vlan {VLAN_ID}\"\n\
         rule pcap_vlan7: pass if pcap \"vlan {OUTER_ID}\"\n\
         rule others: pass if udp.dport in {{ 7101, 7102 }}\n",
        hook.replace('-', " ")
    );
    let (received, rows) = tagged_traffic(hook, tag, &rules);
    println!("{hook} pcap vlan: untagged 7101 received {received}/{SENT}; stats {rows:?}");
    assert_eq!(received, SENT, "{hook}: untagged 7101 passes");
    let (single, qinq) = (TAGGED_FRAME_BYTES, TAGGED_FRAME_BYTES + 4);
    let (vlan5, vlan7, others) = if hook == "tc-ingress" {
        ((SENT, SENT * qinq), (0, 0), (3 * SENT, SENT * (2 * single + FRAME_BYTES)))
    } else {
        ((2 * SENT, 2 * SENT * single), (SENT, SENT * qinq), (SENT, SENT * FRAME_BYTES))
    };
    assert_eq!(counter(&rows, "pcap_vlan5"), vlan5, "{hook}: pcap \"vlan {VLAN_ID}\"");
    assert_eq!(counter(&rows, "pcap_vlan7"), vlan7, "{hook}: pcap \"vlan {OUTER_ID}\"");
    assert_eq!(counter(&rows, "others"), others, "{hook}: the rest");
}

#[test]
fn tc_ingress_reads_the_tag_the_kernel_took_out_of_the_frame() {
    skip_unless!(no_kernel());
    check_vlan_traffic("tc-ingress", "vi");
}

#[test]
fn tc_egress_reads_tagged_frames_as_on_the_wire() {
    skip_unless!(no_kernel());
    check_vlan_traffic("tc-egress", "ve");
}

#[test]
fn xdp_reads_tagged_frames_as_on_the_wire() {
    skip_unless!(no_kernel());
    check_vlan_traffic("xdp", "vx");
}

#[test]
fn tc_ingress_pcap_vlan_reads_the_bytes_without_the_outer_tag() {
    skip_unless!(no_kernel());
    check_pcap_vlan("tc-ingress", "pi");
}

#[test]
fn xdp_pcap_vlan_reads_the_tags_in_the_frame() {
    skip_unless!(no_kernel());
    check_pcap_vlan("xdp", "px");
}
