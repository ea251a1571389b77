//! The facade's integration tests, in one binary (linking dominates CI time on 2 cores).

mod attribution;
mod consent;
mod dispatcher;
mod frequency;
mod history;
mod notices;
