//! Tracing setup: `RUST_LOG`-style filtering, text or JSON lines on stderr,
//! every line passed through [`crate::redact`] before it is written.
//! What may be logged is described in LOGGING.md: ids, redacted SQL shapes,
//! counts and timings — never result rows, questions' data or secrets.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Installs the global subscriber once; later calls are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tantivy=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::RedactingWriter(std::io::stderr));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
