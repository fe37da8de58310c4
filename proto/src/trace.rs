//! Trace propagation across the indexer protocol, in one pair: the client sends the caller's
//! W3C trace context with every request ([`SendTraceContext`]), and the server opens a span
//! per request as a child of it ([`request_span`]). Every RPC of the protocol, present and
//! future, joins the API's trace without code of its own.

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The client half: writes the current span's `traceparent` and `tracestate` into each
/// request's metadata. Use with `IndexerClient::with_interceptor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendTraceContext;

impl Interceptor for SendTraceContext {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        ktra_core::telemetry::inject(&mut |key, value| {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_str()),
            ) {
                metadata.insert(key, value);
            }
        });
        Ok(request)
    }
}

/// A channel whose requests carry the caller's trace context.
pub type TracedChannel = InterceptedService<Channel, SendTraceContext>;

/// The server half, for `tonic::transport::Server::trace_fn`: a `grpc` span per request of the
/// indexer protocol, a child of the caller's trace when the request carries one. Health checks
/// (polled by orchestrators every few seconds) get no span.
pub fn request_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    if path.starts_with("/grpc.health.") {
        return tracing::Span::none();
    }
    // The indexer's target, so the filter that keeps its spans keeps this parent of them.
    let span = tracing::info_span!(target: "ktra_indexer::grpc", "grpc", rpc = path);
    ktra_core::telemetry::set_parent_from_headers(&span, request.headers());
    span
}
