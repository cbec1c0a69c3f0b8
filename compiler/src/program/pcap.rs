//! The pcap filter program: what the pcap front end (`crate::pcap`) produces from a
//! checked expression, and its evaluator on raw frame bytes (the interpreter's half of
//! a `pcap "..."` atom). It lives beside [`Program`](super::Program), which holds one per
//! atom, so the stages that read a program (`eval`, `ir`, `codegen`) never import the
//! pcap front end.
//!
//! The program models libpcap's unoptimized classic BPF exactly: a tree of short-circuit
//! tests, evaluated left to right, whose leaves compare 32-bit unsigned values computed
//! from packet loads, constants, the frame length and arithmetic. **A load past the end
//! of the frame, or a division or modulo by zero, rejects the whole filter** (the value
//! of the atom is false, even under a `not` inside the expression), as libpcap's
//! `bpf_filter` returns 0. Shifts by 32 or more give 0. Arithmetic wraps at 32 bits.
//!
//! **Invariant:** [`PcapFilter::matches`] never panics and reads no byte outside the frame.

use crate::diagnostic::Span;

/// Most headers a `protochain` walk follows (extension headers and AH); a frame whose
/// walk would follow more rejects (docs/pcap.md, *Differences from tcpdump*: libpcap
/// keeps walking, and on some frames never stops). Walking header `k` reads 2 bytes at
/// least `40 + 8 (k - 1)` bytes into the IPv6 packet, so no frame of up to 1,519 bytes
/// (a full 1,500-byte MTU) walks 184 extension headers; libpcap's own test capture
/// walks 100.
pub const MAX_PROTOCHAIN_HEADERS: u32 = 183;

/// IPv6 extension headers libpcap's `protochain` walks over (hop-by-hop, routing,
/// fragment, destination options), by next-header value; AH is walked too, by its own rule.
pub const PROTOCHAIN_EXTENSIONS: [u32; 4] = [0, 43, 44, 60];
/// IPsec AH, walked by `protochain` on IPv4 and IPv6.
pub const PROTOCHAIN_AH: u32 = 51;
/// "No next header": the walk stops.
pub const PROTOCHAIN_NONE: u32 = 59;

/// Deepest value stack a comparison may need (see [`Val::value_depth`]): the code
/// generator keeps the values of a comparison in this many registers (r0–r6), and the
/// front end refuses (E0019) a filter that would need more.
pub const MAX_VALUE_DEPTH: usize = 7;

/// A compiled pcap expression. Two filters are equal when their test trees are: the
/// text is only for messages.
#[derive(Clone, Debug)]
pub struct PcapFilter {
    /// The expression as written inside the quotes (for messages such as `pfc explain`).
    pub text: String,
    /// The test tree.
    pub pred: Pred,
    /// Where the expression first reads a VLAN tag from the frame's bytes (`vlan`): under
    /// TC the kernel may have taken the outermost tag out of them (W0008).
    pub reads_tag: Option<Span>,
}

impl PartialEq for PcapFilter {
    fn eq(&self, other: &PcapFilter) -> bool {
        self.pred == other.pred
    }
}

impl Eq for PcapFilter {}

impl std::hash::Hash for PcapFilter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pred.hash(state);
    }
}

/// A boolean test, evaluated left to right with short circuits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pred {
    /// A constant.
    Const(bool),
    /// Negation (a rejection inside still rejects the whole filter).
    Not(Box<Pred>),
    /// All hold; stops at the first that does not.
    And(Vec<Pred>),
    /// One holds; stops at the first that does.
    Or(Vec<Pred>),
    /// `left OP right`, both computed in full (every load executed) before comparing.
    Test {
        /// Left value.
        left: Val,
        /// Comparison.
        op: TestOp,
        /// Right value.
        right: Val,
    },
}

/// A classic-BPF comparison, unsigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestOp {
    /// `==`
    Eq,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `left & right != 0`
    Set,
}

/// A 32-bit value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Val {
    /// A constant.
    Const(u32),
    /// The frame length.
    Len,
    /// `size` bytes (1, 2 or 4), big-endian, at `index + offset` from the frame start.
    Load {
        /// 1, 2 or 4.
        size: u8,
        /// The variable part of the offset (`Const(0)` for a fixed offset).
        index: Box<Val>,
        /// The constant part of the offset.
        offset: u32,
    },
    /// `left OP right`, wrapping.
    Alu(Alu, Box<Val>, Box<Val>),
    /// `-value`, wrapping.
    Neg(Box<Val>),
    /// The protocol at which libpcap's `protochain` walk (`gen_protochain`) stops: from
    /// the IPv4 protocol (cursor `4 * (ip[0] & 0xf)`) or the IPv6 next header (cursor 40),
    /// while the protocol is not `proto` and not 59, it follows IPv6 extension headers
    /// ([`PROTOCHAIN_EXTENSIONS`], IPv6 only: next = `[cursor]`, cursor +=
    /// `([cursor + 1] + 1) * 8`) and AH (next = `[cursor]`, cursor = `([cursor + 1] + 2) * 4` — libpcap
    /// sets rather than advances the cursor), offsets from the network header. A read
    /// past the frame, or more than [`MAX_PROTOCHAIN_HEADERS`] headers, rejects.
    Protochain {
        /// IPv6 (else IPv4).
        ipv6: bool,
        /// Offset of the network header in the frame.
        net: u32,
        /// The protocol looked for.
        proto: u32,
    },
}

/// An arithmetic operator of packet-access expressions (`/` and `%` by zero reject,
/// shifts of 32 or more give 0); the pcap parser's `ArithOp` is this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alu {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}

/// The filter rejected the frame (a load past the end, a division by zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject;

impl PcapFilter {
    /// libpcap's verdict for this frame (captured length = wire length).
    pub fn matches(&self, frame: &[u8]) -> bool {
        self.pred.eval(frame).unwrap_or(false)
    }
}

impl Pred {
    /// Evaluates the test; `Err` when the whole filter rejects.
    pub fn eval(&self, frame: &[u8]) -> Result<bool, Reject> {
        Ok(match self {
            Pred::Const(value) => *value,
            Pred::Not(inner) => !inner.eval(frame)?,
            Pred::And(items) => {
                for item in items {
                    if !item.eval(frame)? {
                        return Ok(false);
                    }
                }
                true
            }
            Pred::Or(items) => {
                for item in items {
                    if item.eval(frame)? {
                        return Ok(true);
                    }
                }
                false
            }
            Pred::Test { left, op, right } => {
                let (left, right) = (left.eval(frame)?, right.eval(frame)?);
                match op {
                    TestOp::Eq => left == right,
                    TestOp::Gt => left > right,
                    TestOp::Ge => left >= right,
                    TestOp::Set => left & right != 0,
                }
            }
        })
    }
}

impl Val {
    /// Computes the value; `Err` when the whole filter rejects.
    pub fn eval(&self, frame: &[u8]) -> Result<u32, Reject> {
        Ok(match self {
            Val::Const(value) => *value,
            Val::Len => frame.len() as u32,
            Val::Load { size, index, offset } => {
                let start = u64::from(index.eval(frame)?) + u64::from(*offset);
                let end = start + u64::from(*size);
                if end > frame.len() as u64 {
                    return Err(Reject);
                }
                frame[start as usize..end as usize].iter().fold(0u32, |value, byte| value << 8 | u32::from(*byte))
            }
            Val::Neg(inner) => inner.eval(frame)?.wrapping_neg(),
            Val::Protochain { ipv6, net, proto } => protochain(frame, *ipv6, *net, *proto)?,
            Val::Alu(op, left, right) => {
                let (a, b) = (left.eval(frame)?, right.eval(frame)?);
                match op {
                    Alu::Add => a.wrapping_add(b),
                    Alu::Sub => a.wrapping_sub(b),
                    Alu::Mul => a.wrapping_mul(b),
                    Alu::Div => a.checked_div(b).ok_or(Reject)?,
                    Alu::Mod => a.checked_rem(b).ok_or(Reject)?,
                    Alu::And => a & b,
                    Alu::Or => a | b,
                    Alu::Xor => a ^ b,
                    Alu::Shl => a.checked_shl(b).unwrap_or(0),
                    Alu::Shr => a.checked_shr(b).unwrap_or(0),
                }
            }
        })
    }

    /// How many values computing this one keeps at once when operands are computed
    /// left to right onto a stack (a load's index takes one more for the pointer).
    pub fn value_depth(&self) -> usize {
        match self {
            Val::Const(_) | Val::Len => 1,
            Val::Load { index, .. } => index.value_depth().max(2),
            Val::Neg(inner) => inner.value_depth(),
            // The protocol, the cursor, a pointer, a scratch value, two bit sets and the
            // loop's counter.
            Val::Protochain { .. } => 7,
            Val::Alu(_, left, right) => left.value_depth().max(right.value_depth() + 1),
        }
    }

    /// A load of `size` bytes at a fixed offset.
    pub fn at(size: u8, offset: u32) -> Val {
        Val::Load { size, index: Box::new(Val::Const(0)), offset }
    }
}

/// [`Val::Protochain`]'s walk on a frame.
fn protochain(frame: &[u8], ipv6: bool, net: u32, proto: u32) -> Result<u32, Reject> {
    let byte = |at: u64| frame.get(at as usize).map(|byte| u32::from(*byte)).ok_or(Reject);
    let net = u64::from(net);
    let (mut next, mut cursor) = if ipv6 { (byte(net + 6)?, 40) } else { (byte(net + 9)?, 4 * (byte(net)? & 0xf)) };
    for walked in 0..=MAX_PROTOCHAIN_HEADERS {
        if next == proto || next == PROTOCHAIN_NONE {
            return Ok(next);
        }
        let extension = ipv6 && PROTOCHAIN_EXTENSIONS.contains(&next);
        if !extension && next != PROTOCHAIN_AH {
            return Ok(next);
        }
        if walked == MAX_PROTOCHAIN_HEADERS {
            break;
        }
        let at = net + u64::from(cursor);
        let (header, length) = (byte(at)?, byte(at + 1)?);
        cursor = if extension { cursor + (length + 1) * 8 } else { (length + 2) * 4 };
        next = header;
    }
    Err(Reject)
}

impl Pred {
    /// Whether no comparison of the filter needs more than [`MAX_VALUE_DEPTH`] values.
    pub(crate) fn fits_value_depth(&self) -> bool {
        match self {
            Pred::Const(_) => true,
            Pred::Not(inner) => inner.fits_value_depth(),
            Pred::And(items) | Pred::Or(items) => items.iter().all(Pred::fits_value_depth),
            Pred::Test { left, right, .. } => left.value_depth().max(right.value_depth() + 1) <= MAX_VALUE_DEPTH,
        }
    }

    /// `value OP constant`.
    pub fn test(left: Val, op: TestOp, constant: u32) -> Pred {
        Pred::Test { left, op, right: Val::Const(constant) }
    }

    /// Negation.
    pub fn negation(inner: Pred) -> Pred {
        Pred::Not(Box::new(inner))
    }

    /// A test with the same answer on every frame: libpcap's `""` is `always(true)`;
    /// forms that can never hold on Ethernet are `always(false)`. Codegen emits no
    /// code for an atom that is constant as a whole.
    pub fn always(holds: bool) -> Pred {
        Pred::Const(holds)
    }
}
