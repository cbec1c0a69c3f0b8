//! The kernel back end against the VM: same packets, same return values, same counters.
//! Every test skips (and says why) when this process cannot load BPF programs.
#[macro_use]
extern crate pfc_test_support;

mod common;

use common::{corpus, ethernet, ipv4, tcp, TCP_DPORT_22, TC_COUNT, XDP_COUNT, XDP_PASS};
use pfc_compiler::bpf::{encode, Insn, Reg};
use pfc_compiler::object::ProgramType;
use pfc_runtime::kernel::{max_test_run_len, min_test_run_len, KernelError, KernelProgram, MIN_PACKET_LEN};
use pfc_runtime::vm::Vm;
use pfc_runtime::BpfObject;
use pfc_test_support::no_kernel;

#[test]
fn kernel_and_vm_agree_on_every_fixture() {
    skip_unless!(no_kernel());
    for (name, elf) in common::FIXTURES {
        let kernel = KernelProgram::load(elf).unwrap_or_else(|e| panic!("{name}: {e}"));
        let object = BpfObject::parse(elf).expect("fixture parses");
        let mut vm = Vm::new(&object).expect("vm");
        let (mut compared, mut too_short) = (0, 0);
        for packet in corpus() {
            let in_kernel = match kernel.test_run(&packet) {
                Ok(value) => value,
                Err(KernelError::PacketTooShort { len, min }) => {
                    assert_eq!(min, min_test_run_len(object.program_type, &packet));
                    assert!(len < min && min >= MIN_PACKET_LEN);
                    too_short += 1;
                    continue;
                }
                Err(KernelError::PacketTooLong { .. }) => continue,
                Err(e) => panic!("{name}: {e}"),
            };
            let in_vm = vm.run(&packet).expect("vm runs").return_value;
            assert_eq!(u64::from(in_kernel), in_vm, "{name} on {packet:02x?}");
            compared += 1;
        }
        println!("{name}: {compared} packets agree, {too_short} too short for the kernel");
        assert!(compared > 100, "{name}: only {compared} packets compared");
        for map in 0..object.maps.len() {
            assert_eq!(
                kernel.map_values(map).expect("kernel map"),
                vm.map_values(map).expect("vm map"),
                "{name}: map `{}`",
                object.maps[map].name
            );
        }
    }
}

#[test]
fn short_packets_are_a_distinct_error() {
    skip_unless!(no_kernel());
    let kernel = KernelProgram::load(XDP_PASS).expect("loads");
    let error = kernel.test_run(&[0; 13]).expect_err("too short");
    assert!(matches!(error, KernelError::PacketTooShort { len: 13, min: 14 }));
    assert_eq!(kernel.test_run(&[0; 14]).expect("14 bytes run"), 2);
    // TC runs on an skb: the kernel wants the whole IP header the ethertype announces.
    let tc = KernelProgram::load(TC_COUNT).expect("loads");
    let ssh = ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22)));
    let error = tc.test_run(&ssh[..33]).expect_err("too short for an skb");
    assert!(matches!(error, KernelError::PacketTooShort { len: 33, min: 34 }));
    assert_eq!(tc.test_run(&ssh[..34]).expect("34 bytes run"), 0);
}

#[test]
fn verifier_rejection_carries_the_log() {
    skip_unless!(no_kernel());
    // Make the first instruction `r0 = r5`: r5 is never initialised.
    let object = BpfObject::parse(XDP_PASS).expect("fixture parses");
    let code_at = XDP_PASS.windows(object.code.len()).position(|w| w == object.code.as_slice()).expect("code in file");
    let mut broken = XDP_PASS.to_vec();
    broken[code_at..code_at + 8].copy_from_slice(&encode(&[Insn::mov64(Reg::R0, Reg::R5)]));
    let error = KernelProgram::load(&broken).expect_err("verifier rejects");
    let KernelError::Load { log, program, .. } = &error else {
        panic!("not a load error: {error:?}");
    };
    assert_eq!(program, "ref_empty");
    assert!(log.contains("R5 !read_ok"), "log:\n{log}");
    assert!(log.lines().count() <= 30);
}

#[test]
fn bench_and_xlated_count_report_numbers() {
    skip_unless!(no_kernel());
    let packet = ethernet(&[], 0x0800, &ipv4(6, 0, 0, &tcp(1234, 22)));
    for (name, elf) in
        [("xdp_pass", XDP_PASS), ("tcp_dport_22", TCP_DPORT_22), ("xdp_count", XDP_COUNT), ("tc_count", TC_COUNT)]
    {
        let kernel = KernelProgram::load(elf).expect("loads");
        let ns = kernel.bench(&packet, 100_000).expect("bench");
        let xlated = kernel.xlated_insn_count().expect("prog info");
        println!("{name}: {ns} ns/run in the kernel, {xlated} xlated insns");
        assert!(ns > 0 && ns < 100_000, "{name}: {ns} ns");
        assert!(xlated >= 2);
    }
}

/// Rate limits through `BPF_PROG_TEST_RUN`: the kernel's clock is real, so the limit is
/// one a test cannot refill (1 a minute, burst 5): the first 5 packets per source pass,
/// the rest are dropped, in the kernel as in the VM (whose clock stands still), and both
/// end with the same buckets' keys.
#[test]
fn rate_limits_give_the_vms_verdicts_when_no_refill_can_happen() {
    skip_unless!(no_kernel());
    let rules = "default pass\nrule flood: drop if ip and rate > 1/m per ip.src, l4.dport burst 5\n";
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
    let kernel = KernelProgram::load(&compiled.object).expect("the kernel verifier accepts a rate limit");
    let object = BpfObject::parse(&compiled.object).expect("parses");
    let mut vm = Vm::new(&object).expect("vm");
    let mut verdicts = Vec::new();
    for round in 0..8 {
        for source in 0..3u32 {
            let spec = format!("ipv4 src=10.0.0.{source} / tcp dport=22");
            let packet = pfc_compiler::testcase::spec_bytes(&spec).expect("spec");
            let in_kernel = kernel.test_run(&packet).expect("test_run");
            assert_eq!(u64::from(in_kernel), vm.run_at(&packet, 0).expect("vm").return_value, "round {round}");
            verdicts.push(in_kernel);
        }
    }
    assert_eq!(verdicts.iter().filter(|v| **v == 1).count(), 3 * 3, "3 sources x (8 - 5) drops");
    let keys = |values: Vec<(Vec<u8>, Vec<u8>)>| values.into_iter().map(|(key, _)| key).collect::<Vec<_>>();
    let vm_keys = keys(vm.map_entries(1).expect("vm buckets"));
    assert_eq!(vm_keys.len(), 3);
    assert_eq!(kernel.map_values(1).expect("kernel buckets").len(), 3);
}

/// The kernel verifier accepts rate limits of every shape: packets and bytes, per second
/// and per minute, global and multi-field keys, `>` and `<=`, XDP and TC, alone and in a
/// set large enough for the classifier.
#[test]
fn the_kernel_verifier_accepts_every_shape_of_rate_limit() {
    skip_unless!(no_kernel());
    let mut many = String::from("default pass\n");
    for port in 0..40 {
        many += &format!("rule r{port}: drop if tcp.dport == {} and rate > 100/s per ip.src\n", 1000 + port);
    }
    let sets = [
        "default pass\nrule a: drop if rate > 100000/s\n".to_string(),
        "default drop\nrule a: pass if udp and rate <= 1 mbytes/s per ip.dst, udp.dport burst 64 kbytes buckets 100000\n"
            .to_string(),
        "hook tc ingress\ndefault pass\nrule a: drop if icmp6 and rate > 5/m per ipv6.src, eth.src\nrule b: drop if tcp.flags & syn and rate > 1000/s per ip.src, ip.dst, l4.sport, l4.dport\n".to_string(),
        many,
    ];
    for rules in &sets {
        let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
        let compiled = compiled.unwrap_or_else(|| panic!("{rules}: {diagnostics:?}"));
        let kernel = KernelProgram::load(&compiled.object).unwrap_or_else(|e| panic!("{rules}: {e}"));
        let processed = kernel.verified_insn_count().expect("insn count");
        println!("{} rules: verified, {processed} instructions", compiled.program.rules.len());
    }
}

/// A frame longer than one page minus the kernel's reserve is refused as such, not run on a
/// part of it (XDP) or failed with EINVAL (TC): 3,520 and 3,712 bytes with 4 KiB pages.
#[test]
fn long_packets_are_a_distinct_error() {
    skip_unless!(no_kernel());
    for (elf, program_type) in [(XDP_PASS, ProgramType::Xdp), (TC_COUNT, ProgramType::SchedCls)] {
        let kernel = KernelProgram::load(elf).expect("loads");
        let max = max_test_run_len(program_type);
        assert!(max >= 3_000, "{max}");
        kernel.test_run(&vec![0; max]).expect("the longest frame runs");
        let error = kernel.test_run(&vec![0; max + 1]).expect_err("too long");
        assert!(matches!(error, KernelError::PacketTooLong { len, max: m } if len == max + 1 && m == max), "{error}");
    }
}
