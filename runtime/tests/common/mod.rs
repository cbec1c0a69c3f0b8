//! Shared test data: the fixture objects and a corpus of hand-built packets.
#![allow(dead_code)]

/// XDP: drop TCP to port 22 (the hand-written reference).
pub const TCP_DPORT_22: &[u8] = include_bytes!("../fixtures/tcp_dport_22.o");
/// XDP: per-CPU packet/byte counters per class; drops long non-IP frames.
pub const XDP_COUNT: &[u8] = include_bytes!("../fixtures/xdp_count.o");
/// TC: shoots IPv4 TCP/22; counts verdicts, records skb->len and skb->protocol.
pub const TC_COUNT: &[u8] = include_bytes!("../fixtures/tc_count.o");
/// XDP: `return XDP_PASS`.
pub const XDP_PASS: &[u8] = include_bytes!("../fixtures/xdp_pass.o");

/// Every fixture with its name.
pub const FIXTURES: &[(&str, &[u8])] =
    &[("tcp_dport_22", TCP_DPORT_22), ("xdp_count", XDP_COUNT), ("tc_count", TC_COUNT), ("xdp_pass", XDP_PASS)];

const MAC_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const MAC_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// An Ethernet frame with optional VLAN tags around `payload`.
pub fn ethernet(vlans: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&MAC_DST);
    p.extend_from_slice(&MAC_SRC);
    for &vid in vlans {
        p.extend_from_slice(&0x8100u16.to_be_bytes());
        p.extend_from_slice(&vid.to_be_bytes());
    }
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A TCP header (20 bytes) from `sport` to `dport`, SYN set.
pub fn tcp(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t
}

/// A UDP header with `len` payload bytes.
pub fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8 + payload];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    u
}

/// An IPv4 packet with `options` words of options and a fragment offset.
pub fn ipv4(proto: u8, options: usize, frag_offset: u16, l4: &[u8]) -> Vec<u8> {
    let ihl = 5 + options;
    let mut ip = vec![0u8; ihl * 4];
    ip[0] = 0x40 | ihl as u8;
    ip[2..4].copy_from_slice(&((ihl * 4 + l4.len()) as u16).to_be_bytes());
    ip[6..8].copy_from_slice(&frag_offset.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    ip.extend_from_slice(l4);
    ip
}

/// An IPv6 packet, optionally with a hop-by-hop header before `l4`.
pub fn ipv6(next: u8, hop_by_hop: bool, l4: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 40];
    ip[0] = 0x60;
    let mut rest = Vec::new();
    if hop_by_hop {
        rest.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
        ip[6] = 0;
    } else {
        ip[6] = next;
    }
    rest.extend_from_slice(l4);
    ip[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
    ip[7] = 64;
    ip[8] = 0x20;
    ip[24] = 0x20;
    ip.extend_from_slice(&rest);
    ip
}

/// A corpus covering the fixtures' branches, plus every truncation of a few of them.
pub fn corpus() -> Vec<Vec<u8>> {
    let mut packets = vec![
        ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22))),
        ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 80))),
        ethernet(&[], 0x0800, &ipv4(6, 2, 0, &tcp(1234, 22))),
        ethernet(&[], 0x0800, &ipv4(6, 0, 0x2001, &tcp(1234, 22))),
        ethernet(&[], 0x0800, &ipv4(6, 0, 0x4000, &tcp(1234, 22))),
        ethernet(&[], 0x0800, &ipv4(17, 0, 0, &udp(1234, 22, 10))),
        ethernet(&[], 0x86dd, &ipv6(6, false, &tcp(1, 22))),
        ethernet(&[], 0x86dd, &ipv6(6, true, &tcp(1, 22))),
        ethernet(&[], 0x86dd, &ipv6(17, false, &udp(1, 22, 4))),
        ethernet(&[7], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22))),
        ethernet(&[7, 8], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22))),
        ethernet(&[], 0x0806, &[0u8; 28]),
        ethernet(&[], 0x0806, &[0u8; 200]),
        ethernet(&[], 0x0800, &ipv4(17, 0, 0, &udp(53, 53, 1400))),
    ];
    let mut broadcast = ethernet(&[], 0x0806, &[0u8; 28]);
    broadcast[..6].fill(0xff);
    packets.push(broadcast);
    let whole = packets.clone();
    for p in whole.iter().take(11) {
        for len in 0..p.len() {
            packets.push(p[..len].to_vec());
        }
    }
    packets
}

/// A value's little-endian u64 words.
pub fn words(value: &[u8]) -> Vec<u64> {
    value.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]))).collect()
}
