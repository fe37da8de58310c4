//! Blocking work off the async runtime, in the caller's span.

/// Runs `work` on tokio's blocking pool inside the span current at the call, so what it logs
/// and the spans it opens stay in the caller's trace. Every blocking hand-off of the services
/// goes through here.
///
/// # Errors
///
/// As [`tokio::task::spawn_blocking`]: a [`tokio::task::JoinError`] when `work` panicked.
pub async fn spawn_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let span = tracing::Span::current();
    #[allow(clippy::disallowed_methods, reason = "this is the one call")]
    tokio::task::spawn_blocking(move || span.in_scope(work)).await
}
