//! Packet shapes: which headers the interpreter finds in a frame. Input: nothing; output:
//! the table of shapes, the shapes in which each protocol and field is present, and the
//! universe (every shape with the field values it allows).
//!
//! A shape is a link state (runt frame, a cut VLAN tag, untagged, tagged) and a network
//! state (nothing parsed, ARP, IPv4 or IPv6 with its transport header or none, IPv6 whose
//! extension headers hide the upper protocol). One and two VLAN tags are one shape: no
//! field tells them apart, only the payload ethertype (`0x8100` after two tags).

use std::sync::OnceLock;

use super::ivs::Ivs;
use super::Cube;
use crate::fields::{Field, Proto};

/// A set of shapes, one bit per index of [`shapes`].
pub type ShapeSet = u64;

/// How far the frame's link layer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Shorter than an Ethernet header: no header at all.
    Runt,
    /// Ethernet, then a VLAN tag cut short: no tag, no payload ethertype.
    CutFirstTag,
    /// Ethernet, a tag, then a second tag cut short: `vlan` but no payload ethertype.
    CutSecondTag,
    /// Ethernet without tags.
    Untagged,
    /// Ethernet with one or two complete tags.
    Tagged,
}

/// What the interpreter finds after the link layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// No network header (other ethertype, or one cut short).
    None,
    /// ARP.
    Arp,
    /// IPv4 and its transport header, if one is present.
    Ipv4(Option<Proto>),
    /// IPv6 whose extension headers could not be walked: `ipv6.proto` unknown.
    Ipv6Opaque,
    /// IPv6 and its transport header, if one is present.
    Ipv6(Option<Proto>),
}

/// One packet shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The link layer.
    pub link: Link,
    /// The network layer.
    pub net: Net,
}

const IPV4_L4: [Option<Proto>; 5] = [None, Some(Proto::Tcp), Some(Proto::Udp), Some(Proto::Sctp), Some(Proto::Icmp)];
const IPV6_L4: [Option<Proto>; 5] = [None, Some(Proto::Tcp), Some(Proto::Udp), Some(Proto::Sctp), Some(Proto::Icmp6)];
/// IPv6 next-header values of the extension headers the interpreter walks.
pub(crate) const IPV6_EXTENSIONS: [u128; 4] = [0, 43, 44, 60];

/// Every shape; a [`ShapeSet`] bit `i` stands for `shapes()[i]`.
pub fn shapes() -> &'static [Shape] {
    static SHAPES: OnceLock<Vec<Shape>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        let mut all = vec![
            Shape { link: Link::Runt, net: Net::None },
            Shape { link: Link::CutFirstTag, net: Net::None },
            Shape { link: Link::CutSecondTag, net: Net::None },
        ];
        for link in [Link::Untagged, Link::Tagged] {
            all.push(Shape { link, net: Net::None });
            all.push(Shape { link, net: Net::Arp });
            all.extend(IPV4_L4.iter().map(|&l4| Shape { link, net: Net::Ipv4(l4) }));
            all.push(Shape { link, net: Net::Ipv6Opaque });
            all.extend(IPV6_L4.iter().map(|&l4| Shape { link, net: Net::Ipv6(l4) }));
        }
        assert!(all.len() <= 64, "a ShapeSet has 64 bits");
        all
    })
}

/// Every shape.
pub(crate) fn all_shapes() -> ShapeSet {
    let count = shapes().len();
    (1u64 << count) - 1
}

impl Shape {
    /// Whether `proto`'s header is present in this shape.
    pub fn has(self, proto: Proto) -> bool {
        match proto {
            Proto::Eth => self.link != Link::Runt,
            Proto::Vlan => matches!(self.link, Link::Tagged | Link::CutSecondTag),
            Proto::Arp => self.net == Net::Arp,
            Proto::Ipv4 => matches!(self.net, Net::Ipv4(_)),
            Proto::Ipv6 => matches!(self.net, Net::Ipv6(_) | Net::Ipv6Opaque),
            transport => matches!(self.net, Net::Ipv4(Some(p)) | Net::Ipv6(Some(p)) if p == transport),
        }
    }

    /// Whether `field` has a value in this shape (its guard holds).
    pub(crate) fn has_field(self, field: Field) -> bool {
        match field {
            Field::EthType => matches!(self.link, Link::Untagged | Link::Tagged),
            Field::Ipv6Proto => matches!(self.net, Net::Ipv6(_)),
            _ => field.guard().map_or(true, |proto| self.has(proto)),
        }
    }

    /// Bytes before the network header.
    pub(crate) fn link_len(self) -> u128 {
        match self.link {
            Link::Tagged => 18,
            _ => 14,
        }
    }
}

/// The shapes in which `proto` is present.
pub(crate) fn with_proto(proto: Proto) -> ShapeSet {
    mask(|shape| shape.has(proto))
}

/// The shapes in which `field` has a value.
pub(crate) fn with_field(field: Field) -> ShapeSet {
    static MASKS: OnceLock<Vec<ShapeSet>> = OnceLock::new();
    MASKS.get_or_init(|| Field::ALL.iter().map(|&f| mask(|shape| shape.has_field(f))).collect())[field as usize]
}

/// The shapes for which `keep` holds.
pub fn mask(keep: impl Fn(Shape) -> bool) -> ShapeSet {
    shapes().iter().enumerate().filter(|(_, &shape)| keep(shape)).fold(0, |set, (index, _)| set | 1 << index)
}

/// The universe: every shape with the values its fields can take together. An
/// over-approximation (a box may hold value combinations no frame has, such as an IPv4
/// length below the header length), never an under-approximation: every frame's shape
/// and field values lie in it.
pub fn universe() -> &'static [Cube] {
    static UNIVERSE: OnceLock<Vec<Cube>> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        shapes().iter().enumerate().flat_map(|(index, &shape)| shape_cubes(1 << index, shape)).collect()
    })
}

fn shape_cubes(bit: ShapeSet, shape: Shape) -> Vec<Cube> {
    let len_from = |low: u128| (Field::PktLen, Ivs::range(low, u32::MAX as u128));
    let point = |value: u128| Ivs::range(value, value);
    let link = shape.link_len();
    let cube = |dims: Vec<(Field, Ivs)>| Cube::new(bit, dims);
    match (shape.link, shape.net) {
        (Link::Runt, _) => vec![cube(vec![(Field::PktLen, Ivs::range(0, 13))])],
        (Link::CutFirstTag, _) => vec![cube(vec![(Field::PktLen, Ivs::range(14, 17))])],
        (Link::CutSecondTag, _) => vec![cube(vec![(Field::PktLen, Ivs::range(18, 21))])],
        (_, Net::None) => {
            // An ethertype that starts no header, or one whose header is cut short.
            let mut others = Ivs::full(0xffff).minus(&Ivs::from_unsorted(vec![
                (0x0800, 0x0800),
                (0x0806, 0x0806),
                (0x86dd, 0x86dd),
            ]));
            if shape.link == Link::Untagged {
                others = others.minus(&Ivs::from_unsorted(vec![(0x8100, 0x8100), (0x88a8, 0x88a8)]));
            }
            // A longest tagged IPv6 or ARP header cut short: two tags (22 bytes) first.
            let cut = |header: u128| Ivs::range(link, 22 + header - 1);
            vec![
                cube(vec![(Field::EthType, others), len_from(link)]),
                cube(vec![(Field::EthType, point(0x0800)), len_from(link)]),
                cube(vec![(Field::EthType, point(0x0806)), (Field::PktLen, cut(28))]),
                cube(vec![(Field::EthType, point(0x86dd)), (Field::PktLen, cut(40))]),
            ]
        }
        (_, Net::Arp) => vec![cube(vec![(Field::EthType, point(0x0806)), len_from(link + 28)])],
        (_, Net::Ipv4(l4)) => {
            let mut dims = vec![(Field::EthType, point(0x0800)), (Field::Ipv4Ihl, Ivs::range(5, 15))];
            let mut min = link + 20;
            if let Some(proto) = l4 {
                dims.push((Field::Ipv4Proto, point(proto.ip_protocol().map_or(0, u128::from))));
                dims.push((Field::Ipv4FragOffset, point(0)));
                min += proto.min_len() as u128;
            }
            dims.push(len_from(min));
            vec![cube(dims)]
        }
        (_, Net::Ipv6Opaque) => {
            let ext = Ivs::from_unsorted(IPV6_EXTENSIONS.iter().map(|&v| (v, v)).collect());
            vec![cube(vec![(Field::EthType, point(0x86dd)), (Field::Ipv6Next, ext), len_from(link + 40)])]
        }
        (_, Net::Ipv6(l4)) => match l4 {
            None => vec![cube(vec![(Field::EthType, point(0x86dd)), len_from(link + 40)])],
            Some(proto) => {
                let number = proto.ip_protocol().map_or(0, u128::from);
                let min = link + 40 + proto.min_len() as u128;
                let ext = Ivs::from_unsorted(IPV6_EXTENSIONS.iter().map(|&v| (v, v)).collect());
                let base = vec![(Field::EthType, point(0x86dd)), (Field::Ipv6Proto, point(number)), len_from(min)];
                let mut direct = base.clone();
                direct.push((Field::Ipv6Next, point(number)));
                let mut behind = base;
                behind.push((Field::Ipv6Next, ext));
                vec![cube(direct), cube(behind)]
            }
        },
    }
}
