//! The unsubscribe endpoint of rassylka (SPEC §7c): the HTTP side of the links that every
//! advertising e-mail carries, on axum. The dispatcher signs the links; this crate serves
//! them:
//!
//! - `GET /u/{token}`: a small Russian page naming the masked address, with one button. A
//!   `GET` never changes anything (mail scanners open links).
//! - `POST /u/{token}`: the page's form, or a mail client's RFC 8058 one-click body
//!   `List-Unsubscribe=One-Click`; records the unsubscribe and answers 200 «Ваш адрес удалён
//!   из рассылки». Repeating it is harmless.
//! - A bad token answers 400 with a page, on `GET` and `POST`, and records nothing.
//! - `GET /healthz` answers 200 `ok`.
//!
//! This is the one network boundary besides the channels: the core crates stay network-free,
//! and no axum type appears in this crate's public API.
//!
//! ```
//! use rassylka::{MemorySource, Rassylka, SqliteStore};
//! use rassylka_unsubscribe::UnsubscribeServer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dispatcher = Rassylka::builder()
//!     .store(SqliteStore::temporary().await?)
//!     .recipients(MemorySource::default())
//!     .build()?;
//! let server = UnsubscribeServer::bind("127.0.0.1:0", dispatcher).await?;
//! println!("listening on http://{}", server.local_addr());
//! // A real server runs until the process ends: `server.serve().await?`.
//! server.serve_until(async {}).await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # Features
//! None: the server speaks HTTP/1.1; put it behind the site's HTTPS proxy (RFC 8058 wants an
//! HTTPS link).

mod pages;
mod routes;

use std::future::Future;
use std::net::SocketAddr;

use rassylka::Rassylka;

/// What can go wrong serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address cannot be listened on.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving stopped on an I/O error.
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl ServerError {
    /// Whether trying again may work (the address was busy, or the network failed).
    pub fn is_transient(&self) -> bool {
        match self {
            ServerError::Bind { source, .. } => source.kind() == std::io::ErrorKind::AddrInUse,
            ServerError::Serve(_) => true,
        }
    }
}

/// The endpoint, bound to its address and ready to serve.
#[derive(Debug)]
pub struct UnsubscribeServer {
    listener: tokio::net::TcpListener,
    dispatcher: Rassylka,
}

impl UnsubscribeServer {
    /// Listens on `address` (`127.0.0.1:8080`; port 0 picks a free one).
    ///
    /// # Errors
    /// [`ServerError::Bind`] when the address cannot be listened on.
    pub async fn bind(address: &str, dispatcher: Rassylka) -> Result<Self, ServerError> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| ServerError::Bind {
                address: address.to_owned(),
                source,
            })?;
        Ok(UnsubscribeServer {
            listener,
            dispatcher,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until the process ends.
    ///
    /// # Errors
    /// [`ServerError::Serve`] when serving stops on an I/O error.
    pub async fn serve(self) -> Result<(), ServerError> {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then finishes the requests under way.
    ///
    /// # Errors
    /// [`ServerError::Serve`] when serving stops on an I/O error.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        axum::serve(self.listener, routes::router(self.dispatcher))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServerError::Serve)
    }
}
