//! Plumbing shared by the HTTP adapters. Every reqwest error leaves through
//! [`transport_error`], which strips the URL: Telegram puts the bot token in the path and the
//! SMS gateways put keys in the query.
#![allow(dead_code)]

use std::time::Duration;

use crate::ChannelError;

pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, ChannelError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| {
            ChannelError::configuration("cannot build the http client").with_source(e.without_url())
        })
}

/// Classifies a failure to get any HTTP answer, scrubbing the URL out of it. Only a failure
/// to connect is known to have sent nothing (transient); no answer after that — a timeout, a
/// reset, an unreadable answer — may have left the message with the provider (ambiguous).
pub(crate) fn transport_error(error: reqwest::Error) -> ChannelError {
    let error = error.without_url();
    if error.is_builder() {
        return ChannelError::configuration("invalid request (check the base url)")
            .with_source(error);
    }
    if error.is_connect() {
        return ChannelError::outage("cannot connect to the provider").with_source(error);
    }
    let reason = if error.is_timeout() {
        "the provider did not answer in time"
    } else if error.is_decode() || error.is_body() {
        "cannot read the provider's answer"
    } else {
        "the connection failed before the provider answered"
    };
    ChannelError::ambiguous(reason)
        .with_outage()
        .with_source(error)
}

/// Reads the body of any answer; a body that cannot be read is transient.
pub(crate) async fn read_body(
    response: reqwest::Response,
) -> Result<(reqwest::StatusCode, Option<Duration>, Vec<u8>), ChannelError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.map_err(transport_error)?.to_vec();
    Ok((status, retry_after, body))
}

/// Joins a base URL and a path with exactly one slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}
