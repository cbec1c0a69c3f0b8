//! The examples at the end of every subcommand's `--help` (and man page). Each line is
//! `pfc …` followed, after two or more spaces, by what it does; a unit test parses every
//! example with pfc's own command line, so none of them goes stale.

/// `pfc` itself.
pub const PFC: &str = "\
Examples:
  pfc check rules.pf                   Diagnostics only
  pfc test rules.pf                    Run rules.test.toml's cases in the rbpf VM (no root needed)
  pfc load rules.pf --iface eth0       Compile, load, attach and pin (root)
  pfc help compile                     More about one subcommand";

/// `pfc check`.
pub const CHECK: &str = "\
Examples:
  pfc check rules.pf                   Check one file; exit 1 when it has errors
  pfc check --format json a.pf b.pf    All diagnostics as one JSON document, for editors and CI
  pfc check -                          Check rules read from standard input";

/// `pfc diff`.
pub const DIFF: &str = "\
Examples:
  pfc diff old.pf new.pf                  Packets whose verdict changes, with example packets
  pfc diff --format json old.pf new.pf    The same as one JSON document
  pfc diff --cases changed.toml old.pf new.pf    A case file pinning the new verdicts
  pfc diff --pcap trace.pcap old.pf new.pf       Also: which captured frames change verdict";

/// `pfc explain`.
pub const EXPLAIN: &str = "\
Examples:
  pfc explain rules.pf 'ipv4 src=10.0.0.1 / tcp dport=22'    Why this packet is passed or dropped
  pfc explain rules.pf --pcap trace.pcap --frame 3           The same for the fourth frame of a capture
  pfc explain --format json rules.pf 'ipv6 / udp dport=53'   The answer as JSON (PACKET may also be hex bytes)";

/// `pfc compile`.
pub const COMPILE: &str = "\
Examples:
  pfc compile rules.pf                 Write rules.o next to the rule file
  pfc compile rules.pf --emit asm      Print the disassembly as well as writing rules.o
  pfc compile rules.pf -o -            Write the object to standard output
  pfc compile --pcap-filter 'tcp port 22' -o ssh.o    A tcpdump filter that drops what it matches";

/// `pfc test`.
pub const TEST: &str = "\
Examples:
  pfc test rules.pf                    Run the cases of rules.test.toml in the rbpf VM
  pfc test rules.pf --format junit     JUnit XML for CI systems
  pfc test rules.pf --init             Write a starter rules.test.toml: one example packet per rule
  pfc test rules.pf --pcap trace.pcap  What each rule decided in a capture: packets and bytes
  pfc test rules.pf --pcap trace.pcap --mac 02:00:5e:10:00:01    Only the frames the hook sees (received by that MAC for XDP)";

/// `pfc load`.
pub const LOAD: &str = "\
Examples:
  pfc load rules.pf --iface eth0       Compile and attach at the rule file's hook, replacing pfc's filter there
  pfc load rules.o --iface eth0        Load an object from `pfc compile` by its manifest (same replace, pins, stats)
  pfc load rules.pf --iface eth0 --mode generic    XDP in generic (skb) mode, for drivers without native XDP
  pfc load rules.pf --iface eth0 --force           First detach a non-pfc XDP program in the way (not atomic)";

/// `pfc set`.
pub const SET: &str = "\
Examples:
  pfc set add --iface eth0 banned 203.0.113.7 198.51.100.0/24    Block two more sources on the next packet
  pfc set replace --iface eth0 banned --file blocklist.txt     Swap in a whole list atomically
  pfc set list --iface eth0 banned --format json                The contents as JSON (schema pfc.set/1)";

/// `pfc unload`.
pub const UNLOAD: &str = "\
Examples:
  pfc unload --iface eth0              Detach pfc's filters from eth0
  pfc unload --iface eth0 --hook xdp   Detach only the XDP filter
  pfc unload --all                     Detach every pfc filter";

/// `pfc status`.
pub const STATUS: &str = "\
Examples:
  pfc status                           A table of every pfc filter
  pfc status --iface eth0              Only the filters of eth0
  pfc status --iface eth0 --format json    Filters and their sets' sizes as JSON (schema pfc.status/2)";

/// `pfc stats`.
pub const STATS: &str = "\
Examples:
  pfc stats --iface eth0               Verdict, packets and bytes per rule
  pfc stats --iface eth0 --watch 1     Again every second, with rates
  pfc stats --iface eth0 --format json --watch 10    One JSON document per sample (schema pfc.stats/2)";

/// `pfc watch`.
pub const WATCH: &str = "\
Examples:
  pfc watch --iface eth0               One line per logged match: time, rule, verdict, interface, flow
  pfc watch --iface eth0 --format json    One pfc.watch/1 JSON document per event, pfc.watch-stats/1 per report of drops
  pfc watch --iface eth0 --pcapng log.pcapng    Also a capture for Wireshark; packet comments name rule and verdict
  pfc watch --iface eth0 --hook tc-ingress --count 10    The next 10 events of the TC ingress filter, then stop";

/// `pfc completions`.
pub const COMPLETIONS: &str = "\
Examples:
  pfc completions bash                 Print the bash script (save it as /etc/bash_completion.d/pfc)
  pfc completions zsh                  Print the zsh script (save it as _pfc in a directory of $fpath)
  pfc completions fish                 Print the fish script (save it as ~/.config/fish/completions/pfc.fish)";

/// `pfc man`.
pub const MAN: &str = "\
Examples:
  pfc man                              Print pfc(1); view it with `pfc man | man -l -`
  pfc man --dir target/man             Write pfc.1 and pfc-SUBCOMMAND.1 for every subcommand";

/// Every example text.
#[cfg(test)]
pub const ALL: &[&str] =
    &[PFC, CHECK, DIFF, EXPLAIN, COMPILE, TEST, LOAD, SET, UNLOAD, STATUS, STATS, WATCH, COMPLETIONS, MAN];

/// The command lines of an example text: each `pfc …` up to the description, split into
/// words the way a shell would for these simple cases (single quotes group).
#[cfg(test)]
pub fn command_lines(examples: &str) -> Vec<Vec<String>> {
    examples
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pfc "))
        .map(|rest| {
            let command = rest.split("  ").next().unwrap_or(rest);
            let mut words = vec!["pfc".to_string()];
            let mut quoted = false;
            let mut word = String::new();
            for c in command.chars() {
                match c {
                    '\'' => quoted = !quoted,
                    ' ' if !quoted => {
                        if !word.is_empty() {
                            words.push(std::mem::take(&mut word));
                        }
                    }
                    c => word.push(c),
                }
            }
            if !word.is_empty() {
                words.push(word);
            }
            words
        })
        .collect()
}
