//! The parse prologue: the filter's needs in, instructions that locate every header
//! once and store each needed field value on the stack out.
//!
//! It follows the interpreter's parsing rules (`crate::eval`) step for step. Packet
//! bytes are read only here, each read right after a bounds check against `data_end`
//! that covers it. On exit the *absent* mask (one bit per [`Source`], built in r9) is
//! in a 4-byte stack slot that the kernel verifier does not track, so every parse path
//! hands the rule body the same verifier state.
//!
//! Layout (every jump goes forward, so a path that takes no jump is one stretch of
//! code): an untagged frame of the first IP family the rules read (IPv4, else IPv6)
//! runs its headers without a taken jump, into a copy of the TCP block (then one `goto`
//! to the end) or with one jump to the UDP block, which is laid out last and falls into
//! the body. Between them, out of that path: untagged IPv6 (as IPv4's, with its own TCP
//! copy), VLAN tags, other ethertypes and ARP, a second copy of the IP headers for
//! tagged frames, the IPv6 extension walk, and the shared transport blocks the rare
//! paths (and the common path's other protocols) jump to. The common IPv4 path checks a
//! 20-byte header and the shortest needed transport header at once; a header with
//! options (or a shorter frame) goes to the tagged frames' general IPv4 code.
//!
//! Every value slot the body reads is written on every path (the kernel verifier refuses
//! a read of an unwritten stack word): a field of a header the frame lacks holds an
//! unknown scalar (r5), or -1 when that is out of the field's range. The common path
//! writes its headers' slots itself, so those are not initialised at the entry: each jump
//! off that path before it wrote them goes to a pad (laid out off the path) or a branch
//! target that writes them first, and the tail block writes the inline transport's. The
//! absent mask works the same way: r9 starts as the common path's mask once its IP header
//! is found, and the jumps off the path before that set it to what the path has found.
//!
//! Under TC the kernel may have taken the outermost VLAN tag out of the frame into the
//! skb (always at ingress): the frame's bytes then start with the addresses and the next
//! ethertype. The context's copy of the tag is read at the entry (r4 = present, r0 =
//! its TCI) and, when present, stands in for the outer tag: `vlan.*` come from it, the
//! walk goes on with the frame's ethertype as the inner one, every header after is where
//! the bytes put it, and `pkt.len` counts the tag's 4 bytes. The frame as on the wire is
//! what the rules see, as in XDP and in the interpreter.
//!
//! Registers: r7 = data, r8 = data_end, r6 = header cursor, r3 = next protocol
//! (ethertype or IP protocol, as loaded), r1/r2 scratch, r5 = an unknown scalar used to
//! initialize value slots, r4/r0 = the context's VLAN tag (present, TCI) when read.

use std::cell::Cell;

use super::layout::{absent_is_out_of_range, Layout, MASK_SLOT, PCAP_WORD_EMPTY};
use super::Needs;
use crate::bpf::{AluOp, ByteOrder, EndianWidth, Insn, JmpOp, Label, Operand, ProgramBuilder, Reg, Size};
use crate::fields::{Field, FieldSource, Proto, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};
use crate::ir::Source;
use crate::object::hook::ContextTag;
use crate::program::pcap::PcapFilter;
use crate::program::Hook;

use Reg::{R0, R1, R10, R2, R3, R4, R5, R6, R7, R8, R9};

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
    /// The slots the path being emitted has not written yet (deferred from the entry).
    pending: Vec<i16>,
    /// The absent mask the path being emitted has, while r9 does not hold it yet.
    lazy_mask: Option<u32>,
    /// r9's value on the common path from the entry on: its IP header found.
    hot_mask: u32,
    /// The inline transport's slots, which the tail block writes for every path into it.
    tail_writes: Vec<i16>,
    /// Untagged IPv6's slots when IPv4 is the common path: IPv6 writes them, IPv4 initialises them.
    second_writes: Vec<i16>,
    /// The IPv4 header code every frame but the common path's runs (after VLAN tags),
    /// also where the common path sends an IPv4 header with options or a short frame.
    general_ipv4: Label,
    /// Jumps off the common path waiting for their pad (placed before any target).
    pads: Vec<Pad>,
    /// Where the context holds a VLAN tag out of the frame, when the walk needs it.
    context_tag: Option<ContextTag>,
}

/// Code a jump off the common path goes through: set the mask, write the slots the
/// path has not written yet, then `goto target`.
struct Pad {
    label: Label,
    target: Label,
    state: PathState,
}

/// What a path has not done yet (see [`Prologue::pending`] and [`Prologue::lazy_mask`]).
#[derive(Clone, PartialEq)]
struct PathState {
    mask: Option<u32>,
    pending: Vec<i16>,
}

/// Emits the prologue; falls through to the rule body.
pub fn emit(b: &mut ProgramBuilder, hook: Hook, layout: &Layout, needs: &Needs, pcaps: &[PcapFilter]) {
    let parsed = b.new_label();
    let general_ipv4 = b.new_label();
    // Deferred initialisation needs r5 at the pads (pcap atoms use it) and a common path.
    let hot = (pcaps.is_empty() && needs.vlan_walk).then(|| hot_family(needs)).flatten();
    let mut p = Prologue {
        b,
        layout,
        needs,
        parsed,
        pending: Vec::new(),
        lazy_mask: None,
        hot_mask: all_absent(),
        tail_writes: Vec::new(),
        second_writes: Vec::new(),
        general_ipv4,
        pads: Vec::new(),
        context_tag: hook.context().vlan_tag.filter(|_| needs.vlan_walk),
    };
    if let Some(hot) = hot {
        p.hot_mask = [Source::Header(Proto::Eth), Source::PayloadEthertype, Source::Header(hot)]
            .iter()
            .fold(all_absent(), |mask, source| mask & !source.bit());
        p.lazy_mask = Some(all_absent());
        let inline = L4::inline_of(&needs.transport);
        let owned = |proto: Proto| {
            layout
                .fields()
                .filter(move |(field, _)| {
                    matches!(field.source(), FieldSource::Header { proto: owner, .. } if owner == proto)
                })
                .flat_map(|(_, words)| words.iter().copied())
        };
        // Untagged IPv6 after an IPv4 common path writes its own slots; the common path
        // initialises them after its ethertype test.
        let second = (hot == Proto::Ipv4 && needs.ipv6).then_some(Proto::Ipv6);
        p.pending = owned(Proto::Eth)
            .chain(layout.words(Field::EthType).iter().copied())
            .chain(owned(hot))
            .chain(second.into_iter().flat_map(owned))
            .chain(inline.into_iter().flat_map(owned))
            .collect();
        p.second_writes = second.into_iter().flat_map(owned).collect();
        p.tail_writes = inline.into_iter().flat_map(owned).collect();
    }
    p.context(hook);
    if pcaps.is_empty() {
        p.load_context_tag(R1);
    }
    // The ethernet check comes before the atoms when one atom has code, rejects a
    // shorter frame anyway and the parse reads nothing past the check (a `pcap` filter
    // alone, as `pfc compile --pcap-filter` writes it): a short frame skips the atom
    // (its word says false), the atom starts from the 14 proven bytes and the parse
    // after it is one instruction. (With more atoms the jump would cross all of them,
    // and only the first would gain.)
    let mut early = false;
    if !pcaps.is_empty() {
        let context = super::pcap::Context { reg: R9, data: hook.context().data };
        // An atom with the same verdict on every frame emits no code: a true one's bit
        // is in its word from the start.
        let constant: Vec<Option<bool>> = pcaps.iter().map(super::pcap::constant).collect();
        let coded: Vec<u32> =
            layout.pcap_bits().map(|(index, _)| index).filter(|i| constant[*i as usize].is_none()).collect();
        early = match coded[..] {
            [only] => !p.ethernet_reads() && super::pcap::shortest_accepted(&pcaps[only as usize]) >= ETHERNET,
            _ => false,
        };
        for &slot in layout.pcap_words() {
            let always = layout
                .pcap_bits()
                .filter(|(index, bit)| bit.slot == slot && constant[*index as usize] == Some(true))
                .fold(0, |word, (_, bit)| word | bit.mask);
            p.b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: slot, imm: PCAP_WORD_EMPTY | always as i32 });
        }
        // When nothing but the atom's bit tells what the parse found, the check before
        // the atom proves what every accepting path of it reads (a shorter frame is
        // rejected by the atom anyway, and whether it has an Ethernet header is read by
        // no one): the atom's own first check goes.
        let mut checked = ETHERNET;
        if early {
            if !p.needs.parse_observed {
                if let [only] = coded[..] {
                    checked = checked.max(super::pcap::shortest_accepted(&pcaps[only as usize]));
                }
            }
            p.b.comment("ethernet, before the atoms: a shorter frame is no atom's");
            p.b.emit(Insn::mov64(R6, R7));
            p.b.emit(Insn::alu64(AluOp::Add, R6, checked as i32));
            p.b.emit(Insn::jump64(JmpOp::Gt, R6, R8, p.parsed));
        }
        // The atoms keep the context in r9 to re-read r7 at their joins (not early:
        // nothing reads r7 after the only atom); the absent mask starts over after them.
        if !early {
            p.b.emit(Insn::mov64(R9, R1));
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
            // Early, nothing after the only atom reads r7 (the body writes it first).
            let entry = match early {
                true => super::pcap::Entry { checked, reload: false },
                false => super::pcap::Entry { checked: 0, reload: true },
            };
            super::pcap::emit(p.b, &pcaps[index as usize], bit, context, alone, entry);
        }
        if !early {
            p.load_context_tag(R9);
        }
        let absent = if early { all_absent() & !Source::Header(Proto::Eth).bit() } else { all_absent() };
        p.b.emit(Insn::alu32(AluOp::Mov, R9, Operand::imm_u32(absent)));
    }
    if !early {
        p.ethernet();
    }
    debug_assert!(p.pads.is_empty(), "a jump off the common path after its pads were laid out");
    p.b.bind(parsed);
    p.b.comment("absent mask to its slot: the body reads it from there as an unknown value");
    p.b.emit(Insn::store(Size::W, R10, MASK_SLOT, R9));
}

/// Bytes of the Ethernet header.
const ETHERNET: u64 = 14;

impl Prologue<'_> {
    /// Whether [`Self::ethernet`] reads packet bytes past its bounds check (fields of
    /// the Ethernet header, or the ethertype for the headers after it).
    fn ethernet_reads(&self) -> bool {
        self.needs.vlan_walk
            || self
                .layout
                .fields()
                .any(|(field, _)| matches!(field.source(), FieldSource::Header { proto: Proto::Eth, .. }))
    }

    fn context(&mut self, hook: Hook) {
        let context = hook.context();
        let (data, data_end, unknown) = (context.data, context.data_end, context.unknown_scalar);
        self.b.comment("context: packet bounds");
        self.b.emit(Insn::load(Size::W, R7, R1, data));
        self.b.emit(Insn::load(Size::W, R8, R1, data_end));
        self.b.emit(Insn::load(Size::W, R5, R1, unknown));
        self.b.emit(Insn::alu32(AluOp::Mov, R9, Operand::imm_u32(self.hot_mask)));
        let words: Vec<i16> = self
            .layout
            .fields()
            .filter(|(field, _)| *field != Field::PktLen)
            .flat_map(|(_, words)| words.iter().copied())
            .filter(|word| !self.pending.contains(word))
            .collect();
        self.initialize(&words);
        if let Some(&slot) = self.layout.words(Field::PktLen).first() {
            match context.len {
                None => {
                    self.b.emit(Insn::mov64(R2, R8));
                    self.b.emit(Insn::alu64(AluOp::Sub, R2, R7));
                }
                Some(len) => {
                    self.b.emit(Insn::load(Size::W, R2, R1, len));
                    if let Some(tag) = context.vlan_tag {
                        // The skb's length leaves out a tag the kernel took out of the frame.
                        self.b.emit(Insn::load(Size::W, R3, R1, tag.present));
                        self.b.emit(Insn::alu64(AluOp::Lsh, R3, 2));
                        self.b.emit(Insn::alu64(AluOp::Add, R2, R3));
                    }
                }
            }
            self.b.emit(Insn::store(Size::W, R10, slot, R2));
        }
    }

    /// r4 = whether the context holds a VLAN tag out of the frame, r0 = its TCI, read
    /// from the context at `context` (when the walk needs them).
    fn load_context_tag(&mut self, context: Reg) {
        if let Some(tag) = self.context_tag {
            self.b.comment("a vlan tag the kernel took out of the frame: present, tci");
            self.b.emit(Insn::load(Size::W, R4, context, tag.present));
            self.b.emit(Insn::load(Size::W, R0, context, tag.tci));
        }
    }

    /// Writes each slot's value for a header the frame lacks: -1 when that is out of the
    /// field's range, else the unknown scalar in r5.
    fn initialize(&mut self, words: &[i16]) {
        for &word in words {
            let out_of_range =
                self.layout.fields().any(|(field, slots)| slots.contains(&word) && absent_is_out_of_range(field));
            if out_of_range {
                self.b.emit(Insn::StoreImm { size: Size::W, dst: R10, off: word, imm: -1 });
            } else {
                self.b.emit(Insn::store(Size::W, R10, word, R5));
            }
        }
    }

    /// A value slot written by the path being emitted.
    fn wrote(&mut self, slot: i16) {
        self.pending.retain(|word| *word != slot);
    }

    fn state(&self) -> PathState {
        PathState { mask: self.lazy_mask, pending: self.pending.clone() }
    }

    /// Where a jump off the path being emitted to `target` goes: `target` itself once the
    /// path has set r9 and written every slot, else a new pad that does that first.
    fn exit(&mut self, target: Label) -> Label {
        if self.lazy_mask.is_none() && self.pending.is_empty() {
            return target;
        }
        let state = self.state();
        if let Some(pad) = self.pads.iter().find(|pad| pad.target == target && pad.state == state) {
            return pad.label;
        }
        let label = self.b.new_label();
        self.pads.push(Pad { label, target, state });
        label
    }

    /// Code entered only by jumps from a path in `state`: does what it had not done. The
    /// slots in `keep` stay pending (the caller's path writes them or pads them).
    fn catch_up(&mut self, state: PathState, keep: &[i16]) {
        if let Some(mask) = state.mask {
            self.b.emit(Insn::alu32(AluOp::Mov, R9, Operand::imm_u32(mask)));
        }
        let (kept, words): (Vec<i16>, Vec<i16>) = state.pending.iter().partition(|word| keep.contains(word));
        self.initialize(&words);
        self.lazy_mask = None;
        self.pending = kept;
    }

    /// The pads of the jumps so far, at a point no path falls into.
    fn pads(&mut self) {
        for pad in std::mem::take(&mut self.pads) {
            self.b.bind(pad.label);
            self.catch_up(pad.state, &[]);
            self.b.emit(Insn::Ja { target: pad.target });
        }
    }

    /// `if cursor + len > data_end goto parsed`.
    fn bounds(&mut self, cursor: Reg, len: i32) {
        self.b.emit(Insn::mov64(R2, cursor));
        self.bounds_r2(len);
    }

    /// `if r2 + len > data_end goto parsed`, r2 holding the cursor.
    fn bounds_r2(&mut self, len: i32) {
        self.b.emit(Insn::alu64(AluOp::Add, R2, len));
        let target = self.exit(self.parsed);
        self.b.emit(Insn::jump64(JmpOp::Gt, R2, R8, target));
    }

    fn mark_present(&mut self, source: Source) {
        if let Some(mask) = self.lazy_mask.as_mut() {
            // The common path: r9 holds its mask from the entry on.
            *mask &= !source.bit();
            if *mask == self.hot_mask {
                self.lazy_mask = None;
            }
            return;
        }
        self.b.emit(Insn::alu32(AluOp::And, R9, Operand::imm_u32(!source.bit())));
    }

    /// Ethernet, then the network and transport headers laid out for the common case: an
    /// untagged frame of the first needed IP family falls through its headers into the
    /// inline transport block (or takes one jump to the tail block), and one `goto` over
    /// the rest (the other family, VLAN tags, ARP, the IPv6 extension walk, the other
    /// transport blocks), which is placed between it and the tail block. Tagged frames
    /// get their own copy of the network code, since every jump goes forward.
    fn ethernet(&mut self) {
        self.b.comment("ethernet");
        self.bounds(R7, ETHERNET as i32);
        self.mark_present(Source::Header(Proto::Eth));
        self.extract(Proto::Eth, R7);
        if !self.needs.vlan_walk {
            return;
        }
        self.b.emit(Insn::load(Size::H, R3, R7, 12));
        self.b.emit(Insn::mov64(R6, R7));
        self.b.emit(Insn::alu64(AluOp::Add, R6, 14));
        // The outer tag in the context: the frame's ethertype is the inner one.
        let from_context = self.context_tag.map(|_| self.b.new_label());
        if let Some(label) = from_context {
            let target = self.exit(label);
            self.b.emit(Insn::jump32(JmpOp::Ne, R4, 0, target));
        }
        let l4 = L4::new(self.b, self.needs);
        let network = self.b.new_label();
        let tagged = self.b.new_label();
        let Some(hot) = hot_family(self.needs) else {
            // No IP: nothing common to lay out first.
            self.b.emit(Insn::jump32(JmpOp::Eq, R3, RAW_8021Q, tagged));
            if from_context.is_some() {
                // Nothing may fall into the context's tag code, laid out first.
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, RAW_8021AD, tagged));
                self.b.emit(Insn::Ja { target: network });
            } else {
                self.b.emit(Insn::jump32(JmpOp::Ne, R3, RAW_8021AD, network));
            }
            self.vlan_tags(tagged, network, from_context);
            self.network(&l4);
            return;
        };
        let not_hot = self.b.new_label();
        self.b.comment(format!("untagged {}: the common case, no jump taken to its transport header", hot.name()));
        let off_path = self.state();
        self.b.emit(Insn::jump32(JmpOp::Ne, R3, raw_ethertype(hot), not_hot));
        let second = self.second_writes.clone();
        if !second.is_empty() {
            self.b.comment("ipv6's slots, which this path does not write");
        }
        self.initialize(&second);
        for word in second {
            self.wrote(word);
        }
        self.payload_ethertype();
        self.family(hot, &l4, true);
        self.b.bind(not_hot);
        let untagged_ipv6 = hot == Proto::Ipv4 && self.needs.ipv6;
        if off_path.mask.is_some() || !off_path.pending.is_empty() {
            self.b.comment("off the common path: the mask so far, the slots it would have written");
        }
        // Untagged IPv6 writes its own and the inline transport's slots as the common path does.
        let keep = if untagged_ipv6 { [&self.tail_writes[..], &self.second_writes[..]].concat() } else { Vec::new() };
        self.catch_up(off_path, &keep);
        if untagged_ipv6 {
            let not_ipv6 = self.b.new_label();
            self.b.comment("untagged ipv6");
            let off_path = self.state();
            self.b.emit(Insn::jump32(JmpOp::Ne, R3, RAW_IPV6, not_ipv6));
            self.payload_ethertype();
            self.family(Proto::Ipv6, &l4, true);
            self.b.bind(not_ipv6);
            self.catch_up(off_path, &[]);
        }
        self.b.comment("vlan tag, or untagged with another ethertype");
        self.b.emit(Insn::jump32(JmpOp::Eq, R3, RAW_8021Q, tagged));
        self.b.emit(Insn::jump32(JmpOp::Eq, R3, RAW_8021AD, tagged));
        self.payload_ethertype();
        if self.needs.arp {
            self.b.emit(Insn::jump32(JmpOp::Ne, R3, RAW_ARP, self.parsed));
            self.arp();
        } else {
            self.b.emit(Insn::Ja { target: self.parsed });
        }
        if !self.pads.is_empty() {
            self.b.comment("jumps off the common path: the mask so far, the slots not written yet");
            self.pads();
        }
        self.vlan_tags(tagged, network, from_context);
        self.network(&l4);
        self.shared(&l4);
    }

    /// The VLAN tags, once the caller found the first tag's TPID (and jumped to `first`)
    /// or the context's tag (jumped to `from_context`, laid out first: nothing may fall
    /// into it); binds `network`, where r3 holds the payload ethertype.
    fn vlan_tags(&mut self, first: Label, network: Label, from_context: Option<Label>) {
        const { assert!(MAX_VLAN_TAGS >= 2, "the context's tag goes on at the second") };
        let after_outer = self.b.new_label();
        if let Some(label) = from_context {
            self.b.bind(label);
            self.b.comment("outer vlan tag, in the context (r0): the frame's ethertype is the next");
            self.mark_present(Source::Header(Proto::Vlan));
            self.extract_tci(R0);
            self.b.emit(Insn::Ja { target: after_outer });
        }
        for tag in 0..MAX_VLAN_TAGS {
            let tagged = if tag == 0 {
                first
            } else {
                if tag == 1 && from_context.is_some() {
                    self.b.bind(after_outer);
                }
                let tagged = self.b.new_label();
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, RAW_8021Q, tagged));
                self.b.emit(Insn::jump32(JmpOp::Ne, R3, RAW_8021AD, network));
                tagged
            };
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
    }

    fn payload_ethertype(&mut self) {
        self.b.comment("payload ethertype");
        self.mark_present(Source::PayloadEthertype);
        if let Some(&slot) = self.layout.words(Field::EthType).first() {
            self.b.emit(Insn::mov64(R1, R3));
            self.b.emit(Insn::Endian { order: ByteOrder::Big, width: EndianWidth::W16, dst: R1 });
            self.b.emit(Insn::store(Size::W, R10, slot, R1));
            self.wrote(slot);
        }
    }

    /// The network header after the VLAN tags (and, without IP, of every frame).
    fn network(&mut self, l4: &L4) {
        self.payload_ethertype();
        let ipv4 = self.general_ipv4;
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
        if self.needs.ipv4 {
            self.b.bind(ipv4);
            self.family(Proto::Ipv4, l4, false);
        }
        if self.needs.ipv6 {
            self.b.bind(ipv6);
            self.family(Proto::Ipv6, l4, false);
        }
        if self.needs.arp {
            self.b.bind(arp);
            self.arp();
        }
    }

    fn arp(&mut self) {
        self.b.comment("arp");
        self.bounds(R6, 28);
        self.mark_present(Source::Header(Proto::Arp));
        self.extract(Proto::Arp, R6);
        self.b.emit(Insn::Ja { target: self.parsed });
    }

    /// An IP header at r6; `untagged`: the common path's copy (transport dispatch by
    /// [`Prologue::fast_transport`]), else the tagged frames' (to the shared blocks).
    fn family(&mut self, proto: Proto, l4: &L4, untagged: bool) {
        match proto {
            Proto::Ipv4 => self.ipv4(l4, untagged),
            _ => self.ipv6(l4, untagged),
        }
    }

    fn ipv4(&mut self, l4: &L4, untagged: bool) {
        self.b.comment("ipv4");
        if untagged {
            return self.fast_ipv4(l4);
        }
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

    /// The common path's IPv4 header: 20 bytes (no options) and the shortest needed
    /// transport header inside the frame, one bounds check for both; any other frame
    /// (options, an odd version byte, too short) goes to the general IPv4 code, through a
    /// pad (the mask and slots so far), which parses it as before.
    fn fast_ipv4(&mut self, l4: &L4) {
        // The shortest transport header needed over IPv4 (UDP's and ICMP's: 8 bytes), so
        // that a small frame of any of them stays on the path.
        let shortest = match self.needs.transport_over(Proto::Ipv4) {
            true => l4.shortest_over(Proto::Ipv4),
            false => 0,
        };
        self.b.emit(Insn::mov64(R2, R6));
        self.b.emit(Insn::alu64(AluOp::Add, R2, 20 + shortest));
        let general = self.exit(self.general_ipv4);
        self.b.emit(Insn::jump64(JmpOp::Gt, R2, R8, general));
        // Version 4 and a 5-word header; the general code reads the length only.
        self.b.emit(Insn::load(Size::B, R1, R6, 0));
        let general = self.exit(self.general_ipv4);
        self.b.emit(Insn::jump32(JmpOp::Ne, R1, 0x45, general));
        self.mark_present(Source::Header(Proto::Ipv4));
        self.extract(Proto::Ipv4, R6);
        if !self.needs.transport_over(Proto::Ipv4) {
            let target = self.exit(self.parsed);
            self.b.emit(Insn::Ja { target });
            return;
        }
        self.b.emit(Insn::load(Size::H, R1, R6, 6));
        let target = self.exit(self.parsed);
        self.b.emit(Insn::jump32(JmpOp::Set, R1, RAW_IPV4_FRAG_OFFSET, target));
        self.b.emit(Insn::load(Size::B, R3, R6, 9));
        self.b.emit(Insn::alu64(AluOp::Add, R6, 20));
        // r2 = r6 + shortest: the inline block checks only what its header adds.
        let inline = l4.inline.map_or(0, |proto| proto.min_len() as i32);
        self.fast_transport(l4, Proto::Ipv4, Bounds::FromR2(inline - shortest));
    }

    fn ipv6(&mut self, l4: &L4, untagged: bool) {
        self.b.comment("ipv6");
        self.bounds(R6, 40);
        self.mark_present(Source::Header(Proto::Ipv6));
        self.extract(Proto::Ipv6, R6);
        if !self.needs.ipv6_walk {
            let target = self.exit(self.parsed);
            self.b.emit(Insn::Ja { target });
            return;
        }
        self.b.emit(Insn::load(Size::B, R3, R6, 6));
        self.b.emit(Insn::alu64(AluOp::Add, R6, 40));
        if untagged {
            // r2 = r6: the bounds check's end.
            let inline = l4.inline.map_or(0, |proto| proto.min_len() as i32);
            self.fast_transport(l4, Proto::Ipv6, Bounds::FromR2(inline));
        } else {
            self.b.emit(Insn::Ja { target: l4.ipv6_walk });
        }
    }

    /// The blocks every copy of the network code shares, after them: the IPv6 extension
    /// walk, the transport blocks, and last the tail block, which falls into `parsed`.
    fn shared(&mut self, l4: &L4) {
        if self.needs.ipv6_walk {
            self.ipv6_walk(l4);
        }
        for (index, (proto, label)) in l4.shared.into_iter().enumerate() {
            if l4.used[index].get() {
                self.b.bind(label);
                self.transport_block(proto, Bounds::FromR6);
                self.b.emit(Insn::Ja { target: self.parsed });
            }
        }
        if let Some((proto, label)) = l4.tail {
            if l4.tail_ipv6_used.get() {
                self.b.bind(l4.tail_ipv6);
                self.b.comment("from untagged ipv6 without extension headers");
                self.upper_protocol();
            }
            self.b.bind(label);
            if !self.tail_writes.is_empty() {
                self.b.comment("the inline transport's slots, which the common path has not written");
                let words = self.tail_writes.clone();
                self.initialize(&words);
            }
            self.transport_block(proto, Bounds::FromR6);
        }
    }

    /// The extension header walk from r6 (r3 = the IPv6 next header), then the transport
    /// dispatch.
    fn ipv6_walk(&mut self, l4: &L4) {
        self.b.bind(l4.ipv6_walk);
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

    /// The untagged path's transport dispatch (r3 = the IP protocol or next header): the
    /// tail's protocol jumps to the tail block, the inline protocol's block is copied here
    /// (then one `goto parsed`), the rest goes to the shared blocks (from IPv6: to the
    /// extension walk, which an extension header needs anyway).
    fn fast_transport(&mut self, l4: &L4, carrier: Proto, inline_bounds: Bounds) {
        let ipv6 = carrier == Proto::Ipv6;
        if let Some((proto, label)) = l4.tail {
            let entry = if ipv6 {
                l4.tail_ipv6_used.set(true);
                l4.tail_ipv6
            } else {
                label
            };
            // The tail block writes the inline transport's slots, the only ones not yet written.
            debug_assert!(self.lazy_mask.is_none() && self.pending.iter().all(|word| self.tail_writes.contains(word)));
            self.b.emit(Insn::jump32(JmpOp::Eq, R3, ip_protocol(proto), entry));
        }
        let rest = if ipv6 { l4.ipv6_walk } else { self.b.new_label() };
        // From IPv6 `rest` is the shared extension walk: through a pad. From IPv4 it is
        // entered by this jump only.
        let off_path = self.state();
        if let Some(proto) = l4.inline {
            let target = if ipv6 { self.exit(rest) } else { rest };
            self.b.emit(Insn::jump32(JmpOp::Ne, R3, ip_protocol(proto), target));
            if ipv6 {
                self.upper_protocol();
            }
            self.transport_block(proto, inline_bounds);
            let target = self.exit(self.parsed);
            self.b.emit(Insn::Ja { target });
        } else if ipv6 {
            let target = self.exit(rest);
            self.b.emit(Insn::Ja { target });
        }
        if ipv6 {
            return;
        }
        self.b.bind(rest);
        self.catch_up(off_path, &[]);
        for proto in TRANSPORTS {
            if Some(proto) == l4.inline || l4.is_tail(proto) {
                continue;
            }
            if let Some(label) = l4.target(proto, carrier) {
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, ip_protocol(proto), label));
            }
        }
        self.b.emit(Insn::Ja { target: self.parsed });
    }

    /// Every needed transport over `carrier` to its block, in the order TCP, UDP, SCTP,
    /// ICMP, ICMPv6; anything else to `parsed`.
    fn dispatch_transport(&mut self, l4: &L4, carrier: Proto) {
        for proto in TRANSPORTS {
            if let Some(label) = l4.target(proto, carrier) {
                self.b.emit(Insn::jump32(JmpOp::Eq, R3, ip_protocol(proto), label));
            }
        }
        self.b.emit(Insn::Ja { target: self.parsed });
    }

    /// A transport header's block at r6 (it does not end with a jump).
    fn transport_block(&mut self, proto: Proto, bounds: Bounds) {
        self.b.comment(proto.name());
        match bounds {
            Bounds::FromR6 => self.bounds(R6, proto.min_len() as i32),
            Bounds::FromR2(0) => {}
            Bounds::FromR2(len) => self.bounds_r2(len),
        }
        self.mark_present(Source::Header(proto));
        self.extract(proto, R6);
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
                    self.store_value(size, shift, mask, add, words[0]);
                }
            }
        }
    }

    /// The VLAN fields from a tag's TCI in `tci` (the context's copy of the tag's first
    /// two bytes, host order), as [`Self::extract`] reads them from the frame.
    fn extract_tci(&mut self, tci: Reg) {
        let fields: Vec<(Field, i16)> = self.layout.fields().map(|(field, words)| (field, words[0])).collect();
        for (field, word) in fields {
            let FieldSource::Header { proto: Proto::Vlan, offset, size, shift, mask, add } = field.source() else {
                continue;
            };
            assert!(offset == 0 && size == 2, "{field:?} is not in a tag's TCI, which is all the context holds");
            self.b.emit(Insn::mov64(R1, tci));
            self.store_value(size, shift, mask, add, word);
        }
    }

    /// r1 (a `size`-byte value) shifted, masked and offset as its field says, to `slot`.
    fn store_value(&mut self, size: usize, shift: u32, mask: u128, add: u128, slot: i16) {
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
        self.b.emit(Insn::store(Size::W, R10, slot, R1));
        self.wrote(slot);
    }

    fn load_word(&mut self, base: Reg, offset: i16, size: usize, slot: i16) {
        self.read(base, offset, size);
        self.b.emit(Insn::store(Size::W, R10, slot, R1));
        self.wrote(slot);
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

/// How a transport block checks that its header is inside the frame.
#[derive(Clone, Copy)]
enum Bounds {
    /// From the cursor r6.
    FromR6,
    /// `r2 += len; if r2 > data_end goto parsed`, r2 being that many bytes short of the
    /// header's end (0: already checked).
    FromR2(i32),
}

/// The transport protocols the prologue can locate, in dispatch order.
const TRANSPORTS: [Proto; 5] = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmp, Proto::Icmp6];

/// Where each needed transport header's block is: the untagged paths reach the tail's
/// and the inline one's without a taken jump before it, the rest through shared blocks.
struct L4 {
    /// One block per needed protocol but the tail's, after all network code; emitted when
    /// some dispatch jumps to it.
    shared: [(Proto, Label); 5],
    used: [Cell<bool>; 5],
    /// The block laid out last, falling into `parsed`: UDP when needed, else TCP.
    tail: Option<(Proto, Label)>,
    /// The tail block's entry from the untagged IPv6 path, which first marks the upper
    /// protocol (the extension walk's other paths mark it before their dispatch).
    tail_ipv6: Label,
    tail_ipv6_used: Cell<bool>,
    /// Copied into each untagged path: TCP when UDP is the tail.
    inline: Option<Proto>,
    /// The IPv6 extension header walk (r3 = next header, r6 past the fixed header).
    ipv6_walk: Label,
    needed: Vec<Proto>,
}

impl L4 {
    fn new(b: &mut ProgramBuilder, needs: &Needs) -> L4 {
        let needed = needs.transport.clone();
        let tail = [Proto::Udp, Proto::Tcp].into_iter().find(|proto| needed.contains(proto));
        let inline = L4::inline_of(&needed);
        L4 {
            shared: TRANSPORTS.map(|proto| (proto, b.new_label())),
            used: Default::default(),
            tail: tail.map(|proto| (proto, b.new_label())),
            tail_ipv6: b.new_label(),
            tail_ipv6_used: Cell::new(false),
            inline,
            ipv6_walk: b.new_label(),
            needed,
        }
    }

    /// The shortest header of the transports needed over `carrier`.
    fn shortest_over(&self, carrier: Proto) -> i32 {
        self.needed
            .iter()
            .filter(|proto| proto.carrier().map_or(true, |needed| needed == carrier))
            .map(|proto| proto.min_len() as i32)
            .min()
            .unwrap_or(0)
    }

    /// The transport copied into each untagged path: TCP when UDP is needed too.
    fn inline_of(needed: &[Proto]) -> Option<Proto> {
        (needed.contains(&Proto::Udp) && needed.contains(&Proto::Tcp)).then_some(Proto::Tcp)
    }

    fn is_tail(&self, proto: Proto) -> bool {
        self.tail.is_some_and(|(tail, _)| tail == proto)
    }

    /// The block a dispatch over `carrier` jumps to for `proto`, if it is needed there.
    fn target(&self, proto: Proto, carrier: Proto) -> Option<Label> {
        if !self.needed.contains(&proto) || proto.carrier().is_some_and(|needed| needed != carrier) {
            return None;
        }
        match self.tail {
            Some((tail, label)) if tail == proto => Some(label),
            _ => {
                let index = TRANSPORTS.iter().position(|p| *p == proto)?;
                self.used[index].set(true);
                Some(self.shared[index].1)
            }
        }
    }
}

fn ip_protocol(proto: Proto) -> i32 {
    proto.ip_protocol().unwrap_or(0) as i32
}

/// The IP family laid out as the common path: the first the rules read (IPv4, else IPv6).
fn hot_family(needs: &Needs) -> Option<Proto> {
    [(needs.ipv4, Proto::Ipv4), (needs.ipv6, Proto::Ipv6)]
        .into_iter()
        .find_map(|(needed, proto)| needed.then_some(proto))
}

/// The ethertype of an IP family as a little-endian `u16` load sees it.
fn raw_ethertype(family: Proto) -> i32 {
    if family == Proto::Ipv6 {
        RAW_IPV6
    } else {
        RAW_IPV4
    }
}

/// Every source bit set: nothing found yet.
fn all_absent() -> u32 {
    Source::ALL.iter().fold(0, |mask, source| mask | source.bit())
}
