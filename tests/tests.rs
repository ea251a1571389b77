//! Integration tests of the workspace (examples and cross-crate), in one binary: linking dominates test time on 2 cores.

mod campaign_cli;
mod crash;
mod faults;
mod fuzz;
mod history_cli;
mod limits;
mod notify_cli;
mod occurrences_cli;
mod outage;
mod postgres_workers;
mod readme;
mod report_cli;
mod segment_cli;
/// The loopback SMTP server of the channel tests, shared rather than copied.
#[path = "../crates/rassylka-channels/tests/support/smtp.rs"]
#[allow(dead_code, unreachable_pub)]
mod smtp_server;
mod template_cli;
mod unsubscribe;
mod workers;
