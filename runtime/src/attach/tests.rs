//! The attach logic against the fake kernel: first load, mode fallback, atomic replace
//! with counter carry-over, failures that leave the old filter untouched, foreign XDP
//! programs, unload, status and stats.

use super::fake::{read_pin, FakeSys};
use super::*;
use pfc_compiler::object::Verdict;

fn manifest(rules: &[&str]) -> Manifest {
    Manifest {
        pfc_version: "0.1.0".to_string(),
        hook: Hook::Xdp,
        default: Verdict::Pass,
        rules: rules.iter().map(|r| r.to_string()).collect(),
        verdicts: rules.iter().map(|_| Verdict::Drop).collect(),
        counters: None,
        source_hash: "fnv1a64:0".to_string(),
        limits: Vec::new(),
        dynamic_sets: None,
        logs: None,
        tables: Vec::new(),
        digest: None,
    }
}

/// A load request for `rules` on eth0; the fake object has one byte per counter.
fn request<'a>(object: &'a [u8], rules: &[&str], point: Hook) -> LoadRequest<'a> {
    LoadRequest {
        iface: "eth0",
        point,
        mode: ModeRequest::Auto,
        force: false,
        object,
        manifest: manifest(rules),
        source: "rules.pf".to_string(),
        set_contents: Vec::new(),
    }
}

fn object(rules: &[&str]) -> Vec<u8> {
    vec![0; rules.len() + 1]
}

fn count(fake: &FakeSys, map_pin: &Path, index: usize, packets: u64) {
    let id = read_pin(map_pin, "map").expect("map pin");
    fake.state.borrow_mut().maps.get_mut(&id).expect("map")[index].packets += packets;
}

#[test]
fn first_load_pins_attaches_and_records() {
    let fake = FakeSys::new("first-load");
    let filters = Filters::new(&fake, fake.layout());
    let rules = ["a", "b"];
    let outcome = filters.load(&request(&object(&rules), &rules, Hook::Xdp)).expect("loads");
    assert!(!outcome.replaced);
    assert_eq!(outcome.mode, AttachMode::Native);
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    assert!(paths.prog.exists() && paths.link.exists() && paths.counters.exists());
    let record = pins::read_record(&paths.state).expect("readable").expect("written");
    assert_eq!((record.prog_id, record.mode, record.ifindex), (outcome.prog_id, AttachMode::Native, 2));
    assert_eq!(fake.attached(2, Hook::Xdp)[0].prog, outcome.prog_id);
}

#[test]
fn auto_mode_falls_back_to_generic_but_native_mode_fails() {
    let fake = FakeSys::new("fallback");
    fake.state.borrow_mut().native_ok = false;
    let filters = Filters::new(&fake, fake.layout());
    let rules = ["a"];
    let mut native = request(&[0, 0], &rules, Hook::Xdp);
    native.mode = ModeRequest::Native;
    let error = filters.load(&native).expect_err("no native XDP");
    assert!(matches!(error, AttachError::NativeUnsupported { .. }), "{error}");
    assert!(!fake.layout().filter("eth0", Hook::Xdp).dir.exists(), "a failed load leaves nothing");
    let outcome = filters.load(&request(&[0, 0], &rules, Hook::Xdp)).expect("falls back");
    assert_eq!(outcome.mode, AttachMode::Generic);
    assert!(outcome.notices[0].contains("generic"), "{:?}", outcome.notices);
}

#[test]
fn tc_hooks_attach_with_tcx_links() {
    let fake = FakeSys::new("tcx");
    let filters = Filters::new(&fake, fake.layout());
    for point in [Hook::TcIngress, Hook::TcEgress] {
        let outcome = filters.load(&request(&[0, 0], &["a"], point)).expect("loads");
        assert_eq!(outcome.mode, AttachMode::Tcx);
        assert_eq!(fake.attached(2, point).len(), 1);
    }
}

#[test]
fn replace_swaps_the_program_under_the_same_link_and_carries_counters_by_name() {
    let fake = FakeSys::new("replace");
    let filters = Filters::new(&fake, fake.layout());
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    let old_rules = ["ssh", "dns", "web"];
    let first = filters.load(&request(&object(&old_rules), &old_rules, Hook::Xdp)).expect("loads");
    let link_before = read_pin(&paths.link, "link").expect("link");
    count(&fake, &paths.counters, 0, 5); // ssh
    count(&fake, &paths.counters, 1, 7); // dns (removed below)
    count(&fake, &paths.counters, 3, 11); // default

    let new_rules = ["new", "ssh"];
    let outcome = filters.load(&request(&object(&new_rules), &new_rules, Hook::Xdp)).expect("replaces");
    assert!(outcome.replaced);
    assert_ne!(outcome.prog_id, first.prog_id);
    assert_eq!(read_pin(&paths.link, "link").expect("link"), link_before, "same link");
    let attached = fake.attached(2, Hook::Xdp);
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0].prog, outcome.prog_id);
    assert_eq!(read_pin(&paths.prog, "prog").expect("prog"), outcome.prog_id);
    assert!(!paths.staged_prog.exists() && !paths.staged_counters.exists());
    assert_eq!((outcome.counters_kept, outcome.counters_reset), (vec!["ssh".to_string()], vec!["new".to_string()]));
    let stats = filters.stats("eth0", Hook::Xdp).expect("stats");
    let packets: Vec<(String, u64)> = stats.rules.iter().map(|(name, c)| (name.clone(), c.packets)).collect();
    assert_eq!(packets, [("new".to_string(), 0), ("ssh".to_string(), 5)]);
    assert_eq!(stats.verdicts, ["drop", "drop"], "verdicts from the record's manifest");
    assert_eq!(stats.default.1.packets, 11);
}

/// The attached program and the three pins, to compare before and after a failure.
fn snapshot(fake: &FakeSys, paths: &FilterPaths) -> (Vec<u32>, [u32; 3], Option<Record>) {
    let attached = fake.attached(2, Hook::Xdp).iter().map(|l| l.prog).collect();
    let pins = [
        read_pin(&paths.prog, "prog").expect("prog"),
        read_pin(&paths.link, "link").expect("link"),
        read_pin(&paths.counters, "map").expect("map"),
    ];
    (attached, pins, pins::read_record(&paths.state).expect("record"))
}

#[test]
fn failed_replaces_leave_the_old_filter_untouched() {
    let fake = FakeSys::new("failed-replace");
    let filters = Filters::new(&fake, fake.layout());
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect("loads");
    let before = snapshot(&fake, &paths);

    fake.state.borrow_mut().reject_load = true;
    let error = filters.load(&request(&[0, 0, 0], &["a", "b"], Hook::Xdp)).expect_err("verifier");
    assert!(error.is_pfc_bug() && error.to_string().contains("pfc bug"), "{error}");
    assert_eq!(snapshot(&fake, &paths), before);

    fake.state.borrow_mut().fail_update = true;
    let error = filters.load(&request(&[0, 0, 0], &["a", "b"], Hook::Xdp)).expect_err("update");
    assert!(matches!(error, AttachError::Replace { .. }), "{error}");
    assert_eq!(snapshot(&fake, &paths), before);
    assert!(!paths.staged_prog.exists() && !paths.staged_counters.exists(), "staged pins are cleaned up");
}

#[test]
fn a_replace_cannot_switch_xdp_mode() {
    let fake = FakeSys::new("mode-change");
    let filters = Filters::new(&fake, fake.layout());
    filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect("loads");
    let mut generic = request(&[0, 0], &["a"], Hook::Xdp);
    generic.mode = ModeRequest::Generic;
    let error = filters.load(&generic).expect_err("mode change");
    assert!(matches!(error, AttachError::ModeChange { .. }), "{error}");
}

#[test]
fn foreign_xdp_programs_are_refused_unless_forced() {
    let fake = FakeSys::new("foreign");
    fake.state.borrow_mut().foreign_xdp.insert(2, 99);
    let filters = Filters::new(&fake, fake.layout());
    let error = filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect_err("foreign");
    assert!(matches!(error, AttachError::ForeignXdp { prog_id: 99, .. }), "{error}");
    let mut forced = request(&[0, 0], &["a"], Hook::Xdp);
    forced.force = true;
    let outcome = filters.load(&forced).expect("forced");
    assert!(outcome.notices[0].contains("99"), "{:?}", outcome.notices);
    // TC hooks share an interface with anything.
    fake.state.borrow_mut().foreign_xdp.insert(2, 98);
    filters.load(&request(&[0, 0], &["a"], Hook::TcIngress)).expect("tc is not XDP");
}

#[test]
fn a_missing_interface_lists_the_existing_ones() {
    let fake = FakeSys::new("no-iface");
    let filters = Filters::new(&fake, fake.layout());
    let mut missing = request(&[0, 0], &["a"], Hook::Xdp);
    missing.iface = "eth9";
    let error = filters.load(&missing).expect_err("no eth9");
    assert_eq!(error.to_string(), "no interface `eth9` here; existing interfaces: lo, eth0");
}

#[test]
fn a_defunct_link_is_replaced_by_a_fresh_attachment() {
    let fake = FakeSys::new("defunct");
    let filters = Filters::new(&fake, fake.layout());
    filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect("loads");
    for link in fake.state.borrow_mut().links.values_mut() {
        link.detached = true; // the interface went away and came back
    }
    let outcome = filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect("loads again");
    assert!(!outcome.replaced);
    assert_eq!(fake.attached(2, Hook::Xdp).len(), 1);
}

#[test]
fn unload_and_unload_all_remove_links_pins_and_records() {
    let fake = FakeSys::new("unload");
    let filters = Filters::new(&fake, fake.layout());
    for point in Hook::ALL {
        filters.load(&request(&[0, 0], &["a"], point)).expect("loads");
    }
    let status = filters.status().expect("status");
    assert_eq!(status.len(), 3);
    assert!(status.iter().all(|s| s.record.is_some() && s.link.is_some_and(|l| l.ifindex == 2)));

    filters.unload("eth0", Hook::Xdp).expect("unloads");
    assert!(fake.attached(2, Hook::Xdp).is_empty());
    assert!(!fake.layout().filter("eth0", Hook::Xdp).dir.exists());
    let error = filters.unload("eth0", Hook::Xdp).expect_err("already gone");
    assert!(matches!(error, AttachError::NotLoaded { .. }), "{error}");

    let removed = filters.unload_all().expect("unloads all");
    assert_eq!(removed.len(), 2);
    assert!(Hook::ALL.iter().all(|p| fake.attached(2, *p).is_empty()));
    assert!(filters.status().expect("status").is_empty());
    assert!(!fake.layout().pins.join("eth0").exists() && !fake.layout().state.join("eth0").exists());
}

#[test]
fn stats_without_a_record_label_rules_by_index() {
    let fake = FakeSys::new("stats-no-record");
    let filters = Filters::new(&fake, fake.layout());
    filters.load(&request(&[0, 0, 0], &["a", "b"], Hook::Xdp)).expect("loads");
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    std::fs::remove_file(&paths.state).expect("record removed");
    let stats = filters.stats("eth0", Hook::Xdp).expect("stats");
    assert_eq!(stats.rules.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["rule#0", "rule#1"]);
    assert!(stats.verdicts.is_empty(), "no record, no verdicts");
    let error = filters.stats("lo", Hook::Xdp).expect_err("nothing on lo");
    assert!(matches!(error, AttachError::NotLoaded { .. }), "{error}");
}

#[test]
fn carry_plan_matches_names_and_keeps_the_default() {
    let old = ["a".to_string(), "b".to_string()];
    let new = ["b".to_string(), "c".to_string()];
    let plan = carry_plan(Some((&old, "pass")), &new, "pass");
    assert_eq!(plan.sources, [Some(1), None, Some(2)]);
    let counters = [Counter { packets: 1, bytes: 10 }, Counter { packets: 2, bytes: 20 }, Counter::default()];
    assert_eq!(plan.seeds(&counters), [(0, Counter { packets: 2, bytes: 20 })]);
    assert_eq!(carry_plan(None, &new, "pass").sources, [None, None, None]);
    assert_eq!(plan.names(&new), (vec!["b".to_string()], vec!["c".to_string()]));
}

#[test]
fn a_flipped_default_verdict_restarts_the_default_counter_and_says_so() {
    let rules = ["a".to_string()];
    let plan = carry_plan(Some((&rules, "pass")), &rules, "drop");
    assert_eq!(plan.sources, [Some(0), None]);
    let counters = [Counter { packets: 1, bytes: 10 }, Counter { packets: 5, bytes: 50 }];
    assert_eq!(plan.seeds(&counters), [(0, Counter { packets: 1, bytes: 10 })], "no passes counted as drops");
    assert_eq!(plan.names(&rules), (vec!["a".to_string()], vec!["(default, was pass)".to_string()]));
}

#[test]
fn bpffs_and_permission_failures_say_what_to_do() {
    let fake = FakeSys::new("bpffs");
    let filters = Filters::new(&fake, fake.layout());
    fake.state.borrow_mut().bpffs_mounted = false;
    fake.state.borrow_mut().bpffs_errno = Some(libc::ENODEV);
    let error = filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect_err("no bpffs");
    assert!(matches!(error, AttachError::Bpffs { .. }) && error.to_string().contains("mounting it failed"), "{error}");
    fake.state.borrow_mut().bpffs_errno = Some(libc::EPERM);
    let error = filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect_err("not root");
    assert!(error.to_string().contains("permission denied: needs CAP_BPF (run as root"), "{error}");
    assert!(!error.is_pfc_bug());
}

/// Runs `load` and "kills" it at `step` (a panic: no cleanup code runs, as with SIGKILL).
fn killed_load(filters: &Filters<&FakeSys>, request: &LoadRequest<'_>, step: guard::Step) {
    guard::KILL_AT.with(|kill| kill.set(Some(step)));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| filters.load(request)));
    guard::KILL_AT.with(|kill| kill.set(None));
    match result {
        Err(_) => {}
        Ok(outcome) => panic!("load ran past {}: {outcome:?}", step.as_str()),
    }
}

/// The names `stats` shows, and whether they came from a verified record.
fn stats_names(filters: &Filters<&FakeSys>) -> (Vec<String>, bool) {
    let stats = filters.stats("eth0", Hook::Xdp).expect("stats");
    (stats.rules.iter().map(|(name, _)| name.clone()).collect(), stats.label_problem.is_none())
}

#[test]
fn a_kill_at_any_step_leaves_the_truth_and_the_next_load_succeeds() {
    let old_rules = ["a", "b"];
    let new_rules = ["b", "c", "d"];
    for step in guard::Step::ALL {
        for replacing in [false, true] {
            if !replacing && matches!(step, guard::Step::Counted | guard::Step::Pinned) {
                continue; // steps of a replace only
            }
            let fake = FakeSys::new(&format!("kill-{}-{replacing}", step.as_str()));
            let filters = Filters::new(&fake, fake.layout());
            let paths = fake.layout().filter("eth0", Hook::Xdp);
            if replacing {
                filters.load(&request(&object(&old_rules), &old_rules, Hook::Xdp)).expect("first load");
                count(&fake, &paths.counters, 1, 5); // b
            }
            killed_load(&filters, &request(&object(&new_rules), &new_rules, Hook::Xdp), step);
            let case = format!("killed at {} ({})", step.as_str(), if replacing { "replace" } else { "first load" });
            let attached = fake.attached(2, Hook::Xdp);
            assert!(attached.len() <= 1, "{case}: {attached:?}");
            // status and stats tell what the kernel runs, labelled only when the record fits.
            let status = filters.status().expect("status");
            match attached.first() {
                None => {
                    assert!(!replacing, "{case}: a replace never leaves the interface unfiltered");
                    assert!(status.iter().all(|s| s.prog.is_none()), "{case}: {status:?}");
                }
                Some(link) => {
                    let shown = &status[0];
                    assert_eq!(shown.prog.map(|p| p.id), Some(link.prog), "{case}");
                    let (names, verified) = stats_names(&filters);
                    let expected: &[&str] = if names.len() == new_rules.len() { &new_rules } else { &old_rules };
                    assert!(verified, "{case}: a record of the running program exists at every step: {names:?}");
                    assert_eq!(names, expected, "{case}");
                }
            }
            // The next load reconciles and replaces (or loads) cleanly, keeping b's count.
            let outcome = filters.load(&request(&object(&new_rules), &new_rules, Hook::Xdp)).expect(&case);
            assert_eq!(fake.attached(2, Hook::Xdp).len(), 1, "{case}");
            assert_eq!(read_pin(&paths.prog, "prog").expect("prog pin"), outcome.prog_id, "{case}");
            assert!(!paths.staged_prog.exists() && !paths.next_state.exists(), "{case}: leftovers");
            let (names, verified) = stats_names(&filters);
            assert!(verified && names == new_rules, "{case}: {names:?}");
            if replacing {
                let b = filters.stats("eth0", Hook::Xdp).expect("stats").rules[0].1.packets;
                assert_eq!(b, 5, "{case}: b's count survives the interrupted replace");
            }
        }
    }
}

#[test]
fn what_the_old_program_counts_after_the_copy_is_carried_exactly() {
    let fake = FakeSys::new("late-counts");
    let filters = Filters::new(&fake, fake.layout());
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    filters.load(&request(&object(&["a"]), &["a"], Hook::Xdp)).expect("loads");
    count(&fake, &paths.counters, 0, 10);
    let mut total = 10;
    for round in 0..5u64 {
        // The old program counts 3 more packets between the copy and the grace period.
        fake.state.borrow_mut().late_packets = 3;
        total += 3;
        let rules: &[&str] = if round % 2 == 0 { &["a", "x"] } else { &["a"] };
        filters.load(&request(&object(rules), rules, Hook::Xdp)).expect("replaces");
        count(&fake, &paths.counters, 0, round);
        total += round;
        let stats = filters.stats("eth0", Hook::Xdp).expect("stats");
        assert_eq!(stats.rules[0].1.packets, total, "round {round}");
    }
    assert_eq!(fake.state.borrow().synchronized, 5, "every replace waits for a grace period");
}

#[test]
fn stats_refuses_labels_that_do_not_fit_the_running_program() {
    let fake = FakeSys::new("bad-labels");
    let filters = Filters::new(&fake, fake.layout());
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    filters.load(&request(&object(&["a", "b"]), &["a", "b"], Hook::Xdp)).expect("loads");
    let good = pins::read_record(&paths.state).expect("readable").expect("record");
    let check = |edit: &dyn Fn(&mut Record), expected: &str| {
        let mut record = good.clone();
        edit(&mut record);
        pins::write_record(&paths.state, &record).expect("planted");
        let stats = filters.stats("eth0", Hook::Xdp).expect("stats");
        let names: Vec<&str> = stats.rules.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["rule#0", "rule#1"], "{expected}");
        assert_eq!(stats.default.0, "unknown");
        let problem = stats.label_problem.expect("a problem").to_string();
        assert!(problem.contains(expected), "{problem}");
        let status = filters.status().expect("status");
        assert!(status[0].record.is_none() && status[0].label_problem.is_some(), "{status:?}");
    };
    check(&|r| r.manifest.rules.truncate(1), "names 1 rules, but the running program has 3 counters");
    check(&|r| r.manifest.rules.push("z".into()), "names 3 rules, but the running program has 3 counters");
    // A default that is no verdict cannot be recorded any more: the manifest is typed
    // (object::manifest's tests refuse reading one).
    check(&|r| r.prog_id += 100, "the record describes program");
    check(&|r| r.prog_tag = "0000000000000000".into(), "tag differs");
    // A counters pin (and record) with no link: nothing runs, so no stats.
    std::fs::remove_file(&paths.link).expect("link pin removed");
    let error = filters.stats("eth0", Hook::Xdp).expect_err("nothing attached");
    assert!(matches!(error, AttachError::NotLoaded { .. }), "{error}");
}

#[test]
fn a_private_mount_namespace_or_missing_privileges_stop_load_before_anything_is_made() {
    let fake = FakeSys::new("private-mnt");
    let filters = Filters::new(&fake, fake.layout());
    fake.state.borrow_mut().bpffs_mounted = false;
    fake.state.borrow_mut().init_mount_namespace = Some(false);
    let error = filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect_err("private namespace");
    assert!(matches!(error, AttachError::PrivateMountNamespace { .. }), "{error}");
    assert!(error.to_string().contains("nsenter --net=/run/netns/NS pfc"), "{error}");
    fake.state.borrow_mut().init_mount_namespace = Some(true);
    fake.state.borrow_mut().unprivileged = true;
    let error = filters.load(&request(&[0, 0], &["a"], Hook::Xdp)).expect_err("not root");
    assert!(error.to_string().contains("permission denied: needs CAP_BPF"), "{error}");
    assert!(!fake.layout().pins.exists() && !fake.layout().state.exists(), "nothing created");
    assert!(fake.attached(2, Hook::Xdp).is_empty());
}

#[test]
fn pins_that_name_another_program_are_re_pinned_from_the_kernel() {
    let fake = FakeSys::new("repin");
    let filters = Filters::new(&fake, fake.layout());
    let paths = fake.layout().filter("eth0", Hook::Xdp);
    let running = filters.load(&request(&object(&["a"]), &["a"], Hook::Xdp)).expect("loads").prog_id;
    count(&fake, &paths.counters, 0, 4);
    // The pins now name a program and map that never ran (as a manual `bpftool prog
    // pin` or an old pfc could leave them); the link still runs `running`.
    for pin in [&paths.prog, &paths.counters] {
        std::fs::remove_file(pin).expect("pin removed");
    }
    (&fake).load_and_pin(&[0, 0], &paths.prog, &paths.counters).expect("decoys pinned");
    let stats = filters.stats("eth0", Hook::Xdp).expect("stats");
    assert_eq!((stats.prog_id, stats.rules[0].1.packets), (running, 4), "stats reads the running program's map");
    let outcome = filters.load(&request(&object(&["a"]), &["a"], Hook::Xdp)).expect("replaces");
    assert!(outcome.replaced);
    assert_eq!(read_pin(&paths.prog, "prog").expect("prog"), outcome.prog_id);
    assert_eq!(filters.stats("eth0", Hook::Xdp).expect("stats").rules[0].1.packets, 4, "a's count carried");
}
