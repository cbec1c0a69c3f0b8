//! The rbpf VM on the clang fixtures: verdicts, counters, errors, and no panics.
mod common;

use common::{corpus, ethernet, ipv4, ipv6, tcp, udp, words, TCP_DPORT_22, TC_COUNT, XDP_COUNT};
use pfc_compiler::bpf::{encode, Insn, JmpOp, Reg, Size};
use pfc_runtime::vm::{Vm, VmError, MAX_PACKET_LEN};
use pfc_runtime::{BpfObject, ProgramType};
use proptest::prelude::*;

const XDP_DROP: u64 = 1;
const XDP_PASS: u64 = 2;

fn run(vm: &mut Vm<'_>, packet: &[u8]) -> u64 {
    vm.run(packet).expect("program runs").return_value
}

#[test]
fn tcp_dport_22_verdicts() {
    let object = BpfObject::parse(TCP_DPORT_22).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let ssh4 = ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22)));
    for (packet, expected) in [
        (ssh4.clone(), XDP_DROP),
        (ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 80))), XDP_PASS),
        (ethernet(&[], 0x0800, &ipv4(6, 3, 0, &tcp(1234, 22))), XDP_DROP),
        (ethernet(&[], 0x0800, &ipv4(6, 0, 0x0001, &tcp(1234, 22))), XDP_PASS),
        (ethernet(&[], 0x0800, &ipv4(17, 0, 0, &udp(1, 22, 0))), XDP_PASS),
        (ethernet(&[], 0x86dd, &ipv6(6, false, &tcp(1, 22))), XDP_DROP),
        (ethernet(&[], 0x86dd, &ipv6(6, true, &tcp(1, 22))), XDP_DROP),
        (ethernet(&[5, 6], 0x0800, &ipv4(6, 0, 0, &tcp(1, 22))), XDP_DROP),
        (ssh4[..ssh4.len() - 1].to_vec(), XDP_PASS),
        (Vec::new(), XDP_PASS),
    ] {
        assert_eq!(run(&mut vm, &packet), expected, "packet {packet:02x?}");
    }
}

#[test]
fn per_cpu_counters_accumulate_and_reset() {
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let v4 = ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1, 2)));
    let v6 = ethernet(&[], 0x86dd, &ipv6(17, false, &udp(1, 2, 3)));
    let long_arp = ethernet(&[], 0x0806, &[0; 100]);
    assert_eq!(run(&mut vm, &v4), XDP_PASS);
    assert_eq!(run(&mut vm, &v4), XDP_PASS);
    assert_eq!(run(&mut vm, &v6), XDP_PASS);
    assert_eq!(run(&mut vm, &long_arp), XDP_DROP);
    assert_eq!(run(&mut vm, &[1, 2, 3]), XDP_PASS);
    let counters: Vec<Vec<u64>> = vm.map_values(0).expect("map 0").iter().map(|v| words(v)).collect();
    let (l4, l6, la) = (v4.len() as u64, v6.len() as u64, long_arp.len() as u64);
    assert_eq!(counters, vec![vec![2, 2 * l4], vec![1, l6], vec![2, la + 3]]);
    vm.reset_maps();
    let zeros: Vec<Vec<u64>> = vm.map_values(0).expect("map 0").iter().map(|v| words(v)).collect();
    assert_eq!(zeros, vec![vec![0, 0]; 3]);
}

#[test]
fn tc_context_fields_reach_the_program() {
    let object = BpfObject::parse(TC_COUNT).expect("fixture parses");
    assert_eq!(object.program_type, ProgramType::SchedCls);
    let mut vm = Vm::new(&object).expect("vm");
    let ssh = ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22)));
    let web = ethernet(&[], 0x86dd, &ipv6(6, false, &tcp(1234, 80)));
    assert_eq!(run(&mut vm, &ssh), 2, "TC_ACT_SHOT");
    assert_eq!(run(&mut vm, &web), 0, "TC_ACT_OK");
    assert_eq!(run(&mut vm, &web), 0, "TC_ACT_OK");
    let last = vm.map_values(0).expect("last");
    let len = u32::from_le_bytes(last[0][0..4].try_into().unwrap());
    let protocol = u32::from_le_bytes(last[0][4..8].try_into().unwrap());
    assert_eq!((len as usize, protocol), (web.len(), 0xdd86), "len, protocol as __be16");
    let verdicts: Vec<Vec<u64>> = vm.map_values(1).expect("verdicts").iter().map(|v| words(v)).collect();
    assert_eq!(verdicts, vec![vec![2], vec![1]]);
}

#[test]
fn map_update_is_visible_to_the_program_and_bad_indices_are_errors() {
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let mut value = 40u64.to_le_bytes().to_vec();
    value.extend_from_slice(&0u64.to_le_bytes());
    vm.map_update(0, &2u32.to_le_bytes(), &value).expect("update");
    run(&mut vm, &[0; 5]);
    assert_eq!(words(&vm.map_values(0).expect("map")[2]), vec![41, 5]);
    assert!(matches!(vm.map_values(1), Err(VmError::NoSuchMap { map_index: 1, map_count: 1 })));
    assert!(matches!(vm.map_update(0, &3u32.to_le_bytes(), &value), Err(VmError::MapUpdate { errno: 7, .. })));
}

#[test]
fn oversized_packets_and_out_of_bounds_reads_are_errors() {
    let object = BpfObject::parse(TCP_DPORT_22).expect("fixture parses");
    let mut vm = Vm::new(&object).expect("vm");
    let huge = vec![0u8; MAX_PACKET_LEN + 1];
    assert!(matches!(vm.run(&huge), Err(VmError::PacketTooLarge { len, .. }) if len == huge.len()));
    assert_eq!(run(&mut vm, &vec![0u8; MAX_PACKET_LEN]), XDP_PASS);

    // r2 = ctx->data; r0 = *(u8 *)(r2 + 100); exit — unchecked read past a 10-byte packet.
    let mut unchecked = object.clone();
    unchecked.code =
        encode(&[Insn::load(Size::W, Reg::R2, Reg::R1, 0), Insn::load(Size::B, Reg::R0, Reg::R2, 100), Insn::Exit]);
    let mut vm = Vm::new(&unchecked).expect("vm");
    let error = vm.run(&[0; 10]).expect_err("out of bounds");
    assert!(matches!(error, VmError::Execution { packet_len: 10, .. }), "{error:?}");
    assert_eq!(error.to_string(), "program failed on a 10-byte packet");
    assert_eq!(run(&mut vm, &[7; 101]), 7);
}

#[test]
fn helper_with_a_wild_key_pointer_returns_null() {
    // r1 = map 0; r2 = 16 (not a pointer); call 1; r0 = (r0 == 0) ? 2 : 1; exit
    let object = BpfObject::parse(XDP_COUNT).expect("fixture parses");
    let mut wild = object.clone();
    wild.code = encode(&[
        Insn::LoadMapIndex { dst: Reg::R1, map: 0 },
        Insn::mov64(Reg::R2, 16),
        Insn::Call { helper: 1 },
        Insn::mov64(Reg::R1, Reg::R0),
        Insn::mov64(Reg::R0, 2),
        Insn::jump64(JmpOp::Eq, Reg::R1, 0, 1),
        Insn::mov64(Reg::R0, 1),
        Insn::Exit,
    ]);
    let mut vm = Vm::new(&wild).expect("vm");
    assert_eq!(run(&mut vm, &[0; 20]), 2, "lookup returned null");
}

#[test]
fn corpus_runs_on_every_fixture() {
    for (name, elf) in common::FIXTURES {
        let object = BpfObject::parse(elf).expect("fixture parses");
        let mut vm = Vm::new(&object).expect("vm");
        for packet in corpus() {
            let value = run(&mut vm, &packet);
            assert!(value <= 3, "{name}: return {value} on {packet:02x?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// No packet bytes make any fixture fail or panic in the VM.
    #[test]
    fn vm_never_fails_on_any_packet(packet in prop::collection::vec(any::<u8>(), 0..300),
                                    ethertype in prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x0806])) {
        let mut packet = packet;
        if packet.len() >= 14 {
            packet[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        for (_, elf) in common::FIXTURES {
            let object = BpfObject::parse(elf).expect("fixture parses");
            let mut vm = Vm::new(&object).expect("vm");
            let result = vm.run(&packet);
            prop_assert!(matches!(result, Ok(r) if r.return_value <= 3), "{:?}", result);
        }
    }
}
