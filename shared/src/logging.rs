//! The one log set-up of both binaries (feature `logging`): JSON lines with
//! the event's fields flattened beside `timestamp`, `level`, `target` and
//! `message`, or plain text; level from `RUST_LOG` (default `info`); stderr.
//!
//! Whatever `RUST_LOG` says, the targets in [`CLAMPED_TARGETS`] never log
//! below their cap: at debug/trace they print signed requests, headers and
//! credentials (`x-amz-security-token`, the SigV4 canonical request),
//! see `docs/decisions.md` "No credential at any log level".

use std::fmt::{self, Write as _};

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
        LogFormat::Json => layer.event_format(JsonLine::new(&fields)).boxed(),
        LogFormat::Text => layer
            .with_ansi(false)
            .map_event_format(appending(fields))
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(clamp())
        .with(layer)
        .try_init();
}

/// The JSON line: `timestamp`, `level`, the event's fields (`message`
/// first), `target`, then the fixed fields, written straight into the line
/// buffer. The same shape as tracing-subscriber's flattened JSON format (a
/// test holds the two equal), at a fraction of its cost: it has no serde
/// map to build per event, and the webhook logs one line per admission.
struct JsonLine {
    /// `,"name":"value"` for each fixed field, serialized once.
    suffix: String,
}

impl JsonLine {
    fn new(fields: &[(String, String)]) -> JsonLine {
        let mut suffix = String::new();
        for (k, v) in fields {
            suffix.push(',');
            json_str(&mut suffix, k);
            suffix.push(':');
            json_str(&mut suffix, v);
        }
        JsonLine { suffix }
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime;
        let mut line = String::with_capacity(256);
        line.push_str("{\"timestamp\":\"");
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut line))?;
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        let mut fields = JsonFields {
            message: None,
            rest: String::new(),
        };
        event.record(&mut fields);
        let JsonFields { message, rest } = fields;
        if let Some(message) = message {
            line.push_str(",\"message\":");
            line.push_str(&message);
        }
        line.push_str(&rest);
        line.push_str(",\"target\":");
        json_str(&mut line, event.metadata().target());
        line.push_str(&self.suffix);
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Each field as `,"name":value`; `message` kept apart so it goes first.
struct JsonFields {
    message: Option<String>,
    rest: String,
}

impl JsonFields {
    fn put(&mut self, field: &tracing::field::Field, value: &dyn Fn(&mut String)) {
        if field.name() == "message" {
            let mut v = String::new();
            value(&mut v);
            self.message = Some(v);
            return;
        }
        self.rest.push(',');
        json_str(&mut self.rest, field.name());
        self.rest.push(':');
        value(&mut self.rest);
    }
}

impl tracing::field::Visit for JsonFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.put(field, &|out| json_str(out, value));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.put(field, &|out| {
            out.push_str(if value { "true" } else { "false" })
        });
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.put(field, &|out| {
            let _ = write!(out, "{value}");
        });
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.put(field, &|out| {
            let _ = write!(out, "{value}");
        });
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        // serde_json's spelling: shortest round-trip digits, `null` when not finite.
        self.put(field, &|out| {
            out.push_str(&serde_json::Value::from(value).to_string());
        });
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.put(field, &|out| json_str(out, &text));
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Everything allowed except [`CLAMPED_TARGETS`] below their cap; applied
/// beside the `RUST_LOG` filter, so no directive there can lift it.
pub fn clamp() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CLAMPED_TARGETS.iter().copied())
}

/// Wraps a text event format so that its lines get `fields` (the JSON line
/// writes them itself, see [`JsonLine`]).
fn appending<E>(fields: Vec<(String, String)>) -> impl FnOnce(E) -> WithFields<E> {
    move |inner| WithFields { inner, fields }
}

/// A text event format that appends fixed fields to each line of `inner`.
struct WithFields<E> {
    inner: E,
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
        writer.write_str(&append_fields(body, &self.fields))?;
        writer.write_char('\n')
    }
}

/// `body` (one formatted text line without its newline) with ` name=value`
/// pairs added.
fn append_fields(body: &str, fields: &[(String, String)]) -> String {
    let mut out = String::with_capacity(body.len() + 64);
    out.push_str(body);
    for (k, v) in fields {
        out.push_str(&format!(" {k}={v}"));
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
        let json = format!(
            r#"{{"level":"INFO","message":"x"{}}}"#,
            JsonLine::new(&fields).suffix
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(v["pod"], "web-1", "{json}");
        assert_eq!(v["namespace"], "a\"b", "{json}");
        assert_eq!(v["message"], "x", "{json}");
        assert_eq!(
            append_fields("INFO x: done", &fields),
            "INFO x: done pod=web-1 namespace=a\"b"
        );
    }

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn emit() {
        tracing::info!(
            uid = "705ab4f5",
            namespace = "a\"b\\c\n\u{1}\u{7f}é",
            kind = "Pod",
            operation = "Create",
            generate_name = "",
            dry_run = false,
            duration_ms = 0.123_456,
            "admission"
        );
        tracing::warn!(status = 400u16, error = %"bad \t thing", "rejected {}", "this");
        tracing::error!(
            count = -5i64,
            big = u64::MAX,
            wide = i128::MIN,
            nan = f64::NAN,
            whole = 3.0f64,
            tiny = 1e-7f64,
            list = ?vec!["a", "b"],
            "x"
        );
        tracing::info!(only = 1u8);
        tracing::info!("message only");
    }

    /// What `fields` and `ours` print for [`emit`], one JSON line each.
    fn lines(ours: bool, fields: &[(String, String)]) -> Vec<String> {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = tracing_subscriber::fmt::layer().with_writer(move || out.clone());
        let layer = if ours {
            layer.event_format(JsonLine::new(fields)).boxed()
        } else {
            layer
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .boxed()
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        if ours {
            return text.lines().map(String::from).collect();
        }
        // tracing-subscriber's line with the fixed fields added as members
        // before the closing brace, each serialized by serde_json.
        text.lines()
            .map(|line| {
                let mut out = line.strip_suffix('}').unwrap().to_string();
                for (k, v) in fields {
                    out.push_str(&format!(
                        ",{}:{}",
                        serde_json::Value::from(k.as_str()),
                        serde_json::Value::from(v.as_str())
                    ));
                }
                out + "}"
            })
            .collect()
    }

    #[test]
    fn json_lines_are_tracing_subscribers_json_lines() {
        for fields in [
            vec![],
            vec![
                ("pod".to_string(), "web-1".to_string()),
                ("namespace".to_string(), "a\"b".to_string()),
            ],
        ] {
            let (ours, theirs) = (lines(true, &fields), lines(false, &fields));
            assert_eq!(ours.len(), 5, "{ours:#?}");
            assert_eq!(ours.len(), theirs.len());
            for (o, t) in ours.iter().zip(&theirs) {
                let mut ov: serde_json::Value = serde_json::from_str(o).unwrap();
                let mut tv: serde_json::Value = serde_json::from_str(t).unwrap();
                let (ots, tts) = (ov["timestamp"].take(), tv["timestamp"].take());
                // Both RFC 3339 with microseconds, in UTC.
                let (ots, tts) = (ots.as_str().unwrap(), tts.as_str().unwrap());
                assert_eq!(ots.len(), tts.len(), "{ots} {tts}");
                assert!(ots.ends_with('Z') && ots.as_bytes()[10] == b'T', "{ots}");
                assert_eq!(ov, tv, "\nours:   {o}\ntheirs: {t}");
                // The same key order: timestamp, level, message, fields, target, fixed fields.
                let keys = |line: &str| -> Vec<String> {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    let mut k: Vec<(usize, String)> = v
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
                        .collect();
                    k.sort();
                    k.into_iter().map(|(_, k)| k).collect()
                };
                assert_eq!(keys(o), keys(t), "\nours:   {o}\ntheirs: {t}");
            }
        }
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
