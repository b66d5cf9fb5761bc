//! Server-side sessions, stored in SQLite (embedded) or PostgreSQL
//! (production), so that ending one takes effect on the next request on every
//! instance.
//!
//! A session is created at sign-in and named by a random 256-bit token that
//! only the client holds (in a cookie); the database keeps the token's
//! SHA-256, so a leaked database does not yield usable cookies. Each session
//! also has a public id (for admins to list and revoke) and a CSRF token
//! (stored hashed) that state-changing requests must echo. A session ends when
//! it is revoked (logout, admin, back-channel logout by `sid` or `sub`), after
//! `idle_timeout_secs` without use, or `absolute_lifetime_secs` after sign-in,
//! whichever comes first. Schema: `migrations/{sqlite,postgres}/`, applied at
//! connect with sqlx's migrator.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// `[sessions]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub database: String,
    /// A session unused this long ends (seconds).
    pub idle_timeout_secs: i64,
    /// A session ends this long after sign-in, used or not (seconds).
    pub absolute_lifetime_secs: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            database: "sqlite://.steward/steward.db".into(),
            idle_timeout_secs: 30 * 60,
            absolute_lifetime_secs: 12 * 60 * 60,
        }
    }
}

/// Failures of the session store (messages carry no tokens).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The database URL is not SQLite or PostgreSQL.
    #[error("sessions.database must be sqlite://PATH or postgres://…, not {0:?}")]
    BadUrl(String),
    /// The database failed.
    #[error("session store: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema failed.
    #[error("session store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Who a session belongs to, as recorded at sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewSession {
    /// User id.
    pub user: String,
    /// Roles at sign-in.
    pub roles: Vec<String>,
    /// Other groups at sign-in.
    pub groups: Vec<String>,
    /// OpenID Connect subject.
    pub idp_sub: Option<String>,
    /// OpenID Connect session id.
    pub idp_sid: Option<String>,
    /// Verified email, from the ID token.
    pub email: Option<String>,
    /// The provider's refresh token, kept sealed under the cookie token so
    /// roles can be re-validated ([`crate::auth::revalidate`]).
    pub refresh_token: Option<String>,
    /// When the user authenticated (Unix seconds; the ID token's `auth_time`),
    /// if earlier than the session's creation.
    pub auth_time: Option<i64>,
}

/// A stored session (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Public id.
    pub id: String,
    /// User id.
    pub user: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Other groups.
    pub groups: Vec<String>,
    /// OpenID Connect subject.
    pub idp_sub: Option<String>,
    /// OpenID Connect session id.
    pub idp_sid: Option<String>,
    /// Verified email, from the ID token.
    pub email: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: when the provider last confirmed the roles (sign-in or refresh).
    pub validated_at: i64,
    /// Unix seconds: when the user last authenticated (entered credentials).
    pub auth_time: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
    /// Unix seconds (absolute end).
    pub expires_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

/// A new session and the secrets only its client receives.
#[derive(Debug)]
pub struct Issued {
    /// The stored session.
    pub session: Session,
    /// The cookie value (256 random bits, base64url).
    pub token: String,
    /// The CSRF token to echo on state-changing requests.
    pub csrf: String,
}

/// The session database.
#[derive(Clone)]
pub struct SessionStore {
    pool: AnyPool,
    postgres: bool,
    settings: SessionSettings,
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

const COLUMNS: &str = "id, user_id, roles, groups, idp_sub, idp_sid, email, created_at, validated_at, auth_time, last_seen_at, expires_at, revoked_at, revoked_reason";

/// A list of names as stored: a JSON array.
fn names_json(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_else(|_| "[]".into())
}

/// A stored JSON array of names (unreadable: empty).
fn names_of(row: &AnyRow, col: &str) -> Result<Vec<String>, sqlx::Error> {
    let text: String = row.try_get(col)?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

fn session_of(row: &AnyRow) -> Result<Session, sqlx::Error> {
    let list = |col: &str| names_of(row, col);
    Ok(Session {
        id: row.try_get("id")?,
        user: row.try_get("user_id")?,
        roles: list("roles")?,
        groups: list("groups")?,
        idp_sub: row.try_get("idp_sub")?,
        idp_sid: row.try_get("idp_sid")?,
        email: row.try_get("email")?,
        created_at: row.try_get("created_at")?,
        validated_at: row
            .try_get::<Option<i64>, _>("validated_at")?
            .unwrap_or(row.try_get("created_at")?),
        auth_time: row
            .try_get::<Option<i64>, _>("auth_time")?
            .unwrap_or(row.try_get("created_at")?),
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_reason: row.try_get("revoked_reason")?,
    })
}

impl SessionStore {
    /// Connects (creating a SQLite file if missing) and applies migrations.
    ///
    /// # Errors
    /// [`SessionError`] for a bad URL, an unreachable database or a failed migration.
    pub async fn connect(settings: &SessionSettings) -> Result<SessionStore, SessionError> {
        sqlx::any::install_default_drivers();
        let url = settings.database.as_str();
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let options = if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(dir);
            }
            AnyConnectOptions::from_str(&format!("sqlite://{path}?mode=rwc"))?
        } else if postgres {
            AnyConnectOptions::from_str(url)?
        } else {
            return Err(SessionError::BadUrl(url.to_owned()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if postgres { 8 } else { 1 })
            .connect_with(options)
            .await?;
        if !postgres {
            // Write-ahead logging: a commit is one append and one flush of
            // the log (synchronous stays FULL, so a committed audit event
            // survives power loss), and readers do not wait for writers
            // (<https://sqlite.org/wal.html>). The mode is stored in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        if postgres {
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
        } else {
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        }
        Ok(SessionStore {
            pool,
            postgres,
            settings: settings.clone(),
        })
    }

    /// Whether steward's database answers (`SELECT 1`).
    ///
    /// # Errors
    /// The database's error.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }

    /// The connection pool (the audit trail shares the database; tests use
    /// it to tamper with stored rows).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database is PostgreSQL (else SQLite).
    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Begins a transaction that no other transaction begun here for the
    /// same `key` overlaps, on every instance sharing the database: a
    /// transaction-scoped advisory lock on the key's hash on PostgreSQL
    /// (the two-key form, apart from the audit chain's lock), SQLite's write
    /// lock (`BEGIN IMMEDIATE`) otherwise. A count and the insert it limits
    /// run in one such transaction are atomic; dropping it rolls back.
    ///
    /// # Errors
    /// Database failures (SQLite's busy timeout included).
    pub(crate) async fn begin_serialized(
        &self,
        key: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        if self.postgres {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('steward.limits'), hashtext($1))")
                .bind(key)
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        } else {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        }
    }

    /// `$n` placeholders as the connected database spells them. Every
    /// statement here is a constant with bound parameters; only the
    /// placeholder sign and a fixed column name vary.
    pub(crate) fn sql(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(if self.postgres {
            sql.to_owned()
        } else {
            sql.replace('$', "?")
        })
    }

    /// Starts a session at `now` (Unix seconds).
    ///
    /// # Errors
    /// Database failures.
    pub async fn create(&self, new: NewSession, now: i64) -> Result<Issued, SessionError> {
        let token = random_token();
        let csrf = random_token();
        let id = hex::encode(rand::rng().random::<[u8; 12]>());
        let expires_at = now + self.settings.absolute_lifetime_secs;
        let auth_time = new.auth_time.unwrap_or(now).min(now);
        let roles = names_json(&new.roles);
        let groups = names_json(&new.groups);
        let sealed = new
            .refresh_token
            .as_deref()
            .and_then(|r| seal::seal(&token, &id, r));
        sqlx::query(self.sql(
            "INSERT INTO sessions (id, token_hash, csrf_hash, user_id, roles, groups, idp_sub, idp_sid, created_at, last_seen_at, expires_at, validated_at, refresh_token, email, auth_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        ))
        .bind(&id)
        .bind(digest(&token))
        .bind(digest(&csrf))
        .bind(&new.user)
        .bind(&roles)
        .bind(&groups)
        .bind(new.idp_sub.clone())
        .bind(new.idp_sid.clone())
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .bind(now)
        .bind(sealed)
        .bind(new.email.clone())
        .bind(auth_time)
        .execute(&self.pool)
        .await?;
        Ok(Issued {
            session: Session {
                id,
                user: new.user,
                roles: new.roles,
                groups: new.groups,
                idp_sub: new.idp_sub,
                idp_sid: new.idp_sid,
                email: new.email,
                created_at: now,
                validated_at: now,
                auth_time,
                last_seen_at: now,
                expires_at,
                revoked_at: None,
                revoked_reason: None,
            },
            token,
            csrf,
        })
    }

    /// The live session a cookie token names, marking it used at `now`; `None`
    /// for unknown, revoked, idle-expired or absolutely expired sessions.
    ///
    /// # Errors
    /// Database failures.
    pub async fn authenticate(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Session>, SessionError> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let row = sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE token_hash = $1"
        )))
        .bind(digest(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let session = session_of(&row)?;
        if !self.is_live(&session, now) {
            return Ok(None);
        }
        // Only extend while still live: the same predicates in the UPDATE make
        // a concurrent revoke win.
        let touched = sqlx::query(self.sql(
            "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND revoked_at IS NULL AND last_seen_at >= $3 AND expires_at > $4",
        ))
        .bind(now)
        .bind(&session.id)
        .bind(now - self.settings.idle_timeout_secs)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((touched.rows_affected() == 1).then_some(Session {
            last_seen_at: now,
            ..session
        }))
    }

    fn is_live(&self, s: &Session, now: i64) -> bool {
        s.revoked_at.is_none()
            && now < s.expires_at
            && now - s.last_seen_at <= self.settings.idle_timeout_secs
    }

    /// Whether `csrf` is the CSRF token of session `id` (compared as hashes).
    ///
    /// # Errors
    /// Database failures.
    pub async fn check_csrf(&self, id: &str, csrf: &str) -> Result<bool, SessionError> {
        let row = sqlx::query(self.sql("SELECT csrf_hash FROM sessions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let stored: String = row.try_get("csrf_hash")?;
        Ok(!csrf.is_empty() && constant_time_eq(stored.as_bytes(), digest(csrf).as_bytes()))
    }

    /// Sessions, newest first: live ones only, or all (`include_ended`).
    ///
    /// # Errors
    /// Database failures.
    pub async fn list(&self, include_ended: bool, now: i64) -> Result<Vec<Session>, SessionError> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT {COLUMNS} FROM sessions ORDER BY created_at DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let s = session_of(row)?;
            if include_ended || self.is_live(&s, now) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Deletes sessions that ended more than `keep_secs` ago. Returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn purge(&self, keep_secs: i64, now: i64) -> Result<u64, SessionError> {
        let cutoff = now - keep_secs;
        let done = sqlx::query(self.sql(
            "DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2 OR (revoked_at IS NOT NULL AND revoked_at < $3)",
        ))
        .bind(cutoff)
        .bind(cutoff - self.settings.idle_timeout_secs)
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        sqlx::query(self.sql("DELETE FROM login_attempts WHERE created_at < $1"))
            .bind(now - LOGIN_ATTEMPT_SECS)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Equality that takes the same time wherever the inputs differ (`subtle`).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

mod directory;
mod history;
mod login;
mod refresh;
mod revoke;
mod seal;

pub use directory::DirectoryEntry;
pub use history::{Asked, MAX_HISTORY};
pub use login::{LOGIN_ATTEMPT_SECS, LoginAttempt};
pub use refresh::Claim;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_stored_only_as_digests() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
        assert_eq!(digest(&a).len(), 64);
        assert!(constant_time_eq(
            digest(&a).as_bytes(),
            digest(&a).as_bytes()
        ));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }

    #[tokio::test]
    async fn only_sqlite_and_postgres_urls_are_accepted() {
        let bad = SessionSettings {
            database: "mysql://x".into(),
            ..SessionSettings::default()
        };
        assert!(matches!(
            SessionStore::connect(&bad).await,
            Err(SessionError::BadUrl(_))
        ));
    }
}
