//! The mirror's series in the API's metrics: cache results, upstream request times and
//! upstream errors, each by kind (`index` or `crate`).

use std::sync::Arc;
use std::time::Instant;

use super::MirrorErrorKind;
use crate::metrics::{ApiMetrics, MirrorCacheLabels, MirrorErrorLabels, MirrorKindLabels};

/// The cache results each kind reports.
const CACHE_RESULTS: [(&str, &[&str]); 2] = [
    ("index", &["hit", "revalidated", "miss", "stale"]),
    ("crate", &["hit", "miss"]),
];

/// Records the mirror's work in the API's metrics.
#[derive(Debug)]
pub(crate) struct MirrorMetrics {
    metrics: Arc<ApiMetrics>,
}

impl MirrorMetrics {
    /// Creates every series at zero: dashboards and alerts (and tests) can tell "none yet"
    /// from "not exported".
    pub(crate) fn new(metrics: Arc<ApiMetrics>) -> Self {
        // The guards `get_or_create` returns are dropped.
        for (kind, results) in CACHE_RESULTS {
            for result in results {
                drop(metrics.mirror_cache.get_or_create(&MirrorCacheLabels {
                    kind: kind.to_owned(),
                    result: (*result).to_owned(),
                }));
            }
            drop(
                metrics
                    .mirror_upstream_duration
                    .get_or_create(&MirrorKindLabels {
                        kind: kind.to_owned(),
                    }),
            );
            for error in MirrorErrorKind::ALL {
                drop(
                    metrics
                        .mirror_upstream_errors
                        .get_or_create(&MirrorErrorLabels {
                            kind: kind.to_owned(),
                            error: error.label().to_owned(),
                        }),
                );
            }
        }
        Self { metrics }
    }

    /// Counts a cache lookup of `kind` and how it ended (`hit`, `revalidated`, `miss`,
    /// `stale`).
    pub(crate) fn count(&self, kind: &str, result: &str) {
        self.metrics
            .mirror_cache
            .get_or_create(&MirrorCacheLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records how long an upstream request of `kind` begun at `started` took.
    pub(crate) fn observe_upstream(&self, kind: &str, started: Instant) {
        self.metrics
            .mirror_upstream_duration
            .get_or_create(&MirrorKindLabels {
                kind: kind.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts a failed upstream request of `kind`.
    pub(crate) fn upstream_error(&self, kind: &str, error: MirrorErrorKind) {
        self.metrics
            .mirror_upstream_errors
            .get_or_create(&MirrorErrorLabels {
                kind: kind.to_owned(),
                error: error.label().to_owned(),
            })
            .inc();
    }
}
