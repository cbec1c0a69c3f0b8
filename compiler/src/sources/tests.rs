//! Include expansion with an in-memory loader: statement order, cycles, missing files,
//! depth and span locations.

use std::collections::HashMap;

use super::*;

/// Files by name; an include's name is the including file's directory joined with the
/// path, as the CLI's loader does it.
struct MemoryLoader(HashMap<&'static str, &'static str>);

impl IncludeLoader for MemoryLoader {
    fn load(&mut self, including: &LoadedFile, path: &str) -> Result<LoadedFile, String> {
        let directory = including.name.rsplit_once('/').map_or("", |(directory, _)| directory);
        let name = if directory.is_empty() { path.to_string() } else { format!("{directory}/{path}") };
        let text = self.0.get(name.as_str()).ok_or("No such file or directory (os error 2)")?;
        Ok(LoadedFile { name: name.clone(), identity: name, text: text.to_string() })
    }
}

fn parse(files: &[(&'static str, &'static str)]) -> Parsed {
    let loader = &mut MemoryLoader(files.iter().copied().collect());
    let root =
        LoadedFile { name: files[0].0.to_string(), identity: files[0].0.to_string(), text: files[0].1.to_string() };
    parse_with_includes(root, loader)
}

/// The statements' first lines, in expanded order, with the file each comes from.
fn statements(parsed: &Parsed) -> Vec<String> {
    let span = |statement: &ast::Statement| match statement {
        ast::Statement::Include { span, .. }
        | ast::Statement::Hook { span, .. }
        | ast::Statement::Default { span, .. }
        | ast::Statement::Set { span, .. }
        | ast::Statement::Const { span, .. }
        | ast::Statement::Rule { span, .. } => *span,
    };
    parsed
        .file
        .statements
        .iter()
        .map(|statement| {
            let span = span(statement);
            let (index, start) = parsed.map.locate(span.start);
            let file = &parsed.map.files()[index];
            let text = &file.text[start..start + (span.end - span.start) as usize];
            format!("{}: {}", file.name, text.lines().next().unwrap_or_default())
        })
        .collect()
}

fn messages(parsed: &Parsed) -> Vec<String> {
    parsed
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let (index, start) = parsed.map.locate(diagnostic.span().start);
            format!(
                "{} {}@{}:{}: {}",
                diagnostic.code,
                parsed.map.files()[index].name,
                start,
                index,
                diagnostic.message
            )
        })
        .collect()
}

#[test]
fn nested_includes_take_the_place_of_their_include() {
    let parsed = parse(&[
        ("main.pf", "default pass\ninclude \"lib/a.pf\"\nrule last: drop if udp\n"),
        ("lib/a.pf", "rule a1: drop if tcp\ninclude \"b.pf\"\nrule a2: drop if icmp\n"),
        ("lib/b.pf", "rule b: pass if arp\n"),
    ]);
    assert_eq!(messages(&parsed), Vec::<String>::new());
    assert_eq!(
        statements(&parsed),
        [
            "main.pf: default pass",
            "lib/a.pf: rule a1: drop if tcp",
            "lib/b.pf: rule b: pass if arp",
            "lib/a.pf: rule a2: drop if icmp",
            "main.pf: rule last: drop if udp",
        ]
    );
    let names: Vec<&str> = parsed.map.files().iter().map(|file| file.name.as_str()).collect();
    assert_eq!(names, ["main.pf", "lib/a.pf", "lib/b.pf"]);
}

#[test]
fn a_cycle_is_reported_once_with_its_chain() {
    let parsed = parse(&[
        ("main.pf", "default pass\ninclude \"a.pf\"\n"),
        ("a.pf", "include \"b.pf\"\n"),
        ("b.pf", "rule b: drop if tcp\ninclude \"a.pf\"\n"),
    ]);
    assert_eq!(messages(&parsed), ["E0021 b.pf@28:2: `a.pf` includes itself"]);
    let diagnostic = &parsed.diagnostics[0];
    assert_eq!(diagnostic.notes, ["the cycle: a.pf → b.pf → a.pf"]);
    assert_eq!(diagnostic.labels.len(), 2, "the closing include and the include of b.pf");
    assert_eq!(statements(&parsed), ["main.pf: default pass", "b.pf: rule b: drop if tcp"]);
}

#[test]
fn a_file_including_itself_is_a_cycle() {
    let parsed = parse(&[("main.pf", "default pass\ninclude \"main.pf\"\n")]);
    assert_eq!(messages(&parsed), ["E0021 main.pf@21:0: `main.pf` includes itself"]);
}

#[test]
fn a_missing_file_is_reported_where_it_is_included_with_the_chain() {
    let parsed = parse(&[("main.pf", "default pass\ninclude \"a.pf\"\n"), ("a.pf", "include \"gone.pf\"\n")]);
    assert_eq!(messages(&parsed), ["E0022 a.pf@8:1: cannot include `gone.pf`: No such file or directory (os error 2)"]);
    let labels: Vec<&str> = parsed.diagnostics[0].labels.iter().map(|label| label.message.as_str()).collect();
    assert_eq!(labels, ["included here", "`a.pf` included here"]);
}

#[test]
fn without_a_loader_includes_are_refused() {
    let parsed = parse_with_includes(
        LoadedFile { name: "-".into(), identity: "-".into(), text: "include \"x\"\n".into() },
        &mut NoIncludes,
    );
    assert_eq!(parsed.diagnostics.len(), 1);
    assert_eq!(parsed.diagnostics[0].code, INCLUDE_UNREADABLE);
}

#[test]
fn includes_nest_at_most_the_limit() {
    let files: Vec<(&'static str, &'static str)> = (0..MAX_INCLUDE_DEPTH + 2)
        .map(|index| {
            let name: &'static str = Box::leak(format!("f{index}.pf").into_boxed_str());
            let text: &'static str = Box::leak(format!("include \"f{}.pf\"\n", index + 1).into_boxed_str());
            (name, text)
        })
        .collect();
    let parsed = parse(&files);
    let codes: Vec<String> = parsed.diagnostics.iter().map(|diagnostic| diagnostic.code.to_string()).collect();
    assert_eq!(codes, ["E0022"]);
    assert!(parsed.diagnostics[0].message.contains("deeper than 32"), "{}", parsed.diagnostics[0].message);
}

#[test]
fn every_offset_locates_in_its_own_file() {
    let mut map = SourceMap::single("a", "abc");
    map.push("b".into(), "de".into());
    assert_eq!(map.files()[1].base, 4);
    let located: Vec<(usize, usize)> = (0..7).map(|offset| map.locate(offset)).collect();
    assert_eq!(located, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)]);
}

#[test]
fn a_set_file_joins_the_map_and_its_errors_point_into_it() {
    let parsed = parse(&[
        ("main.pf", "default pass\ninclude \"lib/a.pf\"\n"),
        ("lib/a.pf", "set bad: ip = file \"bad.txt\"\nset gone: ip = file \"gone.txt\"\n"),
        ("lib/bad.txt", "# feed\n10.0.0.0/8\n  nonsense here\n"),
    ]);
    assert_eq!(
        messages(&parsed),
        [
            "E0024 lib/bad.txt@20:2: `nonsense here` is not a set element",
            "E0023 lib/a.pf@49:1: cannot read set file `gone.txt`: No such file or directory (os error 2)",
        ]
    );
    let ast::Statement::Set { file: Some(set_file), .. } = &parsed.file.statements[1] else { panic!("not a set") };
    let (file, offset) = parsed.map.locate(set_file.decoded[0].span.start);
    assert_eq!((parsed.map.files()[file].name.as_str(), offset), ("lib/bad.txt", 7));
}

/// [`MemoryLoader`] that defers dynamic sets' lines.
struct Deferring(MemoryLoader);

impl IncludeLoader for Deferring {
    fn load(&mut self, including: &LoadedFile, path: &str) -> Result<LoadedFile, String> {
        self.0.load(including, path)
    }

    fn defers_dynamic_set_lines(&self) -> bool {
        true
    }
}

#[test]
fn a_deferred_set_file_joins_the_map_unparsed_and_is_hashed_as_ever() {
    let files = [
        ("main.pf", "default pass\nset d: ip dynamic = file \"d.txt\"\nset s: ip = file \"s.txt\"\n"),
        ("d.txt", "10.0.0.0/8\n1.2.3.4.5\n"),
        ("s.txt", "192.0.2.0/24\n"),
    ];
    let root =
        LoadedFile { name: files[0].0.to_string(), identity: files[0].0.to_string(), text: files[0].1.to_string() };
    let deferred = parse_with_includes(root, &mut Deferring(MemoryLoader(files.iter().copied().collect())));
    let read = parse(&files);
    // The dynamic set's file is in the map, in the same place, unread: its bad line is
    // not reported; the static set's file is read.
    assert_eq!(deferred.map, read.map);
    assert_eq!(deferred.map.hash(), read.map.hash());
    assert_eq!(messages(&read), ["E0005 d.txt@11:1: `1.2.3.4.5` is not an IPv4 address"]);
    assert_eq!(messages(&deferred), Vec::<String>::new());
    assert_eq!(deferred.deferred_set_files(), [1]);
    assert_eq!(read.deferred_set_files(), Vec::<usize>::new());
    let ast::Statement::Set { file: Some(file), .. } = &deferred.file.statements[1] else { panic!("not a set") };
    assert!(file.decoded.is_empty() && file.deferred == Some(1));
    let ast::Statement::Set { file: Some(file), .. } = &deferred.file.statements[2] else { panic!("not a set") };
    assert_eq!((file.decoded.len(), file.deferred), (1, None));
    // The single file's hash is `sha256sum`'s.
    let single = SourceMap::single("x", "abc");
    assert_eq!(single.hash(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
