//! The gRPC service: `ktra.indexer.v1.Indexer`.

use std::sync::Arc;

use bytes::Bytes;
use ktra_proto::indexer::v1::indexer_server::Indexer;
use ktra_proto::indexer::v1::{
    Acknowledgement, ApplyRequest, ApplyResponse, CrateState, RebuildRequest, RebuildResponse,
};
use tokio::sync::{Mutex, oneshot};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::error::IndexerError;
use crate::writer::{Command, Update, WriterHandle};

/// Serves the indexer protocol by handing work to the writer.
#[derive(Debug, Clone)]
pub struct IndexerService {
    writer: WriterHandle,
    /// One rebuild at a time.
    rebuilding: Arc<Mutex<()>>,
}

impl IndexerService {
    /// Builds the service over a running writer.
    pub fn new(writer: WriterHandle) -> Self {
        Self {
            writer,
            rebuilding: Arc::new(Mutex::new(())),
        }
    }
}

fn to_update(state: CrateState) -> Result<Update, IndexerError> {
    let krate = state
        .crate_id()
        .map_err(|error| IndexerError::BadRequest(format!("invalid crate name: {error}")))?;
    Ok(Update {
        span: tracing::Span::current(),
        krate,
        revision: state.revision,
        content: Bytes::from(state.content),
    })
}

#[tonic::async_trait]
impl Indexer for IndexerService {
    async fn apply(
        &self,
        request: Request<ApplyRequest>,
    ) -> Result<Response<ApplyResponse>, Status> {
        // A child of the request's `grpc` span, which joins the API's trace (see lib.rs).
        let span = tracing::info_span!("indexer.apply", crates = request.get_ref().crates.len());
        self.apply_traced(request).instrument(span).await
    }

    #[tracing::instrument(skip_all)]
    async fn rebuild(
        &self,
        request: Request<Streaming<RebuildRequest>>,
    ) -> Result<Response<RebuildResponse>, Status> {
        let _only_one = self
            .rebuilding
            .try_lock()
            .map_err(|_| Status::failed_precondition("a rebuild is already running"))?;
        let mut stream = request.into_inner();
        let mut verify_only = None;
        while let Some(chunk) = stream.message().await? {
            let verify = *verify_only.get_or_insert(chunk.verify_only);
            let files = chunk
                .crates
                .into_iter()
                .map(to_update)
                .collect::<Result<Vec<_>, _>>()?;
            self.writer
                .send(Command::RebuildChunk {
                    verify_only: verify,
                    files,
                })
                .await?;
        }
        if verify_only.is_none() {
            return Err(Status::invalid_argument(
                "a rebuild stream starts with a message saying whether to write",
            ));
        }
        let (sender, receiver) = oneshot::channel();
        self.writer.send(Command::RebuildFinish(sender)).await?;
        let report = receiver.await.map_err(|_| IndexerError::ShuttingDown)??;
        tracing::info!(
            crates = report.crates,
            added = report.added.len(),
            changed = report.changed.len(),
            removed = report.removed.len(),
            "rebuild done"
        );
        Ok(Response::new(RebuildResponse {
            crates: report.crates,
            added: report.added,
            changed: report.changed,
            removed: report.removed,
            config_changed: report.config_changed,
            commit: report.commit.unwrap_or_default(),
        }))
    }
}

impl IndexerService {
    async fn apply_traced(
        &self,
        request: Request<ApplyRequest>,
    ) -> Result<Response<ApplyResponse>, Status> {
        let updates = request
            .into_inner()
            .crates
            .into_iter()
            .map(to_update)
            .collect::<Result<Vec<_>, _>>()?;
        let mut waiting = Vec::with_capacity(updates.len());
        let mut commands = Vec::with_capacity(updates.len());
        for update in updates {
            let (sender, receiver) = oneshot::channel();
            waiting.push((update.krate.clone(), receiver));
            commands.push((update, sender));
        }
        self.writer.send(Command::Apply(commands)).await?;
        let (acknowledged, refused) = async {
            let mut acknowledged = Vec::with_capacity(waiting.len());
            let mut refused = Vec::new();
            for (krate, receiver) in waiting {
                match receiver.await.map_err(|_| IndexerError::ShuttingDown)? {
                    Ok(revision) => acknowledged.push(Acknowledgement::new(&krate, revision)),
                    Err(why) => refused.push(why),
                }
            }
            Ok::<_, IndexerError>((acknowledged, refused))
        }
        .instrument(tracing::info_span!("indexer.queue"))
        .await?;
        // Refused crates are left out of the acknowledgements; when nothing else was asked
        // for, the caller gets the reason.
        if acknowledged.is_empty() && !refused.is_empty() {
            return Err(Status::failed_precondition(refused.join("; ")));
        }
        Ok(Response::new(ApplyResponse { acknowledged }))
    }
}
