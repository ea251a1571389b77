//! Integration tests of `rassylka-channels`, in one binary: linking dominates test time on 2 cores.

mod core;
mod haskimail;
mod push;
mod redaction;
mod sms;
mod smtp;
mod support;
mod telegram;
mod vk;
