//! Running pfc as a service (part of `tests/load_attach.rs`): the shipped systemd unit
//! `contrib/systemd/pfc@.service` passes `systemd-analyze verify` without a warning, and
//! its ExecStart, ExecReload and ExecStop command lines, as written (with `%I`/`%i` the
//! interface, the rule file and the binary moved to the test's), load, replace and
//! unload a filter in a network namespace, leaving no directories behind. Other loaders
//! (bpftool) load a pfc object without a word about its manifest section.

use super::*;

/// The unit file's text.
fn unit() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/pfc@.service")).expect("unit file")
}

/// The value of `KEY=` in the unit, with the instance and paths substituted.
fn command_line(unit: &str, key: &str, iface: &str, rules: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}="));
    let line = line.replace("/etc/pfc/%I.pf", rules).replace("%I", iface).replace("%i", iface);
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_without_warnings() {
    if let Err(reason) = run("systemd-analyze", &["--version"]) {
        println!("skipped: systemd-analyze unavailable: {reason}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pfc-systemd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    // `verify` checks that ExecStart's binary exists: point it at the one under test.
    let text = unit().replace("/usr/local/bin/pfc", PFC);
    let path = dir.join("pfc@eth0.service");
    std::fs::write(&path, text).expect("unit written");
    let output =
        Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().expect("systemd-analyze runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
}

#[test]
fn the_units_start_reload_and_stop_commands_work_as_written() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sd");
    let (ns, iface) = (topology.b.clone(), topology.veth_b.clone());
    let rules = topology.rules("unit", "default pass\nrule first: drop if udp.dport == 9\n");
    let unit = unit();
    let pfc_in_unit = |key: &str| {
        let line = command_line(&unit, key, &iface, &rules);
        assert_eq!(line[0], "/usr/local/bin/pfc", "{key} runs pfc");
        let args: Vec<&str> = line[1..].iter().map(String::as_str).collect();
        pfc_ok(&ns, &args)
    };
    let rule_names = || -> Vec<String> {
        stats(&ns, &iface, "xdp").into_iter().map(|(name, _, _)| name).filter(|name| name != "(default)").collect()
    };

    pfc_in_unit("ExecStart");
    assert_eq!(rule_names(), ["first"]);
    // Every `stats --format json` sample says when it was read (what a service's logs need).
    let sample = stats_json(&ns, &iface, "xdp");
    let time = sample["time"].as_str().unwrap_or_default();
    assert!(time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "time: {sample}");
    assert!(sample["time_unix_ms"].as_u64().unwrap_or(0) > 1_600_000_000_000, "time_unix_ms: {sample}");
    std::fs::write(&rules, "default pass\nrule second: drop if udp.dport == 10\n").expect("rules edited");
    pfc_in_unit("ExecReload");
    assert_eq!(rule_names(), ["second"], "the reload replaced the filter");
    pfc_in_unit("ExecStop");
    let listed = Value::Array(status_filters(&ns)).to_string();
    assert!(!listed.contains(&format!("\"{iface}\"")), "{iface} still listed after ExecStop: {listed}");
    for dir in [format!("/sys/fs/bpf/pfc/{iface}"), format!("/run/pfc/{iface}")] {
        assert!(!std::path::Path::new(&dir).exists(), "{dir} is left behind after unload");
    }
}

#[test]
fn bpftool_loads_a_pfc_object_without_a_word_about_the_manifest() {
    skip_unless!(no_kernel());
    let dir = std::env::temp_dir().join(format!("pfc-bpftool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (rules, object) = (dir.join("r.pf"), dir.join("r.o"));
    std::fs::write(&rules, "default pass\nrule a: drop if udp.dport == 9\n").expect("rules");
    let compiled = Command::new(PFC).arg("compile").arg(&rules).arg("-o").arg(&object).output().expect("pfc runs");
    assert!(compiled.status.success(), "{}", String::from_utf8_lossy(&compiled.stderr));
    let pin = format!("/sys/fs/bpf/pfc-bpftool-test-{}", std::process::id());
    let loaded = Command::new("bpftool").args(["prog", "load"]).arg(&object).arg(&pin).output().expect("bpftool runs");
    let _ = std::fs::remove_file(&pin);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&loaded.stderr);
    assert!(loaded.status.success(), "bpftool prog load failed: {stderr}");
    assert_eq!(stderr.trim(), "", "bpftool said something while loading a pfc object");
}
