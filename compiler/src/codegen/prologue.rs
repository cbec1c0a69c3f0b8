//! The parse prologue: the filter's needs in, instructions that locate every header
//! once and store each needed field value on the stack out.
//!
//! It follows the interpreter's parsing rules (`crate::eval`) step for step. Packet
//! bytes are read only here, each read right after a bounds check against `data_end`
//! that covers it. On exit the *absent* mask (one bit per [`Source`], built in r9) is
//! in a 4-byte stack slot that the kernel verifier does not track, so every parse path
//! hands the rule body the same verifier state.
//!
//! Registers: r7 = data, r8 = data_end, r6 = header cursor, r3 = next protocol
//! (ethertype or IP protocol, as loaded), r1/r2 scratch, r5 = an unknown scalar used to
//! initialize value slots.

use super::layout::{absent_is_out_of_range, Layout, MASK_SLOT, PCAP_WORD_EMPTY};
use super::Needs;
use crate::bpf::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::{Field, FieldSource, Proto, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};
use crate::ir::Source;
use crate::program::pcap::PcapFilter;
use crate::program::Hook;

use Reg::{R1, R10, R2, R3, R5, R6, R7, R8, R9};

/// Ethertypes and TPIDs as a little-endian `u16` load of the big-endian bytes sees them.
const RAW_IPV4: i32 = 0x0008;
const RAW_IPV6: i32 = 0xdd86;
const RAW_ARP: i32 = 0x0608;
const RAW_8021Q: i32 = 0x0081;
const RAW_8021AD: i32 = 0xa888;
/// IPv4 fragment offset bits (`0x1fff`) and IPv6 fragment offset bits (`0xfff8`), raw.
const RAW_IPV4_FRAG_OFFSET: i32 = 0xff1f;
const RAW_IPV6_FRAG_OFFSET: i32 = 0xf8ff;
const IPV6_EXT_HEADERS: usize = MAX_IPV6_EXT_HEADERS as usize;

struct Prologue<'a> {
    b: &'a mut ProgramBuilder,
    layout: &'a Layout,
    needs: &'a Needs,
    parsed: Label,
}

/// Emits the prologue; falls through to the rule body.
pub fn emit(b: &mut ProgramBuilder, hook: Hook, layout: &Layout, needs: &Needs, pcaps: &[PcapFilter]) {
    let parsed = b.new_label();
    let mut p = Prologue { b, layout, needs, parsed };
    p.context(hook);
    if !pcaps.is_empty() {
        // The atoms keep the context in r9; the absent mask starts over after them.
        p.b.emit(Insn::mov64(R9, R1));
        let context = super::pcap::Context { reg: R9, data: hook.context().data };
        // An atom with the same verdict on every frame emits no code: a true one's bit
        // is in its word from the start.
        let constant: Vec<Option<bool>> = pcaps.iter().map(super::pcap::constant).collect();
        for &slot in layout.pcap_words() {
            let always = layout
                .pcap_bits()
                .filter(|(index, bit)| bit.slot == slot && constant[*index as usize] == Some(true))
                .fold(0, |word, (_, bit)| word | bit.mask);
            p.b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: slot, imm: PCAP_WORD_EMPTY | always as i32 });
        }
        for (index, bit) in layout.pcap_bits() {
            if let Some(verdict) = constant[index as usize] {
                p.b.comment(format!("pcap atom p{index}: {verdict} on every frame, no code (bit {:#x})", bit.mask));
                continue;
            }
            p.b.comment(format!("pcap atom p{index}: libpcap's verdict to bit {:#x} of its word", bit.mask));
            // The word's value once this atom accepts, when no other atom of it has code.
            let mut others = layout.pcap_bits().filter(|(other, b)| *other != index && b.slot == bit.slot);
            let alone = others.all(|(other, _)| constant[other as usize].is_some()).then(|| {
                layout
                    .pcap_bits()
                    .filter(|(other, b)| b.slot == bit.slot && constant[*other as usize] == Some(true))
                    .fold(PCAP_WORD_EMPTY | bit.mask as i32, |word, (_, b)| word | b.mask as i32)
            });
            super::pcap::emit(p.b, &pcaps[index as usize], bit, context, alone);
        }
        p.b.emit(Insn::alu32(AluOp::Mov, R9, Operand::imm_u32(all_absent())));
    }
    p.ethernet();
    p.b.bind(parsed);
    p.b.comment("absent mask to its slot: the body reads it from there as an unknown value");
    p.b.emit(Insn::store(Size::W, R10, MASK_SLOT, R9));
}

impl Prologue<'_> {
    fn context(&mut self, hook: Hook) {
        let context = hook.context();
        let (data, data_end, unknown) = (context.data, context.data_end, context.unknown_scalar);
        self.b.comment("context: packet bounds");
        self.b.emit(Insn::load(Size::W, R7, R1, data));
        self.b.emit(Insn::load(Size::W, R8, R1, data_end));
        self.b.emit(Insn::load(Size::W, R5, R1, unknown));
        self.b.emit(Insn::alu32(AluOp::Mov, R9, Operand::imm_u32(all_absent())));
        for (field, words) in self.layout.fields() {
            if field == Field::PktLen {
                continue;
            }
            for word in words {
                if absent_is_out_of_range(field) {
                    self.b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: *word, imm: -1 });
                } else {
                    self.b.emit(Insn::store(Size::W, R10, *word, R5));
                }
            }
        }
        if let Some(&slot) = self.layout.words(Field::PktLen).first() {
            match context.len {
                None => {
                    self.b.emit(Insn::mov64(R2, R8));
                    self.b.emit(Insn::alu64(AluOp::Sub, R2, R7));
                }
                Some(len) => self.b.emit(Insn::load(Size::W, R2, R1, len)),
            }
            self.b.emit(Insn::store(Size::W, R10, slot, R2));
        }
    }

    /// `if cursor + len > data_end goto parsed`.
    fn bounds(&mut self, cursor: Reg, len: i32) {
        self.b.emit(Insn::mov64(R2, cursor));
        self.b.emit(Insn::alu64(AluOp::Add, R2, len));
        self.b.emit(Insn::jump64(JmpOp::Gt, R2, R8, self.parsed));
    }

    fn mark_present(&mut self, source: Source) {
        self.b.emit(Insn::alu32(AluOp::And, R9, Operand::imm_u32(!source.bit())));
    }

    fn ethernet(&mut self) {
        self.b.comment("ethernet");
        self.bounds(R7, 14);
        self.mark_present(Source::Header(Proto::Eth));
        self.extract(Proto::Eth, R7);
        if !self.needs.vlan_walk {
            return;
        }
        self.b.emit(Insn::load(Size::H, R3, R7, 12));
        self.b.emit(Insn::mov64(R6, R7));
        self.b.emit(Insn::alu64(AluOp::Add, R6, 14));
        let network = self.b.new_label();
        for tag in 0..MAX_VLAN_TAGS {
            let tagged = self.b.new_label();
            self.b.emit(Insn::jump32(JmpOp::Eq, R3, RAW_8021Q, tagged));
            self.b.emit(Insn::jump32(JmpOp::Ne, R3, RAW_8021AD, network));
            self.b.bind(tagged);
            self.b.comment(if tag == 0 { "outer vlan tag" } else { "inner vlan tag" });
            self.bounds(R6, 4);
            if tag == 0 {
                self.mark_present(Source::Header(Proto::Vlan));
                self.extract(Proto::Vlan, R6);
            }
            self.b.emit(Insn::load(Size::H, R3, R6, 2));
            self.b.emit(Insn::alu64(AluOp::Add, R6, 4));
        }
        self.b.bind(network);
        self.network();
    }

    fn network(&mut self) {
        self.b.comment("payload ethertype");
        self.mark_present(Source::PayloadEthertype);
        if let Some(&slot) = self.layout.words(Field::EthType).first() {
            self.b.emit(Insn::mov64(R1, R3));
            self.b.emit(Insn::Endian { order: ByteOrder::Big, width: EndianWidth::W16, dst: R1 });
            self.b.emit(Insn::store(Size::W, R10, slot, R1));
        }
        let ipv4 = self.b.new_label();
        let ipv6 = self.b.new_label();
        let arp = self.b.new_label();
        let wanted =
            [(self.needs.ipv4, RAW_IPV4, ipv4), (self.needs.ipv6, RAW_IPV6, ipv6), (self.needs.arp, RAW_ARP, arp)];
        for (needed, ethertype, label) in wanted {
            if needed {
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, ethertype, label));
            }
        }
        self.b.emit(Insn::Ja { target: self.parsed });
        let l4 = L4Labels::new(self.b);
        if self.needs.ipv4 {
            self.b.bind(ipv4);
            self.ipv4(&l4);
        }
        if self.needs.ipv6 {
            self.b.bind(ipv6);
            self.ipv6(&l4);
        }
        if self.needs.arp {
            self.b.bind(arp);
            self.b.comment("arp");
            self.bounds(R6, 28);
            self.mark_present(Source::Header(Proto::Arp));
            self.extract(Proto::Arp, R6);
            self.b.emit(Insn::Ja { target: self.parsed });
        }
        self.transport(&l4);
    }

    fn ipv4(&mut self, l4: &L4Labels) {
        self.b.comment("ipv4");
        self.bounds(R6, 20);
        self.b.emit(Insn::load(Size::B, R1, R6, 0));
        self.b.emit(Insn::alu32(AluOp::And, R1, 0x0f));
        self.b.emit(Insn::jump32(JmpOp::Lt, R1, 5, self.parsed));
        self.b.emit(Insn::alu32(AluOp::Lsh, R1, 2));
        self.b.emit(Insn::mov64(R2, R6));
        self.b.emit(Insn::alu64(AluOp::Add, R2, R1));
        self.b.emit(Insn::jump64(JmpOp::Gt, R2, R8, self.parsed));
        self.mark_present(Source::Header(Proto::Ipv4));
        self.extract(Proto::Ipv4, R6);
        if !self.needs.transport_over(Proto::Ipv4) {
            self.b.emit(Insn::Ja { target: self.parsed });
            return;
        }
        self.b.emit(Insn::load(Size::H, R1, R6, 6));
        self.b.emit(Insn::jump32(JmpOp::Set, R1, RAW_IPV4_FRAG_OFFSET, self.parsed));
        self.b.emit(Insn::load(Size::B, R3, R6, 9));
        self.b.emit(Insn::mov64(R6, R2));
        self.dispatch_transport(l4, Proto::Ipv4);
    }

    fn ipv6(&mut self, l4: &L4Labels) {
        self.b.comment("ipv6");
        self.bounds(R6, 40);
        self.mark_present(Source::Header(Proto::Ipv6));
        self.extract(Proto::Ipv6, R6);
        if !self.needs.ipv6_walk {
            self.b.emit(Insn::Ja { target: self.parsed });
            return;
        }
        self.b.emit(Insn::load(Size::B, R3, R6, 6));
        self.b.emit(Insn::alu64(AluOp::Add, R6, 40));
        let upper = self.b.new_label();
        let non_first = self.b.new_label();
        for index in 0..IPV6_EXT_HEADERS {
            let fragment = self.b.new_label();
            let extension = self.b.new_label();
            let next = self.b.new_label();
            self.b.comment(format!("ipv6 extension header {}", index + 1));
            self.b.emit(Insn::jump32(JmpOp::Eq, R3, 44, fragment));
            for kind in [0, 43, 60] {
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, kind, extension));
            }
            self.b.emit(Insn::Ja { target: upper });
            self.b.bind(extension);
            self.bounds(R6, 2);
            self.b.emit(Insn::load(Size::B, R1, R6, 1));
            self.b.emit(Insn::load(Size::B, R3, R6, 0));
            self.b.emit(Insn::alu32(AluOp::Add, R1, 1));
            self.b.emit(Insn::alu32(AluOp::Lsh, R1, 3));
            self.b.emit(Insn::alu64(AluOp::Add, R6, R1));
            self.b.comment("the whole extension header must be inside the frame");
            self.b.emit(Insn::jump64(JmpOp::Gt, R6, R8, self.parsed));
            self.b.emit(Insn::Ja { target: next });
            self.b.bind(fragment);
            self.bounds(R6, 8);
            self.b.emit(Insn::load(Size::H, R1, R6, 2));
            self.b.emit(Insn::load(Size::B, R3, R6, 0));
            self.b.emit(Insn::jump32(JmpOp::Set, R1, RAW_IPV6_FRAG_OFFSET, non_first));
            self.b.emit(Insn::alu64(AluOp::Add, R6, 8));
            self.b.bind(next);
        }
        self.b.comment("extension chain too long: upper protocol unknown");
        for kind in [0, 43, 44, 60] {
            self.b.emit(Insn::jump32(JmpOp::Eq, R3, kind, self.parsed));
        }
        self.b.bind(upper);
        self.upper_protocol();
        self.dispatch_transport(l4, Proto::Ipv6);
        self.b.bind(non_first);
        self.b.comment("non-first fragment: no transport header");
        self.upper_protocol();
        self.b.emit(Insn::Ja { target: self.parsed });
    }

    fn upper_protocol(&mut self) {
        self.mark_present(Source::Ipv6UpperProtocol);
        if let Some(&slot) = self.layout.words(Field::Ipv6Proto).first() {
            self.b.emit(Insn::store(Size::W, R10, slot, R3));
        }
    }

    fn dispatch_transport(&mut self, l4: &L4Labels, carrier: Proto) {
        for (proto, label) in l4.all() {
            if self.needs.transport.contains(&proto) && proto.carrier().map_or(true, |needed| needed == carrier) {
                let number = proto.ip_protocol().unwrap_or(0) as i32;
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, number, label));
            }
        }
        self.b.emit(Insn::Ja { target: self.parsed });
    }

    fn transport(&mut self, l4: &L4Labels) {
        for (proto, label) in l4.all() {
            if !self.needs.transport.contains(&proto) {
                continue;
            }
            self.b.bind(label);
            self.b.comment(proto.name());
            self.bounds(R6, proto.min_len() as i32);
            self.mark_present(Source::Header(proto));
            self.extract(proto, R6);
            self.b.emit(Insn::Ja { target: self.parsed });
        }
    }

    /// Stores every needed field of `proto`, read through `base` (bounds already checked).
    fn extract(&mut self, proto: Proto, base: Reg) {
        let fields: Vec<(Field, Vec<i16>)> =
            self.layout.fields().map(|(field, words)| (field, words.to_vec())).collect();
        for (field, words) in fields {
            let FieldSource::Header { proto: owner, offset, size, shift, mask, add } = field.source() else { continue };
            if owner != proto {
                continue;
            }
            let offset = offset as i16;
            match size {
                6 => {
                    self.load_word(base, offset, 2, words[0]);
                    self.load_word(base, offset + 2, 4, words[1]);
                }
                16 => {
                    for (index, word) in words.iter().enumerate() {
                        self.load_word(base, offset + 4 * index as i16, 4, *word);
                    }
                }
                _ => {
                    self.read(base, offset, size);
                    if shift > 0 {
                        self.b.emit(Insn::alu32(AluOp::Rsh, R1, shift as i32));
                    }
                    let full = if size >= 4 { u32::MAX as u128 } else { (1u128 << (8 * size)) - 1 };
                    if mask < full >> shift {
                        self.b.emit(Insn::alu32(AluOp::And, R1, Operand::imm_u32(mask as u32)));
                    }
                    if add > 0 {
                        self.b.emit(Insn::alu32(AluOp::Add, R1, add as i32));
                    }
                    self.b.emit(Insn::store(Size::W, R10, words[0], R1));
                }
            }
        }
    }

    fn load_word(&mut self, base: Reg, offset: i16, size: usize, slot: i16) {
        self.read(base, offset, size);
        self.b.emit(Insn::store(Size::W, R10, slot, R1));
    }

    /// `r1 = big-endian value of `size` bytes at base + offset`.
    fn read(&mut self, base: Reg, offset: i16, size: usize) {
        let (width, endian) = match size {
            1 => (Size::B, None),
            2 => (Size::H, Some(EndianWidth::W16)),
            _ => (Size::W, Some(EndianWidth::W32)),
        };
        self.b.emit(Insn::load(width, R1, base, offset));
        if let Some(width) = endian {
            self.b.emit(Insn::Endian { order: ByteOrder::Big, width, dst: R1 });
        }
    }
}

/// Entry labels of the transport header blocks, shared by IPv4 and IPv6.
struct L4Labels([(Proto, Label); 5]);

impl L4Labels {
    fn new(b: &mut ProgramBuilder) -> L4Labels {
        L4Labels([Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmp, Proto::Icmp6].map(|proto| (proto, b.new_label())))
    }

    fn all(&self) -> [(Proto, Label); 5] {
        self.0
    }
}

/// Every source bit set: nothing found yet.
fn all_absent() -> u32 {
    Source::ALL.iter().fold(0, |mask, source| mask | source.bit())
}
