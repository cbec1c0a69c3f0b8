//! `pfc diff --pcap`: a capture replayed through two programs. Input: two checked
//! [`Program`]s and the frames of a capture; output: the frames whose verdict changes,
//! counted per (old rule, new rule) pair with the first few frame numbers, all from the
//! interpreter (no engine claim involved).

use std::fmt::Write as _;

use super::{name_of, Decider};
use crate::eval::evaluate;
use crate::program::{Program, Verdict};
use crate::testcase::summary::summarize;

/// How many frame numbers a pair keeps as examples.
pub const EXAMPLES: usize = 3;

/// Frames that one pair of deciders treats differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    /// The old deciding rule (`None`: the default) and its verdict.
    pub old: (Decider, Verdict),
    /// The new deciding rule and its verdict.
    pub new: (Decider, Verdict),
    /// How many frames.
    pub count: usize,
    /// The first frames (numbered from 0, as `pfc test --pcap --verdicts` does), with a
    /// one-line summary each.
    pub examples: Vec<(usize, String)>,
}

/// The replay of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Frames in the capture.
    pub frames: usize,
    /// Pairs whose verdict changes, most frames first (ties by first frame).
    pub changed: Vec<Changed>,
}

impl Replay {
    /// Frames whose verdict changes.
    pub fn changed_frames(&self) -> usize {
        self.changed.iter().map(|c| c.count).sum()
    }
}

/// Runs every frame through both programs.
pub fn replay(old: &Program, new: &Program, frames: &[&[u8]]) -> Replay {
    let mut changed: Vec<Changed> = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        let (before, after) = (evaluate(old, frame), evaluate(new, frame));
        if before.verdict == after.verdict {
            continue;
        }
        let key = ((before.rule, before.verdict), (after.rule, after.verdict));
        let entry = match changed.iter().position(|c| (c.old, c.new) == key) {
            Some(at) => &mut changed[at],
            None => {
                changed.push(Changed { old: key.0, new: key.1, count: 0, examples: Vec::new() });
                changed.last_mut().expect("just pushed")
            }
        };
        entry.count += 1;
        if entry.examples.len() < EXAMPLES {
            entry.examples.push((index, summarize(frame)));
        }
    }
    changed.sort_by_key(|c| (std::cmp::Reverse(c.count), c.examples[0].0));
    Replay { frames: frames.len(), changed }
}

/// The human report of a replay (`name` is the capture's name).
pub fn render(replay: &Replay, name: &str, old: &Program, new: &Program) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "capture {name}: {} of {} frame(s) change verdict", replay.changed_frames(), replay.frames);
    for c in &replay.changed {
        let _ = writeln!(
            out,
            "  {} ({}) -> {} ({}): {} frame(s)",
            c.old.1.as_str(),
            name_of(old, c.old.0),
            c.new.1.as_str(),
            name_of(new, c.new.0),
            c.count
        );
        for (index, summary) in &c.examples {
            let _ = writeln!(out, "    frame {index}: {summary}");
        }
    }
    out
}

/// The replay as JSON.
pub fn to_json(replay: &Replay, old: &Program, new: &Program) -> serde_json::Value {
    let side = |program: &Program, (rule, verdict): (Decider, Verdict)| serde_json::json!({ "rule": name_of(program, rule), "verdict": verdict.as_str() });
    let changed: Vec<serde_json::Value> = replay
        .changed
        .iter()
        .map(|c| {
            serde_json::json!({
                "old": side(old, c.old),
                "new": side(new, c.new),
                "frames": c.count,
                "examples": c.examples.iter().map(|(index, summary)| serde_json::json!({ "frame": index, "summary": summary })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "frames": replay.frames, "changed_frames": replay.changed_frames(), "changed": changed })
}
