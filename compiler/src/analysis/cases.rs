//! Starter case files (`pfc test --init`). Input: a checked [`Program`]; output: the text
//! of a case file with one packet per rule that decides some packet, and one for the
//! default, each expecting the verdict and rule the interpreter gives it, so the file
//! passes `pfc test` as written.
//!
//! Packets come from the packet-space engine: a corner of the rule's own packets first
//! (cheap), else of the packets it may decide once earlier rules took theirs. Every
//! packet is run through the interpreter before it is written; a rule for which none is
//! found (it never decides, or its atoms are unknown to the engine) gets a comment.

use std::fmt::Write as _;

use super::diff::toml_string;
use super::{name_of, Decider, Model};
use crate::eval::evaluate;
use crate::program::Program;
use crate::space::witness::{self, Witness};
use crate::space::Space;

/// A starter case file.
#[derive(Clone, Debug)]
pub struct Starter {
    /// The TOML text.
    pub text: String,
    /// How many cases it holds.
    pub cases: usize,
    /// Rules (and `None` for the default) for which no packet was found.
    pub missing: Vec<Decider>,
}

/// One witness per deciding rule and the default.
pub fn starter(program: &Program) -> Starter {
    let model = Model::new(program);
    let decided_by = |decider: Decider| move |bytes: &[u8]| evaluate(program, bytes).rule == decider;
    let mut text = String::from(
        "# Written by `pfc test --init`: one packet per rule that decides some packet, with the\n\
         # verdict the rules give it today. Edit the expectations into what you want.\n",
    );
    let (mut cases, mut missing) = (0, Vec::new());
    let deciders = (0..program.rules.len()).map(Some).chain([None]);
    for decider in deciders {
        let found = match decider {
            Some(rule) => witness::find(&model.over[rule], decided_by(decider))
                .or_else(|| model.decides(rule).space.and_then(|space| witness::find(&space, decided_by(decider)))),
            None => witness::find(&Space::everything(), decided_by(None))
                .or_else(|| model.default_decides().and_then(|space| witness::find(&space, decided_by(None)))),
        };
        let name = name_of(program, decider);
        match found {
            Some(Witness { spec, .. }) => {
                cases += 1;
                let verdict = model.verdict(decider).as_str();
                let title = match decider {
                    Some(_) => format!("rule {name}"),
                    None => "default".to_string(),
                };
                let _ = write!(
                    text,
                    "\n[[case]]\nname = {}\npacket = {}\nexpect = \"{verdict}\"\nrule = \"{name}\"\n",
                    toml_string(&title),
                    toml_string(&spec)
                );
            }
            None => {
                missing.push(decider);
                let _ = write!(text, "\n# {name}: no packet found that it decides (see `pfc check --lints=shadow`)\n");
            }
        }
    }
    Starter { text, cases, missing }
}
