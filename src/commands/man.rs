//! `pfc man [--dir DIR]`: pfc's command line in, roff man pages out: pfc(1) on standard
//! output, or with `--dir` the files `pfc.1` and `pfc-SUBCOMMAND.1` for every subcommand.
//! clap_mangen renders the name, synopsis, description and options from the parser's own
//! definitions; the examples of `--help` become an EXAMPLES section (`.TP` per example).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

use crate::escape::escape;

/// Arguments of `pfc man`.
#[derive(clap::Args)]
pub struct ManArgs {
    /// Write pfc.1 and one page per subcommand into this directory (created if missing)
    /// instead of printing pfc.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints or writes the pages.
pub fn run(args: &ManArgs) -> ExitCode {
    let mut command = crate::Cli::command().disable_help_subcommand(true);
    command.build();
    let Some(dir) = &args.dir else {
        let written = page(&command).and_then(|page| std::io::stdout().lock().write_all(&page));
        return match written {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: <stdout>: cannot write: {error}");
                ExitCode::from(1)
            }
        };
    };
    match write_pages(&command, dir) {
        Ok(count) => {
            eprintln!("{count} man pages written to {}", escape(&dir.display().to_string()));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}: cannot write man pages: {error}", escape(&dir.display().to_string()));
            ExitCode::from(1)
        }
    }
}

/// Writes `pfc.1` and `pfc-SUB.1` for every visible subcommand; returns how many.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut count = 0;
    let subcommands = command.get_subcommands().filter(|sub| !sub.is_hide_set());
    for page_command in std::iter::once(command).chain(subcommands) {
        let name = Man::new(page_command.clone()).get_filename();
        std::fs::write(dir.join(name), page(page_command)?)?;
        count += 1;
    }
    Ok(count)
}

/// One page: clap_mangen's sections, with EXAMPLES in place of its plain EXTRA section.
fn page(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = Man::new(command.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    if let Some(examples) = command.get_after_help() {
        out.extend_from_slice(examples_section(&examples.to_string()).as_bytes());
    }
    if command.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

/// `Examples:` lines (`  pfc …   what it does`) as a roff EXAMPLES section.
fn examples_section(examples: &str) -> String {
    let mut roff = String::from(".SH EXAMPLES\n");
    for line in examples.lines().map(str::trim).filter(|line| line.starts_with("pfc ")) {
        let (command, what) = line.split_once("  ").unwrap_or((line, ""));
        roff.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff_text(command), roff_text(what.trim())));
    }
    roff
}

/// Text safe in a roff line that does not start with a control character.
fn roff_text(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-").replace('\'', "\\(aq")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_become_tagged_paragraphs() {
        let section = examples_section("Examples:\n  pfc compile --pcap-filter 'tcp' -o x.o   A \\ filter\n");
        assert_eq!(
            section,
            ".SH EXAMPLES\n.TP\n\\fBpfc compile \\-\\-pcap\\-filter \\(aqtcp\\(aq \\-o x.o\\fR\nA \\e filter\n"
        );
    }
}
