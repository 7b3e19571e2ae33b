//! The one log set-up of both binaries (feature `logging`): JSON lines with
//! the event's fields flattened beside `timestamp`, `level`, `target` and
//! `message`, or plain text; level from `RUST_LOG` (default `info`); stderr.
//!
//! Whatever `RUST_LOG` says, the targets in [`CLAMPED_TARGETS`] never log
//! below their cap: at debug/trace they print signed requests, headers and
//! credentials (`x-amz-security-token`, the SigV4 canonical request),
//! see `docs/decisions.md` "No credential at any log level".

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, event fields flattened.
    Json,
    /// Human-readable text without colours.
    Text,
}

/// Targets capped at a level (prefix match on the tracing target), because
/// below it they log credentials or whole requests. Found by running the
/// agent at `RUST_LOG=trace` against moto with canary tokens
/// (`agent/tests/no_credentials_in_logs.rs` keeps it that way).
pub const CLAMPED_TARGETS: &[(&str, Level)] = &[
    // SigV4: canonical request and string to sign, security token included.
    ("aws_sigv4", Level::INFO),
    // Request/response dumps, identity resolution results, config bags.
    ("aws_smithy_runtime", Level::INFO),
    ("aws_smithy_runtime_api", Level::INFO),
    ("aws_smithy_http_client", Level::INFO),
    ("aws_smithy_http", Level::INFO),
    ("aws_smithy_types", Level::INFO),
    // Credentials providers (web identity, container endpoint, profile).
    ("aws_config", Level::INFO),
    ("aws_credential_types", Level::INFO),
    ("aws_runtime", Level::INFO),
    ("aws_sdk_sts", Level::INFO),
    ("aws_sdk_secretsmanager", Level::INFO),
    ("aws_sdk_ssm", Level::INFO),
    // HTTP stacks: header and frame dumps.
    ("hyper", Level::INFO),
    ("hyper_util", Level::INFO),
    ("h2", Level::INFO),
    ("rustls", Level::INFO),
    ("tokio_rustls", Level::INFO),
];

/// Install the global subscriber. A second call is a no-op, so tests may call it freely.
pub fn init(format: LogFormat) {
    init_with_fields(format, &[]);
}

/// [`init`], adding `fields` (name, value) to every line, e.g. the pod an agent serves.
pub fn init_with_fields(format: LogFormat, fields: &[(&str, &str)]) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .map_event_format(appending(true, fields))
            .boxed(),
        LogFormat::Text => layer
            .with_ansi(false)
            .map_event_format(appending(false, fields))
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(clamp())
        .with(layer)
        .try_init();
}

/// Everything allowed except [`CLAMPED_TARGETS`] below their cap; applied
/// beside the `RUST_LOG` filter, so no directive there can lift it.
pub fn clamp() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CLAMPED_TARGETS.iter().copied())
}

/// Wraps an event format so that its lines get `fields`.
fn appending<E>(json: bool, fields: Vec<(String, String)>) -> impl FnOnce(E) -> WithFields<E> {
    move |inner| WithFields {
        inner,
        json,
        fields,
    }
}

/// An event format that appends fixed fields to each line of `inner`.
struct WithFields<E> {
    inner: E,
    json: bool,
    fields: Vec<(String, String)>,
}

impl<S, N, E> FormatEvent<S, N> for WithFields<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if self.fields.is_empty() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        writer.write_str(&append_fields(body, self.json, &self.fields))?;
        writer.write_char('\n')
    }
}

/// `body` (one formatted line without its newline) with `fields` added:
/// JSON members before the closing brace, or ` name=value` pairs.
fn append_fields(body: &str, json: bool, fields: &[(String, String)]) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    match (json, body.strip_suffix('}')) {
        (true, Some(open)) => {
            out.push_str(open);
            for (k, v) in fields {
                let key = serde_json::Value::from(k.as_str());
                let value = serde_json::Value::from(v.as_str());
                out.push_str(&format!(",{key}:{value}"));
            }
            out.push('}');
        }
        _ => {
            out.push_str(body);
            for (k, v) in fields {
                out.push_str(&format!(" {k}={v}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_join_json_and_text_lines() {
        let fields = vec![
            ("pod".to_string(), "web-1".to_string()),
            ("namespace".to_string(), "a\"b".to_string()),
        ];
        let json = append_fields(r#"{"level":"INFO","message":"x"}"#, true, &fields);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(v["pod"], "web-1", "{json}");
        assert_eq!(v["namespace"], "a\"b", "{json}");
        assert_eq!(v["message"], "x", "{json}");
        assert_eq!(
            append_fields("INFO x: done", false, &fields),
            "INFO x: done pod=web-1 namespace=a\"b"
        );
    }

    #[test]
    fn clamped_targets_stay_capped() {
        let t = clamp();
        assert!(!t.would_enable("aws_sigv4::http_request::sign", &Level::DEBUG));
        assert!(!t.would_enable("aws_smithy_runtime::client::orchestrator", &Level::TRACE));
        assert!(t.would_enable("aws_sigv4", &Level::INFO));
        assert!(t.would_enable("secrets_injector_agent::run", &Level::TRACE));
    }
}
