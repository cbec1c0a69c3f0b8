//! The parse prologue's common paths take the jumps its layout promises
//! (`compiler/src/codegen/prologue.rs`): counted by the classbench bench's counting
//! interpreter (`benches/classbench/paths.rs`) on a mixed IPv4/IPv6 ClassBench set, whose
//! rules read TCP and UDP ports of both families. Untagged IPv4 TCP or UDP: one taken jump
//! before the classifier; untagged IPv6 TCP or UDP: two. Rare frames may take more.
#[allow(dead_code)]
#[path = "../benches/classbench/paths.rs"]
mod paths;

use pfc_compiler::classbench::{self, Shape};
use pfc_compiler::codegen::Options;
use pfc_compiler::packet::Packet;

#[test]
fn untagged_tcp_and_udp_take_one_jump_over_ipv4_and_two_over_ipv6() {
    let generated = classbench::generate(Shape::Mixed, 100, 0, 7);
    let (compiled, diagnostics) = pfc_compiler::compile::compile(&generated.text, Options { counters: true });
    let compiled = compiled.unwrap_or_else(|| panic!("{diagnostics:?}"));
    assert!(
        compiled.code.comments.iter().any(|comment| comment.text.starts_with("classifier: ")),
        "not a classifier: the prologue's jumps would not be counted apart"
    );
    let parts = paths::Parts::new(&compiled.code);
    let tables = paths::Tables::default();
    let frames = [
        ("ipv4 tcp", Packet::eth().ipv4("10.0.0.1", "10.0.0.2").tcp(40_000, 80), 1),
        ("ipv4 udp", Packet::eth().ipv4("10.0.0.1", "10.0.0.2").udp(40_000, 53), 1),
        ("ipv6 tcp", Packet::eth().ipv6("2001:db8::1", "2001:db8::2").tcp(40_000, 80), 2),
        ("ipv6 udp", Packet::eth().ipv6("2001:db8::1", "2001:db8::2").udp(40_000, 53), 2),
    ];
    for (name, frame, jumps) in frames {
        let path = paths::run(&compiled.code, &parts, &tables, &frame.build()).expect("runs");
        assert_eq!(path.taken_in[0], jumps, "{name}: jumps taken in the prologue");
    }
    // A VLAN-tagged frame goes the long way: the count above is the layout's, not a
    // counter that never moves.
    let tagged = Packet::eth().vlan(5).ipv4("10.0.0.1", "10.0.0.2").tcp(40_000, 80);
    let path = paths::run(&compiled.code, &parts, &tables, &tagged.build()).expect("runs");
    assert!(path.taken_in[0] > 2, "vlan ipv4 tcp: {} jumps taken in the prologue", path.taken_in[0]);
}
