//! OpenID Connect Back-Channel Logout at `/auth/backchannel-logout`: with the
//! real test provider ending a user's session at the provider, and with
//! tokens signed here (a test key served as a stand-in provider's JWKS) for
//! the rules a real provider never breaks: replays, forgeries, bad input.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use steward::auth::logout_token::BACKCHANNEL_LOGOUT_EVENT;
use steward::auth::oidc::OidcSettings;
use steward::session::{NewSession, SessionStore};

use crate::helpers::{TestApp, demo_settings, fresh_index_dir, root, spawn};
use crate::oidc_provider::{
    OidcProvider, begin_login, browserless, claims, exchange_code, finish_login, free_port, pkce,
};
use crate::sessions::live;

/// An app whose OpenID Provider is `issuer`, and its session store.
pub async fn app_with(issuer: &str) -> (TestApp, SessionStore) {
    let mut s = demo_settings();
    s.sessions.database = format!(
        "sqlite://{}",
        fresh_index_dir().join("sessions.db").display()
    );
    s.auth.oidc = Some(OidcSettings::new(issuer, "steward"));
    let store = SessionStore::connect(&s.sessions).await.unwrap();
    (spawn(s).await, store)
}

fn session(user: &str, sub: &str, sid: &str) -> NewSession {
    NewSession {
        user: user.into(),
        roles: vec!["analyst".into()],
        groups: vec![],
        idp_sub: Some(sub.into()),
        idp_sid: Some(sid.into()),
        ..NewSession::default()
    }
}

async fn post_logout(app: &TestApp, body: &str) -> (u16, String, Option<String>) {
    let r = app
        .client
        .post(format!("{}/auth/backchannel-logout", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), cache)
}

#[tokio::test]
async fn signing_out_at_the_provider_ends_steward_sessions_at_once() {
    let idp_port = free_port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let (app, store) = app_with(&issuer).await;
    let clients = json!([{
        "client_id": "steward",
        "client_secret": "steward-test-secret",
        "redirect_uris": [format!("{}/auth/callback", app.base)],
        "post_logout_redirect_uris": [format!("{}/", app.base)],
        "backchannel_logout_uri": format!("{}/auth/backchannel-logout", app.base),
        "backchannel_logout_session_required": true,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "openid email profile groups api"
    }])
    .to_string();
    let Some(idp) = OidcProvider::start("signing_out_at_the_provider", Some(&clients), idp_port)
    else {
        return;
    };
    // Alice signs in at the provider (as steward's callback will); steward
    // holds a session started in that provider session, and two others.
    let http = browserless();
    let redirect = format!("{}/auth/callback", app.base);
    let (verifier, challenge) = pkce();
    let interaction = begin_login(&http, &idp, &redirect, &challenge, "s1").await;
    let callback = finish_login(&http, &idp, &interaction, "alice", "alice-pw").await;
    let tokens = exchange_code(&http, &idp, &callback, &redirect, &verifier).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let id = claims(&id_token);
    let sid = id["sid"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let here = store
        .create(session("alice", "alice", sid), now)
        .await
        .unwrap();
    let elsewhere = store
        .create(session("alice", "alice", "another-sid"), now)
        .await
        .unwrap();
    let bob = store
        .create(session("bob", "bob", "bob-sid"), now)
        .await
        .unwrap();

    // An ID token is not a logout token (typ, nonce, no events).
    let (status, body, cache) = post_logout(&app, &format!("logout_token={id_token}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));

    // RP-initiated logout at the provider: it confirms, then POSTs a logout
    // token to steward's back-channel endpoint before redirecting.
    let page = http
        .get(format!("{issuer}/session/end"))
        .query(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", &format!("{}/", app.base)),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let xsrf = regex::Regex::new(r#"name="xsrf" value="([^"]+)""#)
        .unwrap()
        .captures(&page)
        .unwrap_or_else(|| panic!("no logout form: {page}"))[1]
        .to_owned();
    let confirm = http
        .post(format!("{issuer}/session/end/confirm"))
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 303);
    let ended = |token: String| {
        let store = store.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let now = chrono::Utc::now().timestamp();
                if !live(&store, &token, now).await {
                    return true;
                }
                if std::time::Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        ended(here.token.clone()).await,
        "the session started at the provider ended"
    );
    let now = chrono::Utc::now().timestamp();
    assert!(live(&store, &elsewhere.token, now).await);
    assert!(live(&store, &bob.token, now).await);
    let all = store.list(true, now).await.unwrap();
    let revoked = all.iter().find(|s| s.id == here.session.id).unwrap();
    assert_eq!(
        revoked.revoked_reason.as_deref(),
        Some("back-channel logout")
    );
}

/// Serves a discovery document and the test key's JWKS, as a stand-in
/// provider whose tokens the test signs itself.
async fn stand_in_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/keys/test-ec-p256.jwks.json"))
            .unwrap(),
    )
    .unwrap();
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let d = discovery.clone();
                async move { axum::Json(d) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let k = jwks.clone();
                async move { axum::Json(k) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    issuer
}

fn signed(claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("logout+jwt".into());
    header.kid = Some("k1".into());
    let key = std::fs::read(root().join("tests/fixtures/keys/test-ec-p256.pem")).unwrap();
    encode(&header, claims, &EncodingKey::from_ec_pem(&key).unwrap()).unwrap()
}

#[tokio::test]
async fn replays_forgeries_and_bad_input_are_refused() {
    let issuer = stand_in_provider().await;
    let (app, store) = app_with(&issuer).await;
    let now = chrono::Utc::now().timestamp();
    let a = store
        .create(session("alice", "alice", "sid-a"), now)
        .await
        .unwrap();
    let b = store
        .create(session("alice", "alice", "sid-b"), now)
        .await
        .unwrap();
    let c = store
        .create(session("carol", "carol", "sid-c"), now)
        .await
        .unwrap();
    let token = |jti: &str, sid: Option<&str>, sub: &str| {
        let mut c = json!({
            "iss": issuer, "aud": "steward", "iat": now, "jti": jti, "sub": sub,
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}}
        });
        if let Some(sid) = sid {
            c["sid"] = json!(sid);
        }
        signed(&c)
    };

    // By sub alone: every session of the subject ends.
    let by_sub = token("j1", None, "alice");
    let (status, body, cache) = post_logout(&app, &format!("logout_token={by_sub}")).await;
    assert_eq!(
        (status, cache.as_deref()),
        (200, Some("no-store")),
        "{body}"
    );
    assert!(!live(&store, &a.token, now + 1).await);
    assert!(!live(&store, &b.token, now + 1).await);
    assert!(live(&store, &c.token, now + 1).await);
    // The same token again is a replay.
    let (status, body, _) = post_logout(&app, &format!("logout_token={by_sub}")).await;
    assert_eq!(status, 400);
    assert!(body.contains("already used"), "{body}");

    let forged_none = {
        let parts: Vec<String> = token("j2", Some("sid-c"), "carol")
            .split('.')
            .map(str::to_owned)
            .collect();
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"none","typ":"logout+jwt"}"#);
        format!("{header}.{}.", parts[1])
    };
    let mut with_nonce = json!({
        "iss": issuer, "aud": "steward", "iat": now, "jti": "j3", "sid": "sid-c",
        "nonce": "n", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}
    });
    let nonce = signed(&with_nonce);
    with_nonce["aud"] = json!("another-client");
    with_nonce.as_object_mut().unwrap().remove("nonce");
    let wrong_aud = signed(&with_nonce);
    for (name, body) in [
        ("alg none", format!("logout_token={forged_none}")),
        ("nonce", format!("logout_token={nonce}")),
        ("wrong audience", format!("logout_token={wrong_aud}")),
        ("garbage", "logout_token=not.a.jwt".to_owned()),
        ("missing field", "token=x".to_owned()),
        ("empty", String::new()),
        ("oversized", format!("logout_token={}", "a".repeat(20_000))),
    ] {
        let (status, text, cache) = post_logout(&app, &body).await;
        assert_eq!(status, 400, "{name}: {text}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{name}");
    }
    assert!(live(&store, &c.token, now + 1).await);

    // Without a configured provider the endpoint does not exist.
    let plain = spawn(demo_settings()).await;
    assert_eq!(
        post_logout(&plain, &format!("logout_token={by_sub}"))
            .await
            .0,
        404
    );
}
