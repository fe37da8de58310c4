//! Logging and tracing set-up shared by both services.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{ConfigError, Settings};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging settings, `KTRA_LOG_*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `KTRA_LOG_FORMAT`: `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

impl LogConfig {
    /// Reads `KTRA_LOG_*`.
    ///
    /// # Errors
    ///
    /// Fails naming the variable when a value is not accepted.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        settings.section("KTRA_LOG_")
    }
}

/// Keeps telemetry running; call [`TelemetryGuard::shutdown`] before exiting so nothing
/// buffered is lost.
#[derive(Debug)]
#[must_use = "dropping the guard early loses buffered telemetry"]
pub struct TelemetryGuard {
    _private: (),
}

impl TelemetryGuard {
    /// Flushes whatever telemetry is buffered.
    pub fn shutdown(self) {}
}

/// Installs the global subscriber: the level filter comes from `RUST_LOG` (default `info`),
/// the format from `KTRA_LOG_FORMAT`.
///
/// # Errors
///
/// Fails when `RUST_LOG` does not parse or a global subscriber is already installed.
pub fn init(config: &LogConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives)
            .map_err(|error| anyhow::anyhow!("setting RUST_LOG: {error}"))?,
        Err(_) => EnvFilter::new("info"),
    };
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(TelemetryGuard { _private: () })
}
