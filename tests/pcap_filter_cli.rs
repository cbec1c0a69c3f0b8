//! `pfc compile --pcap-filter EXPR`: the one-liner for tcpdump users. The object it writes
//! must give libpcap's verdict on matching packets and the other verdict on the rest, and
//! bad use must be refused with the documented exit codes.

use std::path::PathBuf;
use std::process::Command;

use pfc_compiler::packet::Packet;
use pfc_runtime::vm::Vm;
use pfc_runtime::BpfObject;

fn pfc(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pfc")).args(args).output().expect("pfc runs");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn object_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pfc-pcap-filter-{}-{name}.o", std::process::id()))
}

/// Compiles the one-liner and returns the VM's return code for each packet.
fn verdicts(expression: &str, extra: &[&str], packets: &[Vec<u8>]) -> Vec<u64> {
    let path = object_path(&format!("{:x}", pfc_compiler::compile::fnv1a64(expression.as_bytes())));
    let target = path.to_str().expect("utf-8 temp path");
    let mut args = vec!["compile", "--pcap-filter", expression, "-o", target];
    args.extend_from_slice(extra);
    let (code, stderr) = pfc(&args);
    assert_eq!(code, 0, "{expression}: {stderr}");
    let bytes = std::fs::read(&path).expect("object written");
    let _ = std::fs::remove_file(&path);
    let object = BpfObject::parse(&bytes).expect("object parses");
    let mut vm = Vm::new(&object).expect("vm");
    packets.iter().map(|packet| vm.run(packet).expect("runs").return_value).collect()
}

#[test]
fn matching_packets_get_the_verdict_and_the_rest_the_other() {
    let dns_from_172 = Packet::eth().ipv4("172.16.9.9", "192.0.2.53").udp(5353, 53).build();
    let dns_from_10 = Packet::eth().ipv4("10.0.0.9", "192.0.2.53").udp(5353, 53).build();
    let ssh = Packet::eth().ipv4("172.16.9.9", "192.0.2.53").tcp(40000, 22).build();
    let packets = [dns_from_172, dns_from_10, ssh];
    let expression = "udp and src net 172.16.0.0/12 and dst port 53";
    // XDP: 1 drop, 2 pass; TC: 2 shot, 0 ok.
    assert_eq!(verdicts(expression, &[], &packets), vec![1, 2, 2]);
    assert_eq!(verdicts(expression, &["--verdict", "pass"], &packets), vec![2, 1, 1]);
    assert_eq!(verdicts(expression, &["--hook", "tc-ingress"], &packets), vec![2, 0, 0]);
}

#[test]
fn bad_use_is_refused() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["compile", "--pcap-filter", "tcp port 22"], 2, "needs -o"),
        (&["compile", "rules.pf", "--pcap-filter", "tcp"], 2, "cannot be used with"),
        (&["compile", "--pcap-filter", "host example.com", "-o", "/dev/null"], 1, "E0019"),
        (&["compile", "--pcap-filter", "udp and and port 53", "-o", "/dev/null"], 1, "E0018"),
    ];
    for (args, code, text) in cases {
        let (actual, stderr) = pfc(args);
        assert_eq!(actual, *code, "{args:?}: {stderr}");
        assert!(stderr.contains(text), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// libpcap's empty expression matches every frame: `pcap ""` compiles (rule file and
/// one-liner) and `pfc test` runs it (once "instruction 9 is unreachable", E0900).
#[test]
fn empty_expression_matches_every_frame() {
    let udp = Packet::eth().ipv4("10.0.0.9", "192.0.2.53").udp(5353, 53).build();
    let runt = vec![0u8; 14];
    assert_eq!(verdicts("", &[], &[udp, runt]), vec![1, 1]);
    let dir = std::env::temp_dir().join(format!("pfc-pcap-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let rules = dir.join("r.pf");
    let cases = dir.join("r.test.toml");
    std::fs::write(&rules, "default pass\nrule all: drop if pcap \"\"\n").expect("write rules");
    std::fs::write(&cases, "[[case]]\nname = \"any\"\npacket = \"udp dport=53\"\nexpect = \"drop\"\n")
        .expect("write cases");
    let object = dir.join("r.o");
    let (code, stderr) = pfc(&["compile", rules.to_str().expect("utf-8"), "-o", object.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "compile: {stderr}");
    let (code, stderr) = pfc(&["test", rules.to_str().expect("utf-8")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "test: {stderr}");
}
