//! What each command does, so `main.rs` stays a dispatcher.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;

use crate::cli::Sources;
use crate::http::ApiError;
use crate::orchestrator::AnswerKind;
use crate::policy::Principal;
use crate::retrieval::{DocIndex, load_documents};
use crate::settings::Settings;
use crate::startup::{Application, build_orchestrator};

/// `steward serve`.
///
/// # Errors
/// Start-up failures (see [`Application::build`]).
pub async fn serve(
    mut settings: Settings,
    bind: Option<String>,
    sources: &Sources,
) -> anyhow::Result<ExitCode> {
    sources.apply(&mut settings);
    if let Some(b) = bind {
        settings.bind = b;
    }
    let app = Application::build(&settings).await?;
    println!(
        "steward is serving http://127.0.0.1:{}/ (as of {})",
        app.port(),
        app.as_of()
    );
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

/// `steward ask`: exit 0 for an answer, 3 for a refusal, 2 for bad input.
///
/// # Errors
/// Start-up failures.
pub async fn ask(
    mut settings: Settings,
    user: &str,
    json: bool,
    sources: &Sources,
    question: &str,
) -> anyhow::Result<ExitCode> {
    sources.apply(&mut settings);
    let Some(roles) = settings.auth.dev_users.get(user).cloned() else {
        eprintln!(
            "error: unknown user {user:?}; configured users: {}",
            settings
                .auth
                .dev_users
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(2));
    };
    let question = match crate::http::check_question(question, settings.limits.max_question_chars) {
        Ok(q) => q.to_owned(),
        Err(ApiError { message, .. }) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let orchestrator = build_orchestrator(&settings).await?;
    let answer = orchestrator
        .ask(
            &Principal {
                user: user.to_owned(),
                roles,
            },
            &question,
        )
        .await;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{}", answer.answer);
        for c in &answer.citations {
            println!("  source: {} > {} ({})", c.title, c.section, c.source);
        }
        if let Some(sql) = &answer.sql {
            println!("\nSQL:\n{sql}");
        }
    }
    Ok(if answer.kind == AnswerKind::Refusal {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `steward demo init`.
///
/// # Errors
/// Generation failures.
pub async fn demo_init(
    out: &Path,
    as_of: Option<NaiveDate>,
    scale: f64,
) -> anyhow::Result<ExitCode> {
    let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let started = std::time::Instant::now();
    let manifest = crate::demo::generate(out, as_of, scale).await?;
    println!(
        "wrote {} (as of {}) in {:.1} s",
        out.display(),
        manifest.as_of,
        started.elapsed().as_secs_f64()
    );
    for (table, rows) in &manifest.rows {
        println!("  {table:<20} {rows:>10} rows");
    }
    println!("planted signup drop: {}", manifest.planted_drop_on);
    Ok(ExitCode::SUCCESS)
}

/// `steward ingest`.
///
/// # Errors
/// Unreadable documents or an unwritable index directory.
pub fn ingest(
    settings: &Settings,
    path: Option<PathBuf>,
    index: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let path = path.unwrap_or_else(|| settings.docs.clone());
    let index = index.unwrap_or_else(|| settings.index_dir.clone());
    let chunks = load_documents(&path).with_context(|| format!("reading {}", path.display()))?;
    let flagged = chunks.iter().filter(|c| c.suspicious).count();
    let docs = chunks
        .iter()
        .map(|c| c.source.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let n = chunks.len();
    DocIndex::build(chunks, Some(&index))?;
    println!(
        "indexed {n} chunks from {docs} documents into {}",
        index.display()
    );
    if flagged > 0 {
        println!(
            "warning: {flagged} chunk(s) contain text addressed to an AI assistant; they are kept as data and flagged"
        );
    }
    Ok(ExitCode::SUCCESS)
}
