//! A small HTTP load generator: a fixed number of connections (HTTP/1.1 keep-alive or h2c with
//! prior knowledge), each with one request in flight, for a duration or until a shared queue of
//! requests runs out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;

/// The wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Protocol {
    /// HTTP/1.1 with keep-alive.
    Http1,
    /// HTTP/2 over cleartext, prior knowledge.
    H2c,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadResult {
    /// Responses received.
    pub(crate) responses: u64,
    /// Response body bytes received.
    pub(crate) bytes: u64,
    /// Wall time of the run.
    pub(crate) elapsed: Duration,
    /// Responses by status.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Every response's latency, microseconds.
    pub(crate) latencies_us: Vec<u64>,
}

impl LoadResult {
    /// Responses per second.
    pub(crate) fn rate(&self) -> f64 {
        self.responses as f64 / self.elapsed.as_secs_f64()
    }

    /// Body megabytes (10^6) per second.
    pub(crate) fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    /// A latency percentile in milliseconds.
    pub(crate) fn latency_ms(&self, percentile: f64) -> f64 {
        let values: Vec<f64> = self
            .latencies_us
            .iter()
            .map(|us| *us as f64 / 1000.0)
            .collect();
        crate::stats::percentile(&values, percentile)
    }

    /// Responses with a status other than `expected`.
    pub(crate) fn unexpected(&self, expected: u16) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| **status != expected)
            .map(|(_, count)| count)
            .sum()
    }

    fn merge(&mut self, other: Self) {
        self.responses += other.responses;
        self.bytes += other.bytes;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// When a connection stops.
#[derive(Clone)]
pub(crate) enum Stop {
    /// After this long.
    After(Duration),
    /// When the shared queue of request indexes reaches this count.
    Count(Arc<AtomicUsize>, usize),
}

enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect(address: SocketAddr, protocol: Protocol) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    Ok(match protocol {
        Protocol::Http1 => {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            Sender::Http1(sender)
        }
        Protocol::H2c => {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            Sender::H2(sender)
        }
    })
}

/// Runs `connections` connections against `address`; `request` builds the request for a
/// global request index.
///
/// # Errors
///
/// Fails when a connection cannot be made or breaks.
pub(crate) async fn run(
    address: SocketAddr,
    protocol: Protocol,
    connections: usize,
    stop: Stop,
    request: Arc<dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync>,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let sequence = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let stop = stop.clone();
        let request = Arc::clone(&request);
        let sequence = Arc::clone(&sequence);
        tasks.spawn(async move {
            let mut sender = connect(address, protocol).await?;
            let mut result = LoadResult::default();
            loop {
                let index = match &stop {
                    Stop::After(duration) => {
                        if started.elapsed() >= *duration {
                            break;
                        }
                        sequence.fetch_add(1, Ordering::Relaxed)
                    }
                    Stop::Count(queue, total) => {
                        let index = queue.fetch_add(1, Ordering::Relaxed);
                        if index >= *total {
                            break;
                        }
                        index
                    }
                };
                let sent = Instant::now();
                let response = match &mut sender {
                    Sender::Http1(sender) => {
                        sender.ready().await?;
                        sender.send_request(request(index)).await?
                    }
                    Sender::H2(sender) => {
                        sender.ready().await?;
                        sender.send_request(request(index)).await?
                    }
                };
                let status = response.status().as_u16();
                let mut body = response.into_body();
                while let Some(frame) = body.frame().await {
                    if let Some(data) = frame?.data_ref() {
                        result.bytes += data.len() as u64;
                    }
                }
                result.responses += 1;
                *result.statuses.entry(status).or_default() += 1;
                result
                    .latencies_us
                    .push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            Ok::<_, anyhow::Error>(result)
        });
    }
    let mut total = LoadResult::default();
    while let Some(result) = tasks.join_next().await {
        total.merge(result??);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
