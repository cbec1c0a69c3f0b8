//! Static sets too large for a decision tree become kernel maps (`ir::maps`, chosen by
//! `compile`): above `MAP_ABOVE` intervals from the start, and, when a program breaks a
//! kernel limit, the largest set first until it fits. The listing says which set became
//! a map and why; the object carries the map's keys (`.pfc.sets`, placed by the
//! manifest). Verdicts of such objects are checked against the interpreter in
//! `runtime/tests/big_sets.rs`.

use pfc_compiler::codegen::Options;
use pfc_compiler::compile::{compile, compile_with, Compiled, SetMaps, KERNEL_LIMIT};
use pfc_compiler::ir::maps::MAP_ABOVE;
use pfc_compiler::object::{read_set_contents, Manifest, ReadError, SetManifest};

/// `count` IPv4 addresses 4 apart from 10.0.0.0: `count` intervals of one address.
fn spaced(first: u32, count: usize) -> String {
    let addresses = (0..count as u32).map(|index| std::net::Ipv4Addr::from(first + 4 * index).to_string());
    addresses.collect::<Vec<_>>().join(", ")
}

fn compiled(text: &str, set_maps: SetMaps) -> Compiled {
    let (compiled, diagnostics) = compile_with(text, Options::default(), set_maps);
    compiled.unwrap_or_else(|| panic!("{diagnostics:?}"))
}

/// The manifest entries of the static sets held in maps.
fn fixed(manifest: &Manifest) -> Vec<&SetManifest> {
    let sets = manifest.dynamic_sets.iter().flat_map(|sets| sets.sets.iter());
    sets.filter(|set| set.contents.is_some()).collect()
}

/// The listing's notes about sets in maps.
fn notes(compiled: &Compiled) -> Vec<String> {
    let comments = compiled.code.comments.iter().map(|comment| comment.text.clone());
    comments.filter(|text| text.starts_with("set `")).collect()
}

/// A small case forced into maps: which tests look a map up (and without a generation
/// read: a static set never changes), which stay trees, and the note at the top.
#[test]
fn a_forced_small_case_lists_its_maps() {
    let text = "default pass\n\
                set blocked: ip = { 10.0.0.0/8, 192.0.2.1..192.0.2.9, 2001:db8::/32 }\n\
                set odd: port = { 1, 3, 5 }\n\
                rule block: drop if ip.src in blocked\n\
                rule odd_ports: drop if udp.dport in odd\n";
    let compiled = compiled(text, SetMaps { above: 1, fallback_from: 1 });
    let sets: Vec<(String, String, u32)> =
        fixed(&compiled.manifest).iter().map(|set| (set.name.clone(), set.kind.clone(), set.size)).collect();
    // IPv4 part: 2 intervals, 5 prefixes; the port set: 3 values; the IPv6 part (1
    // interval) stays a tree.
    assert_eq!(sets, [("blocked".into(), "prefixes".into(), 5), ("odd".into(), "values".into(), 3)]);
    // The notes at the top, then the rules (the prologue is every program's).
    let listing = compiled.code.disassemble();
    let body = listing.find("; rule 0").map_or(listing.as_str(), |start| &listing[start..]);
    insta::assert_snapshot!("forced_small_case_asm", format!("{}\n{body}", notes(&compiled).join("\n")));
}

/// A set above `MAP_ABOVE` intervals is a map without trying a tree; with trees forced it
/// breaks the jump limit (E0020); a set of 12,000 stays a tree (faster per packet).
#[test]
fn sets_whose_tree_cannot_fit_are_maps_from_the_start() {
    let rules = |count: usize| {
        format!("default pass\nset big: ipv4 = {{ {} }}\nrule r: drop if ip.src in big\n", spaced(0x0a00_0000, count))
    };
    let big = compiled(&rules(MAP_ABOVE + 1), SetMaps::default());
    assert_eq!(fixed(&big.manifest).len(), 1);
    assert_eq!(fixed(&big.manifest)[0].size as usize, MAP_ABOVE + 1);
    let note = &notes(&big)[0];
    assert!(note.contains("`big` (32768 ipv4 intervals) is an LPM trie map `pfc_set_0a`"), "{note}");
    assert!(note.contains("more than 32767 intervals"), "{note}");

    let trees_only = SetMaps { above: usize::MAX, fallback_from: usize::MAX };
    let (refused, diagnostics) = compile_with(&rules(MAP_ABOVE + 1), Options::default(), trees_only);
    assert!(refused.is_none());
    assert!(diagnostics.iter().any(|d| d.code == KERNEL_LIMIT), "{diagnostics:?}");

    let tree = compiled(&rules(12_000), SetMaps::default());
    assert!(fixed(&tree.manifest).is_empty(), "12,000 intervals fit as a tree");
    assert!(tree.manifest.dynamic_sets.is_none());
}

/// Two trees that fit alone but not in one rule: the larger set becomes a map, the other
/// stays a tree, and the note says the trees did not fit. A lone set of 25,000 single
/// addresses (below `MAP_ABOVE`, but its tree does not fit) becomes a map the same way.
#[test]
fn a_program_past_a_limit_maps_its_largest_set_until_it_fits() {
    let lone =
        format!("default pass\nset big: ipv4 = {{ {} }}\nrule r: drop if ip.src in big\n", spaced(0x0a00_0000, 25_000));
    let lone = compiled(&lone, SetMaps::default());
    assert_eq!(fixed(&lone.manifest).len(), 1);
    assert!(notes(&lone)[0].contains("the decision trees did not fit"), "{:?}", notes(&lone));
    let text = format!(
        "default pass\nset a: ipv4 = {{ {} }}\nset b: ipv4 = {{ {} }}\n\
         rule r: drop if ip.src in a and ip.dst in b\n",
        spaced(0x0a00_0000, 12_000),
        spaced(0x0b00_0000, 13_000),
    );
    let compiled = compiled(&text, SetMaps::default());
    let names: Vec<&str> = fixed(&compiled.manifest).iter().map(|set| set.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    let note = &notes(&compiled)[0];
    assert!(note.contains("the decision trees did not fit"), "{note}");
    // Without the fallback the same text is refused.
    let no_fallback = SetMaps { above: MAP_ABOVE, fallback_from: usize::MAX };
    let (refused, _) = compile_with(&text, Options::default(), no_fallback);
    assert!(refused.is_none());
}

/// The object holds each fixed set's keys where its manifest says; a manifest that
/// promises more keys than the section holds is refused, not read past.
#[test]
fn the_object_carries_the_keys_of_its_fixed_sets() {
    let text = "default pass\nset a: ipv4 = { 10.0.0.0/8, 192.0.2.1..192.0.2.9 }\nset p: port = { 7, 9 }\n\
                set d: ip dynamic = { 198.51.100.0/24 }\n\
                rule r: drop if ip.src in a or udp.dport in p or ip.dst in d\n";
    let compiled = compiled(text, SetMaps { above: 1, fallback_from: 1 });
    let contents = read_set_contents(&compiled.object, &compiled.manifest).expect("reads");
    let sets = compiled.manifest.dynamic_sets.as_ref().expect("sets");
    assert_eq!(sets.sets.len(), 3, "the dynamic set first, then the two fixed ones");
    assert_eq!(contents[0], Vec::<Vec<u8>>::new(), "a dynamic set's contents are not in the object");
    for (set, keys) in compiled.filter.dynamic_sets.iter().zip(&contents).skip(1) {
        assert!(set.fixed);
        let want: Vec<Vec<u8>> = set.keys().iter().map(|key| key.to_vec()).collect();
        assert_eq!(keys, &want, "{}", set.name);
    }
    let mut damaged = compiled.manifest.clone();
    if let Some(place) = damaged.dynamic_sets.as_mut().and_then(|sets| sets.sets[2].contents.as_mut()) {
        place.keys += 1;
    }
    assert!(matches!(read_set_contents(&compiled.object, &damaged), Err(ReadError::SetContents { .. })));
    // An object whose rule file needs no map has no contents.
    let (plain, _) = compile("default pass\nrule r: drop if ip.src in { 10.0.0.0/8 }\n", Options::default());
    let plain = plain.expect("compiles");
    assert!(read_set_contents(&plain.object, &plain.manifest).expect("reads").is_empty());
}
