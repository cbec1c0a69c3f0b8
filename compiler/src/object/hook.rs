//! Where a program attaches and what that means to the kernel: a [`Hook`] in, its section
//! name, program type, context layout and return codes (both ways) out.
//!
//! Two levels, because the object file can only say one of them:
//!
//! - [`Hook`] — the attach point a rule file names (`hook xdp`, `hook tc ingress`): XDP,
//!   TC ingress or TC egress. Rule files, the manifest, `pfc load --hook`, pin paths and
//!   every message use it.
//! - [`ProgramType`] — what the kernel sees: `BPF_PROG_TYPE_XDP` in section `xdp` or
//!   `BPF_PROG_TYPE_SCHED_CLS` in section `tc`. TC ingress and egress are one program type
//!   (the direction is chosen when attaching), so an object's section tells the program
//!   type and only the manifest tells the hook. Context layout and return codes belong
//!   to the program type; a hook reaches them through [`Hook::program_type`].
//!
//! **One spelling:** a hook prints as `xdp`, `tc-ingress`, `tc-egress` (pin directories,
//! `--hook`, JSON, the manifest); [`Hook::parse`] also accepts the rule-file words
//! `tc ingress`/`tc egress` (and manifests written before this module, which used them).
//! Rule files write the words ([`Hook::keywords`]) because the language has no `-` in
//! identifiers.

use std::fmt;

/// What happens to a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Let the packet through.
    Pass,
    /// Discard the packet.
    Drop,
}

impl Verdict {
    /// The keyword, as written in rule files and printed in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Drop => "drop",
        }
    }

    /// Parses [`Verdict::as_str`].
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Drop].into_iter().find(|verdict| verdict.as_str() == text)
    }
}

/// Where a program is attached, which decides its section, context and return codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Hook {
    /// XDP (native or generic): section `xdp`, `struct xdp_md` context, XDP_PASS = 2 /
    /// XDP_DROP = 1.
    #[serde(rename = "xdp")]
    Xdp,
    /// TC classifier on ingress (a TCX link): section `tc`, `struct __sk_buff` context,
    /// TC_ACT_OK = 0 / TC_ACT_SHOT = 2.
    #[serde(rename = "tc-ingress", alias = "tc ingress")]
    TcIngress,
    /// TC classifier on egress (a TCX link), as [`Hook::TcIngress`].
    #[serde(rename = "tc-egress", alias = "tc egress")]
    TcEgress,
}

impl Hook {
    /// Every hook, in the order `pfc status` lists them. A hook's index here is also its
    /// number in log events ([`Hook::event_code`]): add new hooks at the end.
    pub const ALL: [Hook; 3] = [Hook::Xdp, Hook::TcIngress, Hook::TcEgress];

    /// The hook's number in log events: its index in [`Hook::ALL`] (0 XDP, 1 TC ingress,
    /// 2 TC egress).
    pub fn event_code(self) -> u32 {
        Hook::ALL.iter().position(|hook| *hook == self).expect("every hook is in Hook::ALL") as u32
    }

    /// The hook a log event's number names (`None`: a number no hook has).
    pub fn from_event_code(code: u32) -> Option<Hook> {
        Hook::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// The one printed spelling: `xdp`, `tc-ingress`, `tc-egress` (also the pin
    /// directory's and the state file's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Xdp => "xdp",
            Hook::TcIngress => "tc-ingress",
            Hook::TcEgress => "tc-egress",
        }
    }

    /// How a rule file's `hook` statement writes it: `xdp`, `tc ingress`, `tc egress`.
    pub fn keywords(self) -> &'static str {
        match self {
            Hook::Xdp => "xdp",
            Hook::TcIngress => "tc ingress",
            Hook::TcEgress => "tc egress",
        }
    }

    /// Parses [`Hook::as_str`], the rule-file words ([`Hook::keywords`]) and `tc_ingress`.
    pub fn parse(text: &str) -> Option<Hook> {
        let canonical = text.trim().replace([' ', '_'], "-");
        Hook::ALL.into_iter().find(|hook| hook.as_str() == canonical)
    }

    /// The kernel program type of a program attached here.
    pub fn program_type(self) -> ProgramType {
        match self {
            Hook::Xdp => ProgramType::Xdp,
            Hook::TcIngress | Hook::TcEgress => ProgramType::SchedCls,
        }
    }

    /// The ELF section name of its program (`xdp`, `tc`).
    pub fn section(self) -> &'static str {
        self.program_type().section()
    }

    /// The context layout its program reads.
    pub fn context(self) -> &'static Context {
        self.program_type().context()
    }

    /// The value its program returns for `verdict`.
    pub fn return_code(self, verdict: Verdict) -> i32 {
        self.program_type().return_code(verdict)
    }

    /// The verdict a return value means here; `None` for a value pfc never returns.
    pub fn verdict(self, value: u64) -> Option<Verdict> {
        self.program_type().verdict(value)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kernel program type (`BPF_PROG_TYPE_*`), which the section name tells loaders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgramType {
    /// `BPF_PROG_TYPE_XDP` (6), section `xdp`, context `struct xdp_md`.
    Xdp,
    /// `BPF_PROG_TYPE_SCHED_CLS` (3), section `tc`, context `struct __sk_buff`.
    SchedCls,
}

impl ProgramType {
    /// Every program type pfc writes.
    pub const ALL: [ProgramType; 2] = [ProgramType::Xdp, ProgramType::SchedCls];

    /// The ELF section name that tells libbpf the type.
    pub fn section(self) -> &'static str {
        match self {
            ProgramType::Xdp => "xdp",
            ProgramType::SchedCls => "tc",
        }
    }

    /// The `BPF_PROG_TYPE_*` number.
    pub fn number(self) -> u32 {
        match self {
            ProgramType::Xdp => 6,
            ProgramType::SchedCls => 3,
        }
    }

    /// The helper that copies packet bytes out of this type's context:
    /// `bpf_xdp_load_bytes` (189) or `bpf_skb_load_bytes` (26).
    pub(crate) fn load_bytes_helper(self) -> u32 {
        match self {
            ProgramType::Xdp => crate::bpf::opcode::HELPER_XDP_LOAD_BYTES,
            ProgramType::SchedCls => crate::bpf::opcode::HELPER_SKB_LOAD_BYTES,
        }
    }

    /// The layout of the context the program gets in r1.
    pub fn context(self) -> &'static Context {
        match self {
            ProgramType::Xdp => &XDP_MD,
            ProgramType::SchedCls => &SK_BUFF,
        }
    }

    /// The return value for `verdict`: XDP_PASS 2 / XDP_DROP 1; TC_ACT_OK 0 / TC_ACT_SHOT 2.
    pub fn return_code(self, verdict: Verdict) -> i32 {
        match (self, verdict) {
            (ProgramType::Xdp, Verdict::Pass) => 2,
            (ProgramType::Xdp, Verdict::Drop) => 1,
            (ProgramType::SchedCls, Verdict::Pass) => 0,
            (ProgramType::SchedCls, Verdict::Drop) => 2,
        }
    }

    /// The verdict of a return value ([`ProgramType::return_code`] backwards); `None` for
    /// any other value (XDP_TX, TC_ACT_UNSPEC, …), which pfc never returns.
    pub fn verdict(self, value: u64) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Drop].into_iter().find(|verdict| self.return_code(*verdict) as u64 == value)
    }
}

impl From<Hook> for ProgramType {
    fn from(hook: Hook) -> ProgramType {
        hook.program_type()
    }
}

/// Where a program type's context keeps what pfc reads (byte offsets of 32-bit fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// The C struct's name.
    pub name: &'static str,
    /// Bytes a program may read (reads past it are refused by the kernel).
    pub size: i16,
    /// `data`: the first packet byte.
    pub data: i16,
    /// `data_end`: one past the last packet byte.
    pub data_end: i16,
    /// `data_meta`: the metadata before the packet (equal to `data` when there is none).
    pub data_meta: i16,
    /// The packet length, when the context holds it (`__sk_buff.len`); XDP programs
    /// compute `data_end - data`.
    pub len: Option<i16>,
    /// The index of the interface the packet arrived on or leaves by
    /// (`xdp_md.ingress_ifindex`, `__sk_buff.ifindex`).
    pub ifindex: i16,
    /// A field the kernel verifier treats as an unknown scalar, read once to initialise
    /// stack words the verifier must not track (`rx_queue_index`, `len`).
    pub unknown_scalar: i16,
    /// Where the context holds the outermost VLAN tag when the kernel took it out of the
    /// frame (`__sk_buff.vlan_present`, `vlan_tci`: TC ingress always, TC egress through
    /// a VLAN device with transmit offload); `None` where a tag stays in the bytes (XDP).
    pub vlan_tag: Option<ContextTag>,
}

/// The context fields of a VLAN tag held outside the frame (byte offsets of 32-bit fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextTag {
    /// 1 when the frame had a tag there, else 0.
    pub present: i16,
    /// The tag's control information in host order: PCP (3 bits), DEI, VID (12 bits).
    pub tci: i16,
}

/// `struct xdp_md`: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
pub const XDP_MD: Context = Context {
    name: "xdp_md",
    size: 24,
    data: 0,
    data_end: 4,
    data_meta: 8,
    len: None,
    ifindex: xdp_md::INGRESS_IFINDEX,
    unknown_scalar: 16,
    vlan_tag: None,
};

/// `struct __sk_buff` (the fields pfc reads or the VM fills; see [`sk_buff`]).
pub(crate) const SK_BUFF: Context = Context {
    name: "__sk_buff",
    size: 192,
    data: sk_buff::DATA,
    data_end: sk_buff::DATA_END,
    data_meta: sk_buff::DATA_META,
    len: Some(sk_buff::LEN),
    ifindex: sk_buff::IFINDEX,
    unknown_scalar: sk_buff::LEN,
    vlan_tag: Some(ContextTag { present: sk_buff::VLAN_PRESENT, tci: sk_buff::VLAN_TCI }),
};

/// Offsets in `struct xdp_md` beyond [`XDP_MD`]'s.
pub mod xdp_md {
    /// `ingress_ifindex`.
    pub const INGRESS_IFINDEX: i16 = 12;
}

/// Offsets in `struct __sk_buff` (linux/bpf.h).
pub mod sk_buff {
    /// `len`.
    pub const LEN: i16 = 0;
    /// `pkt_type`.
    pub const PKT_TYPE: i16 = 4;
    /// `protocol` (network byte order in a `__be16`).
    pub const PROTOCOL: i16 = 16;
    /// `vlan_present`: 1 when the outermost VLAN tag is out of the frame, in the skb.
    pub const VLAN_PRESENT: i16 = 20;
    /// `vlan_tci`: that tag's control information, host order.
    pub const VLAN_TCI: i16 = 24;
    /// `vlan_proto`: that tag's TPID, network order in a `__be16`.
    pub const VLAN_PROTO: i16 = 28;
    /// `ifindex`.
    pub const IFINDEX: i16 = 40;
    /// `data`.
    pub(crate) const DATA: i16 = 76;
    /// `data_end`.
    pub(crate) const DATA_END: i16 = 80;
    /// `data_meta`.
    pub(crate) const DATA_META: i16 = 140;
    /// `wire_len`.
    pub const WIRE_LEN: i16 = 160;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_are_positions_in_all_and_read_back() {
        assert_eq!([Hook::Xdp.event_code(), Hook::TcIngress.event_code(), Hook::TcEgress.event_code()], [0, 1, 2]);
        for hook in Hook::ALL {
            assert_eq!(Hook::from_event_code(hook.event_code()), Some(hook));
        }
        assert_eq!(Hook::from_event_code(Hook::ALL.len() as u32), None);
        assert_eq!(Hook::from_event_code(u32::MAX), None);
    }

    #[test]
    fn hooks_print_one_way_and_parse_every_way_users_type_them() {
        for hook in Hook::ALL {
            assert_eq!(Hook::parse(hook.as_str()), Some(hook));
            assert_eq!(Hook::parse(hook.keywords()), Some(hook));
            assert_eq!(hook.to_string(), hook.as_str());
            let json = serde_json::to_string(&hook).unwrap();
            assert_eq!(json, format!("\"{}\"", hook.as_str()));
            assert_eq!(serde_json::from_str::<Hook>(&json).unwrap(), hook);
            assert_eq!(serde_json::from_str::<Hook>(&format!("\"{}\"", hook.keywords())).unwrap(), hook);
        }
        assert_eq!(Hook::parse("tc_egress"), Some(Hook::TcEgress));
        assert_eq!(Hook::parse("tc"), None);
        assert_eq!(Hook::parse("xdp ingress"), None);
    }

    #[test]
    fn return_codes_read_back_as_their_verdicts() {
        for ty in ProgramType::ALL {
            for verdict in [Verdict::Pass, Verdict::Drop] {
                assert_eq!(ty.verdict(ty.return_code(verdict) as u64), Some(verdict));
            }
        }
        assert_eq!(Hook::Xdp.return_code(Verdict::Pass), 2);
        assert_eq!(Hook::TcEgress.return_code(Verdict::Drop), 2);
        assert_eq!(Hook::TcIngress.verdict(0), Some(Verdict::Pass));
        assert_eq!(Hook::Xdp.verdict(3), None, "XDP_TX is no pfc verdict");
        assert_eq!(ProgramType::SchedCls.verdict(u64::MAX), None, "TC_ACT_UNSPEC is no pfc verdict");
    }
}
