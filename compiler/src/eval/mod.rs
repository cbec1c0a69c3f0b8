//! The interpreter, pfc's executable specification. Input: a checked [`Program`] and the
//! bytes of one frame; output: the [`Outcome`] (verdict and deciding rule).
//!
//! The eBPF code generator is tested against this module, so the parsing rules below are
//! the contract. **Invariant:** no byte string makes [`evaluate`] panic or read out of
//! bounds, and nothing allocates per packet.
//!
//! # Parsing ([`Headers::parse`])
//!
//! Headers are located once per packet; a header counts as *present* only when all its
//! bytes are inside the frame. Offsets are relative to the start of the frame.
//!
//! 1. **Ethernet** is present iff the frame has at least 14 bytes. The ethertype is the
//!    big-endian `u16` at byte 12.
//! 2. **VLAN tags.** While the ethertype is `0x8100` or `0x88a8` and fewer than two tags
//!    were parsed, a tag of 4 bytes (TCI, then the next ethertype) follows.
//!    - The outermost tag's offset is the `vlan` header (`vlan.id`/`vlan.pcp` read its
//!      TCI); the second tag is parsed only to skip it.
//!    - A truncated outermost tag: `vlan` absent, payload ethertype unknown, nothing
//!      after it parsed.
//!    - A truncated second tag: `vlan` present (the outer tag is complete), payload
//!      ethertype unknown, nothing after it parsed.
//!    - A third tag is not parsed: after two tags the payload ethertype may itself be
//!      `0x8100`/`0x88a8`, and then no network header is parsed.
//! 3. **Payload ethertype** (`eth.type`) is the ethertype after the last parsed tag (the
//!    Ethernet ethertype without tags). It is unknown, so `eth.type` atoms are false,
//!    without Ethernet or when a tag is truncated. The network header starts right after
//!    the last tag.
//! 4. **ARP** (`0x0806`) is present iff 28 bytes are there; hardware and protocol types
//!    are not checked.
//! 5. **IPv4** (`0x0800`) is present iff 20 bytes are there, `ihl` (low nibble of byte 0)
//!    is at least 5 and all `ihl * 4` bytes are inside the frame. The version nibble is
//!    not checked, like libpcap and the reference C. The upper protocol is byte 9, the
//!    transport header starts at `ihl * 4`, and transport headers exist only when the
//!    fragment offset (low 13 bits of the `u16` at byte 6) is zero: unfragmented packets
//!    and first fragments.
//! 6. **IPv6** (`0x86dd`) is present iff 40 bytes are there. The extension-header chain
//!    is walked from `next` = byte 6, at most four headers:
//!    - hop-by-hop (0), routing (43), destination options (60): the header is
//!      `(len + 1) * 8` bytes long (`len` is its second byte) and all of those bytes must
//!      be inside the frame;
//!    - fragment (44): all 8 bytes must be present; it is 8 bytes long. If its fragment
//!      offset (`u16` at +2, `& 0xfff8`) is non-zero the packet is a non-first fragment:
//!      the walk stops, the upper protocol is the fragment header's next-header byte
//!      (whatever it is) and there is no transport header;
//!    - a truncated extension header, or a fifth extension header (the next header is
//!      still 0, 43, 60 or 44 after four), leaves the upper protocol unknown and no
//!      transport header;
//!    - any other next-header value ends the walk: it is the upper protocol
//!      (`ipv6.proto`) and the transport header starts there.
//!
//!    The order of extension headers is not checked (hop-by-hop may appear anywhere).
//! 7. **Transport**: protocol 6 TCP (20 bytes), 17 UDP (8), 132 SCTP (12), 1 ICMP (8)
//!    only over IPv4, 58 ICMPv6 (8) only over IPv6. Present iff allowed by the fragment
//!    rules above and all [`Proto::min_len`](crate::fields::Proto::min_len) bytes are
//!    inside the frame.
//! 8. `pkt.len` is the frame length and is always known.
//!
//! # Evaluation
//!
//! - A field is read only through [`Field::source`](crate::fields::Field::source):
//!   `size` bytes big-endian at header offset + `offset`, `>> shift`, `& mask`, `+ add`.
//! - A [`Test`] is false when the field's value is unknown (its header is absent); else
//!   the test's mask, if any, is applied and the comparison or set membership decides.
//!   `NotIn` therefore means "header present and value not in the set", and
//!   `tcp.dport != 22` is false on a UDP packet while `not tcp.dport == 22` is true.
//! - `Cond::Proto(p)` holds iff header `p` is present.
//! - `And`/`Or` evaluate left to right and short-circuit; an empty `And` is true, an
//!   empty `Or` is false.
//! - A dynamic set (`TestOp::InDynamic`) is tested against its *current* contents,
//!   [`DynamicSet::elements`](crate::program::DynamicSet::elements): a value is in it when
//!   some prefix (address sets: the longest-prefix match finds one iff one covers it) or
//!   value of the field's kind is. Callers change the contents between packets
//!   (`pfc test` case files, the differential tests) with `DynamicSet::set_elements`.
//! - `Cond::Pcap(id)` is libpcap's verdict for the whole frame under the filter
//!   (`crate::program::pcap::PcapFilter::matches`); it ignores the parse above.
//! - `Cond::Limit(id)` (always the last operand of a rule's top-level `and`, so it is
//!   reached only when everything else in the rule held) takes a token from the bucket
//!   of the packet's key at the packet's time, following [`crate::program::limit`] exactly, and
//!   holds when the packet exceeded (`rate >`) or conformed (`rate <=`). The buckets
//!   are the [`State`] passed to [`evaluate_at`]; [`evaluate`] uses fresh buckets at
//!   time 0, so there a limit sees a full bucket. Only limits allocate (a new key).
//!   A rule's limit counts the packet in [`State::limit_stats`], over or within its rate,
//!   as the compiled code counts it in its limit statistics map.
//! - Rules are tried in order; the first whose condition holds decides, else the
//!   program's default verdict.
//! - A deciding rule with `log` then takes a token from its log limit (with a
//!   [`State`] only); [`State::logged`] says whether the packet sent an event.

mod headers;

pub use headers::{Headers, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};

use crate::fields::Field;
use crate::program::limit::{BucketTable, LimitStats};
use crate::program::{Cond, LimitId, Program, Test, TestOp, Verdict};

/// The buckets of a program's rate limits, one [`BucketTable`] per limit.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// `tables[i]` holds the buckets of `program.limits[i]`.
    pub tables: Vec<BucketTable>,
    /// Whether the last [`evaluate_at`] sent a log event: its deciding rule logs and the
    /// rule's log limit had a token.
    pub logged: bool,
    /// Packets over and within the rate of each rule's limit so far, by limit index (log
    /// limits stay at zero).
    pub limit_stats: Vec<LimitStats>,
    key: Vec<u8>,
}

impl State {
    /// Empty buckets for every limit of `program`.
    pub fn new(program: &Program) -> State {
        let tables = program.limits.iter().map(|limit| BucketTable::new(limit.buckets)).collect();
        let limit_stats = vec![LimitStats::default(); program.limits.len()];
        State { tables, logged: false, limit_stats, key: Vec::new() }
    }
}

/// The result of running a program on one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Outcome {
    /// What happens to the packet.
    pub verdict: Verdict,
    /// Index in [`Program::rules`] of the rule that decided; `None` for the default.
    pub rule: Option<usize>,
}

/// Runs `program` on `packet`: the first rule whose condition holds decides. Rate limits
/// see fresh (full) buckets at time 0; use [`evaluate_at`] to keep them.
pub fn evaluate(program: &Program, packet: &[u8]) -> Outcome {
    if program.limits.is_empty() {
        return run(program, FieldCache::new(&Headers::parse(packet)));
    }
    evaluate_at(program, packet, &mut State::new(program), 0)
}

/// Runs `program` on `packet` arriving at `now_ns` nanoseconds, with the rate limits'
/// buckets in `state` (updated).
pub fn evaluate_at(program: &Program, packet: &[u8], state: &mut State, now_ns: u64) -> Outcome {
    let headers = Headers::parse(packet);
    let mut fields = FieldCache::new(&headers);
    fields.clock = Some((state, now_ns));
    run(program, fields)
}

fn run(program: &Program, mut fields: FieldCache<'_, '_>) -> Outcome {
    let decided = program.rules.iter().position(|rule| cond_holds(&rule.condition, program, &mut fields));
    // A logged rule's event passes its own limit after the decision (the counter tail).
    let logged = decided.and_then(|index| program.rules[index].log).is_some_and(|log| {
        fields.clock.is_some() && program.limit(log.limit).holds(take(log.limit, program, &mut fields))
    });
    if let Some((state, _)) = fields.clock.as_mut() {
        state.logged = logged;
    }
    decided.map_or(Outcome { verdict: program.default, rule: None }, |index| Outcome {
        verdict: program.rules[index].verdict,
        rule: Some(index),
    })
}

/// Whether `cond` holds for the packet that `headers` describes; `program` supplies the
/// value sets.
pub fn eval_cond(cond: &Cond, program: &Program, headers: &Headers) -> bool {
    cond_holds(cond, program, &mut FieldCache::new(headers))
}

/// Field values of one packet, each read on first use: rule sets test the same few
/// fields again and again. Lives on the stack; allocates nothing.
struct FieldCache<'h, 'a> {
    headers: &'h Headers<'a>,
    /// The rate limits' buckets and the packet's time.
    clock: Option<(&'h mut State, u64)>,
    /// Bit `f`: field `f` was read; `present` bit `f`: and its header is present.
    read: u64,
    present: u64,
    values: [u128; FIELDS],
}

const FIELDS: usize = Field::ALL.len();
const _: () = assert!(FIELDS <= 64, "FieldCache keeps one bit per field in a u64");

impl<'h, 'a> FieldCache<'h, 'a> {
    fn new(headers: &'h Headers<'a>) -> Self {
        FieldCache { headers, clock: None, read: 0, present: 0, values: [0; FIELDS] }
    }

    /// [`Headers::field_value`], read once per packet.
    fn value(&mut self, field: Field) -> Option<u128> {
        let index = field as usize;
        let bit = 1u64 << index;
        if self.read & bit == 0 {
            self.read |= bit;
            if let Some(value) = self.headers.field_value(field) {
                self.present |= bit;
                self.values[index] = value;
            }
        }
        (self.present & bit != 0).then(|| self.values[index])
    }
}

fn cond_holds(cond: &Cond, program: &Program, fields: &mut FieldCache<'_, '_>) -> bool {
    match cond {
        Cond::True => true,
        Cond::False => false,
        Cond::Proto(proto) => fields.headers.has(*proto),
        Cond::Not(inner) => !cond_holds(inner, program, fields),
        Cond::And(all) => all.iter().all(|c| cond_holds(c, program, fields)),
        Cond::Or(any) => any.iter().any(|c| cond_holds(c, program, fields)),
        Cond::Test(test) => test_holds(test, program, fields),
        Cond::Pcap(id) => program.pcap(*id).matches(fields.headers.packet),
        Cond::Limit(id) => {
            let conformed = take(*id, program, fields);
            if let Some((state, _)) = fields.clock.as_mut() {
                state.limit_stats[id.0 as usize].count(conformed);
            }
            program.limit(*id).holds(conformed)
        }
    }
}

/// Takes a token from the packet's bucket (see [`crate::program::limit`]); whether the
/// packet conformed (found enough tokens).
fn take(id: LimitId, program: &Program, fields: &mut FieldCache<'_, '_>) -> bool {
    let limit = program.limit(id);
    let len = fields.headers.packet.len() as u32;
    let Some((state, now)) = fields.clock.take() else {
        return limit.take(None, 0, len).1;
    };
    let mut key = std::mem::take(&mut state.key);
    limit.key_bytes(|field| fields.value(field), &mut key);
    let table = &mut state.tables[id.0 as usize];
    let (bucket, conformed) = limit.take(table.touch(&key), now, len);
    table.store(&key, bucket);
    state.key = key;
    fields.clock = Some((state, now));
    conformed
}

/// One guarded atom: false when the field's header is absent.
fn test_holds(test: &Test, program: &Program, fields: &mut FieldCache<'_, '_>) -> bool {
    let Some(value) = fields.value(test.field) else {
        return false;
    };
    let value = test.mask.map_or(value, |mask| value & mask);
    match test.op {
        TestOp::Cmp(op, constant) => op.holds(value, constant),
        TestOp::In(set) => program.set(set).contains(value),
        TestOp::NotIn(set) => !program.set(set).contains(value),
        TestOp::InDynamic(set) => program.dynamic_set(set).contains(test.field.kind(), value),
        TestOp::NotInDynamic(set) => !program.dynamic_set(set).contains(test.field.kind(), value),
    }
}

#[cfg(test)]
mod tests {
    use crate::fields::{Field, FieldSource};

    /// The interpreter and the code generator rely on this: a present header makes all
    /// its fields readable.
    #[test]
    fn every_header_field_lies_within_its_headers_minimum_length() {
        for &field in Field::ALL {
            if let FieldSource::Header { proto, offset, size, .. } = field.source() {
                assert!(offset + size <= proto.min_len(), "{} reads past its header", field.name());
            }
        }
    }
}
