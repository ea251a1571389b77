//! Integration tests of `rassylka-template`, in one binary: linking dominates test time on 2 cores.

mod fuzz_found;
mod properties;
mod render;
