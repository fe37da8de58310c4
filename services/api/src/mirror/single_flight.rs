//! At most one fetch per key at a time within a replica; callers arriving meanwhile share its
//! result. The fetch runs in its own task, so it completes even when every caller goes away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument;

/// The task running a fetch ended without a result: it panicked, or the runtime is shutting
/// down. Every caller sharing the fetch receives this.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct FlightFailed {
    /// Why the task ended, as the runtime tells it.
    pub(crate) reason: String,
}

type Flight<T> = Shared<BoxFuture<'static, Result<T, FlightFailed>>>;

/// The fetches in flight, by key; each with the id of the task that removes it when done.
type Flights<T> = Arc<Mutex<HashMap<String, (u64, Flight<T>)>>>;

/// Runs at most one fetch per key at a time; callers arriving meanwhile share its result.
///
/// The fetch task removes its own entry when it finishes, whether or not anyone still waits
/// for it: a waiter may be cancelled (the request timed out, the client went away), and an
/// entry left behind would hand its old result, bytes and all, to every later caller.
pub(crate) struct SingleFlight<T> {
    flights: Flights<T>,
    next_id: AtomicU64,
}

impl<T> std::fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("SingleFlight")
            .field("in_flight", &count)
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    pub(crate) fn new() -> Self {
        Self {
            flights: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(0),
        }
    }

    /// Joins the fetch of `key` in flight, or starts `work` as a task when there is none.
    ///
    /// # Errors
    ///
    /// [`FlightFailed`] when the task running the fetch panicked or was cancelled.
    pub(crate) async fn run(
        &self,
        key: &str,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, FlightFailed> {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            match flights.get(key) {
                Some((_, flight)) => flight.clone(),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let landing = Landing {
                        flights: Arc::clone(&self.flights),
                        key: key.to_owned(),
                        id,
                    };
                    let task = tokio::spawn(
                        async move {
                            // Dropped when the fetch ends, even by a panic.
                            let _landing = landing;
                            work.await
                        }
                        .in_current_span(),
                    );
                    let flight = async move {
                        task.await.map_err(|error| FlightFailed {
                            reason: error.to_string(),
                        })
                    }
                    .boxed()
                    .shared();
                    flights.insert(key.to_owned(), (id, flight.clone()));
                    flight
                }
            }
        };
        flight.await
    }
}

/// Removes a fetch's entry from its [`SingleFlight`] when dropped, unless a newer fetch of
/// the same key has replaced it.
struct Landing<T> {
    flights: Flights<T>,
    key: String,
    id: u64,
}

impl<T> Drop for Landing<T> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if flights
            .get(&self.key)
            .is_some_and(|(current, _)| *current == self.id)
        {
            flights.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn in_flight<T>(flights: &SingleFlight<T>) -> usize {
        flights
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    #[tokio::test]
    async fn a_fetch_whose_waiters_all_went_away_still_clears_its_entry() {
        let flights = SingleFlight::<u32>::new();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (finished, has_finished) = tokio::sync::oneshot::channel::<()>();
        let waiter = flights.run("k", async move {
            let _ = released.await;
            let _ = finished.send(());
            1
        });
        // The only waiter is cancelled while the fetch is still running.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), waiter)
                .await
                .is_err()
        );
        assert_eq!(in_flight(&flights), 1);
        release.send(()).unwrap();
        has_finished.await.unwrap();
        for _ in 0..100 {
            if in_flight(&flights) == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(in_flight(&flights), 0, "the finished fetch left its entry");
        // A later caller runs its own fetch instead of receiving the old result.
        assert_eq!(flights.run("k", async { 2 }).await.unwrap(), 2);
        assert_eq!(in_flight(&flights), 0);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let flights = SingleFlight::<u32>::new();
        let runs = Arc::new(AtomicU64::new(0));
        let call = |value| {
            let runs = Arc::clone(&runs);
            flights.run("k", async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                value
            })
        };
        let (first, second) = tokio::join!(call(1), call(2));
        assert_eq!((first.unwrap(), second.unwrap()), (1, 1));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(in_flight(&flights), 0);
    }
}
