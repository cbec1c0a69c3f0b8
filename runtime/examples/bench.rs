//! Fixture objects in, ns/packet out: the rbpf VM (and, when privileged, the kernel's
//! `BPF_PROG_TEST_RUN`) on one IPv4 TCP/22 packet.
//!
//! Run: `cargo run --release -p pfc-runtime --example bench [PACKETS]`.
use std::time::Instant;

use pfc_runtime::kernel::{privileges, KernelProgram};
use pfc_runtime::vm::{Vm, VmError};
use pfc_runtime::{BpfObject, ObjectError};

const FIXTURES: &[(&str, &[u8])] = &[
    ("xdp_pass", include_bytes!("../tests/fixtures/xdp_pass.o")),
    ("tcp_dport_22", include_bytes!("../tests/fixtures/tcp_dport_22.o")),
    ("xdp_count", include_bytes!("../tests/fixtures/xdp_count.o")),
    ("tc_count", include_bytes!("../tests/fixtures/tc_count.o")),
];

/// Ethernet + IPv4 + TCP to port 22: the deepest path through every fixture.
fn ssh_packet() -> Vec<u8> {
    let mut p = vec![0u8; 14 + 20 + 20];
    p[0] = 2;
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[23] = 6;
    p[34 + 2..34 + 4].copy_from_slice(&22u16.to_be_bytes());
    p
}

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error(transparent)]
    Kernel(#[from] pfc_runtime::kernel::KernelError),
}

fn main() -> Result<(), BenchError> {
    let packets: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let packet = ssh_packet();
    let kernel_ok = privileges();
    if let Err(reason) = &kernel_ok {
        println!("kernel: skipped: {reason}");
    }
    for (name, elf) in FIXTURES {
        let object = BpfObject::parse(elf)?;
        let mut vm = Vm::new(&object)?;
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..packets {
            sum = sum.wrapping_add(vm.run(&packet)?.return_value);
        }
        let vm_ns = start.elapsed().as_nanos() as f64 / f64::from(packets);
        let kernel = if kernel_ok.is_ok() {
            let program = KernelProgram::load(elf)?;
            format!(
                "{} ns/packet in the kernel ({} xlated insns)",
                program.bench(&packet, packets)?,
                program.xlated_insn_count()?
            )
        } else {
            "kernel skipped".to_string()
        };
        println!("{name:>13}: {vm_ns:7.1} ns/packet in rbpf ({} insns, r0 sum {sum}); {kernel}", object.insn_count());
    }
    Ok(())
}
