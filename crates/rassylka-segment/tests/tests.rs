//! Integration tests of `rassylka-segment`, in one binary: linking dominates test time on 2 cores.

mod counts;
mod properties;
mod rules;
mod scan;
mod semantics;
