//! Code generation: an optimized [`Filter`] in, a resolved eBPF [`Program`] out.
//!
//! ```text
//!  prologue   parse every needed header once; store field values on the stack;
//!             r9 = absent mask                                   (prologue.rs)
//!  body       rule 0: if !cond goto rule 1; r6 = 0; r7 = verdict; goto tail
//!             rule 1: ...                                        (conditions.rs)
//!             default: r6 = N; r7 = default verdict
//!  tail       counters[r6].packets += 1, .bytes += pkt.len;
//!             a logged rule r6: its event to the ring buffer (log.rs); return r7
//! ```
//!
//! Without counters a matched rule sets r0 and goes to the *exit tail* (`return r0`,
//! behind a never-taken branch that reads every stack word: see `read_every_word`);
//! rule sets smaller than `classifier::MIN_RULES` return at once.
//!
//! **Invariant:** only the prologue reads packet memory; every read there follows a
//! bounds check that covers it. **Invariant:** every jump goes forward, but the back jump of
//! a pcap `protochain` walk's loop (`pcap/chain.rs`), which a known counter decides.

mod branchless;
pub mod classifier;
mod classify;
mod conditions;
mod dispatch;
pub(crate) mod dynamic;
pub mod layout;
pub mod limit;
pub mod log;
mod pcap;
mod prologue;
pub mod table;

use crate::bpf::opcode::HELPER_MAP_LOOKUP;
use crate::bpf::{AluOp, AsmError, Insn, JmpOp, Label, Operand, Program, ProgramBuilder, Reg, Size};
use crate::fields::{Layer, Proto};
use crate::ir::{Filter, Node, Source, Uses};
use crate::program::{Hook, Verdict};
use branchless::Branchless;
use conditions::Body;
use dispatch::{Run, Step};
use layout::{Layout, KEY_SLOT};

/// Index of the counter map in the object's map list.
pub(crate) const COUNTER_MAP: u32 = 0;

/// Choices that change the generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Count packets and bytes per rule in a per-CPU array map.
    pub counters: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { counters: true }
    }
}

/// Why code could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The values the rules read do not fit in the 512-byte stack.
    #[error("{0}")]
    StackFull(#[from] layout::StackFull),
    /// A jump needs an offset beyond 16 bits (one rule's code is too long to jump over,
    /// or, with counters, a matched rule is too far from the shared counter tail): a
    /// limit of the rule set's size, not a pfc bug.
    #[error("the rule set compiles to more code than an eBPF jump can cross ({distance} slots; at most 32767)")]
    JumpTooFar {
        /// The jump's distance in instruction slots.
        distance: usize,
    },
    /// The rule set has no table form ([`Form::Table`]).
    #[error("no classifier table: {source}")]
    NotTabular {
        /// Why not.
        #[from]
        source: table::NotTabular,
    },
    /// The instruction builder refused the code (a pfc bug).
    #[error("{source}")]
    Assembler {
        /// What the builder said.
        #[from]
        source: AsmError,
    },
}

/// What the prologue must parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Walk VLAN tags and read the payload ethertype.
    pub vlan_walk: bool,
    /// Parse IPv4.
    pub ipv4: bool,
    /// Parse IPv6.
    pub ipv6: bool,
    /// Walk the IPv6 extension headers.
    pub ipv6_walk: bool,
    /// Parse ARP.
    pub arp: bool,
    /// Transport protocols to locate.
    pub transport: Vec<Proto>,
    /// Whether anything but the pcap atoms' bits can tell what the parse found: a field
    /// or a presence test of some rule, a rate limit (its key holds the absent mask), a
    /// dynamic set, logging.
    pub parse_observed: bool,
}

impl Needs {
    /// Derives the parse work from what the filter reads.
    pub fn new(uses: &Uses) -> Needs {
        let mut touched: Vec<Source> = uses.sources.clone();
        touched.extend(uses.fields.iter().filter_map(|field| Source::of_field(*field)));
        let has = |source: Source| touched.contains(&source);
        let transport: Vec<Proto> = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Icmp, Proto::Icmp6]
            .into_iter()
            .filter(|proto| has(Source::Header(*proto)))
            .collect();
        let parse_observed =
            !uses.fields.is_empty() || !uses.sources.is_empty() || !uses.limits.is_empty() || uses.dynamic || uses.logs;
        let mut needs = Needs { transport, parse_observed, ..Needs::default() };
        needs.ipv4 = has(Source::Header(Proto::Ipv4)) || needs.transport_over(Proto::Ipv4);
        needs.ipv6_walk = has(Source::Ipv6UpperProtocol) || needs.transport_over(Proto::Ipv6);
        needs.ipv6 = has(Source::Header(Proto::Ipv6)) || needs.ipv6_walk;
        needs.arp = has(Source::Header(Proto::Arp));
        needs.vlan_walk =
            has(Source::Header(Proto::Vlan)) || has(Source::PayloadEthertype) || needs.ipv4 || needs.ipv6 || needs.arp;
        needs
    }

    /// Whether some needed transport protocol can be carried by `carrier`.
    pub(crate) fn transport_over(&self, carrier: Proto) -> bool {
        self.transport
            .iter()
            .any(|proto| proto.layer() == Layer::Transport && proto.carrier().map_or(true, |c| c == carrier))
    }
}

/// How rule conditions are compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The whole rule set as a multi-field classifier (`classifier.rs`, `classify.rs`):
    /// decision diagrams over the fields whose leaves try a few rules in order. Small rule
    /// sets compile as [`Form::Dispatched`].
    Classified,
    /// Jumping code, with runs of rules that all test one field dispatched through a
    /// decision tree on that field (`dispatch.rs`): the default.
    Dispatched,
    /// Short-circuit jumping code, rules one after the other.
    Jumping,
    /// The whole rule set as a table-driven classifier (`table.rs`): the classifier's
    /// diagrams in array maps, walked by a small fixed program. Only for rule sets whose
    /// rules are conjunctions of interval tests of one-word fields.
    Table,
    /// Each rule's condition computed without jumps, then one test (`branchless.rs`),
    /// with runs dispatched as in [`Form::Dispatched`]: slower per rule tested, but the
    /// kernel verifier keeps no pending paths for it, so large rule sets load.
    /// Conditions this form cannot express stay jumping.
    Branchless,
}

/// Generates the program for a filter in the default form.
pub fn generate(filter: &Filter, options: Options) -> Result<Program, CodegenError> {
    generate_form(filter, options, Form::Classified)
}

/// Generates the program for a filter in the given form.
pub fn generate_form(filter: &Filter, options: Options, form: Form) -> Result<Program, CodegenError> {
    if form == Form::Table {
        return generate_table(filter, options, &table::build(filter)?);
    }
    generate_planned(filter, options, form, None)
}

/// As [`generate_form`] for any form but [`Form::Table`]; [`Form::Classified`] emits
/// `plan` when given (made by [`plan_classifier`] for this filter), else plans itself.
pub fn generate_planned(
    filter: &Filter,
    options: Options,
    form: Form,
    plan: Option<&classifier::Classifier>,
) -> Result<Program, CodegenError> {
    let emit = |relay_at| {
        generate_body(filter, options, |b, layout, tail| rules(b, filter, layout, (form, plan), tail, relay_at))
    };
    match emit(classify::RELAY_AT) {
        // A node or rule too long for the room far relays leave: relays closer together.
        Err(CodegenError::JumpTooFar { .. }) if form == Form::Classified => emit(classify::RELAY_AT_SHORT),
        result => result,
    }
}

/// The inline classifier of `plan` with relays `relay_at` slots apart (no retry).
#[cfg(test)]
fn generate_with_relays(
    filter: &Filter,
    options: Options,
    plan: &classifier::Classifier,
    relay_at: usize,
) -> Result<Program, CodegenError> {
    generate_body(filter, options, |b, layout, tail| {
        rules(b, filter, layout, (Form::Classified, Some(plan)), tail, relay_at)
    })
}

/// The classifier plan of a filter, the same for its inline and its table form (so a
/// compile that tries both plans once); `None` when the set gets no classifier or its
/// fields do not fit the stack.
pub fn plan_classifier(filter: &Filter) -> Option<classifier::Classifier> {
    let layout = Layout::new(&filter.uses(), true).ok()?;
    classifier::plan(filter, &layout)
}

/// The fewest instruction slots `plan`'s inline code ([`Form::Classified`]) can take,
/// from the plan alone: when this is past the kernel's limit, the inline form cannot fit.
pub fn classifier_least_slots(filter: &Filter, options: Options, plan: &classifier::Classifier) -> usize {
    let counting = options.counters || filter.rules.iter().any(|rule| rule.log.is_some());
    classify::least_slots(plan, filter, counting)
}

/// Generates the walker of `table` (built by [`table::build`] from `filter`); the
/// object must hold the table's arrays at [`table::nodes_map_index`] and the next index.
pub fn generate_table(filter: &Filter, options: Options, table: &table::Table) -> Result<Program, CodegenError> {
    let mut program = generate_body(filter, options, |b, layout, tail| table::emit(b, filter, layout, table, tail))?;
    let logs = filter.rules.iter().any(|rule| rule.log.is_some());
    let nodes = table::nodes_map_index(options.counters || logs, logs) as usize;
    program.map_values = vec![table::OTHER_MAP_VALUES; nodes];
    program.map_values.extend([table::NODE_SIZE, table.rule_size()]);
    Ok(program)
}

/// The prologue, the body `body` emits, the tail.
fn generate_body(
    filter: &Filter,
    options: Options,
    body: impl FnOnce(&mut ProgramBuilder, &Layout, &mut Tail),
) -> Result<Program, CodegenError> {
    let uses = filter.uses();
    // Logging happens in the counter tail, so a rule set that logs always has one.
    let options = Options { counters: options.counters || uses.logs };
    let layout = Layout::new(&uses, options.counters)?;
    let needs = Needs::new(&uses);
    let mut b = ProgramBuilder::new();
    if let Some(slot) = layout.context_slot {
        b.comment("keep the context for the log code");
        b.emit(Insn::store(Size::DW, Reg::R10, slot, Reg::R1));
    }
    prologue::emit(&mut b, filter.hook, &layout, &needs, &filter.pcaps);
    let ending = if options.counters {
        Ending::Count
    } else if filter.rules.len() >= classifier::MIN_RULES {
        Ending::ExitTail
    } else {
        Ending::Return
    };
    let far = b.new_label();
    let mut tail = Tail { label: b.new_label(), far, opened_at: b.len(), ending, decode: false, unused: true };
    body(&mut b, &layout, &mut tail);
    if ending != Ending::Return {
        b.bind(tail.label);
        b.bind(tail.far);
        tail_code(&mut b, filter, &layout, &tail);
    }
    b.finish().map_err(|error| match error {
        AsmError::JumpTooFar { distance, .. } => CodegenError::JumpTooFar { distance },
        source => CodegenError::Assembler { source },
    })
}

/// Instructions after which a copy of the tail (or, in a classifier, a relay to it) is
/// emitted, so that every jump to the tail in reach stays well within the 16-bit offset.
const TAIL_REACH: usize = 12_000;

/// How a matched rule (or the default) ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `r0 = verdict; exit` (no counters, fewer than [`classifier::MIN_RULES`] rules).
    Return,
    /// `r6 = rule; r7 = verdict; goto tail`: the counter tail counts and returns r7.
    Count,
    /// `r0 = verdict; goto tail`: the exit tail returns r0 (no counters).
    ExitTail,
}

/// The tail that matched rules jump to, and where its first jump was emitted.
struct Tail {
    /// The tail in reach: the tail itself, a copy of it (rules one by one: jumping,
    /// dispatched, branch-free code) or a relay `goto far` (the classifier), emitted every
    /// [`TAIL_REACH`] instructions.
    label: Label,
    /// The tail itself, after the body. A classifier's `goto`s go here directly (`gotol`
    /// when far) and only its conditional jumps through a relay: one tail, not a copy per
    /// 12k instructions, each of whose first walks (its stack writes, its never-run reads,
    /// its inlined map lookup) cost the kernel verifier a pass over the whole program.
    /// The other forms keep their copies, and so no `gotol` (they load before kernel 6.6).
    far: Label,
    opened_at: usize,
    ending: Ending,
    /// The tail starts by taking the verdict and rule out of a classifier's best-match
    /// word in r6 (several diagrams: `classify.rs`).
    decode: bool,
    /// No jump leads to `label` yet (then a relay would be dead code: it just moves).
    unused: bool,
}

fn rules(
    b: &mut ProgramBuilder,
    filter: &Filter,
    layout: &Layout,
    (form, plan): (Form, Option<&classifier::Classifier>),
    tail: &mut Tail,
    relay_at: usize,
) {
    let mut emitter = RuleEmitter { filter, layout, form, tail, comments: Vec::new(), relay_at };
    if form == Form::Classified {
        let planned_here;
        let plan = match plan {
            Some(plan) => Some(plan),
            None => {
                planned_here = classifier::plan(filter, layout);
                planned_here.as_ref()
            }
        };
        if let Some(classifier) = plan {
            emitter.classifier(b, classifier);
            return;
        }
    }
    let steps = match form {
        // (`generate_form` builds the table form without coming here.)
        Form::Classified | Form::Dispatched | Form::Branchless | Form::Table => dispatch::plan(filter, layout),
        Form::Jumping => (0..filter.rules.len()).map(Step::Rule).collect(),
    };
    for step in steps {
        match step {
            Step::Rule(index) => {
                if emitter.rule(b, index) {
                    return; // a rule that matches every packet: nothing after it runs
                }
            }
            Step::Run(run) => emitter.run(b, &run),
        }
    }
    b.comment("default verdict");
    decide_fallthrough(b, filter.hook, filter.rules.len(), filter.default, tail.ending);
}

/// Emits rules, one at a time or as dispatched runs.
struct RuleEmitter<'a, 't> {
    filter: &'a Filter,
    layout: &'a Layout,
    form: Form,
    tail: &'t mut Tail,
    /// Each rule's listing comment once made (a classifier emits a rule in every leaf
    /// that holds it).
    comments: Vec<Option<String>>,
    /// How old a classifier's pending jump gets before a relay (`classify::RELAY_AT`).
    relay_at: usize,
}

impl RuleEmitter<'_, '_> {
    /// Begins rule `index`'s code, with its comment (`rule 3 `name`: drop`).
    fn begin_rule(&mut self, b: &mut ProgramBuilder, index: usize) {
        if self.comments.len() <= index {
            self.comments.resize(index + 1, None);
        }
        let rule = &self.filter.rules[index];
        let comment = self.comments[index]
            .get_or_insert_with(|| format!("rule {} `{}`: {}", index, rule.name, rule.verdict.as_str()));
        b.begin_rule(index, comment.clone());
    }

    /// Emits one rule; returns whether it matches every packet.
    fn rule(&mut self, b: &mut ProgramBuilder, index: usize) -> bool {
        let (filter, layout) = (self.filter, self.layout);
        let rule = &filter.rules[index];
        if matches!(filter.node(rule.condition), Node::Const(false)) {
            return false;
        }
        self.tail_in_reach(b);
        self.begin_rule(b, index);
        let next = b.new_label();
        let (tail_label, ending) = (self.tail.label, self.tail.ending);
        self.tail.unused = false;
        let mut matched = |b: &mut ProgramBuilder| decide(b, filter.hook, index, rule.verdict, ending, tail_label);
        let mut branchless = Branchless { b: &mut *b, filter, layout };
        let constant = matches!(filter.node(rule.condition), Node::Const(_));
        if self.form == Form::Branchless && !constant && branchless.supports(rule.condition) {
            branchless.value(rule.condition, false, 0);
            b.emit(Insn::jump64(JmpOp::Eq, Reg::R6, 0, next));
            matched(b);
        } else {
            Body { b: &mut *b, filter, layout }.rule(rule.condition, next, &mut matched);
        }
        b.end_rule();
        b.bind(next);
        matches!(filter.node(rule.condition), Node::Const(true))
    }

    /// With a tail: a copy of it (a relay to it in a classifier) here when jumps to the
    /// current one would soon be out of reach.
    fn tail_in_reach(&mut self, b: &mut ProgramBuilder) {
        let ending = self.tail.ending;
        if self.tail.unused {
            self.tail.opened_at = b.len();
            return;
        }
        if ending != Ending::Return && b.len() - self.tail.opened_at > TAIL_REACH {
            let rules_go_on = b.new_label();
            b.emit(Insn::Ja { target: rules_go_on });
            b.bind(self.tail.label);
            if self.form == Form::Classified {
                b.comment("relay: to the tail, for the conditional jumps before it");
                b.emit(Insn::Ja { target: self.tail.far });
            } else {
                tail_code(b, self.filter, self.layout, self.tail);
            }
            b.bind(rules_go_on);
            self.tail.label = b.new_label();
            self.tail.opened_at = b.len();
            self.tail.unused = true;
        }
    }

    /// A decision tree on the run's field, then one block of rules per target.
    fn run(&mut self, b: &mut ProgramBuilder, run: &Run) {
        let exit = b.new_label();
        let first = run.blocks.iter().flatten().min().copied().unwrap_or(0);
        b.comment(format!("rules from {first}: dispatched on {}", run.field.name()));
        // No guard: a packet without the field's header matches no rule of the run, and
        // whichever block its (meaningless) word leads to tests each rule in full.
        b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, self.layout.words(run.field)[0]));
        let targets: Vec<Label> = run.blocks.iter().map(|_| b.new_label()).collect();
        dispatch::emit_tree(b, Reg::R1, &run.segments, &targets, exit);
        for (block, target) in run.blocks.iter().zip(targets) {
            b.bind(target);
            for &index in block {
                self.rule(b, index);
            }
            b.emit(Insn::Ja { target: exit });
        }
        b.bind(exit);
    }
}

/// A matched rule: set the verdict (and the counter index), go to the tail (or return).
fn decide(b: &mut ProgramBuilder, hook: Hook, index: usize, verdict: Verdict, ending: Ending, tail: Label) {
    decide_fallthrough(b, hook, index, verdict, ending);
    if ending != Ending::Return {
        b.emit(Insn::Ja { target: tail });
    }
}

/// As [`decide`], falling through to the tail instead of jumping there.
fn decide_fallthrough(b: &mut ProgramBuilder, hook: Hook, index: usize, verdict: Verdict, ending: Ending) {
    match ending {
        Ending::Count => {
            b.emit(Insn::alu32(AluOp::Mov, Reg::R6, Operand::imm_u32(index as u32)));
            b.emit(Insn::alu32(AluOp::Mov, Reg::R7, hook.return_code(verdict)));
        }
        Ending::ExitTail => b.emit(Insn::alu32(AluOp::Mov, Reg::R0, hook.return_code(verdict))),
        Ending::Return => {
            b.emit(Insn::alu32(AluOp::Mov, Reg::R0, hook.return_code(verdict)));
            b.emit(Insn::Exit);
        }
    }
}

/// Loads every stack word the body reads (field words, pcap verdict words, the absent
/// mask) into r1, for the kernel verifier only: the counter tail puts this on the path
/// where the counter lookup failed, which never runs (the key is always in range) but
/// which the verifier explores, since it does not know the key; the exit tail puts it
/// behind a test of the absent mask's bit [`layout::NEVER_SET_MASK_BIT`], which no
/// packet sets but the verifier cannot rule out (the mask word is not tracked).
///
/// Why: the kernel's stack-liveness analysis (6.18, `kernel/bpf/liveness.c`) reruns its
/// dataflow over every instruction of the function after each explored path that marked
/// a stack read not already known live there. Every tree node and leaf test reads a
/// field word, so before this the verifier reran it once per explored branch: load time
/// grew with branches × program length (minutes at 10k rules). Every body instruction
/// reaches a tail, so once the first path through a tail was explored, every word is
/// live everywhere upstream and later reads change nothing. Liveness only grows, so no
/// pruning is lost: the words are plain data (`STACK_MISC`) on every path.
///
/// Only in sets of [`classifier::MIN_RULES`] rules or more, where the cost is: the extra
/// path shifts where the kernel saves states (it saves one only after 2 jumps and 8
/// instructions since the last), which cost one small `protochain` program 20 % more
/// processed instructions, past pfc's estimate.
fn read_every_word(b: &mut ProgramBuilder, layout: &Layout) {
    b.comment("never runs: makes every word the body reads live (kernel verifier load time)");
    let words = layout.fields().flat_map(|(_, words)| words.iter().copied());
    for word in words.chain(layout.pcap_words().iter().copied()).chain([layout::MASK_SLOT]) {
        b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, word));
    }
}

/// The code of `tail` (not [`Ending::Return`]).
fn tail_code(b: &mut ProgramBuilder, filter: &Filter, layout: &Layout, tail: &Tail) {
    if tail.decode {
        classify::decode_best_match(b, tail.ending);
    }
    match tail.ending {
        Ending::Count => counter_tail(b, filter, layout),
        Ending::ExitTail | Ending::Return => exit_tail(b, layout),
    }
}

/// `return r0`, with every word read on a branch no packet takes (sets of
/// [`classifier::MIN_RULES`] rules or more only, as in the counter tail).
fn exit_tail(b: &mut ProgramBuilder, layout: &Layout) {
    let reads = b.new_label();
    b.comment("return the verdict in r0 (the absent mask's bit 31 is never set)");
    b.emit(Insn::load(Size::W, Reg::R1, Reg::R10, layout::MASK_SLOT));
    b.emit(Insn::jump32(JmpOp::Set, Reg::R1, Operand::imm_u32(layout::NEVER_SET_MASK_BIT), reads));
    b.emit(Insn::Exit);
    b.bind(reads);
    read_every_word(b, layout);
    b.emit(Insn::Exit);
}

/// `counters[r6] += {1, pkt.len}`, the log code of logged rules; `return r7`.
fn counter_tail(b: &mut ProgramBuilder, filter: &Filter, layout: &Layout) {
    let done = b.new_label();
    b.comment("count the packet for the deciding rule, then return its verdict");
    b.emit(Insn::store(Size::W, Reg::R10, KEY_SLOT, Reg::R6));
    b.emit(Insn::LoadMapIndex { dst: Reg::R1, map: COUNTER_MAP });
    b.emit(Insn::mov64(Reg::R2, Reg::R10));
    b.emit(Insn::alu64(AluOp::Add, Reg::R2, i32::from(KEY_SLOT)));
    b.emit(Insn::Call { helper: HELPER_MAP_LOOKUP });
    let prime = b.new_label();
    b.emit(Insn::jump64(JmpOp::Eq, Reg::R0, 0, prime));
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R0, 0));
    b.emit(Insn::alu64(AluOp::Add, Reg::R1, 1));
    b.emit(Insn::store(Size::DW, Reg::R0, 0, Reg::R1));
    b.emit(Insn::load(Size::DW, Reg::R1, Reg::R0, 8));
    let length_slot = layout.words(crate::fields::Field::PktLen)[0];
    b.emit(Insn::load(Size::W, Reg::R2, Reg::R10, length_slot));
    b.emit(Insn::alu64(AluOp::Add, Reg::R1, Reg::R2));
    b.emit(Insn::store(Size::DW, Reg::R0, 8, Reg::R1));
    let big = filter.rules.len() >= classifier::MIN_RULES;
    let logs = filter.rules.iter().any(|rule| rule.log.is_some());
    if big && logs {
        b.emit(Insn::Ja { target: done });
        b.bind(prime);
        read_every_word(b, layout);
    } else if !big {
        b.bind(prime);
    }
    b.bind(done);
    log::emit_tail(b, filter, layout);
    b.emit(Insn::mov64(Reg::R0, Reg::R7));
    b.emit(Insn::Exit);
    if big && !logs {
        // Behind the return, so that a counted packet takes no jump over it.
        b.bind(prime);
        read_every_word(b, layout);
        b.emit(Insn::mov64(Reg::R0, Reg::R7));
        b.emit(Insn::Exit);
    }
}
