//! Progress reports while a question is answered ("planning", "running SQL"),
//! for streaming clients. A report goes to the channel installed for the
//! current task with [`with_progress`], and nowhere when there is none.
//! Reports carry plan kinds and metric or table names, never data.

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Progress {
    /// The question was planned.
    Planned {
        /// Plan kind: metric, drop, overview, list, docs or refuse.
        plan: &'static str,
    },
    /// A statement is about to run.
    RunningSql {
        /// What it computes (a metric name or "listing").
        what: String,
    },
    /// Documentation is being searched.
    SearchingDocs,
    /// The language model is choosing its next step.
    Thinking {
        /// Step number, from 1.
        step: u32,
    },
    /// The language model is writing the answer.
    Writing,
}

tokio::task_local! {
    static SINK: UnboundedSender<Progress>;
}

/// Runs `f` with progress reports sent to `sink`.
pub async fn with_progress<F: std::future::Future>(
    sink: UnboundedSender<Progress>,
    f: F,
) -> F::Output {
    SINK.scope(sink, f).await
}

/// Sends a report to the current task's sink, if any.
pub fn report(p: Progress) {
    let _ = SINK.try_with(|s| s.send(p));
}
