//! `steward verified export`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::VerifiedAction;
use crate::orchestrator::verified::{self, VerifiedQuery, VerifiedSet};
use crate::review::ReviewStore;
use crate::session::SessionStore;
use crate::settings::Settings;

const HEADER: &str = "# Verified queries: question → SQL pairs an analyst has checked. Pairs with an\n\
# owner were approved in steward's review queue (`steward verified export`).\n\
# Every statement must pass the SQL guard; `steward serve` refuses to start otherwise.\n";

/// The export's YAML: `HEADER`, then `verified_queries:` with every pair.
///
/// # Errors
/// Serialization failures.
fn to_yaml(pairs: &[VerifiedQuery]) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct File<'a> {
        verified_queries: &'a [VerifiedQuery],
    }
    let body = serde_yaml_ng::to_string(&File {
        verified_queries: pairs,
    })?;
    Ok(format!("{HEADER}{body}"))
}

/// `steward verified …`: exit 0.
///
/// # Errors
/// An invalid policy or verified-query file, an unreachable database, an
/// unwritable output.
pub async fn verified(settings: &Settings, action: VerifiedAction) -> anyhow::Result<ExitCode> {
    let VerifiedAction::Export { out, policies } = action;
    let dir = policies.unwrap_or_else(|| settings.policies.clone());
    let source = settings
        .semantic_source_in(&dir)
        .map_err(anyhow::Error::msg)?;
    let (policy, _) = crate::startup::load_policy_from(&dir, &source)?;
    let url = settings.warehouse.as_str();
    let dialect = if url.starts_with("postgres") {
        crate::sql::Dialect::Postgres
    } else if url.starts_with("snowflake") {
        crate::sql::Dialect::Snowflake
    } else {
        crate::sql::Dialect::Sqlite
    };
    let file = verified::load(&dir, &policy, dialect).map_err(anyhow::Error::msg)?;
    let db = SessionStore::connect(&settings.sessions)
        .await
        .context("opening steward's database (sessions.database)")?;
    let store = ReviewStore::new(db);
    let set = VerifiedSet::new(file);
    set.set_approved(store.max_version().await?, store.approved().await?);
    let mut pairs = set.all();
    // Oldest approvals first, after the file's pairs: a stable, reviewable diff.
    pairs.sort_by_key(|p| p.version.unwrap_or(0));
    let yaml = to_yaml(&pairs)?;
    match out {
        Some(path) => {
            let tmp = path.with_extension("yaml.tmp");
            std::fs::write(&tmp, &yaml).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} verified queries to {}",
                pairs.len(),
                path.display()
            );
        }
        None => std::io::stdout().write_all(yaml.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
