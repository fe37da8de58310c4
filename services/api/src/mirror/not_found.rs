//! The upstream's 404s, remembered in memory by each replica.
//!
//! Names that do not exist are unbounded (anyone can ask for `/mirror/dl/<random>/...`), so
//! they are not written to the blob store, where nothing would ever remove them. Each replica
//! keeps at most [`CAPACITY`] of them; a replica that forgets one asks the upstream again.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The most index paths remembered at once.
const CAPACITY: usize = 10_000;

/// Index paths the upstream answered 404 for, with when it did.
#[derive(Debug)]
pub(crate) struct NotFoundCache {
    seen: Mutex<HashMap<String, Instant>>,
    capacity: usize,
}

impl NotFoundCache {
    pub(crate) fn new() -> Self {
        Self::with_capacity(CAPACITY)
    }

    fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Returns whether the upstream answered 404 for `path` less than `max_age` before `now`.
    pub(crate) fn remembers(&self, path: &str, max_age: Duration, now: Instant) -> bool {
        self.lock()
            .get(path)
            .is_some_and(|&at| now.saturating_duration_since(at) < max_age)
    }

    /// Remembers a 404 for `path`. When full, forgets what is older than `max_age`, then the
    /// oldest entry.
    pub(crate) fn insert(&self, path: &str, max_age: Duration, now: Instant) {
        let mut seen = self.lock();
        if seen.len() >= self.capacity && !seen.contains_key(path) {
            seen.retain(|_, at| now.saturating_duration_since(*at) < max_age);
            if seen.len() >= self.capacity
                && let Some(oldest) = seen
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(oldest, _)| oldest.clone())
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(path.to_owned(), now);
    }

    /// Forgets `path` (the upstream has it now).
    pub(crate) fn remove(&self, path: &str) {
        self.lock().remove(path);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_404s_are_remembered_for_max_age_and_the_size_is_capped() {
        let cache = NotFoundCache::with_capacity(2);
        let start = Instant::now();
        let max_age = Duration::from_secs(30);
        cache.insert("3/a/abc", max_age, start);
        assert!(cache.remembers("3/a/abc", max_age, start + Duration::from_secs(29)));
        assert!(!cache.remembers("3/a/abc", max_age, start + Duration::from_secs(30)));
        assert!(!cache.remembers("3/x/xyz", max_age, start));

        cache.insert("3/b/bcd", max_age, start + Duration::from_secs(1));
        cache.insert("3/c/cde", max_age, start + Duration::from_secs(2));
        assert_eq!(cache.lock().len(), 2, "the oldest is forgotten");
        assert!(!cache.remembers("3/a/abc", max_age, start + Duration::from_secs(2)));
        // Expired entries go first.
        let later = start + Duration::from_secs(40);
        cache.insert("3/d/def", max_age, later);
        cache.insert("3/e/efg", max_age, later);
        assert_eq!(cache.lock().len(), 2);
        assert!(cache.remembers("3/d/def", max_age, later));
        cache.remove("3/d/def");
        assert!(!cache.remembers("3/d/def", max_age, later));
    }
}
