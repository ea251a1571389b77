//! Integration tests of `rassylka-model`, in one binary: linking dominates test time on 2 cores.

mod properties;
mod recipient;
