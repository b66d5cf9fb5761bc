//! `steward audit list|show|verify|purge|rerun`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::audit::{AuditEvent, AuditLog, Channel, Filter};
use crate::cli::AuditAction;
use crate::http::parse_time;
use crate::session::SessionStore;
use crate::settings::Settings;

use super::utc_ms as when;

fn line(e: &AuditEvent) -> String {
    let what = match (&e.question, &e.sql, &e.purpose) {
        (Some(q), _, _) => q.clone(),
        (None, Some(sql), _) => sql.chars().take(100).collect(),
        (None, None, Some(p)) => p.clone(),
        _ => String::new(),
    };
    format!(
        "{}  {}  {:<9} {:<8} {:<9} {:<8} {}",
        e.id,
        when(e.at_ms),
        e.kind.as_str(),
        e.principal,
        e.outcome,
        e.channel.as_str(),
        what
    )
}

async fn open(settings: &Settings) -> anyhow::Result<AuditLog> {
    let db = SessionStore::connect(&settings.sessions)
        .await
        .context("opening steward's database (sessions.database)")?;
    Ok(AuditLog::new(db, &settings.audit)?)
}

/// `steward audit …`: exit 0; 1 for a broken chain or an unknown id; 4
/// for a refused re-run.
///
/// # Errors
/// An unreachable database, a bad time, an unreadable token file.
pub async fn audit(settings: &Settings, action: AuditAction) -> anyhow::Result<ExitCode> {
    match action {
        AuditAction::List {
            user,
            since,
            until,
            table,
            outcome,
            kind,
            limit,
            json,
        } => {
            let time = |v: Option<String>| -> anyhow::Result<Option<i64>> {
                v.map(|s| {
                    parse_time(&s)
                        .with_context(|| format!("{s:?} is not an RFC 3339 time or YYYY-MM-DD"))
                })
                .transpose()
            };
            let filter = Filter {
                user,
                since_ms: time(since)?,
                until_ms: time(until)?,
                table,
                outcome,
                kind,
                limit: Some(limit),
            };
            let events = open(settings).await?.list(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&events)?);
            } else if events.is_empty() {
                println!("no audit events");
            }
            if !json {
                for e in &events {
                    println!("{}", line(e));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Show { id } => {
            let log = open(settings).await?;
            let Some(event) = log.get(id.trim()).await? else {
                eprintln!("error: no audit event has id {id:?}");
                return Ok(ExitCode::from(1));
            };
            let children = log.children(&event.id).await?;
            let out = serde_json::json!({ "event": event, "children": children });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Verify { json } => {
            let report = open(settings).await?.verify().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.problems.is_empty() {
                println!(
                    "audit trail intact: {} events (seq {}..{}), head {}",
                    report.events,
                    report.first_seq.unwrap_or(0),
                    report.last_seq.unwrap_or(0),
                    report.head
                );
            } else {
                println!("audit trail BROKEN ({} events checked):", report.events);
                for p in &report.problems {
                    println!("  {p}");
                }
            }
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditAction::Purge => {
            let event = open(settings)
                .await?
                .purge(chrono::Utc::now().timestamp_millis())
                .await?;
            println!(
                "purged {} event(s) older than {} days (purge event {})",
                event.rows.unwrap_or(0),
                settings.audit.retention_days,
                event.id
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Rerun {
            id,
            reason,
            token_file,
            json,
        } => rerun(settings, &id, &reason, &token_file, json).await,
    }
}

fn refuse(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(4))
}

async fn rerun(
    settings: &Settings,
    id: &str,
    reason: &str,
    token_file: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reason = reason.trim();
    if !(3..=500).contains(&reason.chars().count()) {
        return refuse("say why you re-run this query (--reason, 3-500 characters)");
    }
    let mut token = String::new();
    if token_file.as_os_str() == "-" {
        std::io::stdin()
            .take(16 * 1024)
            .read_to_string(&mut token)?;
    } else {
        token = std::fs::read_to_string(token_file)
            .with_context(|| format!("reading {}", token_file.display()))?;
    }
    let Some(oidc) = settings.auth.oidc.clone() else {
        bail!("re-runs from the command line need an identity provider (auth.oidc)");
    };
    let provider = crate::auth::oidc::Provider::new(oidc);
    let Ok(crate::auth::access_token::Bearer::User {
        sub,
        groups,
        auth_time,
    }) = provider.bearer(token.trim()).await
    else {
        return refuse("the access token is not a valid user token from the identity provider");
    };
    let orchestrator = crate::startup::build_orchestrator(settings).await?;
    let identity =
        crate::auth::identity_map::IdentityMap::load(&settings.policies, &orchestrator.policy)
            .map_err(anyhow::Error::msg)?;
    let Some(admin) = identity.user(&sub, &groups) else {
        return refuse("this identity maps to no steward role");
    };
    let grants = orchestrator.policy.grants(&admin);
    if !grants.can(crate::policy::Capability::Admin) {
        return refuse("re-running a query needs the admin role");
    }
    let max_age = settings.audit.rerun_login_max_age_secs;
    let now = chrono::Utc::now().timestamp();
    if auth_time.is_none_or(|at| now - at > max_age) {
        return refuse(&format!(
            "re-running a query needs a sign-in within the last {} minutes (the token's auth_time); sign in again",
            max_age / 60
        ));
    }
    match orchestrator
        .rerun(&admin, Channel::Cli, id.trim(), reason)
        .await
    {
        Ok(result) if json => {
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(ExitCode::SUCCESS)
        }
        Ok(result) => {
            println!("re-run {} of {}", result.rerun_id, result.original_id);
            println!("{}", result.columns.join("\t"));
            for row in &result.rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                println!("{}", cells.join("\t"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ crate::orchestrator::rerun::RerunError::NotFound) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => refuse(&e.to_string()),
    }
}
