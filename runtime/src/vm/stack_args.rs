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
//! jump targets. Backward jumps and bpf-to-bpf calls make it give up (answer no).

use super::maps::{HELPER_MAP_DELETE, HELPER_MAP_LOOKUP, HELPER_MAP_UPDATE};

/// rbpf's stack size.
const STACK_SIZE: i64 = 512;

/// Per register: `Some(k)` when it is known to hold `r10 + k`.
type State = [Option<i64>; 11];

fn meet(into: &mut Option<State>, from: &State) {
    match into {
        None => *into = Some(*from),
        Some(state) => {
            for (a, b) in state.iter_mut().zip(from) {
                if *a != *b {
                    *a = None;
                }
            }
        }
    }
}

fn in_stack(offset: Option<i64>, len: u32) -> bool {
    matches!(offset, Some(k) if k >= -STACK_SIZE && k.saturating_add(i64::from(len)) <= 0)
}

/// Whether every map helper call passes stack pointers covering `key_size`/`value_size`
/// bytes (the largest over all maps).
pub(crate) fn helper_pointers_in_stack(code: &[u8], key_size: u32, value_size: u32) -> bool {
    let count = code.len() / 8;
    let mut states: Vec<Option<State>> = vec![None; count + 1];
    let mut entry = [None; 11];
    entry[10] = Some(0);
    states[0] = Some(entry);
    let mut pc = 0;
    while pc < count {
        let Some(mut state) = states[pc] else {
            pc += 1;
            continue;
        };
        let insn = &code[pc * 8..pc * 8 + 8];
        let opcode = insn[0];
        let dst = usize::from(insn[1] & 0x0f);
        let src = usize::from(insn[1] >> 4);
        let off = i64::from(i16::from_le_bytes([insn[2], insn[3]]));
        let imm = i64::from(i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]));
        if dst > 10 || src > 10 {
            return false;
        }
        let mut next = pc + 1;
        let mut falls_through = true;
        match opcode {
            0xbf if src == 10 => state[dst] = Some(0),
            0xbf => state[dst] = state[src],
            0x07 => state[dst] = state[dst].and_then(|k| k.checked_add(imm)),
            0x17 => state[dst] = state[dst].and_then(|k| k.checked_sub(imm)),
            0x18 => {
                state[dst] = None;
                next = pc + 2;
            }
            0x85 => {
                if src != 0 {
                    return false;
                }
                let ok = match imm as u32 {
                    HELPER_MAP_LOOKUP | HELPER_MAP_DELETE => in_stack(state[2], key_size),
                    HELPER_MAP_UPDATE => in_stack(state[2], key_size) && in_stack(state[3], value_size),
                    _ => true,
                };
                if !ok {
                    return false;
                }
                state[..6].fill(None);
            }
            0x95 => falls_through = false,
            // callx: an indirect call to who knows what.
            0x8d => return false,
            _ => {
                let class = opcode & 0x07;
                let is_jump_class = class == 0x05 || class == 0x06;
                if is_jump_class {
                    let target = (pc as i64) + 1 + if opcode == 0x06 { imm } else { off };
                    if target <= pc as i64 || target as usize > count {
                        return false;
                    }
                    meet(&mut states[target as usize], &state);
                    falls_through = opcode != 0x05 && opcode != 0x06;
                } else if matches!(class, 0x00 | 0x01 | 0x04 | 0x07) {
                    // LD, LDX, ALU, ALU64 write dst with something not tracked here.
                    state[dst] = None;
                }
                // ST/STX write memory only. Spilled stack pointers are forgotten, which
                // only makes the answer more conservative.
            }
        }
        if falls_through && next <= count {
            meet(&mut states[next], &state);
        }
        pc = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::helper_pointers_in_stack;
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
        let code = [
            [0xb7, 0x02, 0, 0, 16, 0, 0, 0], // r2 = 16
            [0x85, 0, 0, 0, 1, 0, 0, 0],     // call 1
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert!(!helper_pointers_in_stack(&code, 4, 4));
        let stack_key = [
            [0xbf, 0xa2, 0, 0, 0, 0, 0, 0],             // r2 = r10
            [0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff], // r2 += -4
            [0x85, 0, 0, 0, 1, 0, 0, 0],
            [0x95, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert!(helper_pointers_in_stack(&stack_key, 4, 4));
        assert!(!helper_pointers_in_stack(&stack_key, 8, 4), "8 bytes at r10-4 overrun");
    }
}
