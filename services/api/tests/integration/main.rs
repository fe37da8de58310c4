//! The API's integration tests: the real server on a loopback port, real stores (redb and a
//! directory, or redis-server and SeaweedFS), and the real `cargo` binary.

/// Runs each listed test (an `async fn(Backend)`) once per storage backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Embedded).await;
                }
            )*
        }
        mod redis_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::harness::Backend::RedisS3).await;
                }
            )*
        }
    };
}

mod admin;
mod api;
mod cargo;
mod concurrency;
mod harness;
mod hostile;
mod index_upgrade;
mod limits;
#[cfg(feature = "crates-io-mirroring")]
mod mirror;
mod pages;
mod replicas;
mod retries;
mod tokens;
