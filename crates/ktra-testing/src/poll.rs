//! Waiting for a condition with a deadline, instead of sleeping for a guessed while.

use std::time::{Duration, Instant};

/// How often [`poll_until`] asks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Asks `probe` every [`POLL_INTERVAL`] until it returns `Some`, for at most `timeout`; returns
/// that value, or `None` when the deadline passed first. `probe` is asked at least once, and
/// once more at the deadline, so a condition that holds then is not missed.
pub async fn poll_until<T>(
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// Like [`poll_until`] for a condition that is true or false; returns whether it became true.
pub async fn poll_until_true(timeout: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    poll_until(timeout, async || condition().await.then_some(()))
        .await
        .is_some()
}

/// Like [`poll_until`] for a probe that does not wait (it reads a file or a process table),
/// from code that is not async; sleeps the calling thread between asks.
pub fn poll_until_blocking<T>(
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_value_the_probe_gives() {
        let mut asked = 0;
        let value = poll_until(Duration::from_secs(5), async || {
            asked += 1;
            (asked == 3).then_some(asked)
        })
        .await;
        assert_eq!(value, Some(3));
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_after_asking_at_least_twice() {
        let mut asked = 0;
        let value: Option<()> = poll_until(Duration::from_millis(10), async || {
            asked += 1;
            None
        })
        .await;
        assert_eq!(value, None);
        assert!(asked >= 2, "asked {asked} times");
    }

    #[test]
    fn the_blocking_form_waits_the_same_way() {
        let started = Instant::now();
        let value = poll_until_blocking(Duration::from_secs(5), || {
            (started.elapsed() >= Duration::from_millis(20)).then_some("late")
        });
        assert_eq!(value, Some("late"));
        assert_eq!(
            poll_until_blocking(Duration::ZERO, || None::<()>),
            None,
            "a zero timeout asks once"
        );
    }
}
