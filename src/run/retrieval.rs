//! `steward ingest`, `steward search` and `steward eval-retrieval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::retrieval::{Mode, Retriever, StoreKind, eval, watch};
use crate::settings::Settings;
use crate::startup::open_docs;

/// Options of `steward ingest`.
#[derive(Debug, Default)]
pub struct IngestOptions {
    /// Documents (default: the configured corpus).
    pub paths: Vec<PathBuf>,
    /// Index directory (default: the configured one).
    pub index: Option<PathBuf>,
    /// Keep watching.
    pub watch: bool,
    /// JSON summary.
    pub json: bool,
    /// Embedding model override.
    pub model: Option<String>,
    /// Qdrant URL (switches the store to Qdrant).
    pub qdrant: Option<String>,
}

/// `steward ingest`: exit 0, or 1 when some documents could not be read
/// (everything else is still indexed).
///
/// # Errors
/// Missing paths, an unusable index directory, a failing vector store.
pub async fn ingest(mut settings: Settings, opts: IngestOptions) -> anyhow::Result<ExitCode> {
    if let Some(m) = opts.model {
        settings.retrieval.model = m;
    }
    if let Some(url) = opts.qdrant {
        settings.retrieval.store = StoreKind::Qdrant;
        settings.retrieval.qdrant_url = Some(url);
    }
    let paths = if opts.paths.is_empty() {
        vec![settings.docs.clone()]
    } else {
        opts.paths
    };
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        bail!("{} does not exist; nothing was indexed", missing.display());
    }
    let index = opts.index.unwrap_or_else(|| settings.index_dir.clone());
    let retriever = Retriever::open(Some(&index), &settings.retrieval)
        .await
        .with_context(|| format!("opening the index in {}", index.display()))?;
    if settings.retrieval.store == StoreKind::Qdrant
        && let Some(why) = retriever.status().reason
    {
        bail!("the vector store is unavailable: {why}");
    }
    let progress = !opts.json;
    let report = retriever.ingest(&paths, progress).await?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        println!("index: {}", index.display());
    }
    if opts.watch {
        watch(&retriever, &paths).await?;
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn parse_mode(mode: Option<&str>) -> anyhow::Result<Option<Mode>> {
    Ok(match mode {
        None => None,
        Some("hybrid") => Some(Mode::Hybrid),
        Some("bm25") => Some(Mode::Bm25),
        Some("dense") => Some(Mode::Dense),
        Some(other) => bail!("unknown mode {other:?}; use hybrid, bm25 or dense"),
    })
}

async fn open(settings: &mut Settings, index: Option<PathBuf>) -> anyhow::Result<Retriever> {
    if let Some(dir) = index {
        if !dir.join("manifest.json").is_file() {
            bail!(
                "{} holds no index; run `steward ingest --index {}` first",
                dir.display(),
                dir.display()
            );
        }
        settings.index_dir = dir;
    }
    open_docs(settings).await
}

/// `steward search`: prints the best chunks with their source and section.
///
/// # Errors
/// Unknown mode; an unusable index; dense search without a model.
pub async fn search(
    mut settings: Settings,
    query: &str,
    groups: &[String],
    mode: Option<&str>,
    k: usize,
    index: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let mode = parse_mode(mode)?;
    let retriever = open(&mut settings, index).await?;
    let mode = mode.unwrap_or(retriever.status().mode);
    let hits = retriever
        .search_mode(mode, query, groups, k.min(100))
        .await?;
    if hits.is_empty() {
        println!("no readable document matches");
    }
    for (i, h) in hits.iter().enumerate() {
        let flag = if h.chunk.suspicious {
            "  [flagged: addresses an AI assistant]"
        } else {
            ""
        };
        println!(
            "{}. {} ({:.4}){flag}\n   {} — {}",
            i + 1,
            h.chunk.id,
            h.score,
            h.chunk.title,
            h.chunk.section
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `steward eval-retrieval`.
///
/// # Errors
/// Unreadable cases, labels naming unknown chunks, an unusable index.
pub async fn eval_retrieval(
    mut settings: Settings,
    file: &std::path::Path,
    k: usize,
    json: bool,
    index: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if k == 0 {
        bail!("-k must be at least 1");
    }
    let mut cases = eval::load(file).map_err(anyhow::Error::msg)?;
    for c in &mut cases {
        if let Some(user) = &c.user {
            let names = settings
                .auth
                .dev_users
                .get(user)
                .with_context(|| format!("{:?}: unknown user {user:?}", c.question))?;
            c.groups.extend(names.iter().cloned());
        }
    }
    let retriever = open(&mut settings, index).await?;
    let report = eval::run(&retriever, &cases, k)
        .await
        .map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        if let Some(why) = retriever.status().reason {
            println!("dense and hybrid not run: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
