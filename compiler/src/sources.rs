//! Rule files that include other rule files: a root file and an [`IncludeLoader`] in, a
//! [`SourceMap`] of every file read and one expanded `ast::File` out.
//!
//! The compiler does no I/O, so reading the included files is the caller's part: the CLI
//! passes a loader that resolves `include "x.pf"` relative to the including file and
//! reads it. Everything else happens here, where it can be tested without files: the
//! order of statements (an included file's statements take the place of its `include`),
//! cycles, missing files and nesting depth, each diagnosed with the chain of includes
//! that led to it.
//!
//! **Invariant:** spans are global. Every file of a [`SourceMap`] occupies its own byte
//! range (`base .. base + text.len()`, with a one-byte gap between files), and a span in
//! any diagnostic or AST node lies inside exactly one file; [`SourceMap::locate`] turns it
//! back into a file and a local offset for file:line:col.

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::syntax::{self, ast};

/// E0021: a file includes itself, directly or through other files.
pub(crate) const INCLUDE_CYCLE: Code = Code("E0021");
/// E0022: an included file cannot be read (missing, not a regular file, not UTF-8, too
/// large), or includes nest deeper than [`MAX_INCLUDE_DEPTH`].
pub(crate) const INCLUDE_UNREADABLE: Code = Code("E0022");

/// E0023: the file of a `set NAME: TYPE = file "PATH"` cannot be read (missing, not a
/// regular file, not UTF-8, too large), or a static set's file holds more than
/// [`MAX_STATIC_SET_FILE_ELEMENTS`] elements.
pub(crate) const SET_FILE_UNREADABLE: Code = Code("E0023");

/// The most distinct elements the file of a static set may hold: the most entries a map
/// holds (`ir::maps::MAX_ENTRIES`; a set of more than a few ten thousand never fits a
/// decision tree). Reading stops at the line past it.
pub const MAX_STATIC_SET_FILE_ELEMENTS: usize = crate::program::dynamic::MAX_DYNAMIC_SIZE as usize;

/// How deeply includes may nest (a chain longer than this is almost surely a mistake,
/// and it bounds the recursion).
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// One file of a [`SourceMap`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceText {
    /// How messages name the file (the path as the user or the including file wrote it).
    pub name: String,
    /// Its text.
    pub text: String,
    /// Where its first byte is in the global span space.
    pub base: usize,
}

/// Every file read for one compilation, each at its own place in one span space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    files: Vec<SourceText>,
}

impl SourceMap {
    /// A map of one file, at base 0 (what a rule file without includes is).
    pub fn single(name: impl Into<String>, text: impl Into<String>) -> SourceMap {
        let mut map = SourceMap::default();
        map.push(name.into(), text.into());
        map
    }

    /// The files, the root first, then in the order they were first included.
    pub fn files(&self) -> &[SourceText] {
        &self.files
    }

    /// Index of the file a global offset lies in, and the offset within that file. An
    /// offset at the very end of a file belongs to it.
    pub fn locate(&self, offset: u32) -> (usize, usize) {
        let offset = offset as usize;
        let index = self.files.partition_point(|file| file.base <= offset).saturating_sub(1);
        match self.files.get(index) {
            Some(file) => (index, (offset - file.base.min(offset)).min(file.text.len())),
            None => (0, 0),
        }
    }

    /// The source hash ([`crate::compile::source_hash`]) of every file's text in map
    /// order, each followed by nothing (for a single file, of exactly the file's bytes),
    /// hashed file by file rather than copied into one buffer (a set file may be 256 MiB).
    pub(crate) fn hash(&self) -> String {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for file in &self.files {
            hasher.update(file.text.as_bytes());
        }
        crate::hashing::hash_text(hasher.finalize().as_slice())
    }

    fn push(&mut self, name: String, text: String) -> usize {
        let base = self.files.last().map_or(0, |last| last.base + last.text.len() + 1);
        self.files.push(SourceText { name, text, base });
        base
    }
}

/// The name and identity of standard input (`-`) as a rule or set file.
pub const STDIN: &str = "<stdin>";

/// A file the loader read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedFile {
    /// How messages name it (e.g. the including file's directory joined with the path).
    pub name: String,
    /// What makes two includes the same file (e.g. the canonical path): cycles are found
    /// by this.
    pub identity: String,
    /// Its text.
    pub text: String,
}

impl LoadedFile {
    /// Text that is not a file (a string in a test, a generated rule file).
    pub fn text(text: &str) -> LoadedFile {
        LoadedFile { name: "<text>".to_string(), identity: String::new(), text: text.to_string() }
    }
}

/// Reads included files for [`parse_with_includes`]: the seam between this pure crate
/// and the file system.
pub trait IncludeLoader {
    /// Reads `path` as written in an `include` of the file `including` (a [`LoadedFile`]
    /// the loader returned before, or the root). `Err` is one sentence saying why not,
    /// such as "No such file or directory (os error 2)".
    fn load(&mut self, including: &LoadedFile, path: &str) -> Result<LoadedFile, String>;

    /// Reads the file of `set NAME: TYPE = file "PATH"` written in `including`, resolved
    /// like an include. Set files may be larger than rule files (block lists of millions
    /// of lines), so a loader may allow them more; by default this is [`Self::load`].
    fn load_set_file(&mut self, including: &LoadedFile, path: &str) -> Result<LoadedFile, String> {
        self.load(including, path)
    }

    /// Whether a dynamic set's file joins the source map unparsed (its statement's
    /// `ast::SetFile::deferred` says where): the caller parses its lines itself, for
    /// instance while the program loads (a dynamic set's elements do not change the
    /// program). The file is still read through [`Self::load_set_file`], so an unreadable
    /// one is reported as ever, and the source hash covers it. By default false.
    fn defers_dynamic_set_lines(&self) -> bool {
        false
    }
}

/// A loader for text that has no file around it (tests, `check_source`): every include
/// is refused.
pub struct NoIncludes;

impl IncludeLoader for NoIncludes {
    fn load(&mut self, _including: &LoadedFile, _path: &str) -> Result<LoadedFile, String> {
        Err("this input is not a file, so it cannot include files".to_string())
    }
}

/// The front end's input: every file read, and their statements in include order.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The files, for rendering diagnostics and hashing the source.
    pub map: SourceMap,
    /// The statements of all files, an included file's in place of its `include`.
    pub file: ast::File,
    /// Syntax and include diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// The source-map indexes of the dynamic sets' files whose lines were left unparsed
    /// ([`IncludeLoader::defers_dynamic_set_lines`]), in statement order.
    pub fn deferred_set_files(&self) -> Vec<usize> {
        let files = self.file.statements.iter().filter_map(|statement| match statement {
            ast::Statement::Set { file: Some(file), .. } => file.deferred,
            _ => None,
        });
        files.collect()
    }
}

/// Parses `root` and, through `loader`, every file it includes.
pub fn parse_with_includes(root: LoadedFile, loader: &mut dyn IncludeLoader) -> Parsed {
    let mut parsed = Parsed::default();
    let mut chain = Vec::new();
    Expander { loader, parsed: &mut parsed, chain: &mut chain }.expand(root, None);
    parsed
}

/// One link of the include chain: the file, and the `include` statement (global span)
/// through which it was entered.
struct Link {
    file: LoadedFile,
    name: String,
    entered_at: Option<Span>,
}

struct Expander<'a> {
    loader: &'a mut dyn IncludeLoader,
    parsed: &'a mut Parsed,
    chain: &'a mut Vec<Link>,
}

impl Expander<'_> {
    /// Parses `file` and appends its statements, expanding its includes in place.
    fn expand(&mut self, file: LoadedFile, entered_at: Option<Span>) {
        let base = self.parsed.map.push(file.name.clone(), file.text.clone());
        let (ast, mut diagnostics) = syntax::parse_at(&file.text, base);
        self.parsed.diagnostics.append(&mut diagnostics);
        self.parsed.file.unparsed.extend(ast.unparsed);
        self.chain.push(Link { name: file.name.clone(), file, entered_at });
        for statement in ast.statements {
            match statement {
                ast::Statement::Include { path, path_span, span } => self.include(&path, path_span, span),
                mut statement @ ast::Statement::Set { file: Some(_), .. } => {
                    self.read_set_file(&mut statement);
                    self.parsed.file.statements.push(statement);
                }
                statement => self.parsed.file.statements.push(statement),
            }
        }
        self.chain.pop();
    }

    fn include(&mut self, path: &str, path_span: Span, span: Span) {
        let Some(including) = self.chain.last().map(|link| link.file.clone()) else { return };
        if self.chain.len() >= MAX_INCLUDE_DEPTH {
            let diagnostic = Diagnostic::error(
                INCLUDE_UNREADABLE,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} files"),
                path_span,
                "one include too many",
            );
            self.parsed.diagnostics.push(self.with_chain(diagnostic));
            return;
        }
        let loaded = match self.loader.load(&including, path) {
            Ok(loaded) => loaded,
            Err(reason) => {
                let diagnostic = Diagnostic::error(
                    INCLUDE_UNREADABLE,
                    format!("cannot include `{path}`: {reason}"),
                    path_span,
                    "included here",
                )
                .with_note("an include path is relative to the directory of the file that includes it");
                self.parsed.diagnostics.push(self.with_chain(diagnostic));
                return;
            }
        };
        if let Some(position) = self.chain.iter().position(|link| link.file.identity == loaded.identity) {
            let mut cycle: Vec<&str> = self.chain[position..].iter().map(|link| link.name.as_str()).collect();
            cycle.push(&loaded.name);
            let mut diagnostic = Diagnostic::error(
                INCLUDE_CYCLE,
                format!("`{}` includes itself", loaded.name),
                path_span,
                "this include closes the cycle",
            );
            for link in &self.chain[position + 1..] {
                if let Some(entered_at) = link.entered_at {
                    diagnostic = diagnostic.with_label(entered_at, format!("`{}` included here", link.name));
                }
            }
            diagnostic = diagnostic.with_note(format!("the cycle: {}", cycle.join(" → ")));
            self.parsed.diagnostics.push(diagnostic);
            return;
        }
        self.expand(loaded, Some(span));
    }

    /// Fills a `set … = file "PATH"` statement's elements from the lines of that file,
    /// which joins the source map so that every element's span points into it. An
    /// unreadable file is E0023 and leaves the set without elements (the checker does
    /// not call it empty: it knows the file). A dynamic set's file whose lines the loader
    /// defers joins the map unparsed.
    fn read_set_file(&mut self, statement: &mut ast::Statement) {
        let ast::Statement::Set { elements, file: Some(file), dynamic, .. } = statement else { return };
        let Some(including) = self.chain.last().map(|link| link.file.clone()) else { return };
        // A dynamic set's file is read up to its size (a valid one; the checker reports
        // others): a line past it is E0025 at once, however long the file. A static set's
        // file is read up to the most any set holds (E0023 at the line past it).
        let limit = match dynamic {
            Some(dynamic) => dynamic
                .size
                .map_or(Some(crate::program::dynamic::DEFAULT_DYNAMIC_SIZE.into()), |(size, _)| Some(size))
                .filter(|size| (1..=u128::from(crate::program::dynamic::MAX_DYNAMIC_SIZE)).contains(size))
                .map(|size| size as usize),
            None => Some(MAX_STATIC_SET_FILE_ELEMENTS),
        };
        match self.loader.load_set_file(&including, &file.path) {
            Ok(loaded) if dynamic.is_some() && self.loader.defers_dynamic_set_lines() => {
                file.deferred = Some(self.parsed.map.files().len());
                self.parsed.map.push(loaded.name, loaded.text);
            }
            Ok(loaded) => {
                let base = self.parsed.map.push(loaded.name, loaded.text);
                let text = &self.parsed.map.files().last().map_or("", |file| file.text.as_str());
                let mut read = syntax::set_file::parse(text, base, limit);
                // Only bad lines: reported; the set is not also called empty (E0010).
                file.unreadable = read.elements.is_empty() && read.decoded.is_empty() && !read.diagnostics.is_empty();
                self.parsed.diagnostics.append(&mut read.diagnostics);
                match (dynamic, read.beyond_limit) {
                    (None, Some(beyond)) => {
                        let diagnostic = Diagnostic::error(
                            SET_FILE_UNREADABLE,
                            format!(
                                "set file `{}` holds more than {MAX_STATIC_SET_FILE_ELEMENTS} distinct elements",
                                file.path
                            ),
                            beyond,
                            "pfc read no further",
                        )
                        .with_label(file.path_span, "set file named here")
                        .with_note("no set holds more (neither a decision tree nor a map); split the list");
                        self.parsed.diagnostics.push(self.with_chain(diagnostic));
                        // Reported: the set's uses are not reported again, nor its elements checked.
                        file.unreadable = true;
                    }
                    (_, beyond) => {
                        *elements = read.elements;
                        file.decoded = read.decoded;
                        file.beyond_size = beyond;
                    }
                }
            }
            Err(reason) => {
                let diagnostic = Diagnostic::error(
                    SET_FILE_UNREADABLE,
                    format!("cannot read set file `{}`: {reason}", file.path),
                    file.path_span,
                    "set file named here",
                )
                .with_note(match including.identity.as_str() {
                    // Standard input, or `pfc set --file`'s elements: no directory.
                    "" | STDIN => "a relative path is relative to the current directory",
                    _ => "a set file's path is relative to the directory of the rule file that names it",
                });
                self.parsed.diagnostics.push(self.with_chain(diagnostic));
                file.unreadable = true;
            }
        }
    }

    /// Adds "included from" labels for every include that led to the current file.
    fn with_chain(&self, mut diagnostic: Diagnostic) -> Diagnostic {
        for link in self.chain.iter().skip(1).rev() {
            if let Some(entered_at) = link.entered_at {
                diagnostic = diagnostic.with_label(entered_at, format!("`{}` included here", link.name));
            }
        }
        diagnostic
    }
}

#[cfg(test)]
mod tests;
