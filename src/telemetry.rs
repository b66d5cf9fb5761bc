//! Tracing setup: `RUST_LOG`-style filtering, text or JSON lines on stderr,
//! every line passed through [`crate::redact`] before it is written.
//! What may be logged is described in LOGGING.md: ids, redacted SQL shapes,
//! counts and timings — never result rows, questions' data or secrets.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Libraries whose debug output carries SQL text, prompts, request bodies or
/// URLs with tokens: capped at `warn` whatever `RUST_LOG` asks for.
pub const QUIET_LIBRARIES: [&str; 11] = [
    "sqlparser",
    "sqlx",
    "async_openai",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "openidconnect",
    "tantivy",
    "ort",
];

/// The filter for `directives` (`RUST_LOG` syntax; `None`: `info`), with
/// [`QUIET_LIBRARIES`] capped at `warn` after it, so a `RUST_LOG=debug` cannot
/// bring a library's SQL or prompt logging back.
pub fn filter(directives: Option<&str>) -> EnvFilter {
    filter_or(directives, "info")
}

/// [`filter`], with `default` (`warn`, `info`, `debug`) when `directives` is
/// `None` or invalid.
pub fn filter_or(directives: Option<&str>, default: &str) -> EnvFilter {
    let mut filter = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    for library in QUIET_LIBRARIES {
        if let Ok(d) = format!("{library}=warn").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Installs the global subscriber once; later calls are ignored.
/// `level` applies unless `RUST_LOG` is set.
pub fn init(format: LogFormat, level: &str) {
    let env = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter_or(env.as_deref(), level))
        .with_writer(crate::redact::RedactingWriter(std::io::stderr));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn library_debug_logs_stay_off_even_at_rust_log_debug() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter(Some("debug,sqlparser=trace")))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "sqlparser::parser", "parsing SELECT 'ann@example.com'");
            tracing::debug!(target: "sqlx::query", "SELECT contact_email FROM customers");
            tracing::debug!(target: "steward::orchestrator", "plan chosen");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("plan chosen"), "{text}");
        assert!(
            !text.contains("ann@example.com") && !text.contains("contact_email"),
            "{text}"
        );
    }
}
