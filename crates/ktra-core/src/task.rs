//! Blocking work off the async runtime, in the caller's span.

/// Runs `work` on tokio's blocking pool inside the span current at this call, so what it logs
/// and the spans it opens stay in the caller's trace. Every blocking hand-off of the services
/// goes through here; clippy refuses tokio's own.
///
/// As with [`tokio::task::spawn_blocking`], the work starts at once, and awaiting the handle
/// gives a [`tokio::task::JoinError`] when it panicked.
pub fn spawn_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let span = tracing::Span::current();
    #[expect(
        clippy::disallowed_methods,
        reason = "the one call the others go through"
    )]
    tokio::task::spawn_blocking(move || span.in_scope(work))
}
