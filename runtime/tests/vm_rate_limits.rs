//! Rate limits with controlled time: rule text and (packet, time) sequences in; the
//! interpreter (`evaluate_at`), rbpf's interpreter and rbpf's JIT must give the same
//! verdict for every packet, leave byte-identical buckets in the maps and the same limit
//! statistics (`pfc_limit_stats`: packets over and within each rule limit's rate), and
//! the counts must be the ones the token-bucket arithmetic of docs/language.md §3.2 gives.
use pfc_compiler::codegen::limit::map_index;
use pfc_compiler::eval::{evaluate_at, State};
use pfc_compiler::object::maps::LIMIT_STATS_MAP_NAME;
use pfc_compiler::program::limit::LimitStats;
use pfc_compiler::program::Verdict;
use pfc_compiler::testcase::spec_bytes as build_packet;
use pfc_runtime::vm::{Backend, Vm};
use pfc_runtime::BpfObject;

const MS: u64 = 1_000_000;

fn icmp_from(source: u32) -> Vec<u8> {
    let address = std::net::Ipv4Addr::from(0xc633_6400 + source);
    build_packet(&format!("ipv4 src={address} / icmp echo-request")).expect("spec builds")
}

/// Runs every packet through the interpreter and both VM backends; returns how many
/// were dropped. Panics on any disagreement, in verdicts, in the buckets left behind or
/// in the limit statistics.
fn dropped(rules: &str, packets: &[(Vec<u8>, u64)]) -> usize {
    run(rules, packets).0
}

/// The limit statistics of a VM, by limit index (`over`, `within`: two u64 per entry).
fn vm_limit_stats(vm: &Vm<'_>, object: &BpfObject) -> Vec<LimitStats> {
    let map = object.map_index(LIMIT_STATS_MAP_NAME).expect("a rule with a limit has limit statistics");
    let word = |value: &[u8], at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    let values = vm.map_values(map).expect("map");
    values.iter().map(|value| LimitStats { over: word(value, 0), within: word(value, 8) }).collect()
}

/// [`dropped`], and the limit statistics all three agree on.
fn run(rules: &str, packets: &[(Vec<u8>, u64)]) -> (usize, Vec<LimitStats>) {
    let (compiled, diagnostics) = pfc_compiler::compile::compile(rules, Default::default());
    let compiled = compiled.unwrap_or_else(|| panic!("compiles: {diagnostics:?}"));
    let object = BpfObject::parse(&compiled.object).expect("object parses");
    let program = &compiled.program;
    let mut state = State::new(program);
    let mut jit = Vm::with_backend(&object, Backend::Jit).expect("vm");
    assert_eq!(jit.backend(), Backend::Jit, "{:?}", jit.jit_unavailable());
    let mut interpreter = Vm::interpreter(&object).expect("vm");
    let mut drops = 0;
    for (index, (packet, time)) in packets.iter().enumerate() {
        let want = evaluate_at(program, packet, &mut state, *time);
        let code = if want.verdict == Verdict::Drop { 1 } else { 2 };
        for vm in [&mut jit, &mut interpreter] {
            let got = vm.run_at(packet, *time).expect("runs").return_value;
            assert_eq!(got, code, "packet {index} at {time} ns");
        }
        drops += usize::from(want.verdict == Verdict::Drop);
    }
    for (limit, table) in state.tables.iter().enumerate() {
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            table.entries().into_iter().map(|(key, bucket)| (key, bucket.to_bytes().to_vec())).collect();
        for vm in [&jit, &interpreter] {
            assert_eq!(vm.map_entries(map_index(limit as u32) as usize).expect("map"), want, "limit {limit}");
        }
    }
    for vm in [&jit, &interpreter] {
        assert_eq!(vm_limit_stats(vm, &object), state.limit_stats, "limit statistics");
    }
    let total: u64 = state.limit_stats.iter().map(|stats| stats.over + stats.within).sum();
    assert!(total <= packets.len() as u64, "at most one limit per packet");
    (drops, state.limit_stats)
}

#[test]
fn one_source_100_packets_over_a_second_against_10_per_second_burst_5() {
    let rules = "default pass\nrule flood: drop if icmp.type == echo-request and rate > 10/s per ip.src burst 5\n";
    let packets: Vec<_> = (0..100).map(|i| (icmp_from(7), 1_000 * MS + i * 10 * MS)).collect();
    // 5 from the burst, then one per 100 ms for 990 ms: 14 pass.
    assert_eq!(run(rules, &packets), (86, vec![LimitStats { over: 86, within: 14 }]));
}

#[test]
fn fifty_sources_each_with_its_own_bucket() {
    let rules = "default pass\nrule flood: drop if icmp.type == echo-request and rate > 10/s per ip.src burst 5\n";
    let packets: Vec<_> =
        (0..20u64).flat_map(|round| (0..50u32).map(move |s| (icmp_from(s), round * 50 * MS + u64::from(s)))).collect();
    // Each source: 20 packets 50 ms apart: 5 from the burst, 9 refilled: 14 pass.
    assert_eq!(dropped(rules, &packets), 50 * 6);
}

#[test]
fn byte_rates_cost_the_frame_length() {
    let rules = "default pass\nrule dns: drop if udp.sport == 53 and rate > 1500 bytes/s burst 3000 bytes\n";
    let answer = build_packet("ipv4 / udp sport=53 / payload len=958").expect("spec");
    assert_eq!(answer.len(), 1000);
    let packets: Vec<_> = (0..6).map(|i| (answer.clone(), i * 100 * MS)).collect();
    assert_eq!(dropped(rules, &packets), 3);
}

#[test]
fn a_full_table_evicts_the_least_recently_used_key_in_both() {
    let rules = "default pass\nrule flood: drop if icmp and rate > 1/m per ip.src burst 1 buckets 4\n";
    // Sources 0..6 in turn, three times: with 4 buckets each returns after eviction and
    // finds a full bucket again; a table of 16 would drop every second visit.
    let packets: Vec<_> = (0..18u32).map(|i| (icmp_from(i % 6), u64::from(i) * MS)).collect();
    assert_eq!(dropped(rules, &packets), 0);
    let big = rules.replace("buckets 4", "buckets 16");
    assert_eq!(dropped(&big, &packets), 12);
}

#[test]
fn accept_at_most_lets_the_rest_reach_later_rules() {
    let rules = "default drop\nrule some: pass if icmp and rate <= 2/s burst 2\nrule logged: drop if icmp\n";
    let packets: Vec<_> = (0..5).map(|i| (icmp_from(1), i * MS)).collect();
    assert_eq!(run(rules, &packets), (3, vec![LimitStats { over: 3, within: 2 }]));
}

#[test]
fn limit_statistics_count_only_packets_that_reach_the_limit() {
    // `rate <=` with a 10/s burst 5 limit: 100 pings 10 ms apart from one source, and 100
    // UDP datagrams that never reach the limit (its rule is ICMP only); a second limit
    // on another rule, and a log limit, which is not counted here.
    let rules = "default drop
rule some: pass if icmp and rate <= 10/s per ip.src burst 5
                 rule udp_few: pass log if udp.dport == 53 and rate <= 1/m burst 3
rule rest: drop log if icmp
";
    let udp = build_packet("ipv4 / udp dport=53").expect("spec");
    let packets: Vec<_> =
        (0..100u64).flat_map(|i| [(icmp_from(3), i * 10 * MS), (udp.clone(), i * 10 * MS + 1)]).collect();
    let (drops, stats) = run(rules, &packets);
    // ICMP: 14 within (as above), 86 over go on to `rest`; UDP: 3 within, 97 over.
    assert_eq!(drops, 86 + 97);
    // Two rule limits and two log limits (their order in the program is the checker's).
    let (mut counted, logs): (Vec<LimitStats>, Vec<LimitStats>) =
        stats.iter().partition(|stats| **stats != LimitStats::default());
    counted.sort_by_key(|stats| stats.over);
    assert_eq!(counted, [LimitStats { over: 86, within: 14 }, LimitStats { over: 97, within: 3 }]);
    assert_eq!(logs.len(), 2, "log limits are not counted here: {stats:?}");
}

#[test]
fn limits_in_a_classified_rule_set_run_only_when_no_earlier_rule_matched() {
    // 40 rules make the classifier plan the set; the limit sits in the middle.
    let mut rules = String::from("default pass\n");
    for port in 0..20 {
        rules += &format!("rule tcp{port}: drop if tcp.dport == {}\n", 1000 + port);
    }
    rules += "rule flood: drop if ip.src in 198.51.100.0/24 and rate > 1/s per ip.src burst 2\n";
    for port in 0..20 {
        rules += &format!("rule udp{port}: pass if udp.dport == {}\n", 2000 + port);
    }
    let packets: Vec<_> = (0..30u64)
        .map(|i| {
            let spec = match i % 3 {
                0 => "ipv4 src=198.51.100.1 / tcp dport=1005".to_string(),
                1 => "ipv4 src=198.51.100.1 / udp dport=2003".to_string(),
                _ => "ipv4 src=198.51.100.2 / icmp".to_string(),
            };
            (build_packet(&spec).expect("spec"), i * 100 * MS)
        })
        .collect();
    // tcp1005 drops its 10; the 20 others reach the limit: 2 per source from the burst,
    // then one per second.
    let drops = dropped(&rules, &packets);
    assert!(drops > 10 && drops < 30, "{drops}");
}
