//! `pfc`: the command-line front of the packet-filter compiler.
fn main() {}
