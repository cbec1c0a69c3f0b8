//! Tests of the interpreter (`pfc_compiler::eval`) on frames made by the packet builder.
//! Input: hand-built `Program`s (the checker is not involved) and frames; output: pass/fail.

mod conds;
mod fields;
mod fuzz;
mod paths;
mod support;
mod truncation;
