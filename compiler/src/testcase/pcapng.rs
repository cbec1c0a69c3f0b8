//! Writing pcapng (the format Wireshark and tshark read natively): a section header, an
//! interface description per interface, and an enhanced packet block per frame, with a
//! comment, in; the blocks' bytes out (little-endian). `pfc watch --pcapng` writes one
//! block at a time, so a file cut after any block is still a valid capture.
//!
//! Layout (pcapng, draft-ietf-opsawg-pcapng): every block is `type u32, total length u32,
//! body, total length u32`, its length a multiple of 4; options are `code u16, length
//! u16, value` padded to 4 and end with `opt_endofopt` (code 0, length 0).
//!
//! - Section Header Block (`0x0A0D0D0A`): byte-order magic `0x1A2B3C4D`, version 1.0,
//!   section length -1 (unknown), option `shb_userappl` (4).
//! - Interface Description Block (1): link type u16, reserved u16, snaplen u32, options
//!   `if_name` (2) and `if_tsresol` (9) = 9, nanosecond timestamps.
//! - Enhanced Packet Block (6): interface id, timestamp high and low u32 (nanoseconds
//!   since the epoch), captured length, original length, the bytes padded to 4, option
//!   `opt_comment` (1).

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u16 = 1;

const BLOCK_SECTION_HEADER: u32 = 0x0A0D_0D0A;
const BLOCK_INTERFACE: u32 = 1;
const BLOCK_ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const OPT_IF_NAME: u16 = 2;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_TSRESOL: u16 = 9;
/// `if_tsresol` 9: timestamps count 10^-9 s.
const NANOSECONDS: u8 = 9;

/// The most bytes of an option value: its length is a u16.
const MAX_OPTION: usize = u16::MAX as usize;

/// Appends one option, its value cut at [`MAX_OPTION`] bytes and padded to 4.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(MAX_OPTION)];
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// A whole block: type, length, `body` (a multiple of 4 long), length.
fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// The Section Header Block that starts a file; `application` names the writer.
pub fn section_header(application: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    option(&mut body, OPT_SHB_USERAPPL, application.as_bytes());
    option(&mut body, OPT_END, &[]);
    block(BLOCK_SECTION_HEADER, &body)
}

/// An Interface Description Block: Ethernet frames of at most `snap_len` captured bytes
/// (0: no limit) from interface `name`, nanosecond timestamps. Interfaces are numbered
/// from 0 in the order their blocks appear.
pub fn interface(name: &str, snap_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snap_len.to_le_bytes());
    option(&mut body, OPT_IF_NAME, name.as_bytes());
    option(&mut body, OPT_IF_TSRESOL, &[NANOSECONDS]);
    option(&mut body, OPT_END, &[]);
    block(BLOCK_INTERFACE, &body)
}

/// One frame as an Enhanced Packet Block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The interface's number (the order of its description block).
    pub interface: u32,
    /// Nanoseconds since the epoch.
    pub time_ns: u64,
    /// The frame's length on the wire.
    pub original_len: u32,
    /// The bytes kept (at most `original_len`).
    pub bytes: &'a [u8],
    /// The packet's comment (`frame.comment` in tshark); empty for none.
    pub comment: &'a str,
}

/// An Enhanced Packet Block for `frame`.
pub fn enhanced_packet(frame: &Frame<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + frame.bytes.len() + frame.comment.len());
    body.extend_from_slice(&frame.interface.to_le_bytes());
    body.extend_from_slice(&((frame.time_ns >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(frame.time_ns as u32).to_le_bytes());
    body.extend_from_slice(&(frame.bytes.len() as u32).to_le_bytes());
    body.extend_from_slice(&frame.original_len.max(frame.bytes.len() as u32).to_le_bytes());
    body.extend_from_slice(frame.bytes);
    pad(&mut body);
    if !frame.comment.is_empty() {
        option(&mut body, OPT_COMMENT, frame.comment.as_bytes());
        option(&mut body, OPT_END, &[]);
    }
    block(BLOCK_ENHANCED_PACKET, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcase::pcap::{read_capture, CaptureFormat};

    /// Hex of `bytes` in 4-byte words, for readable layout assertions.
    fn words(bytes: &[u8]) -> Vec<String> {
        bytes.chunks(4).map(crate::testcase::summary::hex).collect()
    }

    #[test]
    fn section_header_layout() {
        let shb = section_header("pfc");
        assert_eq!(
            words(&shb),
            [
                "0a0d0d0a", "28000000", // type, length 40
                "4d3c2b1a", "01000000", // byte-order magic, version 1.0
                "ffffffff", "ffffffff", // section length -1
                "04000300", "70666300", // shb_userappl, 3 bytes "pfc" + 1 pad
                "00000000", // opt_endofopt
                "28000000"  // length again
            ]
        );
    }

    #[test]
    fn interface_layout() {
        let idb = interface("eth0", 64);
        assert_eq!(
            words(&idb),
            [
                "01000000", "28000000", // type 1, length 40
                "01000000", "40000000", // link type 1 (Ethernet), reserved, snaplen 64
                "02000400", "65746830", // if_name "eth0"
                "09000100", "09000000", // if_tsresol 9 + 3 pad
                "00000000", // opt_endofopt
                "28000000"
            ]
        );
    }

    #[test]
    fn enhanced_packet_layout() {
        let frame = Frame {
            interface: 0,
            time_ns: 0x1_0000_0002,
            original_len: 98,
            bytes: &[0xaa, 0xbb, 0xcc, 0xdd, 0xee],
            comment: "rule ssh: drop",
        };
        let epb = enhanced_packet(&frame);
        assert_eq!(
            words(&epb),
            [
                "06000000", "40000000", // type 6, length 64
                "00000000", // interface 0
                "01000000", "02000000", // time high 1, low 2
                "05000000", "62000000", // captured 5, original 98
                "aabbccdd", "ee000000", // bytes padded to 4
                "01000e00", "72756c65", "20737368", "3a206472", "6f700000", // opt_comment, 14 bytes
                "00000000", // opt_endofopt
                "40000000"
            ]
        );
        // Without a comment, no options at all.
        assert_eq!(enhanced_packet(&Frame { comment: "", ..frame }).len(), 12 + 20 + 8);
    }

    /// pfc's own pcapng reader takes the file back: frames and nanosecond times.
    #[test]
    fn the_reader_reads_what_the_writer_wrote() {
        let frames: [&[u8]; 2] = [&[1; 60], &[2; 61]];
        let mut file = section_header("pfc test");
        file.extend(interface("veth0", 64));
        for (index, bytes) in frames.iter().enumerate() {
            let time_ns = 1_795_737_600_123_456_789 + index as u64;
            let comment = format!("rule r{index}: drop");
            file.extend(enhanced_packet(&Frame {
                interface: 0,
                time_ns,
                original_len: 1500,
                bytes,
                comment: &comment,
            }));
        }
        let capture = read_capture(&file).expect("a valid pcapng");
        assert_eq!(capture.format, CaptureFormat::Pcapng);
        assert_eq!(capture.packets, frames);
        assert_eq!(capture.times_ns, [1_795_737_600_123_456_789, 1_795_737_600_123_456_790]);
    }
}
