//! `pfc test --pcap FILE --direction in|out|any --mac MAC`: which frames of a capture a
//! hook would see. Input: a captured Ethernet frame and the MAC address of the interface
//! the capture was taken on; output: the frame's [`Class`], and whether the chosen
//! direction judges it.
//!
//! A capture taken with tcpdump's defaults holds both directions, and, because tcpdump
//! makes the interface promiscuous, unicast frames between other hosts too. The
//! Ethernet addresses tell them apart (docs/testing.md, "Direction"):
//!
//! - **out**: the source address is the interface's: the host sent it. TC egress sees it.
//! - **in**: another source, and the destination is the interface's address or a group
//!   address (broadcast or multicast: the I/G bit, the low bit of the first byte). XDP and
//!   TC ingress see it.
//! - **elsewhere**: another source and another host's unicast address, or a frame too
//!   short to hold both addresses. A NIC that is not promiscuous drops it before any hook
//!   runs; only `--direction any` judges it.

use clap::ValueEnum;
use pfc_compiler::program::Hook;

/// `--direction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// Frames the interface received (what XDP and TC ingress see).
    In,
    /// Frames the interface sent (what TC egress sees).
    Out,
    /// Every frame of the capture.
    Any,
}

impl Direction {
    /// The direction a hook sees.
    pub fn of_hook(hook: Hook) -> Direction {
        match hook {
            Hook::Xdp | Hook::TcIngress => Direction::In,
            Hook::TcEgress => Direction::Out,
        }
    }

    /// The spelling of `--direction` (and of the JSON summary's `direction`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Any => "any",
        }
    }

    /// Whether a frame of `class` is judged.
    pub fn judges(self, class: Class) -> bool {
        matches!((self, class), (Direction::Any, _) | (Direction::In, Class::In) | (Direction::Out, Class::Out))
    }
}

/// Where a captured frame went, seen from the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Received.
    In,
    /// Sent.
    Out,
    /// Neither: another host's unicast, or too short to tell.
    Elsewhere,
}

/// A MAC address.
pub type Mac = [u8; 6];

/// Classifies a frame by its Ethernet addresses (see the module doc).
pub fn classify(frame: &[u8], mac: &Mac) -> Class {
    let (Some(destination), Some(source)) = (frame.get(0..6), frame.get(6..12)) else {
        return Class::Elsewhere;
    };
    if source == mac {
        Class::Out
    } else if destination == mac || destination[0] & 1 == 1 {
        Class::In
    } else {
        Class::Elsewhere
    }
}

/// Which frames a run judges: `--direction` resolved against `--mac` and the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The direction judged.
    pub direction: Direction,
    /// The interface's address (`None`: every frame, [`Direction::Any`]).
    pub mac: Option<Mac>,
}

impl Selection {
    /// Every frame.
    pub const ALL: Selection = Selection { direction: Direction::Any, mac: None };

    /// Whether `frame` is judged; its class is counted in `counts`.
    pub fn judges(&self, frame: &[u8], counts: &mut Counts) -> bool {
        match &self.mac {
            Some(mac) => {
                let class = classify(frame, mac);
                counts.add(class);
                self.direction.judges(class)
            }
            None => true,
        }
    }

    /// Frames not judged.
    pub fn not_judged(&self, counts: &Counts) -> u64 {
        match self.direction {
            Direction::In => counts.sent + counts.elsewhere,
            Direction::Out => counts.received + counts.elsewhere,
            Direction::Any => 0,
        }
    }

    /// What was judged and what not, in words (empty without `--mac`):
    /// `judged: the frames received by 02:00:5e:10:00:01; not judged: 5 sent, 1 between other hosts`.
    pub fn describe(&self, counts: &Counts) -> String {
        let Some(mac) = &self.mac else { return String::new() };
        let mac = format_mac(mac);
        let elsewhere = format!("{} between other hosts", counts.elsewhere);
        match self.direction {
            Direction::In => {
                format!("judged: the frames received by {mac}; not judged: {} sent, {elsewhere}", counts.sent)
            }
            Direction::Out => {
                format!("judged: the frames sent by {mac}; not judged: {} received, {elsewhere}", counts.received)
            }
            Direction::Any => {
                format!("judged: every frame: {} received by {mac}, {} sent, {elsewhere}", counts.received, counts.sent)
            }
        }
    }
}

/// How many frames of each [`Class`] a capture held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// [`Class::In`].
    pub received: u64,
    /// [`Class::Out`].
    pub sent: u64,
    /// [`Class::Elsewhere`].
    pub elsewhere: u64,
}

impl Counts {
    fn add(&mut self, class: Class) {
        match class {
            Class::In => self.received += 1,
            Class::Out => self.sent += 1,
            Class::Elsewhere => self.elsewhere += 1,
        }
    }
}

/// Parses `--mac`: six hex bytes separated by `:` or `-` (`02:00:5e:10:00:01`).
pub fn parse_mac(text: &str) -> Result<Mac, String> {
    let wrong =
        || format!("`{text}` is not a MAC address: write six hex bytes separated by `:`, like 02:00:5e:10:00:01");
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(wrong());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(wrong());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| wrong())?;
    }
    Ok(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter().map(|byte| format!("{byte:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Mac = [0x02, 0, 0, 0, 0, 1];
    const PEER: Mac = [0x02, 0, 0, 0, 0, 2];
    const OTHER: Mac = [0x02, 0, 0, 0, 0, 3];

    fn frame(destination: Mac, source: Mac) -> Vec<u8> {
        [&destination[..], &source[..], &[0x08, 0x00]].concat()
    }

    #[test]
    fn frames_are_classified_by_their_addresses() {
        assert_eq!(classify(&frame(PEER, HOST), &HOST), Class::Out);
        assert_eq!(classify(&frame([0xff; 6], HOST), &HOST), Class::Out, "our broadcast goes out");
        assert_eq!(classify(&frame(HOST, PEER), &HOST), Class::In);
        assert_eq!(classify(&frame([0xff; 6], PEER), &HOST), Class::In, "broadcast");
        assert_eq!(classify(&frame([0x33, 0x33, 0, 0, 0, 1], PEER), &HOST), Class::In, "IPv6 multicast");
        assert_eq!(classify(&frame([0x01, 0, 0x5e, 0, 0, 1], PEER), &HOST), Class::In, "IPv4 multicast");
        assert_eq!(classify(&frame(OTHER, PEER), &HOST), Class::Elsewhere, "another host's unicast");
        assert_eq!(classify(&[0xff; 11], &HOST), Class::Elsewhere, "too short to tell");
    }

    #[test]
    fn each_direction_judges_its_class() {
        let judged = |direction: Direction| {
            [Class::In, Class::Out, Class::Elsewhere]
                .into_iter()
                .filter(|class| direction.judges(*class))
                .collect::<Vec<_>>()
        };
        assert_eq!(judged(Direction::In), [Class::In]);
        assert_eq!(judged(Direction::Out), [Class::Out]);
        assert_eq!(judged(Direction::Any), [Class::In, Class::Out, Class::Elsewhere]);
        assert_eq!(Direction::of_hook(Hook::Xdp), Direction::In);
        assert_eq!(Direction::of_hook(Hook::TcIngress), Direction::In);
        assert_eq!(Direction::of_hook(Hook::TcEgress), Direction::Out);
    }

    #[test]
    fn mac_addresses_parse_in_both_spellings_and_bad_ones_say_why() {
        assert_eq!(parse_mac("02:00:5E:10:00:01"), Ok([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(parse_mac("02-00-5e-10-00-01"), Ok([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(format_mac(&[2, 0, 0x5e, 0x10, 0, 1]), "02:00:5e:10:00:01");
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "02:00:5e:10:00:0g",
            "002:00:5e:10:00:01",
            "+2:00:5e:10:00:01",
            "eth0",
        ] {
            let error = parse_mac(bad).expect_err(bad);
            assert!(error.contains("is not a MAC address"), "{bad}: {error}");
        }
    }
}
