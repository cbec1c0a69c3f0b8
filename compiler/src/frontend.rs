//! The front end in one call: rule text (or files parsed with their includes) in, a
//! checked [`Program`] and every diagnostic of parsing and checking out.

use crate::diagnostic::{self, Diagnostic};
use crate::program::Program;
use crate::{check, sources};

/// Parses and checks a rule file: the front end in one call. The program is returned
/// only when there were no errors; warnings come with it.
/// An `include` in `source` is an error (there is no file to resolve it against; see
/// [`check_parsed`] for rule files read by a loader).
pub fn check_source(source: &str) -> (Option<Program>, Vec<Diagnostic>) {
    check_parsed(&sources::parse_with_includes(sources::LoadedFile::text(source), &mut sources::NoIncludes))
}

/// Checks rule files parsed with their includes (see [`sources::parse_with_includes`]).
pub fn check_parsed(parsed: &sources::Parsed) -> (Option<Program>, Vec<Diagnostic>) {
    let mut diagnostics = parsed.diagnostics.clone();
    let (program, check_diagnostics) = check::check(&parsed.file);
    diagnostics.extend(check_diagnostics);
    let program = if diagnostic::has_errors(&diagnostics) { None } else { program };
    (program, diagnostics)
}

/// Where elements for a dynamic set come from outside its rule file.
#[derive(Clone, Copy, Debug)]
pub enum ElementSource<'a> {
    /// Elements as written on a command line or in a test case (`10.0.0.0/8`, `ssh`).
    Written(&'a [String]),
    /// A set file (one element per line, `#` comments), read through the loader.
    File(&'a str),
}

/// Elements for a dynamic set given outside the rule file (`pfc set`, test cases),
/// checked exactly as the rule file's own would be: parsed and resolved for the set's
/// type (named values, families), each one map entry (E0026), at most the set's size
/// (E0025); set files are read through `loader` (E0023/E0024 point into the file).
/// Returns the elements when there is no error, and the parsed input, whose source map
/// renders the diagnostics (written elements appear as one `set` statement named
/// `origin`).
pub fn dynamic_elements(
    set: &crate::program::DynamicSet,
    elements: ElementSource<'_>,
    origin: &str,
    loader: &mut dyn sources::IncludeLoader,
) -> (Option<Vec<crate::program::DynamicElement>>, sources::Parsed) {
    let body = match elements {
        ElementSource::Written(written) => {
            let unsafe_element = written.iter().find(|element| {
                element.trim().is_empty() || element.contains([',', '{', '}', '#', '"', '\n', '\r', ';'])
            });
            if let Some(bad) = unsafe_element {
                let text = format!("set {}: {} dynamic = {{ {bad} }}\n", set.name, set.element_type);
                let mut parsed =
                    sources::Parsed { map: sources::SourceMap::single(origin, text), ..Default::default() };
                let span = diagnostic::Span::default();
                parsed.diagnostics.push(
                    Diagnostic::error(crate::syntax::SYNTAX_ERROR, format!("`{bad}` is not one element"), span, "")
                        .with_note("give one address, prefix or value per argument"),
                );
                return (None, parsed);
            }
            format!("{{ {} }}", written.join(", "))
        }
        ElementSource::File(path) => format!("file \"{}\"", path.replace('\\', "\\\\").replace('"', "\\\"")),
    };
    // The set statement first, so its line is 1; a default verdict makes a rule file of it.
    let text =
        format!("set {}: {} dynamic size {} = {body}\ndefault pass\n", set.name, set.element_type, set.max_elements);
    let root = sources::LoadedFile { name: origin.to_string(), identity: String::new(), text };
    let mut parsed = sources::parse_with_includes(root, loader);
    let (program, diagnostics) = check_parsed(&parsed);
    parsed.diagnostics = diagnostics.into_iter().filter(|d| d.severity == diagnostic::Severity::Error).collect();
    let elements = program.and_then(|mut program| program.dynamic_sets.pop()).map(|checked| checked.elements);
    (elements, parsed)
}
