//! `ktra-indexer`: the one writer of Ktra's git index.
//!
//! The API service sends it every index change over gRPC (`ktra.indexer.v1`); it turns them
//! into commits on its own clone and pushes them to the configured remote, acknowledging a
//! change only once it is pushed.

pub mod config;
pub mod config_json;
pub mod error;
pub mod foreign;
pub mod git;
pub mod metrics;
pub mod revisions;
pub mod service;
pub mod writer;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use ktra_proto::indexer::v1::indexer_server::IndexerServer;
use tokio::net::TcpListener;

pub use config::Config;

/// The largest gRPC message accepted: a rebuild chunk or a crate with many versions.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long the writer may take to push what is left after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

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
    // Held until `run` returns, so no second indexer writes the clone meanwhile.
    let lock = git::clone_lock::CloneLock::take(&config.git.local_path)?;
    // Bound first, so a taken port fails the start instead of a scrape later.
    let metrics_listener = TcpListener::bind(config.endpoint.metrics_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (KTRA_INDEXER_METRICS_LISTEN)",
                config.endpoint.metrics_listen
            )
        })?;
    let index_config = config.registry.index_config(config.api_port);
    if config.registry.public_url.is_none() {
        tracing::warn!(
            api = index_config.api,
            "KTRA_REGISTRY_PUBLIC_URL is unset; config.json points at the API on this host only"
        );
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let metrics = std::sync::Arc::new(metrics::IndexerMetrics::new());
    let (writer, handle) = writer::Writer::open(
        config.git.clone(),
        lock.clone(),
        index_config,
        std::sync::Arc::clone(&metrics),
    )
    .await?;
    let writer_task = tokio::spawn(writer.run());
    let service = IndexerServer::new(service::IndexerService::new(handle))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // The clone is open and the writer runs: the indexer serves (grpc.health.v1, for the
    // container and Kubernetes probes).
    health_reporter
        .set_serving::<IndexerServer<service::IndexerService>>()
        .await;
    tracing::info!(address = %listener.local_addr()?, remote = config.git.remote_url.as_deref().unwrap_or("none"), "serving");
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    // One shutdown signal stops both servers.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let http = tokio::spawn(metrics::serve(
        metrics_listener,
        std::sync::Arc::clone(&metrics),
        until_stopped(stopped.clone()),
    ));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    tonic::transport::Server::builder()
        .trace_fn(ktra_proto::trace::request_span)
        .add_service(health_service)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, until_stopped(stopped))
        .await
        .context("the gRPC server failed")?;
    match http.await {
        Ok(Err(error)) => tracing::warn!(%error, "the metrics server failed"),
        Err(error) => tracing::warn!(%error, "the metrics server panicked"),
        Ok(Ok(())) => {}
    }
    // The server is gone, and with it every handle: the writer pushes what is left and stops.
    if tokio::time::timeout(SHUTDOWN_GRACE, writer_task)
        .await
        .is_err()
    {
        tracing::warn!(
            "the writer did not finish in time; unpushed changes will be sent again by the API"
        );
    }
    drop(lock);
    Ok(())
}

/// Asks the local indexer's gRPC health service whether it serves; for container health checks.
///
/// # Errors
///
/// Fails when the indexer does not answer or does not serve.
pub async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mut address = config.endpoint.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner()
        .status();
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "the indexer is {status:?}"
    );
    Ok(())
}
