//! Process-wide `tracing` subscriber: JSON lines by default, text for humans.

use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// Install the global subscriber (stderr; level from `RUST_LOG`, default `info`).
/// A second call is a no-op, so tests may call it freely.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
