//! Program code in, a yes/no out: is every pointer argument of every map helper call
//! provably inside the eBPF stack?
//!
//! rbpf hands helpers raw register values and does not tell them where its stack is, so a
//! helper cannot bounds-check a key pointer by itself. When this pass proves that `r2`
//! (and `r3` for `bpf_map_update_elem`) is `r10 + k` with the whole key (value) inside the
//! 512-byte stack at every call site, the helpers read those pointers directly; otherwise
//! the VM reads them through `process_vm_readv`, which fails cleanly on bad addresses.
//!
//! The pass is a forward data-flow over registers holding "r10 + constant", with a meet at
//! jump targets, over the instructions `pfc_compiler::bpf::decode` reads (raw opcodes
//! are known only there); a loop's back jump makes it pass again until nothing changes
//! (a state only ever forgets). Anything the decoder refuses (bpf-to-bpf calls,
//! atomics, ISA v4) makes it give up (answer no).

use pfc_compiler::bpf::{decode, AluOp, Insn, Operand, Reg};

use super::maps::{HELPER_MAP_DELETE, HELPER_MAP_LOOKUP, HELPER_MAP_UPDATE};

/// rbpf's stack size.
const STACK_SIZE: i64 = 512;

/// Per register: `Some(k)` when it is known to hold `r10 + k`.
type State = [Option<i64>; 11];

/// Meets `from` into `into`; whether `into` changed.
fn meet(into: &mut Option<State>, from: &State) -> bool {
    match into {
        None => {
            *into = Some(*from);
            true
        }
        Some(state) => {
            let mut changed = false;
            for (a, b) in state.iter_mut().zip(from) {
                if *a != *b && a.is_some() {
                    *a = None;
                    changed = true;
                }
            }
            changed
        }
    }
}

fn in_stack(offset: Option<i64>, len: u32) -> bool {
    matches!(offset, Some(k) if k >= -STACK_SIZE && k.saturating_add(i64::from(len)) <= 0)
}

/// Whether every map helper call passes stack pointers covering `key_size`/`value_size`
/// bytes (the largest over all maps). Code the typed decoder refuses (instructions outside
/// pfc's subset, bad jump targets) is answered no.
pub(crate) fn helper_pointers_in_stack(code: &[u8], key_size: u32, value_size: u32) -> bool {
    let Ok(insns) = decode(code, &[]) else { return false };
    let count = code.len() / 8;
    let mut states: Vec<Option<State>> = vec![None; count + 1];
    let mut entry = [None; 11];
    entry[usize::from(Reg::R10.number())] = Some(0);
    states[0] = Some(entry);
    let mut again = true;
    while std::mem::take(&mut again) {
        if !one_pass(&insns, &mut states, key_size, value_size, &mut again) {
            return false;
        }
    }
    true
}

/// One pass in instruction order; `again` is set when a back jump changed the state of an
/// instruction already passed. False when a call's pointers are not proven.
fn one_pass(
    insns: &[Insn<i32>],
    states: &mut [Option<State>],
    key_size: u32,
    value_size: u32,
    again: &mut bool,
) -> bool {
    let mut slot = 0;
    for insn in insns {
        let next = slot + insn.slots();
        let Some(mut state) = states[slot] else {
            slot = next;
            continue;
        };
        let mut falls_through = true;
        match *insn {
            Insn::Alu64 { op: AluOp::Mov, dst, src: Operand::Reg(src) } => state[index(dst)] = state[index(src)],
            Insn::Alu64 { op: AluOp::Add, dst, src: Operand::Imm(imm) } => {
                state[index(dst)] = state[index(dst)].and_then(|k| k.checked_add(imm.into()));
            }
            Insn::Alu64 { op: AluOp::Sub, dst, src: Operand::Imm(imm) } => {
                state[index(dst)] = state[index(dst)].and_then(|k| k.checked_sub(imm.into()));
            }
            Insn::Call { helper } => {
                let ok = match helper {
                    HELPER_MAP_LOOKUP | HELPER_MAP_DELETE => in_stack(state[2], key_size),
                    HELPER_MAP_UPDATE => in_stack(state[2], key_size) && in_stack(state[3], value_size),
                    _ => true,
                };
                if !ok {
                    return false;
                }
                Reg::CALL_CLOBBERED.iter().for_each(|&reg| state[index(reg)] = None);
            }
            Insn::Exit => falls_through = false,
            Insn::Jump { target, .. } | Insn::Ja { target } => {
                // The decoder proved the target is an instruction start inside the code.
                let to = (next as i64 + i64::from(target)) as usize;
                if meet(&mut states[to], &state) && to < next {
                    *again = true;
                }
                falls_through = matches!(insn, Insn::Jump { .. });
            }
            // Every other register write forgets what the register held. Stores write
            // memory only: spilled stack pointers are forgotten, which only makes the
            // answer more conservative.
            _ => {
                if let Some(dst) = insn.written_register() {
                    state[index(dst)] = None;
                }
            }
        }
        if falls_through {
            meet(&mut states[next], &state);
        }
        slot = next;
    }
    true
}

fn index(reg: Reg) -> usize {
    usize::from(reg.number())
}

#[cfg(test)]
mod tests {
    use pfc_compiler::bpf::{encode, AluOp, Insn, JmpOp, Reg};

    use super::helper_pointers_in_stack;
    use crate::vm::maps::HELPER_MAP_LOOKUP;
    use crate::BpfObject;

    #[test]
    fn clang_fixtures_pass_keys_on_the_stack() {
        for elf in [
            &include_bytes!("../../tests/fixtures/xdp_count.o")[..],
            &include_bytes!("../../tests/fixtures/tc_count.o")[..],
        ] {
            let object = BpfObject::parse(elf).expect("fixture parses");
            assert!(helper_pointers_in_stack(&object.code, 4, 16));
            // A key larger than the stack can never be proven in it.
            assert!(!helper_pointers_in_stack(&object.code, 1024, 16));
        }
    }

    #[test]
    fn a_non_stack_key_is_not_proven() {
        let call_lookup = Insn::Call { helper: HELPER_MAP_LOOKUP };
        let code = encode(&[Insn::mov64(Reg::R2, 16), call_lookup.clone(), Insn::Exit]);
        assert!(!helper_pointers_in_stack(&code, 4, 4));
        let stack_key =
            encode(&[Insn::mov64(Reg::R2, Reg::R10), Insn::alu64(AluOp::Add, Reg::R2, -4), call_lookup, Insn::Exit]);
        assert!(helper_pointers_in_stack(&stack_key, 4, 4));
        assert!(!helper_pointers_in_stack(&stack_key, 8, 4), "8 bytes at r10-4 overrun");
    }

    /// r2 = r10 - 4; r3 = 2; head: `body`; r3 -= 1; if r3 != 0 goto head; lookup.
    fn loop_then_lookup(body: Insn<i32>) -> Vec<u8> {
        encode(&[
            Insn::mov64(Reg::R2, Reg::R10),
            Insn::alu64(AluOp::Add, Reg::R2, -4),
            Insn::mov64(Reg::R3, 2),
            body,
            Insn::alu64(AluOp::Sub, Reg::R3, 1),
            Insn::jump64(JmpOp::Ne, Reg::R3, 0, -4),
            Insn::Call { helper: HELPER_MAP_LOOKUP },
            Insn::Exit,
        ])
    }

    #[test]
    fn loops_are_followed_around_their_back_jump() {
        assert!(helper_pointers_in_stack(&loop_then_lookup(Insn::mov64(Reg::R4, 1)), 4, 4));
        // The second iteration moves the key out of the stack: the meet at the head forgets it.
        assert!(!helper_pointers_in_stack(&loop_then_lookup(Insn::alu64(AluOp::Add, Reg::R2, -600)), 4, 4));
    }

    #[test]
    fn code_outside_the_decoders_subset_is_not_proven() {
        let mut code = encode(&[Insn::mov64(Reg::R2, Reg::R10), Insn::Call { helper: HELPER_MAP_LOOKUP }, Insn::Exit]);
        assert!(helper_pointers_in_stack(&code, 0, 0));
        code.truncate(20); // a cut instruction: the decoder refuses the code
        assert!(!helper_pointers_in_stack(&code, 0, 0));
    }
}
