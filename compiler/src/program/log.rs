//! Match logging: a rule's `log [BYTES] [rate …]` in, the checked [`Log`] and the event record
//! format that the generated code writes and `pfc test`/`pfc watch` read out.
//!
//! A logged rule that decides a packet sends one event through the object's ring buffer
//! map (`BPF_MAP_TYPE_RINGBUF`), at most [`LOG_RATE`] a second per rule with bursts of
//! [`LOG_BURST`], or the rate and burst of its `log … rate N/PERIOD [burst N]`: the rate limit is an ordinary token bucket ([`crate::program::limit`],
//! one global bucket per logged rule, in [`crate::program::Program::limits`]), so a flood
//! of matches costs a map lookup per packet, never a ring buffer write. Events the limit
//! holds back, and those the ring buffer has no room for, are counted per rule in the
//! log statistics map ([`LogStats`]).
//!
//! An event is [`EVENT_HEADER`] bytes followed by the captured bytes (the record is
//! `EVENT_HEADER + bytes`, rounded up to 8; bytes past `captured` are undefined):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 8 | `time_ns`: `bpf_ktime_get_ns` (monotonic; in the VM, the packet's time) |
//! | 8  | 4 | `rule`: the rule's index |
//! | 12 | 4 | `action`: the program's return code (the hook's code of the verdict) |
//! | 16 | 4 | `ifindex`: the interface the packet arrived on (XDP) or is on (TC) |
//! | 20 | 4 | `frame_len`: the frame's length |
//! | 24 | 4 | `captured`: bytes that follow, `min(frame_len, BYTES)` |
//! | 28 | 4 | `hook`: [`Hook::event_code`] (0 XDP, 1 TC ingress, 2 TC egress) |

use crate::diagnostic::Span;
use crate::program::{Hook, LimitId};

/// Bytes kept when a rule says `log` without a number.
pub(crate) const DEFAULT_LOG_BYTES: u16 = 64;
/// The most bytes a rule may keep per event.
pub const MAX_LOG_BYTES: u16 = 1024;
/// Events a logged rule sends at most per second, sustained.
pub const LOG_RATE: u64 = 100;
/// Events a logged rule may send at once after a quiet period.
pub const LOG_BURST: u64 = 100;
/// Bytes of an event before the captured frame bytes.
pub const EVENT_HEADER: usize = 32;
/// Bytes of the ring buffer map: a power of two and a multiple of the page size.
pub(crate) const RING_BYTES: u32 = 256 * 1024;

/// A checked `log` clause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Log {
    /// Frame bytes kept per event (0 to [`MAX_LOG_BYTES`]).
    pub bytes: u16,
    /// The token bucket that rate-limits the rule's events ([`crate::program::Program::limits`]).
    pub limit: LimitId,
    /// The clause in the source.
    pub span: Span,
}

impl Log {
    /// Bytes the program reserves in the ring buffer per event.
    pub fn record_size(&self) -> u32 {
        (EVENT_HEADER as u32 + u32::from(self.bytes)).div_ceil(8) * 8
    }
}

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the packet was seen (monotonic nanoseconds).
    pub time_ns: u64,
    /// The deciding rule's index.
    pub rule: u32,
    /// The program's return code.
    pub action: u32,
    /// The interface index.
    pub ifindex: u32,
    /// The frame's length.
    pub frame_len: u32,
    /// The hook the program ran at (`None`: an unknown number).
    pub hook: Option<Hook>,
    /// The first bytes of the frame.
    pub bytes: Vec<u8>,
}

/// An event record too short for its header or its captured bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a log event of {len} bytes is shorter than its header and the {captured} bytes it says it holds")]
pub struct EventError {
    /// The record's length.
    pub len: usize,
    /// The captured length it claims.
    pub captured: u32,
}

impl Event {
    /// Decodes a ring buffer record.
    pub fn decode(record: &[u8]) -> Result<Event, EventError> {
        let word = |at: usize| record.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let captured = word(24).unwrap_or(0);
        let end = EVENT_HEADER.checked_add(captured as usize);
        let Some(bytes) = end.and_then(|end| record.get(EVENT_HEADER..end)) else {
            return Err(EventError { len: record.len(), captured });
        };
        let mut time = [0; 8];
        time.copy_from_slice(&record[..8]);
        Ok(Event {
            time_ns: u64::from_le_bytes(time),
            rule: word(8).unwrap_or(0),
            action: word(12).unwrap_or(0),
            ifindex: word(16).unwrap_or(0),
            frame_len: word(20).unwrap_or(0),
            hook: Hook::from_event_code(word(28).unwrap_or(u32::MAX)),
            bytes: bytes.to_vec(),
        })
    }

    /// Encodes the record the generated code writes (`record_size` bytes, zero-padded).
    pub fn encode(&self, record_size: usize) -> Vec<u8> {
        let mut record = vec![0; record_size.max(EVENT_HEADER + self.bytes.len())];
        record[..8].copy_from_slice(&self.time_ns.to_le_bytes());
        let hook = self.hook.map_or(u32::MAX, Hook::event_code);
        let words = [self.rule, self.action, self.ifindex, self.frame_len, self.bytes.len() as u32, hook];
        for (index, word) in words.iter().enumerate() {
            record[8 + 4 * index..12 + 4 * index].copy_from_slice(&word.to_le_bytes());
        }
        record[EVENT_HEADER..EVENT_HEADER + self.bytes.len()].copy_from_slice(&self.bytes);
        record
    }
}

/// A logged rule's counters in the log statistics map (per CPU): events sent, and
/// events not sent (held back by the rate limit or refused by a full ring buffer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Events written to the ring buffer.
    pub sent: u64,
    /// Events dropped.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_short_records_are_refused() {
        let event = Event {
            time_ns: 1_250_000_000,
            rule: 3,
            action: 1,
            ifindex: 7,
            frame_len: 98,
            hook: Some(Hook::TcEgress),
            bytes: (0..64).collect(),
        };
        let log = Log { bytes: 64, limit: LimitId(0), span: Span::default() };
        let record = event.encode(log.record_size() as usize);
        assert_eq!(record.len(), 96);
        assert_eq!(Event::decode(&record), Ok(event));
        assert_eq!(Event::decode(&record[..90]), Err(EventError { len: 90, captured: 64 }));
        assert_eq!(Log { bytes: 1, ..log }.record_size(), 40);
        assert_eq!(Log { bytes: 0, ..log }.record_size(), 32);
    }
}
