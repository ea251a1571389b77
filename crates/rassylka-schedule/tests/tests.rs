//! Integration tests of `rassylka-schedule`, in one binary: linking dominates test time on 2 cores.

mod common;
mod input;
mod properties;
mod semantics;
mod window;
