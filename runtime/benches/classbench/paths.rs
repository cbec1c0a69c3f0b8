//! Instructions executed per packet, by part of the program: a compiled classifier and a
//! packet in, how many instructions the packet runs in the prologue, in the diagrams'
//! nodes (and how many nodes it visits), in the leaves and in the tail out.
//!
//! A small interpreter of pfc's own instruction model (XDP context, the stack, the packet,
//! one counter value and the classifier table's arrays; helper 1 only), enough for the
//! classbench sets: it counts
//! instructions, it does not check them (rbpf and the kernel run the real thing, and the
//! bench compares their verdicts with the interpreter's). The parts come from the
//! listing's comments (`diagram N node M: ...`, `rule ...`, the tail's comment; in the
//! table form `diagram N: walk ...` starts the nodes, counted as one visit, and `diagram
//! N: at most K candidates` the leaf), so a relay `goto` counts with the code before it.

use pfc_compiler::bpf::{AluOp, ByteOrder, EndianWidth, Insn, Operand, Program, Size};

/// What one packet ran.
#[derive(Clone, Copy, Default, Debug)]
pub struct Path {
    /// Every instruction executed.
    pub total: u64,
    /// Before the classifier (the parse prologue).
    pub prologue: u64,
    /// In diagram nodes (header-presence and field tests, relays between them).
    pub nodes: u64,
    /// Diagram nodes visited.
    pub visited: u64,
    /// In leaves (the candidates' residual tests and their match stubs).
    pub leaves: u64,
    /// After the diagrams (the counter or exit tail, and between diagrams).
    pub tail: u64,
    /// Jumps taken (conditional or not): each ends a fetch block in the CPU.
    pub taken: u64,
    /// ... of them in the prologue, the nodes, the leaves and the tail.
    pub taken_in: [u64; 4],
    /// Instructions and taken jumps per diagram (the prologue with the first).
    pub in_diagram: [(u64, u64); DIAGRAMS],
    /// Relay `goto`s taken (one per hop of a relay chain), and jumps over relays.
    pub relays: u64,
    pub overs: u64,
    /// Taken jumps a 32-bit `gotol` would save: per chain, its hops (entered by a
    /// `goto`, which would become the `gotol`) or its hops but one (entered by a
    /// conditional jump, which would still need a near `gotol`).
    pub gotol_saves: u64,
    /// The return value.
    pub verdict: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Prologue = 0,
    Node,
    Leaf,
    Tail,
}

/// Diagrams counted one by one (later ones add to the last).
pub const DIAGRAMS: usize = 4;

/// Per instruction: its part, whether a node starts there, and its diagram (from the
/// first `diagram N` comment on; the prologue counts with diagram 0).
pub struct Parts {
    parts: Vec<(Part, bool, usize)>,
    /// Per instruction: 1 a relay `goto`, 2 a jump over relays, else 0.
    relay: Vec<u8>,
    /// Instruction index of each slot (`lddw` takes two).
    index_of_slot: Vec<usize>,
}

impl Parts {
    pub fn new(code: &Program) -> Parts {
        let mut parts = Vec::with_capacity(code.insns.len());
        let mut relay = Vec::with_capacity(code.insns.len());
        let mut part = Part::Prologue;
        let mut diagram = 0;
        let mut comments = code.comments.iter().peekable();
        for index in 0..code.insns.len() {
            let (mut starts, mut relay_kind) = (false, 0);
            while let Some(comment) = comments.next_if(|comment| comment.insn <= index) {
                let text = comment.text.as_str();
                if text == "relay" {
                    relay_kind = 1;
                } else if text.starts_with("relay: over") {
                    relay_kind = 2;
                }
                if let Some(number) = text.strip_prefix("diagram ").and_then(|rest| {
                    rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|digits| digits.parse::<usize>().ok())
                }) {
                    diagram = number.min(DIAGRAMS - 1);
                }
                if text.starts_with("classifier:") || text.starts_with("classifier table:") {
                    part = Part::Tail;
                } else if text.starts_with("diagram ") && text.contains(" candidates") {
                    part = Part::Leaf; // a table's candidate loop
                } else if text.starts_with("diagram ") && text.contains(" node ") {
                    part = if text.ends_with(": leaf") { Part::Leaf } else { Part::Node };
                    starts |= part == Part::Node;
                } else if text.starts_with("diagram ")
                    || text.starts_with("count the packet")
                    || text.starts_with("the best match's verdict")
                    || text.starts_with("return the verdict")
                {
                    part = Part::Tail;
                }
            }
            parts.push((part, starts, diagram));
            relay.push(relay_kind);
        }
        let mut index_of_slot = Vec::new();
        for (index, insn) in code.insns.iter().enumerate() {
            for _ in 0..insn.slots() {
                index_of_slot.push(index);
            }
        }
        Parts { parts, relay, index_of_slot }
    }
}

const CTX: u64 = 0x1000_0000;
const PACKET: u64 = 0x2000_0000;
const STACK: u64 = 0x3000_0000;
const VALUE: u64 = 0x4000_0000;
/// Table map `m`'s values start at `TABLES + m * REGION` (read-only).
const TABLES: u64 = 0x5000_0000;
const REGION: u64 = 0x1000_0000;

/// The classifier table arrays of an object (`codegen::table`): per map index, its value
/// size and values, which map lookups return pointers into.
#[derive(Default)]
pub struct Tables {
    maps: Vec<(u32, usize, Vec<u8>)>,
}

impl Tables {
    /// The tables `object` carries (none for an inline classifier).
    pub fn of(object: &[u8]) -> Result<Tables, String> {
        let manifest = pfc_compiler::object::read_manifest(object).map_err(|error| error.to_string())?;
        let parsed = pfc_compiler::object::BpfObject::parse(object).map_err(|error| error.to_string())?;
        let contents = pfc_compiler::object::read_table_contents(object, &manifest).map_err(|e| e.to_string())?;
        let mut maps = Vec::new();
        for (table, values) in contents {
            let index = parsed.map_index(&table.map).ok_or(format!("no map {}", table.map))?;
            if values.len() as u64 >= REGION {
                return Err(format!("table {} is too large to model", table.map));
            }
            maps.push((index as u32, table.value_size as usize, values));
        }
        Ok(Tables { maps })
    }

    /// The address of `map`'s value at `key`, if `map` is a table (`Some(0)`: a key past
    /// its end, the lookup's NULL).
    fn lookup(&self, map: u64, key: u64) -> Option<u64> {
        let position = self.maps.iter().position(|(index, _, _)| u64::from(*index) == map)?;
        let (_, size, values) = &self.maps[position];
        let offset = key as usize * size;
        Some(if offset + size <= values.len() { TABLES + position as u64 * REGION + offset as u64 } else { 0 })
    }
}

struct Memory<'p> {
    ctx: [u8; 24],
    packet: &'p [u8],
    stack: [u8; 512],
    value: [u8; 64],
    tables: &'p Tables,
}

impl Memory<'_> {
    fn region(&mut self, address: u64, len: usize) -> Result<&mut [u8], String> {
        let (base, bytes): (u64, &mut [u8]) = match address & !0x0fff_ffff {
            CTX => (CTX, &mut self.ctx),
            STACK => (STACK, &mut self.stack),
            VALUE => (VALUE, &mut self.value),
            PACKET => return Err(format!("write or unsupported access to the packet at {address:#x}")),
            _ => return Err(format!("access outside every region at {address:#x}")),
        };
        let offset = (address - base) as usize;
        bytes.get_mut(offset..offset + len).ok_or_else(|| format!("access out of its region at {address:#x}"))
    }

    fn load(&mut self, address: u64, size: Size) -> Result<u64, String> {
        let len = size.bytes() as usize;
        let mut word = [0u8; 8];
        let base = address & !0x0fff_ffff;
        if base == PACKET {
            let offset = (address - PACKET) as usize;
            let bytes = self.packet.get(offset..offset + len).ok_or("packet read past its end")?;
            word[..len].copy_from_slice(bytes);
        } else if base >= TABLES {
            let (_, _, values) =
                self.tables.maps.get(((base - TABLES) / REGION) as usize).ok_or("access outside every region")?;
            let offset = (address - base) as usize;
            word[..len].copy_from_slice(values.get(offset..offset + len).ok_or("read past a table's end")?);
        } else {
            word[..len].copy_from_slice(self.region(address, len)?);
        }
        Ok(u64::from_le_bytes(word))
    }

    fn store(&mut self, address: u64, size: Size, value: u64) -> Result<(), String> {
        let len = size.bytes() as usize;
        self.region(address, len)?.copy_from_slice(&value.to_le_bytes()[..len]);
        Ok(())
    }
}

fn alu(op: AluOp, a: u64, b: u64, wide: bool) -> u64 {
    let bits = if wide { 63 } else { 31 };
    let result = match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div => a.checked_div(b).unwrap_or(0),
        AluOp::Mod => a.checked_rem(b).unwrap_or(a),
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => a << (b & bits),
        AluOp::Rsh => a >> (b & bits),
        AluOp::Arsh if wide => ((a as i64) >> (b & bits)) as u64,
        AluOp::Arsh => u64::from(((a as i32) >> (b & bits)) as u32),
        AluOp::Mov => b,
    };
    if wide {
        result
    } else {
        result & 0xffff_ffff
    }
}

/// Runs `packet` through `code` (an XDP program, whose classifier tables are `tables`),
/// counting.
pub fn run(code: &Program, parts: &Parts, tables: &Tables, packet: &[u8]) -> Result<Path, String> {
    let mut memory = Memory { ctx: [0; 24], packet, stack: [0; 512], value: [0; 64], tables };
    memory.ctx[..4].copy_from_slice(&(PACKET as u32).to_le_bytes());
    memory.ctx[4..8].copy_from_slice(&((PACKET as usize + packet.len()) as u32).to_le_bytes());
    let mut regs = [0u64; 11];
    regs[1] = CTX;
    regs[10] = STACK + 512;
    let mut path = Path::default();
    let mut pc = 0usize;
    let mut slot = 0usize;
    // Whether the instruction before was a relay, and whether it was a plain `goto`.
    let (mut after_relay, mut after_goto) = (false, false);
    loop {
        let insn = code.insns.get(pc).ok_or("ran off the end")?;
        match parts.relay[pc] {
            1 => {
                path.relays += 1;
                if after_relay || after_goto {
                    path.gotol_saves += 1;
                }
            }
            2 => path.overs += 1,
            _ => {}
        }
        after_relay = parts.relay[pc] == 1;
        after_goto = matches!(insn, Insn::Ja { .. });
        let (part, starts, diagram) = parts.parts[pc];
        path.in_diagram[diagram].0 += 1;
        path.total += 1;
        match part {
            Part::Prologue => path.prologue += 1,
            Part::Node => path.nodes += 1,
            Part::Leaf => path.leaves += 1,
            Part::Tail => path.tail += 1,
        }
        if starts {
            path.visited += 1;
        }
        let operand = |regs: &[u64; 11], src: &Operand, wide: bool| match *src {
            Operand::Reg(reg) => regs[reg.number() as usize],
            Operand::Imm(imm) if wide => imm as i64 as u64,
            Operand::Imm(imm) => u64::from(imm as u32),
        };
        let mut next_slot = slot + insn.slots();
        match insn {
            Insn::Alu64 { op, dst, src } => {
                let b = operand(&regs, src, true);
                regs[dst.number() as usize] = alu(*op, regs[dst.number() as usize], b, true);
            }
            Insn::Alu32 { op, dst, src } => {
                let b = operand(&regs, src, false);
                regs[dst.number() as usize] = alu(*op, regs[dst.number() as usize], b, false);
            }
            Insn::Neg { wide, dst } => {
                let value = regs[dst.number() as usize].wrapping_neg();
                regs[dst.number() as usize] = if *wide { value } else { value & 0xffff_ffff };
            }
            Insn::Endian { order, width, dst } => {
                let value = regs[dst.number() as usize];
                regs[dst.number() as usize] = match (order, width) {
                    (ByteOrder::Big, EndianWidth::W16) => u64::from((value as u16).swap_bytes()),
                    (ByteOrder::Big, EndianWidth::W32) => u64::from((value as u32).swap_bytes()),
                    (ByteOrder::Big, EndianWidth::W64) => value.swap_bytes(),
                    (ByteOrder::Little, EndianWidth::W16) => value & 0xffff,
                    (ByteOrder::Little, EndianWidth::W32) => value & 0xffff_ffff,
                    (ByteOrder::Little, EndianWidth::W64) => value,
                };
            }
            Insn::Load { size, dst, src, off } => {
                let address = regs[src.number() as usize].wrapping_add(*off as i64 as u64);
                regs[dst.number() as usize] = memory.load(address, *size)?;
            }
            Insn::Store { size, dst, off, src } => {
                let address = regs[dst.number() as usize].wrapping_add(*off as i64 as u64);
                memory.store(address, *size, regs[src.number() as usize])?;
            }
            Insn::StoreImm { size, dst, off, imm } => {
                let address = regs[dst.number() as usize].wrapping_add(*off as i64 as u64);
                memory.store(address, *size, *imm as i64 as u64)?;
            }
            Insn::LoadImm64 { dst, imm } => regs[dst.number() as usize] = *imm,
            Insn::LoadMapIndex { dst, map } => regs[dst.number() as usize] = u64::from(*map),
            Insn::Jump { op, wide, dst, src, target } => {
                let b = operand(&regs, src, *wide);
                if op.holds(regs[dst.number() as usize], b, *wide) {
                    next_slot = (next_slot as i64 + i64::from(*target)) as usize;
                    path.taken += 1;
                    path.taken_in[part as usize] += 1;
                    path.in_diagram[diagram].1 += 1;
                }
            }
            Insn::Ja { target } => {
                next_slot = (next_slot as i64 + i64::from(*target)) as usize;
                path.taken += 1;
                path.taken_in[part as usize] += 1;
                path.in_diagram[diagram].1 += 1;
            }
            Insn::Call { helper: 1 } => {
                let key = memory.load(regs[2], Size::W)?;
                regs[0] = tables.lookup(regs[1], key).unwrap_or(VALUE);
            }
            Insn::Call { helper } => return Err(format!("helper {helper} is not modelled")),
            Insn::Exit => {
                path.verdict = regs[0];
                return Ok(path);
            }
        }
        if matches!(insn, Insn::Call { .. }) {
            regs[1..=5].iter_mut().for_each(|reg| *reg = 0);
        }
        slot = next_slot;
        pc = *parts.index_of_slot.get(slot).ok_or("jump past the end")?;
    }
}

/// Paths added up, and how many.
#[derive(Default)]
pub struct Sum {
    pub paths: u64,
    pub total: u64,
    pub prologue: u64,
    pub nodes: u64,
    pub visited: u64,
    pub leaves: u64,
    pub tail: u64,
    pub taken: u64,
    pub taken_in: [u64; 4],
    pub relays: u64,
    pub overs: u64,
    pub gotol_saves: u64,
    pub in_diagram: [(u64, u64); DIAGRAMS],
    pub deepest: u64,
}

impl Sum {
    pub fn add(&mut self, path: &Path) {
        self.paths += 1;
        self.total += path.total;
        self.prologue += path.prologue;
        self.nodes += path.nodes;
        self.visited += path.visited;
        self.leaves += path.leaves;
        self.tail += path.tail;
        self.taken += path.taken;
        for (sum, taken) in self.taken_in.iter_mut().zip(path.taken_in) {
            *sum += taken;
        }
        for (sum, (insns, taken)) in self.in_diagram.iter_mut().zip(path.in_diagram) {
            sum.0 += insns;
            sum.1 += taken;
        }
        self.relays += path.relays;
        self.overs += path.overs;
        self.gotol_saves += path.gotol_saves;
        self.deepest = self.deepest.max(path.total);
    }

    /// `total (prologue + nodes [visited] + leaves + tail), worst`, each a mean per packet.
    pub fn describe(&self) -> String {
        if self.paths == 0 {
            return "-".to_string();
        }
        let per = |value: u64| value as f64 / self.paths as f64;
        format!(
            "{:.1} = {:.1} prologue + {:.1} nodes ({:.1} visited) + {:.1} leaves + {:.1} tail; \
             {:.1} jumps taken = {:.1} + {:.1} + {:.1} + {:.1} ({:.2} relays, {:.2} over relays, \
             {:.2} a gotol would save); worst {}",
            per(self.total),
            per(self.prologue),
            per(self.nodes),
            per(self.visited),
            per(self.leaves),
            per(self.tail),
            per(self.taken),
            per(self.taken_in[0]),
            per(self.taken_in[1]),
            per(self.taken_in[2]),
            per(self.taken_in[3]),
            per(self.relays),
            per(self.overs),
            per(self.gotol_saves),
            self.deepest
        )
    }

    /// `insns (taken)` per diagram that any packet reached.
    pub fn per_diagram(&self) -> String {
        if self.paths == 0 {
            return "-".to_string();
        }
        let per = |value: u64| value as f64 / self.paths as f64;
        let reached: Vec<String> = self
            .in_diagram
            .iter()
            .filter(|(insns, _)| *insns > 0)
            .map(|&(insns, taken)| format!("{:.1} ({:.1})", per(insns), per(taken)))
            .collect();
        reached.join(" | ")
    }
}
