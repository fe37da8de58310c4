//! Logging and tracing set-up shared by both services.
//!
//! - Logs go to stderr: human-readable (coloured on a terminal) or one JSON object per line,
//!   filtered by `RUST_LOG` (default `info`). JSON lines carry the trace and span ids.
//! - Traces go to an OpenTelemetry collector over OTLP (HTTP/protobuf) when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, named by
//!   `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`. Unset, no exporter exists and spans
//!   cost only what `tracing` costs.
//! - Context crosses process boundaries as W3C `traceparent`: see [`inject`] and
//!   [`set_parent`].

use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
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

/// Keeps telemetry running; call [`TelemetryGuard::shutdown`] before exiting so buffered spans
/// reach the collector.
#[derive(Debug)]
#[must_use = "dropping the guard early loses buffered telemetry"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the span exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {error}");
        }
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Installs the global subscriber (and, when configured, the OTLP exporter); `service` names
/// the service unless `OTEL_SERVICE_NAME` does.
///
/// # Errors
///
/// Fails when `RUST_LOG` does not parse, the exporter cannot be built, or a global subscriber
/// is already installed.
pub fn init(config: &LogConfig, service: &'static str) -> anyhow::Result<TelemetryGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .map_err(|error| anyhow::anyhow!("setting RUST_LOG: {error}"))?,
        _ => EnvFilter::new("info"),
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporting = non_empty_env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || non_empty_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    // JSON logs carry trace ids, so spans get ids even when nothing is exported.
    let provider = if exporting || config.format == LogFormat::Json {
        let mut resource = opentelemetry_sdk::Resource::builder();
        if non_empty_env("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service);
        }
        let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
        if exporting {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .map_err(|error| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {error}"))?;
            builder = builder.with_batch_exporter(exporter);
        }
        Some(builder.build())
    } else {
        None
    };
    let otel_layer = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service)));
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
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
                    .event_format(json::JsonWithTraceIds)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(TelemetryGuard { provider })
}

/// Writes the current span's context (`traceparent`, `tracestate`) through `set`, for outgoing
/// headers or gRPC metadata.
pub fn inject(set: &mut dyn FnMut(&str, String)) {
    struct Setter<'a>(&'a mut dyn FnMut(&str, String));
    impl Injector for Setter<'_> {
        fn set(&mut self, key: &str, value: String) {
            (self.0)(key, value);
        }
    }
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Setter(set));
    });
}

/// Makes `span` a child of the context found through `get` (incoming headers or gRPC
/// metadata), when there is one.
pub fn set_parent(span: &tracing::Span, get: &dyn Fn(&str) -> Option<String>) {
    // Only the two W3C fields are ever asked for, so they are read up front.
    struct Fields(std::collections::HashMap<&'static str, String>);
    impl Extractor for Fields {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).map(String::as_str)
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().copied().collect()
        }
    }
    let extractor = Fields(
        ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|key| get(key).map(|value| (key, value)))
            .collect(),
    );
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&extractor));
    if context.span().span_context().is_valid() {
        // Fails only when the span is disabled, which leaves nothing to link.
        let _ = span.set_parent(context);
    }
}

/// Makes `span` a child of the trace in incoming HTTP headers (`traceparent` from a proxy).
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    set_parent(span, &|key| {
        headers
            .get(key)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    });
}

/// JSON log lines with the trace and span ids of the current span.
mod json {
    use std::fmt;

    use opentelemetry::trace::{TraceContextExt, TraceId};
    use serde_json::{Map, Value};
    use tracing::field::{Field, Visit};
    use tracing_opentelemetry::get_otel_context;
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    /// One JSON object per event: time, level, target, message and fields, the fields of the
    /// enclosing spans, and `trace_id`/`span_id` when the event is inside a traced span.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct JsonWithTraceIds;

    struct Fields<'a>(&'a mut Map<String, Value>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), Value::from(value));
        }

        fn record_i64(&mut self, field: &Field, value: i64) {
            self.0.insert(field.name().to_owned(), Value::from(value));
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().to_owned(), Value::from(value));
        }

        fn record_bool(&mut self, field: &Field, value: bool) {
            self.0.insert(field.name().to_owned(), Value::from(value));
        }

        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0
                .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
        }
    }

    impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
    where
        S: tracing::Subscriber + for<'lookup> LookupSpan<'lookup>,
        N: for<'writer> FormatFields<'writer> + 'static,
    {
        fn format_event(
            &self,
            context: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> fmt::Result {
            let metadata = event.metadata();
            let mut line = Map::new();
            line.insert(
                "timestamp".into(),
                Value::from(
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ),
            );
            line.insert("level".into(), Value::from(metadata.level().as_str()));
            line.insert("target".into(), Value::from(metadata.target()));
            event.record(&mut Fields(&mut line));
            if let Some(scope) = context.event_scope() {
                let mut spans = Vec::new();
                for span in scope.from_root() {
                    spans.push(Value::from(span.name()));
                }
                line.insert("spans".into(), Value::from(spans));
            }
            if let Some(span) = context.lookup_current() {
                let id = span.id();
                let otel =
                    tracing::dispatcher::get_default(|dispatch| get_otel_context(&id, dispatch));
                if let Some(otel) = otel {
                    let span_context = otel.span().span_context().clone();
                    if span_context.trace_id() != TraceId::INVALID {
                        line.insert(
                            "trace_id".into(),
                            Value::from(span_context.trace_id().to_string()),
                        );
                        line.insert(
                            "span_id".into(),
                            Value::from(span_context.span_id().to_string()),
                        );
                    }
                }
            }
            let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
            writeln!(writer, "{text}")
        }
    }
}
