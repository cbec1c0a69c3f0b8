//! `pfc unload --iface IF [--hook …] | --all`: detach pfc's filters and remove their pins
//! and state records.

use std::process::ExitCode;

use pfc_runtime::attach::AttachError;
use pfc_runtime::pins::Hook;

use super::filters::{self, HookArg};

/// Arguments of `pfc unload`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["iface", "all"])))]
pub struct UnloadArgs {
    /// The interface (every pfc hook on it unless --hook).
    #[arg(long)]
    iface: Option<String>,
    /// Only this hook.
    #[arg(long, value_enum, requires = "iface")]
    hook: Option<HookArg>,
    /// Every pfc filter on this machine.
    #[arg(long, conflicts_with = "iface")]
    all: bool,
    /// Seconds to wait for another `pfc load`/`unload` of the same interface and hook.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = crate::commands::interval::parse_lock_timeout)]
    lock_timeout: std::time::Duration,
    /// Where pins and records live.
    #[command(flatten)]
    state: filters::StateArgs,
}

/// Runs `pfc unload`.
pub fn run(args: &UnloadArgs) -> ExitCode {
    if let Some(Err(code)) = args.iface.as_deref().map(filters::check_iface) {
        return code;
    }
    let live = filters::live(&args.state).with_lock_timeout(args.lock_timeout).with_waiting_notice(filters::notice);
    let removed = match (&args.iface, args.hook) {
        (Some(iface), Some(hook)) => live.unload(iface, hook.point()).map(|()| vec![(iface.clone(), hook.point())]),
        (Some(iface), None) => {
            let mut removed = Vec::new();
            for point in Hook::ALL {
                match live.unload(iface, point) {
                    Ok(()) => removed.push((iface.clone(), point)),
                    Err(AttachError::NotLoaded { .. }) => {}
                    Err(error) => return filters::fail(&error),
                }
            }
            if removed.is_empty() {
                return filters::nothing_on(&args.state, iface, None, &format!("no pfc filter on `{iface}`"));
            }
            Ok(removed)
        }
        _ => live.unload_all(),
    };
    match removed {
        Ok(removed) => {
            for (iface, point) in removed {
                println!("unloaded {iface} {}", point.as_str());
            }
            ExitCode::SUCCESS
        }
        Err(error) => match &args.iface {
            Some(iface) => filters::fail_on(&args.state, iface, &error),
            None => filters::fail(&error),
        },
    }
}
