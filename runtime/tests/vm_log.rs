//! Logging in the VM with controlled time: the events a program writes to its ring buffer
//! (rbpf emulates `bpf_ringbuf_reserve/submit` and the load-bytes helpers) are exactly the
//! interpreter's (`State::logged`), in rbpf's JIT and its interpreter alike, with the log limit's arithmetic of docs/language.md §3.3.
use pfc_compiler::eval::{evaluate_at, State};
use pfc_compiler::program::log::{Event, LOG_BURST};
use pfc_compiler::program::Hook;
use pfc_compiler::testcase::spec_bytes;
use pfc_runtime::vm::{Backend, Vm};
use pfc_runtime::BpfObject;

const MS: u64 = 1_000_000;

#[test]
fn events_follow_the_interpreter_and_the_log_limit_exactly() {
    let rules = "hook tc ingress\ndefault pass\nrule ping: drop log 20 if icmp\nrule rest: pass if ip\n";
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
    let object = BpfObject::parse(&compiled.object).expect("parses");
    let mut jit = Vm::new(&object).expect("vm");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(jit.backend(), Backend::Jit, "{:?}", jit.jit_unavailable());
    }
    let mut interpreter = Vm::interpreter(&object).expect("vm");
    let mut state = State::new(&compiled.program);
    let ping = spec_bytes("ipv4 src=198.51.100.7 / icmp echo-request").expect("spec");
    let other = spec_bytes("ipv4 / udp dport=53").expect("spec");
    let mut sent = Vec::new();
    // 300 pings 1 ms apart, a UDP packet after each: the burst of 100, then one per 10 ms.
    for index in 0..300u64 {
        for packet in [&ping, &other] {
            let now = index * MS;
            let want = evaluate_at(&compiled.program, packet, &mut state, now);
            let got = jit.run_at(packet, now).expect("runs").return_value;
            assert_eq!(got, if want.rule == Some(0) { 2 } else { 0 }, "packet {index}");
            assert_eq!(interpreter.run_at(packet, now).expect("runs").return_value, got);
            let events = jit.take_events();
            assert_eq!(interpreter.take_events(), events, "packet {index}: the JIT's events are the interpreter's");
            assert_eq!(events.len(), usize::from(state.logged), "packet {index}: the interpreter's log decision");
            for record in events {
                let event = Event::decode(&record).expect("a whole event");
                assert_eq!((event.time_ns, event.rule, event.action, event.hook), (now, 0, 2, Some(Hook::TcIngress)));
                assert_eq!((event.frame_len as usize, event.bytes.as_slice()), (ping.len(), &ping[..20]));
                sent.push(index);
            }
        }
    }
    // The burst of 100 refills by 0.1 token a ms meanwhile: packet k finds 100 − 0.9·k
    // tokens, so packets 0–110 send (110 finds exactly 1), then one per 10 ms: 120, …, 290.
    let expected: Vec<u64> = (0..=LOG_BURST + 10).chain((120..300).step_by(10)).collect();
    assert_eq!(sent, expected);
}
