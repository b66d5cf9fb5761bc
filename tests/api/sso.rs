//! Web sign-in through the real test provider: code flow with PKCE, the
//! session cookie and CSRF token, logout, and the ways a sign-in can fail.

use steward::auth::oidc::OidcSettings;

use crate::helpers::{TestApp, demo_settings, spawn};
use crate::oidc_provider::{OidcProvider, browserless, finish_login, free_port, public_client};

struct Setup {
    app: TestApp,
    idp: OidcProvider,
    base: String,
    sessions: steward::session::SessionSettings,
}

async fn setup(test: &str) -> Option<Setup> {
    setup_with(test, 300, |_| {}).await
}

async fn setup_with(
    test: &str,
    revalidate_after_secs: i64,
    tweak: impl FnOnce(&mut steward::settings::Settings),
) -> Option<Setup> {
    let (idp_port, port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{idp_port}");
    // A public client (PKCE, no secret), so no secret has to reach the test process.
    let clients = public_client(&base);
    let idp = OidcProvider::start(test, Some(&clients), idp_port)?;
    let mut s = demo_settings();
    s.bind = format!("127.0.0.1:{port}");
    s.auth.oidc = Some(OidcSettings {
        revalidate_after_secs,
        ..OidcSettings::new(issuer, "steward").with_web_sign_in(&base)
    });
    tweak(&mut s);
    let sessions = s.sessions.clone();
    let app = spawn(s).await;
    Some(Setup {
        app,
        idp,
        base,
        sessions,
    })
}

/// Follows a sign-in from steward's `/auth/login` through the provider back
/// to steward's callback; returns the callback URL and steward's response.
async fn sign_in(
    http: &reqwest::Client,
    s: &Setup,
    user: &str,
    password: &str,
    return_to: &str,
) -> (String, reqwest::Response) {
    let start = http
        .get(format!("{}/auth/login", s.base))
        .query(&[("return_to", return_to)])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    let to_idp = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_idp.starts_with(&s.idp.issuer), "{to_idp}");
    assert!(
        to_idp.contains("code_challenge_method=S256"),
        "PKCE: {to_idp}"
    );
    let auth = http.get(&to_idp).send().await.unwrap();
    let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
    let callback = finish_login(http, &s.idp, &interaction, user, password)
        .await
        .to_string();
    assert!(
        callback.starts_with(&format!("{}/auth/callback", s.base)),
        "{callback}"
    );
    let done = http.get(&callback).send().await.unwrap();
    (callback, done)
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn users_sign_in_use_the_api_with_csrf_and_sign_out() {
    let Some(s) = setup("users_sign_in").await else {
        return;
    };
    let http = browserless();
    let (callback, done) = sign_in(&http, &s, "alice", "alice-pw", "/welcome").await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/welcome");
    let cookies = set_cookies(&done);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("steward_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "loopback dev callback: {session}"
    );
    let csrf = cookie_value(&cookies, "steward_csrf");
    let token = cookie_value(&cookies, "steward_session");

    // The cookie identifies alice (data-analysts → analyst).
    let metrics = http
        .get(format!("{}/api/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let ask = |csrf: Option<&str>| {
        let mut req = http
            .post(format!("{}/api/chat", s.base))
            .json(&serde_json::json!({"question": "What was DAU last week vs the week before?"}));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        req.send()
    };
    assert_eq!(ask(None).await.unwrap().status(), 403, "no CSRF token");
    assert_eq!(ask(Some("wrong")).await.unwrap().status(), 403);
    let answered = ask(Some(&csrf)).await.unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(
        answered.json::<serde_json::Value>().await.unwrap()["kind"],
        "metric"
    );
    // Admin endpoints stay closed to an analyst.
    let admin = http
        .get(format!("{}/api/admin/sessions", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 403);

    // The callback works once.
    let replay = http.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);

    // Sign-out needs the CSRF token, ends the session, and hands over to the provider.
    let no_csrf = http
        .post(format!("{}/auth/logout", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let out = http
        .post(format!("{}/auth/logout", s.base))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let to = out.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("{}/session/end", s.idp.issuer)),
        "{to}"
    );
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("steward_session=;"))
    );
    let stale = reqwest::Client::new()
        .get(format!("{}/api/metrics", s.base))
        .header("cookie", format!("steward_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let _ = &s.app;
}

#[tokio::test]
async fn failed_and_hostile_sign_ins_are_refused() {
    let Some(s) = setup("failed_sign_ins").await else {
        return;
    };
    let http = browserless();
    // A user none of whose groups maps to a role gets no session.
    let changed = reqwest::Client::new()
        .post(format!("{}/test/users/dave/groups", s.idp.issuer))
        .json(&serde_json::json!({"groups": ["book-club"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let (_, done) = sign_in(&http, &s, "dave", "dave-pw", "/").await;
    assert_eq!(done.status(), 403);
    assert!(set_cookies(&done).is_empty());

    // return_to never leaves the site.
    let (_, done) = sign_in(&browserless(), &s, "alice", "alice-pw", "//evil.example/x").await;
    assert_eq!(done.headers()["location"], "/");

    let get = |path: &str| http.get(format!("{}{path}", s.base)).send();
    for (path, want) in [
        ("/auth/callback?code=x&state=forged", 400),
        ("/auth/callback?state=x", 400),
        ("/auth/callback?error=access_denied&state=x", 401),
        ("/auth/login?return_to=/&evil=1", 400),
    ] {
        assert_eq!(get(path).await.unwrap().status().as_u16(), want, "{path}");
    }
    // Forged and junk cookies are not sessions.
    let forged = reqwest::Client::new()
        .get(format!("{}/api/metrics", s.base))
        .header("cookie", "steward_session=AAAA; steward_csrf=x")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // In oidc mode the dev header names nobody; without redirect_uri oidc mode does not start.
    let mut strict = demo_settings();
    strict.auth.mode = "oidc".into();
    strict.auth.oidc = Some(OidcSettings {
        redirect_uri: Some("http://127.0.0.1:1/auth/callback".into()),
        ..OidcSettings::new(&s.idp.issuer, "steward")
    });
    let oidc_only = spawn(strict.clone()).await;
    let (status, _) = oidc_only.get(Some("alice"), "/api/metrics").await;
    assert_eq!(status, 401);
    strict.auth.oidc.as_mut().unwrap().redirect_uri = None;
    let refused = steward::startup::Application::build(&strict).await;
    assert!(refused.err().unwrap().to_string().contains("redirect_uri"));

    // Without single sign-on configured, the endpoints do not exist.
    let plain = spawn(demo_settings()).await;
    let r = reqwest::Client::new()
        .get(format!("{}/auth/login", plain.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_sign_in_finishes_only_in_the_browser_that_started_it() {
    let Some(s) = setup("login_csrf").await else {
        return;
    };
    // The attacker starts a sign-in with their own account and stops at the
    // callback URL; the victim's browser is sent there (login CSRF).
    let attacker = browserless();
    let start = attacker
        .get(format!("{}/auth/login", s.base))
        .send()
        .await
        .unwrap();
    let to_idp = start.headers()["location"].to_str().unwrap().to_owned();
    let auth = attacker.get(&to_idp).send().await.unwrap();
    let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
    let callback = finish_login(&attacker, &s.idp, &interaction, "alice", "alice-pw").await;
    let victim = browserless();
    let done = victim.get(callback.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 400);
    assert!(
        set_cookies(&done)
            .iter()
            .all(|c| !c.starts_with("steward_session=") || c.starts_with("steward_session=;"))
    );
    let (status, _) = me(&victim, &s).await;
    assert_eq!(status, 401, "the victim is not signed in as the attacker");
    // The browser that started it still finishes it.
    let (_, ok) = sign_in(&browserless(), &s, "alice", "alice-pw", "/").await;
    assert_eq!(ok.status(), 303);
}

async fn me(http: &reqwest::Client, s: &Setup) -> (u16, serde_json::Value) {
    me_get(http, s, "/api/me").await
}

async fn set_groups(s: &Setup, user: &str, groups: &[&str]) {
    let changed = reqwest::Client::new()
        .post(format!("{}/test/users/{user}/groups", s.idp.issuer))
        .json(&serde_json::json!({ "groups": groups }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
}

#[tokio::test]
async fn session_roles_follow_the_provider_at_revalidation() {
    // Roles older than one second are re-validated with the refresh token.
    let Some(s) = setup_with("roles_follow_provider", 1, |_| {}).await else {
        return;
    };
    let http = browserless();
    let (_, done) = sign_in(&http, &s, "alice", "alice-pw", "/").await;
    assert_eq!(done.status(), 303);
    let (status, who) = me(&http, &s).await;
    assert_eq!(status, 200);
    assert_eq!(who["roles"], serde_json::json!(["analyst"]));
    assert_eq!(who["admin"], false);

    // An administrator moves alice to data-admins at the provider.
    set_groups(&s, "alice", &["data-admins"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, who) = me(&http, &s).await;
    assert_eq!(status, 200);
    assert_eq!(who["roles"], serde_json::json!(["admin"]), "{who}");
    // The provider rotates a public client's refresh token; the rotated one works.
    set_groups(&s, "alice", &["compliance-officers"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, who) = me(&http, &s).await;
    assert_eq!(
        (status, &who["roles"]),
        (200, &serde_json::json!(["compliance"])),
        "{who}"
    );

    // Losing every mapped group ends the session at once.
    set_groups(&s, "alice", &["contractors"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = me(&http, &s).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "session_expired");
    assert_eq!(me(&http, &s).await.0, 401, "stays ended");
    set_groups(&s, "alice", &["data-analysts"]).await;
}

#[tokio::test]
async fn an_unreachable_provider_keeps_roles_briefly_then_fails_closed() {
    let Some(mut s) = setup_with("provider_down", 1, |_| {}).await else {
        return;
    };
    let http = browserless();
    let (_, done) = sign_in(&http, &s, "bob", "bob-pw", "/").await;
    assert_eq!(done.status(), 303);
    s.idp.stop();
    // Due for re-validation, provider gone: roles younger than three periods still serve.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, who) = me(&http, &s).await;
    assert_eq!((status, &who["user"]), (200, &serde_json::json!("bob")));
    // Older than that: 503 until the provider answers; the session is not ended.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let (status, body) = me(&http, &s).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "identity_provider");
}

#[tokio::test]
async fn a_slack_user_is_recognised_through_a_web_sign_in_until_revoked() {
    use crate::slack::{Capture, mention, post_signed, with_slack};
    let capture = Capture::start().await;
    let Some(s) = setup_with("slack_identity", 300, |st| with_slack(st, &capture)).await else {
        return;
    };
    capture.user("UALICE", "alice@example.com", true);
    let ask = |id: &str| mention(id, "UALICE", "What was DAU last week?", "im");
    // Before alice has signed in anywhere, steward cannot vouch for her.
    assert_eq!(
        post_signed(&s.base, "/slack/events", &ask("Ev-a1"), false)
            .await
            .status(),
        200
    );
    let refused = capture.nth("chat.postMessage", 0).await;
    assert!(
        refused.body["text"].as_str().unwrap().starts_with("Sorry"),
        "{}",
        refused.body
    );

    // Her web sign-in (verified email in the ID token) teaches steward who she is.
    let http = browserless();
    let (_, done) = sign_in(&http, &s, "alice", "alice-pw", "/").await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        post_signed(&s.base, "/slack/events", &ask("Ev-a2"), false)
            .await
            .status(),
        200
    );
    let answered = capture.nth("chat.postMessage", 1).await;
    let text = answered.body["text"].as_str().unwrap();
    assert!(text.contains("daily active users"), "{text}");

    // An admin revoking her sessions also ends her Slack access.
    let revoked = reqwest::Client::new()
        .post(format!("{}/api/admin/sessions/revoke", s.base))
        .header("x-steward-dev-user", "bob")
        .json(&serde_json::json!({"user": "alice", "reason": "offboarding"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        post_signed(&s.base, "/slack/events", &ask("Ev-a3"), false)
            .await
            .status(),
        200
    );
    let after = capture.nth("chat.postMessage", 2).await;
    assert!(
        after.body["text"].as_str().unwrap().starts_with("Sorry"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn step_up_sign_in_asks_for_credentials_again_and_enables_reruns() {
    let Some(s) = setup("step_up").await else {
        return;
    };
    let http = browserless();
    // An ordinary first sign-in, then a question to re-run.
    let (_, done) = sign_in(&http, &s, "bob", "bob-pw", "/").await;
    assert_eq!(done.status(), 303);
    let asked = reqwest::Client::new()
        .post(format!("{}/api/chat", s.base))
        .header("x-steward-dev-user", "alice")
        .json(&serde_json::json!({"question": "How many signups last week?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    // Step-up: the provider is told to ask for the password again.
    let start = http
        .get(format!("{}/auth/login", s.base))
        .query(&[("return_to", "/admin"), ("reauth", "1")])
        .send()
        .await
        .unwrap();
    let to_idp = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_idp.contains("prompt=login") && to_idp.contains("max_age=0"),
        "{to_idp}"
    );
    let auth = http.get(&to_idp).send().await.unwrap();
    let interaction = auth.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        interaction.contains("/interaction/"),
        "a login page, not silent SSO: {interaction}"
    );
    let callback = finish_login(&http, &s.idp, &interaction, "bob", "bob-pw").await;
    let done = http.get(callback.to_string()).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let cookies = set_cookies(&done);
    let csrf = cookie_value(&cookies, "steward_csrf");
    let events = reqwest::Client::new()
        .get(format!(
            "{}/api/admin/audit?user=alice&kind=statement&limit=1",
            s.base
        ))
        .header("x-steward-dev-user", "bob")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let statement = events["events"][0]["id"].as_str().unwrap();
    let rerun = http
        .post(format!("{}/api/admin/queries/{statement}/rerun", s.base))
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({"reason": "step-up check"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), 200);
}

/// A subscription made from Slack is delivered, by the scheduler, under the
/// roles the identity provider gives its recipient at send time: analyst,
/// then (after a group change at the provider, seen at re-validation) EMEA
/// analyst with the row filter applied, then no access at all — a notice,
/// no data, and the subscription paused.
#[tokio::test]
async fn subscription_deliveries_follow_a_role_change_at_the_provider() {
    use crate::slack::{Capture, mention, post_signed, with_slack};
    use steward::subscriptions::SubscriptionStore;
    let capture = Capture::start().await;
    let Some(s) = setup_with("subscription_roles", 1, |st| {
        with_slack(st, &capture);
        st.subscriptions.tick_secs = 1;
        // alice exists only at the provider (no dev user to fall back on).
        st.auth.dev_users.remove("alice");
    })
    .await
    else {
        return;
    };
    let db = steward::session::SessionStore::connect(&s.sessions)
        .await
        .unwrap();
    let store = SubscriptionStore::new(db);
    capture.user("UALICE", "alice@example.com", true);
    let http = browserless();
    let (_, done) = sign_in(&http, &s, "alice", "alice-pw", "/").await;
    assert_eq!(done.status(), 303);
    let ask = mention(
        "Ev-r1",
        "UALICE",
        "send me how many customers are on each plan every Monday at 9:00",
        "im",
    );
    assert_eq!(
        post_signed(&s.base, "/slack/events", &ask, false)
            .await
            .status(),
        200
    );
    capture
        .delivered(|c| c.body.to_string().contains("Subscribed"))
        .await;
    let (_, list) = me_get(&http, &s, "/api/subscriptions").await;
    let id = list["subscriptions"][0]["id"].as_str().unwrap().to_owned();

    // Makes the subscription due; the scheduler (every second) sends run
    // `n` (from 0) as a direct message; returns its inbox record.
    let run_now = |n: usize| {
        let (store, id, http, s, capture) = (&store, &id, &http, &s, &capture);
        async move {
            store
                .set_paused(id, false, chrono::Utc::now().timestamp() - 30)
                .await
                .unwrap();
            capture
                .nth_matching(n, |c| {
                    c.path == "chat.postMessage" && c.body["channel"] == "UALICE"
                })
                .await;
            for _ in 0..100 {
                let (_, inbox) = me_get(http, s, "/api/inbox").await;
                if inbox["deliveries"].as_array().is_some_and(|d| d.len() > n) {
                    return inbox["deliveries"][0].clone();
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("run {n} not recorded");
        }
    };
    let first = run_now(0).await;
    assert_eq!(first["outcome"], "sent", "{first}");
    let audit = |event: &str| {
        let path = format!("/api/admin/audit/{event}");
        let app = &s.app;
        async move { app.get(Some("bob"), &path).await.1.to_string() }
    };
    let before = audit(first["event_id"].as_str().unwrap()).await;
    assert!(before.contains("\"principal\":\"alice\""), "{before}");
    assert!(
        !before.contains("EMEA"),
        "no row filter for an analyst: {before}"
    );

    // The provider moves alice to the EMEA analysts; her next web request
    // re-validates and records it.
    set_groups(&s, "alice", &["emea-analysts"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, who) = me(&http, &s).await;
    assert_eq!(
        (status, &who["roles"]),
        (200, &serde_json::json!(["analyst_emea"]))
    );
    let second = run_now(1).await;
    assert_eq!(second["outcome"], "sent", "{second}");
    let after = audit(second["event_id"].as_str().unwrap()).await;
    assert!(
        after.contains("EMEA"),
        "the EMEA row filter applied: {after}"
    );

    // No steward group left at the provider: the session ends, and the next
    // run sends a notice, no data, and pauses.
    set_groups(&s, "alice", &["contractors"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(me(&http, &s).await.0, 401);
    store
        .set_paused(&id, false, chrono::Utc::now().timestamp() - 30)
        .await
        .unwrap();
    let notice = capture
        .delivered(|c| c.body.to_string().contains("no longer have access"))
        .await;
    assert_eq!(notice.body["channel"], "UALICE");
    for _ in 0..100 {
        if store.get(&id).await.unwrap().unwrap().paused {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(store.get(&id).await.unwrap().unwrap().paused);
    set_groups(&s, "alice", &["data-analysts"]).await;
}

/// GET `path` with the browser's session.
async fn me_get(http: &reqwest::Client, s: &Setup, path: &str) -> (u16, serde_json::Value) {
    let r = http.get(format!("{}{path}", s.base)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}
