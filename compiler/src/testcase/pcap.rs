//! Capture files. Input: the bytes of a pcap or pcapng file; output: its Ethernet frames
//! in order (borrowed, not copied), or a [`PcapError`] naming the packet index or byte
//! offset where the file stops making sense.
//!
//! pcap: both byte orders, micro- and nanosecond magic. pcapng: every section, any
//! byte order; Enhanced, Simple and obsolete Packet blocks are frames, other blocks are
//! skipped. Every interface a frame comes from must have link type Ethernet (1).
//!
//! **Invariant:** no byte string makes [`read_capture`] panic; every length is checked
//! against the bytes that remain before it is used, and frames over
//! [`MAX_PACKET_LEN`] are refused before anything is allocated for them.

use thiserror::Error;

use super::MAX_PACKET_LEN;

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Which format a capture was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap,
    /// pcapng.
    Pcapng,
}

/// The frames of a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture<'a> {
    /// The file's format.
    pub format: CaptureFormat,
    /// The captured bytes of each frame, in file order.
    pub packets: Vec<&'a [u8]>,
    /// Each frame's timestamp in nanoseconds since the epoch, as its record says (pcap:
    /// micro- or nanosecond files; pcapng: the interface's `if_tsresol`, microseconds by
    /// default; simple packet blocks have none: 0).
    pub times_ns: Vec<u64>,
    /// The frames captured shorter than they were on the wire (a snap length), if any.
    pub cut: Option<Cut>,
}

/// Frames a capture holds cut short: pfc judges the bytes captured, as a frame of that
/// length, where libpcap's `len` (and the kernel) would see the whole frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// How many frames are cut.
    pub frames: usize,
    /// The first one's index.
    pub first: usize,
    /// Its captured length.
    pub captured: usize,
    /// Its length on the wire.
    pub wire: u64,
}

impl Capture<'_> {
    /// What a note says of the frames captured cut short, if any.
    pub fn cut_note(&self) -> Option<String> {
        let Cut { frames, first, captured, wire } = self.cut?;
        let which = if frames == 1 { "1 frame was".to_string() } else { format!("{frames} frames were") };
        Some(format!(
            "{which} captured cut short (the first: packet {first}, {captured} of {wire} bytes): pfc judges the bytes captured, as a frame of that length (`pkt.len` and a pcap atom's `len` are the captured length; headers past the cut are absent)"
        ))
    }
}

/// Counts frame `index` as cut when `captured` is less than `wire`.
fn note_cut(cut: &mut Option<Cut>, index: usize, captured: usize, wire: u64) {
    if (captured as u64) < wire {
        match cut {
            Some(cut) => cut.frames += 1,
            None => *cut = Some(Cut { frames: 1, first: index, captured, wire }),
        }
    }
}

/// Why a capture cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PcapError {
    /// The file does not start with a pcap or pcapng magic number.
    #[error("not a pcap or pcapng file (it starts with {start})")]
    NotPcap {
        /// The first bytes in hex.
        start: String,
    },
    /// The file header is cut short.
    #[error("the file header is truncated ({len} bytes)")]
    TruncatedHeader {
        /// The file's length.
        len: usize,
    },
    /// A packet record runs past the end of the file.
    #[error("packet {index} is truncated: its record at byte {offset} runs past the end of the file")]
    TruncatedPacket {
        /// The packet's index (0-based).
        index: usize,
        /// Where its record starts.
        offset: usize,
    },
    /// A pcapng block is malformed.
    #[error("pcapng block at byte {offset} is malformed: {problem}")]
    BadBlock {
        /// Where the block starts.
        offset: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// A pcapng option whose value runs past the end of its block (tshark refuses the
    /// file: "Not enough data to handle option of length …"; libpcap too, for the
    /// interface options it reads).
    #[error("pcapng block at byte {offset} is malformed: its option at byte {at} (code {code}) claims {len} bytes, past the end of the block")]
    BadOption {
        /// Where the block starts.
        offset: usize,
        /// Where the option starts.
        at: usize,
        /// The option's code.
        code: u16,
        /// The length it claims.
        len: u16,
    },
    /// A frame is larger than pfc tests.
    #[error("packet {index} has {len} bytes; test packets have at most {max}")]
    PacketTooLarge {
        /// The packet's index.
        index: usize,
        /// Its captured length.
        len: usize,
        /// [`MAX_PACKET_LEN`].
        max: usize,
    },
    /// The link type is not Ethernet.
    #[error("link type {link_type}{} is not Ethernet (1); pfc reads Ethernet captures only{}", link_type_name(*link_type), link_type_hint(*link_type))]
    LinkType {
        /// The link type.
        link_type: u32,
    },
    /// A classic pcap header of another format version than 2.x.
    #[error("pcap format version {major}.{minor} is not 2.x, the only one there is (a corrupt header?)")]
    Version {
        /// The header's major version.
        major: u16,
        /// The header's minor version.
        minor: u16,
    },
    /// A pcapng packet names an interface that was not described.
    #[error("packet {index} names interface {interface}, which the file does not describe")]
    NoInterface {
        /// The packet's index.
        index: usize,
        /// The interface id.
        interface: u32,
    },
}

/// ` (name)` of link types captures often have instead of Ethernet.
fn link_type_name(link_type: u32) -> &'static str {
    match link_type {
        LINKTYPE_LINUX_SLL => " (Linux cooked capture)",
        LINKTYPE_LINUX_SLL2 => " (Linux cooked capture v2)",
        LINKTYPE_RAW | 12 => " (raw IP)",
        0 => " (BSD loopback)",
        _ => "",
    }
}

/// How to get an Ethernet capture instead, when the link type says how it was taken.
fn link_type_hint(link_type: u32) -> &'static str {
    match link_type {
        LINKTYPE_LINUX_SLL | LINKTYPE_LINUX_SLL2 => {
            "; `tcpdump -i any` writes cooked frames: capture on the interface itself (`tcpdump -i eth0 -w FILE`)"
        }
        _ => "",
    }
}

/// `LINKTYPE_LINUX_SLL`: what `tcpdump -i any` writes.
const LINKTYPE_LINUX_SLL: u32 = 113;
/// `LINKTYPE_LINUX_SLL2`: what `tcpdump -i any` writes since libpcap 1.10 on request.
const LINKTYPE_LINUX_SLL2: u32 = 276;
/// `LINKTYPE_RAW`.
const LINKTYPE_RAW: u32 = 101;

/// Reads every frame of a pcap or pcapng file.
pub fn read_capture(bytes: &[u8]) -> Result<Capture<'_>, PcapError> {
    let Some(magic) = bytes.get(..4) else {
        return if bytes.is_empty() {
            Err(PcapError::NotPcap { start: "nothing: the file is empty".to_string() })
        } else {
            Err(PcapError::TruncatedHeader { len: bytes.len() })
        };
    };
    match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => read_pcap(bytes, false, 1_000),
        [0x4d, 0x3c, 0xb2, 0xa1] => read_pcap(bytes, false, 1),
        [0xa1, 0xb2, 0xc3, 0xd4] => read_pcap(bytes, true, 1_000),
        [0xa1, 0xb2, 0x3c, 0x4d] => read_pcap(bytes, true, 1),
        [0x0a, 0x0d, 0x0d, 0x0a] => read_pcapng(bytes),
        _ => {
            let start = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            Err(PcapError::NotPcap { start })
        }
    }
}

fn u32_at(bytes: &[u8], offset: usize, big_endian: bool) -> Option<u32> {
    let word: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian { u32::from_be_bytes(word) } else { u32::from_le_bytes(word) })
}

fn u16_at(bytes: &[u8], offset: usize, big_endian: bool) -> Option<u16> {
    let word: [u8; 2] = bytes.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
    Some(if big_endian { u16::from_be_bytes(word) } else { u16::from_le_bytes(word) })
}

/// `frac_ns`: nanoseconds per unit of the records' sub-second field (1,000 or 1).
fn read_pcap(bytes: &[u8], big_endian: bool, frac_ns: u64) -> Result<Capture<'_>, PcapError> {
    if bytes.len() < 24 {
        return Err(PcapError::TruncatedHeader { len: bytes.len() });
    }
    let (major, minor) = (u16_at(bytes, 4, big_endian).unwrap_or(0), u16_at(bytes, 6, big_endian).unwrap_or(0));
    if major != 2 {
        return Err(PcapError::Version { major, minor });
    }
    let link_type = u32_at(bytes, 20, big_endian).unwrap_or(0) & 0x0fff_ffff;
    if link_type != LINKTYPE_ETHERNET {
        return Err(PcapError::LinkType { link_type });
    }
    let mut packets = Vec::new();
    let mut times_ns = Vec::new();
    let mut cut = None;
    let mut offset = 24;
    while offset < bytes.len() {
        let index = packets.len();
        let truncated = PcapError::TruncatedPacket { index, offset };
        let len = u32_at(bytes, offset + 8, big_endian).ok_or(truncated.clone())? as usize;
        if len > MAX_PACKET_LEN {
            return Err(PcapError::PacketTooLarge { index, len, max: MAX_PACKET_LEN });
        }
        let data = bytes.get(offset + 16..offset + 16 + len).ok_or(truncated)?;
        let wire = u64::from(u32_at(bytes, offset + 12, big_endian).unwrap_or(0));
        note_cut(&mut cut, index, len, wire);
        packets.push(data);
        let seconds = u64::from(u32_at(bytes, offset, big_endian).unwrap_or(0));
        let fraction = u64::from(u32_at(bytes, offset + 4, big_endian).unwrap_or(0));
        times_ns.push(seconds * 1_000_000_000 + fraction * frac_ns);
        offset += 16 + len;
    }
    Ok(Capture { format: CaptureFormat::Pcap, packets, times_ns, cut })
}

const BLOCK_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BLOCK_INTERFACE: u32 = 1;
const BLOCK_PACKET_OBSOLETE: u32 = 2;
const BLOCK_SIMPLE_PACKET: u32 = 3;
const BLOCK_ENHANCED_PACKET: u32 = 6;

fn read_pcapng(bytes: &[u8]) -> Result<Capture<'_>, PcapError> {
    let mut packets = Vec::new();
    let mut big_endian = false;
    let mut interfaces: Vec<u32> = Vec::new();
    let mut resolutions: Vec<u8> = Vec::new();
    let mut times_ns = Vec::new();
    let mut cut = None;
    let mut offset = 0;
    while offset < bytes.len() {
        let bad = |problem| PcapError::BadBlock { offset, problem };
        if bytes.len() - offset < 12 {
            return Err(bad("fewer than 12 bytes left for a block"));
        }
        let block_type = u32_at(bytes, offset, big_endian).ok_or(bad("truncated"))?;
        if block_type == BLOCK_SECTION_HEADER {
            big_endian = match bytes.get(offset + 8..offset + 12) {
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => true,
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => false,
                _ => return Err(bad("bad byte-order magic in the section header")),
            };
            interfaces.clear();
            resolutions.clear();
        }
        let block_len = u32_at(bytes, offset + 4, big_endian).ok_or(bad("truncated"))? as usize;
        if block_len < 12 || block_len % 4 != 0 {
            return Err(bad("its length is not a multiple of 4 of at least 12"));
        }
        let Some(block) = bytes.get(offset..offset + block_len) else {
            return match block_type {
                BLOCK_ENHANCED_PACKET | BLOCK_SIMPLE_PACKET | BLOCK_PACKET_OBSOLETE => {
                    Err(PcapError::TruncatedPacket { index: packets.len(), offset })
                }
                _ => Err(bad("it runs past the end of the file")),
            };
        };
        if u32_at(block, block_len - 4, big_endian) != Some(block_len as u32) {
            return Err(bad("its trailing length differs from its leading one"));
        }
        let body = &block[8..block_len - 4];
        let options = |start: usize| -> Result<(), PcapError> {
            match overrunning_option(body, start, big_endian) {
                Some((at, code, len)) => Err(PcapError::BadOption { offset, at: offset + 8 + at, code, len }),
                None => Ok(()),
            }
        };
        let index = packets.len();
        let frame = |interface: u32, start: usize, len: usize| -> Result<&[u8], PcapError> {
            let link_type = *interfaces.get(interface as usize).ok_or(PcapError::NoInterface { index, interface })?;
            if link_type != LINKTYPE_ETHERNET {
                return Err(PcapError::LinkType { link_type });
            }
            if len > MAX_PACKET_LEN {
                return Err(PcapError::PacketTooLarge { index, len, max: MAX_PACKET_LEN });
            }
            body.get(start..start + len).ok_or(PcapError::BadBlock {
                offset,
                problem: "its packet's captured length runs past the end of the block",
            })
        };
        match block_type {
            BLOCK_SECTION_HEADER => {
                // Version 1.0 is the one written; tshark refuses other majors.
                if u16_at(body, 4, big_endian) != Some(1) {
                    return Err(bad("its section header's version is not 1.x"));
                }
                options(16)?
            }
            BLOCK_INTERFACE => {
                options(8)?;
                let link_type = u16_at(body, 0, big_endian).ok_or(bad("interface block too short"))?;
                interfaces.push(u32::from(link_type));
                resolutions.push(timestamp_resolution(body, big_endian));
            }
            BLOCK_ENHANCED_PACKET => {
                let interface = u32_at(body, 0, big_endian).ok_or(bad("packet block too short"))?;
                let len = u32_at(body, 12, big_endian).ok_or(bad("packet block too short"))? as usize;
                packets.push(frame(interface, 20, len)?);
                note_cut(&mut cut, index, len, u64::from(u32_at(body, 16, big_endian).unwrap_or(0)));
                options(20 + len.div_ceil(4) * 4)?;
                times_ns.push(ticks_ns(body, big_endian, resolutions.get(interface as usize).copied()));
            }
            BLOCK_PACKET_OBSOLETE => {
                let interface = u16_at(body, 0, big_endian).ok_or(bad("packet block too short"))?;
                let len = u32_at(body, 12, big_endian).ok_or(bad("packet block too short"))? as usize;
                packets.push(frame(u32::from(interface), 20, len)?);
                note_cut(&mut cut, index, len, u64::from(u32_at(body, 16, big_endian).unwrap_or(0)));
                options(20 + len.div_ceil(4) * 4)?;
                times_ns.push(ticks_ns(body, big_endian, resolutions.get(usize::from(interface)).copied()));
            }
            BLOCK_SIMPLE_PACKET => {
                let original = u32_at(body, 0, big_endian).ok_or(bad("packet block too short"))? as usize;
                let captured = original.min(body.len().saturating_sub(4));
                packets.push(frame(0, 4, captured)?);
                note_cut(&mut cut, index, captured, original as u64);
                times_ns.push(0);
            }
            _ => {}
        }
        offset += block_len;
    }
    Ok(Capture { format: CaptureFormat::Pcapng, packets, times_ns, cut })
}

/// The first option from byte `start` of a block's body whose value (padded to 4 bytes)
/// runs past the body: where it starts in the body, its code and claimed length. The
/// options end at `opt_endofopt` (code 0) or where fewer than 4 bytes are left (tshark
/// and libpcap accept such a tail).
fn overrunning_option(body: &[u8], start: usize, big_endian: bool) -> Option<(usize, u16, u16)> {
    let mut at = start;
    while let (Some(code), Some(len)) = (u16_at(body, at, big_endian), u16_at(body, at + 2, big_endian)) {
        if code == 0 {
            return None;
        }
        let end = at + 4 + usize::from(len).div_ceil(4) * 4;
        if end > body.len() {
            return Some((at, code, len));
        }
        at = end;
    }
    None
}

/// An interface block's `if_tsresol` option (code 9), or 6 (microseconds).
fn timestamp_resolution(body: &[u8], big_endian: bool) -> u8 {
    let mut at = 8;
    while let (Some(code), Some(len)) = (u16_at(body, at, big_endian), u16_at(body, at + 2, big_endian)) {
        match code {
            0 => break,
            9 if len >= 1 => return body.get(at + 4).copied().unwrap_or(6),
            _ => at += 4 + usize::from(len).div_ceil(4) * 4,
        }
    }
    6
}

/// A packet block's 64-bit timestamp (high word at +4, low at +8) in nanoseconds.
fn ticks_ns(body: &[u8], big_endian: bool, resolution: Option<u8>) -> u64 {
    let high = u64::from(u32_at(body, 4, big_endian).unwrap_or(0));
    let low = u64::from(u32_at(body, 8, big_endian).unwrap_or(0));
    let ticks = u128::from(high << 32 | low);
    let resolution = resolution.unwrap_or(6);
    let ns = if resolution & 0x80 == 0 {
        let exponent = u32::from(resolution);
        if exponent <= 9 {
            ticks * 10u128.pow(9 - exponent)
        } else {
            ticks / 10u128.checked_pow(exponent - 9).unwrap_or(u128::MAX)
        }
    } else {
        let shift = u32::from(resolution & 0x7f).min(127);
        (ticks * 1_000_000_000) >> shift
    };
    u64::try_from(ns).unwrap_or(u64::MAX)
}
