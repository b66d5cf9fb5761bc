//! The session store, against SQLite and the real PostgreSQL: creation,
//! lookup by token, idle and absolute expiry, every kind of revocation, CSRF
//! tokens, listing and purging, re-validation claims, the identity directory.

use steward::session::{Claim, DirectoryEntry, NewSession, SessionSettings, SessionStore};

use crate::helpers::with_postgres_database;

const IDLE: i64 = 600;
const LIFETIME: i64 = 3600;

fn settings(database: String) -> SessionSettings {
    SessionSettings {
        database,
        idle_timeout_secs: IDLE,
        absolute_lifetime_secs: LIFETIME,
    }
}

fn alice(sid: &str) -> NewSession {
    NewSession {
        user: "alice".into(),
        roles: vec!["analyst".into()],
        groups: vec!["data-analysts".into()],
        idp_sub: Some("sub-alice".into()),
        idp_sid: Some(sid.into()),
        ..NewSession::default()
    }
}

/// Whether `token` names a live session at `now`.
pub async fn live(store: &SessionStore, token: &str, now: i64) -> bool {
    store.authenticate(token, now).await.unwrap().is_some()
}

/// What every session database must do.
async fn store_contract(store: &SessionStore) {
    let t0 = 1_800_000_000;
    let a = store.create(alice("sid-1"), t0).await.unwrap();
    assert_ne!(a.token, a.csrf);
    let s = store
        .authenticate(&a.token, t0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.user.as_str(), s.roles.clone()),
        ("alice", vec!["analyst".to_owned()])
    );
    assert_eq!(s.groups, vec!["data-analysts"]);
    assert_eq!(s.last_seen_at, t0 + 10);

    // Unknown, tampered, empty and oversized tokens name nothing.
    for bad in ["", "nope", &a.token[1..], &"x".repeat(10_000)] {
        assert!(!live(store, bad, t0 + 11).await);
    }
    // CSRF tokens belong to their session.
    assert!(store.check_csrf(&a.session.id, &a.csrf).await.unwrap());
    assert!(!store.check_csrf(&a.session.id, &a.token).await.unwrap());
    assert!(!store.check_csrf(&a.session.id, "").await.unwrap());
    assert!(!store.check_csrf("no-such-id", &a.csrf).await.unwrap());

    // Idle timeout: used within the window it lives on; after a silence, it ends.
    let b = store.create(alice("sid-2"), t0).await.unwrap();
    assert!(live(store, &b.token, t0 + IDLE - 1).await);
    assert!(live(store, &b.token, t0 + 2 * IDLE - 2).await);
    assert!(!live(store, &b.token, t0 + 3 * IDLE).await);

    // Absolute lifetime: ends even when used all the time.
    let c = store.create(alice("sid-3"), t0).await.unwrap();
    let mut t = t0;
    while t < t0 + LIFETIME - 300 {
        t += 300;
        assert!(live(store, &c.token, t).await, "{t}");
    }
    assert!(!live(store, &c.token, t0 + LIFETIME).await);

    // Revocation by id, by identity-provider session, by subject, by user.
    let now = t0 + 20;
    assert!(store.revoke(&a.session.id, "logout", now).await.unwrap());
    assert!(!store.revoke(&a.session.id, "again", now).await.unwrap());
    assert!(!live(store, &a.token, now + 1).await);
    let d = store.create(alice("sid-4"), now).await.unwrap();
    let e = store.create(alice("sid-4"), now).await.unwrap();
    let f = store.create(alice("sid-5"), now).await.unwrap();
    assert_eq!(
        store
            .revoke_sid("sid-4", "back-channel logout", now)
            .await
            .unwrap(),
        2
    );
    assert!(!live(store, &d.token, now + 1).await);
    assert!(!live(store, &e.token, now + 1).await);
    assert!(live(store, &f.token, now + 1).await);
    // f, and the two expired sessions b and c (revoking an ended session is harmless).
    assert_eq!(
        store
            .revoke_sub("sub-alice", "back-channel logout", now)
            .await
            .unwrap(),
        3
    );
    assert!(!live(store, &f.token, now + 2).await);
    let mut bob = alice("sid-6");
    bob.user = "bob".into();
    bob.idp_sub = None;
    let g = store.create(bob.clone(), now).await.unwrap();
    let h = store.create(bob, now).await.unwrap();
    assert_eq!(
        store.revoke_user("bob", "admin revoke", now).await.unwrap(),
        2
    );
    assert!(!live(store, &g.token, now + 1).await);
    assert!(!live(store, &h.token, now + 1).await);

    // Listing: live ones, or all with why they ended.
    let live = store.create(alice("sid-7"), now).await.unwrap();
    let listed = store.list(false, now + 1).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![live.session.id.as_str()]
    );
    let all = store.list(true, now + 1).await.unwrap();
    assert_eq!(all.len(), 9);
    let revoked = all.iter().find(|s| s.id == a.session.id).unwrap();
    assert_eq!(revoked.revoked_reason.as_deref(), Some("logout"));

    // Purging removes long-ended sessions and keeps live ones.
    let purged = store.purge(0, t0 + 10 * LIFETIME).await.unwrap();
    assert_eq!(purged, 9);
    assert!(store.list(true, now).await.unwrap().is_empty());
}

/// Re-validation claims, sealed refresh tokens, the identity directory and
/// the shared seen-ids memory.
async fn revalidation_and_directory_contract(store: &SessionStore) {
    let t0 = 1_900_000_000;
    let a = store
        .create(
            NewSession {
                refresh_token: Some("rt-1".into()),
                email: Some("alice@example.com".into()),
                ..alice("sid-r")
            },
            t0,
        )
        .await
        .unwrap();
    assert_eq!(a.session.validated_at, t0);
    let s = store.authenticate(&a.token, t0 + 1).await.unwrap().unwrap();
    // The refresh token opens only with the cookie token; one claimant wins.
    assert_eq!(
        store.claim_refresh(&s, &a.csrf, t0 + 2).await.unwrap(),
        Claim::NoToken
    );
    let s = store.authenticate(&a.token, t0 + 3).await.unwrap().unwrap();
    assert_eq!(s.validated_at, t0 + 2);
    assert_eq!(
        store.claim_refresh(&s, &a.token, t0 + 4).await.unwrap(),
        Claim::Token("rt-1".into())
    );
    assert_eq!(
        store.claim_refresh(&s, &a.token, t0 + 4).await.unwrap(),
        Claim::Lost,
        "a second request with the old validated_at loses"
    );
    // A failed exchange gives the claim back.
    store.release_refresh(&s, t0 + 4).await.unwrap();
    let s = store.authenticate(&a.token, t0 + 5).await.unwrap().unwrap();
    assert_eq!(s.validated_at, t0 + 2);
    let Claim::Token(_) = store.claim_refresh(&s, &a.token, t0 + 6).await.unwrap() else {
        panic!("claim after release")
    };
    let updated = store
        .apply_refresh(&s, &a.token, vec!["admin".into()], vec![], Some("rt-2"))
        .await
        .unwrap();
    assert_eq!(updated.roles, vec!["admin"]);
    let s = store.authenticate(&a.token, t0 + 7).await.unwrap().unwrap();
    assert_eq!(
        (s.roles.clone(), s.validated_at),
        (vec!["admin".into()], t0 + 6)
    );
    assert_eq!(
        store.claim_refresh(&s, &a.token, t0 + 8).await.unwrap(),
        Claim::Token("rt-2".into()),
        "the rotated token replaced the old one"
    );

    // The directory: one subject per verified email, fresh enough, forgotten on revoke.
    let entry = DirectoryEntry {
        sub: "sub-alice".into(),
        email: "Alice@Example.com".into(),
        user: "alice".into(),
        roles: vec!["analyst".into()],
        groups: vec!["data-analysts".into()],
        updated_at: t0,
    };
    store.record_identity(&entry).await.unwrap();
    let found = store
        .identity_by_email(" ALICE@example.com", t0 - 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user.as_str(), found.roles.clone()),
        ("alice", vec!["analyst".into()])
    );
    assert_eq!(
        store
            .identity_by_email("alice@example.com", t0 + 1)
            .await
            .unwrap(),
        None,
        "stale"
    );
    store
        .record_identity(&DirectoryEntry {
            roles: vec!["admin".into()],
            updated_at: t0 + 5,
            ..entry.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .identity_by_email("alice@example.com", t0)
            .await
            .unwrap()
            .unwrap()
            .roles,
        vec!["admin"]
    );
    store
        .record_identity(&DirectoryEntry {
            sub: "sub-other".into(),
            user: "mallory".into(),
            ..entry.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .identity_by_email("alice@example.com", t0)
            .await
            .unwrap(),
        None,
        "ambiguous"
    );
    store.forget_identity("mallory").await.unwrap();
    assert!(
        store
            .identity_by_email("alice@example.com", t0)
            .await
            .unwrap()
            .is_some()
    );
    store
        .revoke_user("alice", "admin revoke", t0 + 9)
        .await
        .unwrap();
    assert_eq!(
        store
            .identity_by_email("alice@example.com", t0)
            .await
            .unwrap(),
        None
    );

    // Seen ids: first time only, within the window.
    assert!(
        store
            .first_seen("slack-event", "Ev1", t0, 600)
            .await
            .unwrap()
    );
    assert!(
        !store
            .first_seen("slack-event", "Ev1", t0 + 10, 600)
            .await
            .unwrap()
    );
    assert!(
        store
            .first_seen("other", "Ev1", t0 + 10, 600)
            .await
            .unwrap()
    );
    assert!(
        store
            .first_seen("slack-event", "Ev1", t0 + 700, 600)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn sqlite_session_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/steward.db").display()
    );
    let store = SessionStore::connect(&settings(url.clone())).await.unwrap();
    store_contract(&store).await;
    revalidation_and_directory_contract(&store).await;
    // Reconnecting runs the migrations again harmlessly and keeps data.
    let again = SessionStore::connect(&settings(url)).await.unwrap();
    let s = again.create(alice("x"), 1_800_000_000).await.unwrap();
    drop(again);
    let third = SessionStore::connect(&settings(format!(
        "sqlite://{}",
        dir.path().join("nested/steward.db").display()
    )))
    .await
    .unwrap();
    assert!(live(&third, &s.token, 1_800_000_001).await);
}

#[tokio::test]
async fn postgres_session_store_meets_the_contract() {
    with_postgres_database("steward_sessions", |url| async move {
        let store = SessionStore::connect(&settings(url)).await.unwrap();
        store_contract(&store).await;
        revalidation_and_directory_contract(&store).await;
    })
    .await;
}

#[tokio::test]
async fn the_sessions_command_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = SessionStore::connect(&settings(url.clone())).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let a = store.create(alice("s1"), now).await.unwrap();
    let b = store.create(alice("s2"), now).await.unwrap();
    let mut carol = alice("s3");
    carol.user = "carol".into();
    let c = store.create(carol, now).await.unwrap();
    let cli = |args: &[&str]| {
        crate::helpers::steward_command()
            .env("STEWARD_SESSIONS__DATABASE", &url)
            .args(args)
            .output()
            .unwrap()
    };
    let listed = cli(&["sessions", "list", "--json"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&a.token),
        "tokens are never shown"
    );

    let one = cli(&[
        "sessions",
        "revoke",
        &a.session.id,
        "--reason",
        "lost laptop",
    ]);
    assert_eq!(one.status.code(), Some(0));
    assert!(!live(&store, &a.token, now + 1).await);
    assert!(live(&store, &b.token, now + 1).await);
    let again = cli(&["sessions", "revoke", &a.session.id]);
    assert_eq!(again.status.code(), Some(1), "nothing left to revoke");
    let user = cli(&["sessions", "revoke", "--user", "carol"]);
    assert!(String::from_utf8_lossy(&user.stdout).contains("revoked 1"));
    assert!(!live(&store, &c.token, now + 1).await);
    let neither = cli(&["sessions", "revoke"]);
    assert_eq!(neither.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&neither.stderr).contains("session id"));
    let text = cli(&["sessions", "list", "--all"]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("revoked") && out.contains("lost laptop"),
        "{out}"
    );
    let bad = crate::helpers::steward_command()
        .env("STEWARD_SESSIONS__DATABASE", "mysql://nope")
        .args(["sessions", "list"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sqlite://PATH or postgres"));
}

#[tokio::test]
async fn the_admin_api_lists_and_revokes_sessions() {
    let mut s = crate::helpers::demo_settings();
    let db = crate::helpers::fresh_index_dir().join("admin-sessions.db");
    s.sessions.database = format!("sqlite://{}", db.display());
    let store = SessionStore::connect(&s.sessions).await.unwrap();
    let app = crate::helpers::spawn(s).await;
    let now = chrono::Utc::now().timestamp();
    let a = store.create(alice("s1"), now).await.unwrap();
    let b = store.create(alice("s2"), now).await.unwrap();

    let post = |user: Option<&'static str>, body: String| {
        let mut req = app
            .client
            .post(format!("{}/api/admin/sessions/revoke", app.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(u) = user {
            req = req.header("x-steward-dev-user", u);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    assert_eq!(app.get(None, "/api/admin/sessions").await.0, 401);
    assert_eq!(app.get(Some("alice"), "/api/admin/sessions").await.0, 403);
    let revoke_a = serde_json::json!({"id": a.session.id}).to_string();
    assert_eq!(post(Some("alice"), revoke_a.clone()).await.0, 403);
    assert_eq!(post(None, revoke_a.clone()).await.0, 401);

    let (status, listed) = app.get(Some("bob"), "/api/admin/sessions").await;
    assert_eq!(status, 200);
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&a.token),
        "tokens are never listed"
    );
    assert_eq!(
        app.get(Some("bob"), "/api/admin/sessions?all=maybe")
            .await
            .0,
        400
    );

    let (status, done) = post(Some("bob"), revoke_a.clone()).await;
    assert_eq!((status, done["revoked"].as_u64()), (200, Some(1)));
    assert!(!live(&store, &a.token, now + 1).await);
    assert!(live(&store, &b.token, now + 1).await);
    assert_eq!(post(Some("bob"), revoke_a).await.0, 404, "already ended");
    for bad in [
        "{}".to_owned(),
        serde_json::json!({"id": "x", "user": "alice"}).to_string(),
        serde_json::json!({"id": "x", "why": "no"}).to_string(),
        serde_json::json!({"user": "alice", "reason": "r".repeat(201)}).to_string(),
        "not json".to_owned(),
    ] {
        let (status, body) = post(Some("bob"), bad.clone()).await;
        assert_eq!(status, 400, "{bad:.40}: {body}");
    }
    let (status, done) = post(
        Some("bob"),
        serde_json::json!({"user": "alice", "reason": "offboarding"}).to_string(),
    )
    .await;
    assert_eq!((status, done["revoked"].as_u64()), (200, Some(1)));
    let (_, all) = app.get(Some("bob"), "/api/admin/sessions?all=true").await;
    assert!(all.to_string().contains("offboarding"));
}
