//! Test servers shared by the integration tests.
pub(crate) mod smtp;
