//! Kills during `pfc set add` and `del` (part of `tests/load_attach.rs`): with
//! `PFC_TEST_PAUSE_AT=set-written` pfc stops after changing the set's entries and before
//! writing the settled element count (the count is marked unsettled), and the test kills
//! it there with SIGKILL or SIGTERM. Afterwards `pfc status` and `pfc set list` report the
//! set's true count (recounted from the map), and the next `pfc set add` works and
//! counts on from it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::sets::{list, status_sets};
use super::*;

/// Starts `pfc ARGS` in `ns` paused at `step`, kills it there with `signal`.
pub(super) fn kill_paused(ns: &str, args: &[&str], step: &str, signal: i32) {
    let mut child = pfc_command(ns, args)
        .env("PFC_TEST_PAUSE_AT", step)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pfc starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr readable") == 0 {
            let status = child.wait().expect("pfc ends");
            panic!("pfc {args:?} ended ({status}) before pausing at {step}: {seen}");
        }
        seen.push_str(&line);
        if line.trim() == format!("pfc: paused at {step}") {
            break;
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0, "kill: {}", std::io::Error::last_os_error());
    let status = child.wait().expect("pfc ends");
    assert!(!status.success(), "pfc {args:?} killed at {step}: {status}");
}

/// The count `pfc status` shows for set `banned`.
fn status_count(topology: &Topology) -> Option<u64> {
    status_sets(topology).iter().find(|set| set.0 == "banned").and_then(|set| set.4)
}

#[test]
fn a_kill_between_a_set_change_and_its_count_leaves_a_true_count() {
    skip_unless!(no_kernel());
    let mut topology = Topology::new("sk");
    let rules = topology.rules(
        "setkill",
        "hook xdp\ndefault pass\nset banned: ip dynamic size 100 = { 192.0.2.0/24 }\nrule ban: drop if ip.src in banned\n",
    );
    let (b, vb) = (topology.b.clone(), topology.veth_b.clone());
    pfc_ok(&b, &["load", &rules, "--iface", &vb]);
    let mut expected: Vec<String> = vec!["192.0.2.0/24".to_string()];
    let mut next = 1;
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        // add: two new prefixes and one present, killed after the entries went in.
        let (first, second) = (format!("10.{next}.0.0/16"), format!("10.{}.0.0/16", next + 1));
        next += 2;
        kill_paused(
            &b,
            &["set", "add", "--iface", &vb, "banned", &first, &second, "192.0.2.0/24"],
            "set-written",
            signal,
        );
        expected.extend([first.clone(), second]);
        let case = format!("add killed by signal {signal}");
        assert_eq!(status_count(&topology), Some(expected.len() as u64), "{case}: status recounts");
        let mut listed = list(&topology, "banned");
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected, "{case}: the entries written are there");

        // del, killed the same way.
        kill_paused(&b, &["set", "del", "--iface", &vb, "banned", &first, "10.250.0.0/16"], "set-written", signal);
        expected.retain(|element| *element != first);
        let case = format!("del killed by signal {signal}");
        assert_eq!(status_count(&topology), Some(expected.len() as u64), "{case}: status recounts");
        assert_eq!(list(&topology, "banned").len(), expected.len(), "{case}");

        // The next add works and counts on from the true count, and settles it.
        let added = pfc_ok(&b, &["set", "add", "--iface", &vb, "banned", "198.51.100.0/24", "192.0.2.0/24"]);
        if !expected.contains(&"198.51.100.0/24".to_string()) {
            expected.push("198.51.100.0/24".to_string());
        }
        assert!(added.contains(&format!("; {} of 100 elements", expected.len())), "{case}: {added}");
        assert_eq!(status_count(&topology), Some(expected.len() as u64), "{case}: settled");
    }
    pfc_ok(&b, &["unload", "--iface", &vb]);
}
