//! The routes and what each answers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rassylka::{DispatchError, Rassylka, UnsubscribeSource};

use crate::pages;

pub(crate) fn router(dispatcher: Rassylka) -> Router {
    Router::new()
        .route("/u/{token}", get(show).post(unsubscribe))
        .route("/healthz", get(health))
        .with_state(dispatcher)
}

async fn health() -> &'static str {
    "ok"
}

/// An HTML answer that nothing caches, that sends no referrer (the token is in the URL) and
/// that may load nothing from anywhere.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    response
}

/// A bad token is the visitor's (400); anything else is ours: the page says nothing of the
/// cause, the operator's stderr does (never the token).
fn failure(error: &DispatchError) -> Response {
    match error {
        DispatchError::BadToken(_) => html(StatusCode::BAD_REQUEST, pages::bad_link()),
        _ => {
            eprintln!("unsubscribe: {error}");
            html(StatusCode::SERVICE_UNAVAILABLE, pages::unavailable())
        }
    }
}

/// `GET /u/{token}`: the page that asks; changes nothing.
async fn show(State(dispatcher): State<Rassylka>, Path(token): Path<String>) -> Response {
    match dispatcher.unsubscribe_page(&token).await {
        Ok(page) => html(StatusCode::OK, pages::confirm(&page)),
        Err(e) => failure(&e),
    }
}

/// Whether a body is RFC 8058's one-click: `List-Unsubscribe=One-Click` form-encoded, or the
/// same field in `multipart/form-data`.
fn is_one_click(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .any(|pair| pair.trim() == "List-Unsubscribe=One-Click")
        || (text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click"))
}

/// `POST /u/{token}`: records the unsubscribe (a repeat changes nothing).
async fn unsubscribe(
    State(dispatcher): State<Rassylka>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let source = if is_one_click(&body) {
        UnsubscribeSource::OneClick
    } else {
        UnsubscribeSource::Link
    };
    match dispatcher.unsubscribe(&token, source).await {
        Err(e) => failure(&e),
        Ok(done) => {
            if let Some(error) = &done.source_error {
                eprintln!(
                    "unsubscribe: `{}` is unsubscribed in the journal; the recipient source did not take the flag: {error}",
                    done.record.recipient_id
                );
            }
            html(StatusCode::OK, pages::done(done.masked_address.as_deref()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_one_click;

    #[test]
    fn one_click_bodies_are_told_from_the_form() {
        assert!(is_one_click(b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(b"a=b&List-Unsubscribe=One-Click"));
        assert!(is_one_click(
            b"--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n"
        ));
        assert!(!is_one_click(b"confirm=1"));
        assert!(!is_one_click(b""));
    }
}
