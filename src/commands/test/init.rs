//! `pfc test RULES --init [--cases FILE]`: writes a starter case file
//! (`pfc_compiler::analysis::cases` builds it) where `pfc test` looks for one, never over
//! an existing file.

use std::path::Path;
use std::process::ExitCode;

use pfc_compiler::analysis::cases;

use crate::escape::escape;
use crate::{input, Format};

/// Writes the starter case file for `rules` to `path` (`-`: standard output).
pub fn run(rules: &Path, path: &Path) -> ExitCode {
    let Some((program, _)) = crate::commands::diff::checked(rules, Format::Human) else {
        return ExitCode::from(1);
    };
    let starter = cases::starter(&program);
    if input::is_stdio(path) {
        print!("{}", starter.text);
        return ExitCode::SUCCESS;
    }
    let name = escape(&path.display().to_string()).into_owned();
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path);
    let written = file.and_then(|mut file| std::io::Write::write_all(&mut file, starter.text.as_bytes()));
    if let Err(error) = written {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            eprintln!("error: {name} exists; pfc test --init does not overwrite a case file (remove it, or name another with --cases)");
        } else {
            eprintln!("error: cannot write {name}: {error}");
        }
        return ExitCode::from(1);
    }
    let missing = if starter.missing.is_empty() {
        String::new()
    } else {
        format!(" ({} rule(s) decide no packet found: see the comments)", starter.missing.len())
    };
    println!(
        "wrote {name}: {} case(s){missing}; run `pfc test {}` next",
        starter.cases,
        escape(&rules.display().to_string())
    );
    ExitCode::SUCCESS
}
