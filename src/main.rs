//! `pfc`: the command line of the packet-filter compiler. Thin wiring: it reads files,
//! calls the compiler and the runtime, and renders what they return.

mod commands;
mod escape;
mod help;
mod input;
mod memory;
mod report;
mod source;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The packet-filter compiler: declarative rules to eBPF, without clang.
#[derive(Parser)]
#[command(name = "pfc", version, about, long_about = None, after_help = help::PFC)]
struct Cli {
    /// When to colour diagnostics: `auto` colours on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, global = true, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    #[command(subcommand)]
    command: Command,
}

/// `--color`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    /// On a terminal, unless NO_COLOR is set (to anything) or TERM is `dumb`.
    Auto,
    /// Always, even when piped.
    Always,
    /// Never.
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check rule files; print every diagnostic.
    #[command(after_help = help::CHECK)]
    Check {
        /// Rule files (`.pf`), `-` for standard input.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Output format of the diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Which packet-space lints run (docs/analysis.md): shadowed and redundant rules
        /// and lockouts (`shadow`), also rules overlapping with opposite verdicts (`all`),
        /// or `none`; `auto` runs `shadow` on files of up to 1,000 rules.
        #[arg(long, value_enum, default_value_t = Lints::Auto)]
        lints: Lints,
        /// Exit with 1 when there are warnings (for CI).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Compare two rule files: the packets whose verdict changes, with example packets
    /// (exit 0: same verdict for every packet; 1: some packet changes).
    #[command(after_help = help::DIFF)]
    Diff(commands::diff::DiffArgs),
    /// Why one packet gets its verdict: each rule tried in order with the atoms that
    /// matched or failed and the packet's values, then the deciding rule.
    #[command(after_help = help::EXPLAIN)]
    Explain(commands::explain::ExplainArgs),
    /// Compile a rule file (or a tcpdump filter with --pcap-filter) into an eBPF ELF object.
    #[command(after_help = help::COMPILE)]
    Compile(commands::compile::CompileArgs),
    /// Run test cases (or a capture) through the compiled object in the rbpf VM, checked
    /// against the interpreter; no root needed.
    #[command(after_help = help::TEST)]
    Test(commands::test::TestArgs),
    /// Compile a rule file, load it into the kernel and attach it to an interface (pinned
    /// under /sys/fs/bpf/pfc); replaces pfc's filter there atomically.
    #[command(after_help = help::LOAD)]
    Load(commands::load::LoadArgs),
    /// Change a loaded filter's dynamic set: add, del, replace, list, flush.
    #[command(after_help = help::SET)]
    Set(commands::set::SetArgs),
    /// Detach pfc filters and remove their pins.
    #[command(after_help = help::UNLOAD)]
    Unload(commands::unload::UnloadArgs),
    /// List attached pfc filters.
    #[command(after_help = help::STATUS)]
    Status(commands::status::StatusArgs),
    /// Per-rule packet and byte counters of an attached filter.
    #[command(after_help = help::STATS)]
    Stats(commands::stats::StatsArgs),
    /// Print the events of a loaded filter's logged rules as they happen (lines, JSON or
    /// a pcapng capture), until Ctrl-C.
    #[command(after_help = help::WATCH)]
    Watch(commands::watch::WatchArgs),
    /// Print a shell completion script for bash, zsh or fish (also elvish, powershell).
    #[command(after_help = help::COMPLETIONS)]
    Completions(commands::completions::CompletionsArgs),
    /// Print pfc's man page, or write one per subcommand into a directory.
    #[command(after_help = help::MAN)]
    Man(commands::man::ManArgs),
}

/// Listings `pfc compile --emit` prints.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Emit {
    /// Disassembly with labels and the rule each block belongs to.
    Asm,
    /// The optimized filter IR.
    Ir,
}

/// Which packet-space lints `pfc check` runs (docs/analysis.md).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lints {
    /// `shadow` on files of up to 1,000 rules, else `none` (keeps `pfc check` fast).
    Auto,
    /// Only the checker's own lints.
    None,
    /// Also shadowed (W0003) and redundant (W0004) rules and lockouts (W0006).
    Shadow,
    /// Also rules that overlap an earlier rule of the other verdict (W0005).
    All,
}

/// How diagnostics are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people: source excerpts with labels (codespan-reporting).
    Human,
    /// For editors and CI: one JSON array of diagnostics with file, line and column.
    Json,
}

/// Output into a closed pipe (`pfc compile --emit asm | head`) ends pfc quietly, as it ends
/// `cat`: the Rust runtime ignores SIGPIPE, which turns the write into an error that
/// `print!` panics on.
fn restore_default_sigpipe() {
    // SAFETY: sets one signal's disposition to the default, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => exit_on_usage_error(error),
    };
    report::set_color(match cli.color {
        ColorArg::Auto => report::color_by_default(),
        ColorArg::Always => true,
        ColorArg::Never => false,
    });
    match cli.command {
        Command::Check { files, format, lints, deny_warnings } => {
            commands::check::run(&files, format, lints, deny_warnings)
        }
        Command::Diff(args) => commands::diff::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        Command::Compile(args) => commands::compile::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Load(args) => commands::load::run(&args),
        Command::Set(args) => commands::set::run(&args),
        Command::Unload(args) => commands::unload::run(&args),
        Command::Status(args) => commands::status::run(&args),
        Command::Stats(args) => commands::stats::run(&args),
        Command::Watch(args) => commands::watch::run(&args),
        Command::Completions(args) => commands::completions::run(&args),
        Command::Man(args) => commands::man::run(&args),
    }
}

/// Prints clap's message (usage error, or `--help`/`--version`) and exits with its
/// code. clap echoes the offending argument, so one holding terminal controls is
/// printed escaped, without clap's colours.
fn exit_on_usage_error(error: clap::Error) -> ! {
    let plain = error.render().to_string();
    if let std::borrow::Cow::Owned(escaped) = escape::escape(&plain) {
        eprint!("{escaped}");
        std::process::exit(error.exit_code());
    }
    error.exit()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every example in `--help` parses with pfc's own command line.
    #[test]
    fn every_help_example_parses() {
        let mut count = 0;
        for examples in help::ALL {
            for words in help::command_lines(examples) {
                match Cli::try_parse_from(&words) {
                    Ok(_) => {}
                    Err(error) if error.kind() == clap::error::ErrorKind::DisplayHelp => {}
                    Err(error) => panic!("the example {words:?} does not parse:\n{error}"),
                }
                count += 1;
            }
        }
        assert!(count >= 2 * help::ALL.len(), "{count} examples");
    }

    /// Every subcommand's `--help` ends with examples.
    #[test]
    fn every_subcommand_has_examples() {
        for subcommand in Cli::command().get_subcommands() {
            let after = subcommand.get_after_help().map(|text| text.to_string()).unwrap_or_default();
            assert!(after.starts_with("Examples:\n  pfc "), "`pfc {}` has no examples", subcommand.get_name());
        }
    }
}
