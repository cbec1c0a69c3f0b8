//! `docs/architecture.md` lists every module of every crate: its *Module index* section
//! is rendered here from the source tree (each file's path and the first sentence of its
//! `//!` doc, which says what goes in and what comes out) and must equal the text
//! between `<!-- generated:module-index -->` and `<!-- end:module-index -->`. A new, moved
//! or removed module, or a changed first sentence, fails this test until the document is
//! regenerated: run with `UPDATE_DOCS=1`.

use std::path::{Path, PathBuf};

/// The source roots of the workspace's crates, with the crate each belongs to.
const ROOTS: &[(&str, &str)] = &[
    ("compiler/src", "pfc-compiler"),
    ("runtime/src", "pfc-runtime"),
    ("src", "pfc (the CLI)"),
    ("test-support/src", "pfc-test-support"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("a source directory").map(|entry| entry.expect("an entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Unit-test files (`tests.rs`, `*_tests.rs`) are part of the module they test.
fn is_test_file(path: &Path) -> bool {
    let stem = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
    stem == "tests" || stem.ends_with("_tests")
}

/// `[`x`]` and `[`x`](path)` as plain `x` in code quotes: intra-doc links mean nothing
/// in the markdown file.
fn unlink(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("[`") {
        let Some(close) = rest[open..].find("`]") else { break };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..open + close + 1]);
        rest = &rest[open + close + 2..];
        if rest.starts_with('(') {
            if let Some(end) = rest.find(')') {
                rest = &rest[end + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first sentence of a file's `//!` doc (up to the first `. ` or the paragraph's end).
fn first_sentence(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    let paragraph: Vec<&str> = text
        .lines()
        .skip_while(|line| !line.starts_with("//!"))
        .take_while(|line| line.starts_with("//!") && line.trim() != "//!")
        .map(|line| line.trim_start_matches("//!").trim())
        .collect();
    let paragraph = paragraph.join(" ");
    let sentence = match paragraph.find(". ") {
        Some(end) => &paragraph[..=end],
        None => &paragraph,
    };
    unlink(sentence.trim())
}

fn module_index() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = String::new();
    for (root, krate) in ROOTS {
        text += &format!("\n**{krate}** (`{root}/`)\n\n");
        let mut files = Vec::new();
        rust_files(&repo.join(root), &mut files);
        for file in files.iter().filter(|file| !is_test_file(file)) {
            let relative = file.strip_prefix(repo.join(root)).expect("under the root");
            let doc = first_sentence(file);
            assert!(!doc.is_empty(), "{} has no `//!` doc", file.display());
            text += &format!("- `{}` — {doc}\n", relative.display());
        }
    }
    text
}

#[test]
fn the_module_index_lists_every_module() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md");
    let mut doc = std::fs::read_to_string(path).expect("docs/architecture.md exists");
    let (begin, end) = ("<!-- generated:module-index -->\n", "<!-- end:module-index -->");
    let start = doc.find(begin).unwrap_or_else(|| panic!("docs/architecture.md lacks `{begin}`")) + begin.len();
    let stop = start + doc[start..].find(end).unwrap_or_else(|| panic!("docs/architecture.md lacks `{end}`"));
    let rendered = module_index();
    if doc[start..stop] == rendered {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        doc.replace_range(start..stop, &rendered);
        std::fs::write(path, &doc).expect("rewrite docs/architecture.md");
    } else {
        panic!("docs/architecture.md's module index is out of date; run with UPDATE_DOCS=1");
    }
}
