//! Keeping a session's roles true to the identity provider.
//!
//! A session signed in through SSO is re-validated once its roles are older
//! than `auth.oidc.revalidate_after_secs` (default 300): one request (on any
//! instance; [`SessionStore::claim_refresh`] decides which) redeems the
//! session's refresh token, reads the groups from the refreshed ID token and
//! maps them again (`policies/identity.yaml`). Outcomes:
//!
//! - same or changed roles → the session carries them from this request on;
//! - no role any more, or the provider refuses the refresh (grant revoked,
//!   user disabled) → the session is revoked;
//! - the provider cannot be reached → the current roles are used while they
//!   are younger than three periods, after which requests get 503 until the
//!   provider answers (fail closed, never stale forever).
//!
//! Sessions without a refresh token keep the roles of sign-in until they end.

use super::identity_map::IdentityMap;
use super::sso::{Sso, SsoError};
use crate::session::{Claim, DirectoryEntry, Session, SessionError, SessionStore};

/// What a request may go on with.
#[derive(Debug)]
pub enum Revalidated {
    /// The session, with current roles.
    Current(Box<Session>),
    /// The session was ended; the text says why (for the user).
    Ended(&'static str),
    /// The roles are too old to use and the provider cannot confirm them.
    Unavailable,
}

/// Re-validates `session` (named by `cookie_token`) at `now` if it is due.
///
/// # Errors
/// Session store failures.
pub async fn revalidate(
    store: &SessionStore,
    sso: &Sso,
    identity: &IdentityMap,
    session: Session,
    cookie_token: &str,
    now: i64,
) -> Result<Revalidated, SessionError> {
    let period = sso.revalidate_after_secs();
    let Some(sub) = session.idp_sub.clone() else {
        return Ok(Revalidated::Current(Box::new(session)));
    };
    if now - session.validated_at < period {
        return Ok(Revalidated::Current(Box::new(session)));
    }
    let refresh_token = match store.claim_refresh(&session, cookie_token, now).await? {
        Claim::Token(t) => t,
        Claim::Lost | Claim::NoToken => return Ok(Revalidated::Current(Box::new(session))),
    };
    match sso.refresh(&refresh_token, &sub).await {
        Ok(refreshed) => {
            let Some(principal) = identity.user(&sub, &refreshed.groups) else {
                store
                    .revoke(&session.id, "no steward role after re-validation", now)
                    .await?;
                store.forget_identity(&sub).await?;
                tracing::info!(session = %session.id, "re-validation: no role any more; session ended");
                return Ok(Revalidated::Ended(
                    "your access changed at the identity provider; sign in again",
                ));
            };
            let updated = store
                .apply_refresh(
                    &session,
                    cookie_token,
                    principal.roles.clone(),
                    principal.groups.clone(),
                    refreshed.refresh_token.as_deref(),
                )
                .await?;
            if let Some(email) = refreshed.email {
                store
                    .record_identity(&DirectoryEntry {
                        sub,
                        email,
                        user: principal.user,
                        roles: principal.roles,
                        groups: principal.groups,
                        updated_at: now,
                    })
                    .await?;
            }
            if updated.roles != session.roles {
                tracing::info!(session = %session.id, roles = ?updated.roles, "re-validation: roles changed");
            }
            Ok(Revalidated::Current(Box::new(updated)))
        }
        Err(SsoError::Rejected(why)) => {
            store
                .revoke(&session.id, "the identity provider ended the sign-in", now)
                .await?;
            tracing::info!(session = %session.id, %why, "re-validation refused; session ended");
            Ok(Revalidated::Ended(
                "the identity provider ended your sign-in; sign in again",
            ))
        }
        Err(e) => {
            store.release_refresh(&session, now).await?;
            tracing::warn!(session = %session.id, error = %e, "re-validation failed; will retry");
            if now - session.validated_at > 3 * period {
                Ok(Revalidated::Unavailable)
            } else {
                Ok(Revalidated::Current(Box::new(session)))
            }
        }
    }
}
