//! `pfc`: the command line of the packet-filter compiler. Thin wiring: it reads files,
//! calls the compiler and the runtime, and renders what they return.

mod commands;
mod escape;
mod input;
mod report;
mod source;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The packet-filter compiler: declarative rules to eBPF, without clang.
#[derive(Parser)]
#[command(name = "pfc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check rule files; print every diagnostic.
    Check {
        /// Rule files (`.pf`).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Output format of the diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Compile a rule file (or a tcpdump filter with --pcap-filter) into an eBPF ELF object.
    Compile(commands::compile::CompileArgs),
    /// Run test cases (or a capture) through the compiled object in the rbpf VM, checked
    /// against the interpreter; no root needed.
    Test(commands::test::TestArgs),
    /// Compile a rule file, load it into the kernel and attach it to an interface (pinned
    /// under /sys/fs/bpf/pfc); replaces pfc's filter there atomically.
    Load(commands::load::LoadArgs),
    /// Detach pfc filters and remove their pins.
    Unload(commands::unload::UnloadArgs),
    /// List attached pfc filters.
    Status(commands::status::StatusArgs),
    /// Per-rule packet and byte counters of an attached filter.
    Stats(commands::stats::StatsArgs),
}

/// Listings `pfc compile --emit` prints.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Emit {
    /// Disassembly with labels and the rule each block belongs to.
    Asm,
    /// The optimized filter IR.
    Ir,
}

/// How diagnostics are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For people: source excerpts with labels (codespan-reporting).
    Human,
    /// For editors and CI: one JSON array of diagnostics with file, line and column.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, format } => commands::check::run(&files, format),
        Command::Compile(args) => commands::compile::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Load(args) => commands::load::run(&args),
        Command::Unload(args) => commands::unload::run(&args),
        Command::Status(args) => commands::status::run(&args),
        Command::Stats(args) => commands::stats::run(&args),
    }
}
