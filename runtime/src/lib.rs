//! pfc's runtime: runs compiled pfc objects in the rbpf VM and in the kernel.
#![deny(missing_docs)]
