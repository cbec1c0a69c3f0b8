//! `pfc set add|del|replace|list|flush --iface IF [--hook H] SET [ELEMENT… | --file F]`:
//! change a running filter's dynamic set without reloading it. Elements are checked as
//! the rule file's would be (type, family, one map entry each), against the set's type
//! in the running filter's manifest, before anything is written; `replace` and `flush`
//! swap generations so packets see the old contents or the new, never a mix.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use pfc_compiler::program::dynamic::{element_key, element_text, key_element, Family};
use pfc_compiler::program::{DynamicKind, DynamicSet};
use pfc_compiler::sources::{IncludeLoader, LoadedFile};
use pfc_compiler::ElementSource;
use pfc_runtime::attach::sets::{SetChange, SetKey, SetOutcome};
use pfc_runtime::attach::AttachError;
use pfc_runtime::pins::{Hook, SetManifest};
use serde_json::json;

use super::filters::{self, HookArg, ReportFormat};
use crate::escape::escape;
use crate::input;
use crate::report::Report;
use crate::source::{set_file_text, FileLoader};
use crate::Format;

/// What `pfc set` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SetAction {
    /// Add elements (present ones are left alone).
    Add,
    /// Delete elements (absent ones are counted, not an error).
    Del,
    /// Make the elements the whole contents, atomically.
    Replace,
    /// Print the contents.
    List,
    /// Empty the set, atomically.
    Flush,
}

/// Arguments of `pfc set`.
#[derive(clap::Args)]
pub struct SetArgs {
    /// add, del, replace, list or flush.
    #[arg(value_enum)]
    action: SetAction,
    /// The dynamic set's name in the rule file.
    set: String,
    /// Elements as in the rule file: addresses, prefixes, values, named values.
    elements: Vec<String>,
    /// Read the elements from a set file (one per line, `#` comments); `-` reads
    /// standard input.
    #[arg(long, conflicts_with = "elements")]
    file: Option<PathBuf>,
    /// The interface.
    #[arg(long)]
    iface: String,
    /// The hook (needed when the interface has filters at several hooks).
    #[arg(long, value_enum)]
    hook: Option<HookArg>,
    /// list: one element per line, or a JSON document (`"schema": "pfc.set/1"`); the other
    /// actions print one line and take no `json`.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    format: ReportFormat,
    /// Seconds to wait for another pfc writer of the same interface and hook.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = crate::commands::interval::parse_lock_timeout)]
    lock_timeout: std::time::Duration,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// Runs `pfc set`.
pub fn run(args: &SetArgs) -> ExitCode {
    if let Err(code) = filters::check_iface(&args.iface) {
        return code;
    }
    let given = !args.elements.is_empty() || args.file.is_some();
    match (args.action, given) {
        (SetAction::Add | SetAction::Del, false) => return filters::usage("give elements, or --file FILE"),
        // A forgotten --file must not wipe a block list: emptying is `flush`.
        (SetAction::Replace, false) => {
            return filters::usage("give elements, or --file FILE (`pfc set flush` empties a set)");
        }
        (SetAction::List | SetAction::Flush, true) => {
            return filters::usage("list and flush take no elements");
        }
        _ => {}
    }
    // Only `list` has a JSON document (pfc.set/1): a script asking for JSON from a change
    // would otherwise get the human line.
    if args.format == ReportFormat::Json && args.action != SetAction::List {
        return filters::usage("--format json applies to `pfc set list`; add, del, replace and flush print one line");
    }
    let started = Instant::now();
    let live = filters::live(&args.state).with_lock_timeout(args.lock_timeout).with_waiting_notice(filters::notice);
    let points: Vec<Hook> = match args.hook {
        Some(hook) => vec![hook.point()],
        None => Hook::ALL.to_vec(),
    };
    // First read the set's description, then check the elements against it.
    let mut found = None;
    for point in &points {
        match live.change_set(&args.iface, *point, &args.set, SetChange::Describe) {
            Ok(outcome) => {
                found = Some((*point, outcome));
                break;
            }
            Err(AttachError::NotLoaded { .. }) => {}
            Err(error) => return filters::fail_on(&args.state, &args.iface, &error),
        }
    }
    let Some((point, listed)) = found else {
        return filters::nothing_on(&args.state, &args.iface, None, &format!("no pfc filter on `{}`", args.iface));
    };
    let kind = kind_of(&listed.set);
    let change = match args.action {
        SetAction::List => {
            return match live.change_set(&args.iface, point, &args.set, SetChange::List) {
                Ok(listed) => list(args, point, &listed, kind),
                Err(error) => filters::fail_on(&args.state, &args.iface, &error),
            };
        }
        SetAction::Flush => SetChange::Replace(Vec::new()),
        action => {
            let keys = match keys(args, &listed.set, kind) {
                Ok(keys) => keys,
                Err(code) => return code,
            };
            match action {
                SetAction::Add => SetChange::Add(keys),
                SetAction::Del => SetChange::Delete(keys),
                _ => SetChange::Replace(keys),
            }
        }
    };
    match live.change_set(&args.iface, point, &args.set, change) {
        Ok(outcome) => {
            println!(
                "{} `{}` on {} {}: {} added, {} deleted, {} unchanged; {} of {} elements; {:.1} ms",
                match args.action {
                    SetAction::Add => "added to",
                    SetAction::Del => "deleted from",
                    SetAction::Flush => "flushed",
                    _ => "replaced",
                },
                escape(&args.set),
                args.iface,
                point.as_str(),
                outcome.added,
                outcome.deleted,
                outcome.unchanged,
                outcome.count,
                outcome.set.size,
                started.elapsed().as_secs_f64() * 1e3
            );
            ExitCode::SUCCESS
        }
        Err(error) => filters::fail_on(&args.state, &args.iface, &error),
    }
}

fn kind_of(set: &SetManifest) -> DynamicKind {
    if set.kind == "prefixes" {
        DynamicKind::Prefixes
    } else {
        DynamicKind::Values
    }
}

/// The elements as element keys, checked as the rule file's; diagnostics and
/// exit 1 when one is not an element of the set.
fn keys(args: &SetArgs, set: &SetManifest, kind: DynamicKind) -> Result<Vec<SetKey>, ExitCode> {
    let dynamic = DynamicSet {
        name: set.name.clone(),
        element_type: set.element_type.clone(),
        kind,
        families: set.maps.iter().filter_map(|map| Family::from_name(&map.family)).collect(),
        max_elements: set.size,
        elements: Vec::new(),
        span: Default::default(),
        fixed: false,
        unread_file: None,
    };
    let file_text;
    let source = match &args.file {
        Some(path) => {
            file_text = path.display().to_string();
            ElementSource::File(&file_text)
        }
        None => ElementSource::Written(&args.elements),
    };
    let origin = format!("<pfc set {}>", set.name);
    let (elements, parsed) = pfc_compiler::dynamic_elements(&dynamic, source, &origin, &mut SetFileLoader);
    match elements {
        Some(elements) => Ok(elements.iter().map(|element| element_key(kind, element)).collect()),
        None => {
            let mut report = Report::new(Format::Human);
            report.add_sources(&parsed.map, &parsed.diagnostics);
            eprintln!("error: nothing changed");
            let _ = report.finish();
            Err(ExitCode::from(1))
        }
    }
}

/// Reads `--file`: a path relative to the current directory, or `-`, standard input.
struct SetFileLoader;

impl IncludeLoader for SetFileLoader {
    fn load(&mut self, including: &LoadedFile, written: &str) -> Result<LoadedFile, String> {
        FileLoader.load(including, written)
    }

    fn load_set_file(&mut self, including: &LoadedFile, written: &str) -> Result<LoadedFile, String> {
        let stdin = Path::new("-");
        if written != "-" {
            return FileLoader.load_set_file(including, written);
        }
        let bytes = input::read_limited(stdin, "set file", input::MAX_SET_FILE)?;
        set_file_text(input::display_name(stdin), input::display_name(stdin), bytes)
    }
}

/// `pfc set list`: the elements, sorted, one per line or as JSON.
fn list(args: &SetArgs, point: Hook, listed: &SetOutcome, kind: DynamicKind) -> ExitCode {
    let elements: Vec<String> =
        listed.keys.iter().filter_map(|key| key_element(kind, key)).map(|element| element_text(&element)).collect();
    match args.format {
        ReportFormat::Json => {
            let document = json!({
                "schema": "pfc.set/1",
                "iface": args.iface,
                "hook": point.as_str(),
                "set": listed.set.name,
                "type": listed.set.element_type,
                "kind": listed.set.kind,
                "size": listed.set.size,
                "count": elements.len(),
                "elements": elements,
            });
            println!("{document}");
        }
        ReportFormat::Human => {
            for element in &elements {
                println!("{element}");
            }
        }
    }
    ExitCode::SUCCESS
}
