//! One module per subcommand.

pub mod check;
pub mod compile;
pub mod completions;
pub mod diff;
pub mod explain;
pub mod filters;
pub mod interval;
pub mod load;
pub mod man;
pub mod set;
pub mod stats;
pub mod status;
pub mod test;
pub mod unload;
pub mod watch;
