//! Process-wide `tracing` subscriber: the set-up both binaries share
//! (`secrets_injector_shared::logging`), JSON lines by default, text for humans.

use secrets_injector_shared::logging;

use crate::args::LogFormat;

/// Install the global subscriber (stderr; level from `RUST_LOG`, default `info`).
/// A second call is a no-op, so tests may call it freely.
pub fn init(format: LogFormat) {
    logging::init(match format {
        LogFormat::Json => logging::LogFormat::Json,
        LogFormat::Text => logging::LogFormat::Text,
    });
}
