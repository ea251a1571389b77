//! The facade's integration tests, in one binary (linking dominates CI time on 2 cores).

mod consent;
mod dispatcher;
mod history;
mod notices;
