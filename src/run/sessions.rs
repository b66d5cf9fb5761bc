//! `steward sessions list|revoke`.

use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::SessionsAction;
use crate::session::SessionStore;
use crate::settings::Settings;

fn when(unix: i64) -> String {
    super::utc_ms(unix.saturating_mul(1000))
}

/// `steward sessions …`: exit 0, or 1 when there was nothing to revoke.
///
/// # Errors
/// An unreachable session database; `revoke` without an id or `--user`.
pub async fn sessions(settings: &Settings, action: SessionsAction) -> anyhow::Result<ExitCode> {
    let store = SessionStore::connect(&settings.sessions)
        .await
        .context("opening the session database")?;
    let now = chrono::Utc::now().timestamp();
    match action {
        SessionsAction::List { all, json } => {
            let sessions = store.list(all, now).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sessions)?);
                return Ok(ExitCode::SUCCESS);
            }
            if sessions.is_empty() {
                println!("no sessions");
            }
            for s in &sessions {
                let state = match (&s.revoked_at, &s.revoked_reason) {
                    (Some(t), reason) => format!(
                        "revoked {} ({})",
                        when(*t),
                        reason.as_deref().unwrap_or("no reason")
                    ),
                    (None, _) if s.expires_at <= now => "expired".to_owned(),
                    (None, _) if now - s.last_seen_at > settings.sessions.idle_timeout_secs => {
                        "idle timeout".to_owned()
                    }
                    _ => format!("live until {}", when(s.expires_at)),
                };
                println!(
                    "{}  {}  roles {}  signed in {}  last seen {}  {state}",
                    s.id,
                    s.user,
                    s.roles.join(","),
                    when(s.created_at),
                    when(s.last_seen_at)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SessionsAction::Revoke { id, user, reason } => {
            let n = match (id, user) {
                (Some(id), None) => u64::from(store.revoke(&id, &reason, now).await?),
                (None, Some(user)) => store.revoke_user(&user, &reason, now).await?,
                _ => bail!("name a session id, or --user USER"),
            };
            println!("revoked {n} session(s)");
            Ok(if n == 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
