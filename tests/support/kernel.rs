//! Kernel-test scaffolding: the workspace's one copy lives in the `pfc-test-support`
//! crate (`test-support/`), shared with the compiler's and the runtime's tests; this
//! module re-exports it so `support::kernel::…` paths keep working.

#[allow(unused_imports)] // each test binary uses its own share
pub use pfc_test_support::{missing_tool, no_kernel, run, run_ok, NetNs, RemoveOnDrop};
