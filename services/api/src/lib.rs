//! `ktra-api`: the stateless HTTP service of the Ktra registry.
//!
//! It serves cargo's web API (publish, yank, owners, search, downloads), Ktra's user API and
//! the sparse index, over a metadata store and a blob store (see `ktra-store`). Any number of
//! replicas may run over the same stores.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod downloads;
pub mod error;
pub mod extract;
pub mod handlers;
#[cfg(feature = "import-ktra")]
pub mod import;
pub mod index_sync;
pub mod ktra_data;
pub mod limits;
pub mod metrics;
#[cfg(feature = "crates-io-mirroring")]
pub mod mirror;
pub mod pages;
pub mod password;
pub mod routes;
pub mod state;
pub mod upgrade;

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

pub use config::Config;
pub use state::AppState;

/// How long, at shutdown, changes handed over without waiting may take to reach the indexer.
const HANDOFF_FLUSH: Duration = Duration::from_secs(5);

/// Serves the registry on `listener` until `shutdown` resolves, then drains in-flight requests
/// for at most the request timeout, and hands the indexer what is still waiting for it.
///
/// # Errors
///
/// Fails when the stores cannot be opened.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let state = AppState::open(config).await?;
    serve(state, listener, shutdown).await
}

/// Serves an already built state; see [`run`].
///
/// # Errors
///
/// Never fails today; the signature leaves room for listener errors that must stop the service.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let drain_timeout = Duration::from_secs(state.config.http.request_timeout_secs);
    tokio::spawn(upgrade::in_background(
        state.store.clone(),
        state.blobs.clone(),
        state.config.publish_limits(),
    ));
    let counts =
        tokio::spawn(std::sync::Arc::clone(&state.downloads).flush_forever(state.store.clone()));
    let (downloads, store) = (std::sync::Arc::clone(&state.downloads), state.store.clone());
    let resender = tokio::spawn(state.index_sync.clone().resend_forever());
    let index_sync = state.index_sync.clone();
    let handoff = tokio::spawn(index_sync.clone().hand_off_forever());
    let builder = connection_builder(&state.config.limits);
    let app = routes::router(state);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    tracing::info!(address = %listener.local_addr()?, "serving");
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Accept errors (e.g. too many open files) are transient: back off briefly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %peer, "cannot set TCP_NODELAY");
        }
        // Handlers see the peer as `ConnectInfo` (rate limits by client address).
        let service = TowerToHyperService::new(tower::Layer::layer(
            &axum::Extension(axum::extract::ConnectInfo(peer)),
            app.clone(),
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("draining in-flight requests");
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time");
    }
    resender.abort();
    handoff.abort();
    counts.abort();
    if let Err(error) = downloads.flush(store.as_ref()).await {
        tracing::warn!(%error, "download counts of the last seconds are lost");
    }
    // Stopped before the flush takes what waits, so the two never split it.
    let _ = handoff.await;
    index_sync.flush_handed_off(HANDOFF_FLUSH).await;
    Ok(())
}

/// HTTP/1.1 and HTTP/2 connection settings against hostile clients: a client has
/// `KTRA_LIMITS_HEADER_READ_TIMEOUT_SECS` to send its request head (slow-loris clients are
/// dropped), heads past `KTRA_LIMITS_MAX_HEADER_BYTES` or `KTRA_LIMITS_MAX_HEADERS` get 431.
/// Bodies are bounded per route and by the request timeout.
fn connection_builder(limits: &config::LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}
