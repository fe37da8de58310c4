//! `ktra-indexer`: the one writer of Ktra's git index.
//!
//! The API service sends it every index change over gRPC (`ktra.indexer.v1`); it turns them
//! into commits on its own clone and pushes them to the configured remote, acknowledging a
//! change only once it is pushed.

pub mod config;
pub mod error;
pub mod git;
pub mod revisions;
pub mod service;
pub mod writer;

use std::fs::File;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use ktra_core::registry::DEFAULT_API_PORT;
use ktra_proto::indexer::v1::indexer_server::IndexerServer;
use tokio::net::TcpListener;

pub use config::Config;

/// The largest gRPC message accepted: a rebuild chunk or a crate with many versions.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long the writer may take to push what is left after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Takes the lock that keeps a second indexer off the same clone; held while the file lives.
///
/// # Errors
///
/// Fails when another process holds the lock.
pub fn lock_clone(config: &Config) -> anyhow::Result<File> {
    std::fs::create_dir_all(&config.git.local_path)
        .with_context(|| format!("cannot create {}", config.git.local_path.display()))?;
    let path = config.git.local_path.join("indexer.lock");
    let file = File::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another ktra-indexer holds {}; only one indexer may write an index",
            path.display()
        )
    })?;
    Ok(file)
}

/// Runs the indexer on `listener` until `shutdown` resolves.
///
/// # Errors
///
/// Fails when the clone is locked by another indexer, cannot be opened, or the server fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _lock = lock_clone(&config)?;
    let config_json = Bytes::from(
        config
            .registry
            .index_config(DEFAULT_API_PORT, false)
            .to_json(),
    );
    if config.registry.public_url.is_none() {
        tracing::warn!(
            "KTRA_REGISTRY_PUBLIC_URL is unset; config.json points at http://127.0.0.1:8000"
        );
    }
    let (writer, handle) = writer::Writer::open(config.git.clone(), config_json).await?;
    let writer_task = tokio::spawn(writer.run());
    let service = IndexerServer::new(service::IndexerService::new(handle))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tracing::info!(address = %listener.local_addr()?, remote = config.git.remote_url.as_deref().unwrap_or("none"), "serving");
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("the gRPC server failed")?;
    // The server is gone, and with it every handle: the writer pushes what is left and stops.
    if tokio::time::timeout(SHUTDOWN_GRACE, writer_task)
        .await
        .is_err()
    {
        tracing::warn!(
            "the writer did not finish in time; unpushed changes will be sent again by the API"
        );
    }
    Ok(())
}
