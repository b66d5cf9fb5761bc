//! What the web chat relies on, through HTTP: sign-in configuration, the dev
//! picker's sign-in (and its refusals), JSON sign-out, history, and the page's
//! security headers.

use serde_json::{Value, json};

use crate::helpers::{TestApp, demo_settings, spawn, spawn_demo};

async fn dev_login(app: &TestApp, body: Value, origin: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/auth/dev-login", app.base))
        .json(&body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

fn cookies(r: &reqwest::Response) -> (String, String) {
    let all: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let value = |name: &str| {
        all.iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_owned()
    };
    (value("steward_session"), value("steward_csrf"))
}

#[tokio::test]
async fn the_dev_picker_starts_a_session_and_history_follows_the_user() {
    let app = spawn_demo().await;
    let config: Value = app
        .client
        .get(format!("{}/auth/config", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&config["mode"], &config["sso"]),
        (&json!("dev"), &json!(false))
    );
    assert!(
        config["dev_users"]
            .as_array()
            .unwrap()
            .contains(&json!("alice"))
    );

    let own = app.base.clone();
    let r = dev_login(&app, json!({"user": "alice"}), Some(&own)).await;
    assert_eq!(r.status(), 200);
    let (session, csrf) = cookies(&r);
    let with = |req: reqwest::RequestBuilder| {
        req.header("cookie", format!("steward_session={session}"))
            .header("x-csrf-token", &csrf)
    };
    let me: Value = with(app.client.get(format!("{}/api/me", app.base)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&me["user"], &me["roles"]),
        (&json!("alice"), &json!(["analyst"]))
    );
    let asked = with(app.client.post(format!("{}/api/chat", app.base)))
        .json(&json!({"question": "How many signups from jane@mail.example.com last week?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let history: Value = with(app.client.get(format!("{}/api/history", app.base)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let q = &history["questions"][0];
    assert_eq!(
        q["question"], "How many signups from [email] last week?",
        "stored redacted"
    );
    assert!(q["conversation_id"].is_string() && q["kind"].is_string());
    // Another user sees none of it.
    let (_, bobs) = app.get(Some("bob"), "/api/history").await;
    assert_eq!(bobs["questions"], json!([]));
    for bad in ["?limit=0", "?limit=501", "?limit=x", "?other=1"] {
        let r = with(app.client.get(format!("{}/api/history{bad}", app.base)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(app.get(None, "/api/history").await.0, 401);
    // Clearing needs the CSRF token, like every state change.
    let no_csrf = app
        .client
        .delete(format!("{}/api/history", app.base))
        .header("cookie", format!("steward_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let cleared: Value = with(app.client.delete(format!("{}/api/history", app.base)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["cleared"], 1);

    // Sign-out for scripts: JSON with where to go; the session is over.
    let out = with(app.client.post(format!("{}/auth/logout", app.base)))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(out.json::<Value>().await.unwrap()["next"], "/");
    let after = with(app.client.get(format!("{}/api/me", app.base)))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn dev_sign_in_refuses_strangers_other_sites_and_other_modes() {
    let app = spawn_demo().await;
    let own = app.base.clone();
    assert_eq!(
        dev_login(&app, json!({"user": "mallory"}), Some(&own))
            .await
            .status(),
        401
    );
    assert_eq!(
        dev_login(&app, json!({"user": "alice"}), Some("http://evil.example"))
            .await
            .status(),
        403
    );
    assert_eq!(
        dev_login(&app, json!({"user": 1}), None).await.status(),
        400
    );
    assert_eq!(
        dev_login(&app, json!({"user": "alice", "roles": ["admin"]}), None)
            .await
            .status(),
        400
    );
    let huge = json!({"user": "a".repeat(100_000)});
    assert_eq!(dev_login(&app, huge, None).await.status(), 413);

    // In oidc mode the picker does not exist.
    let mut s = demo_settings();
    s.auth.mode = "oidc".into();
    s.auth.oidc = Some(
        steward::auth::oidc::OidcSettings::new("http://127.0.0.1:9", "steward")
            .with_web_sign_in("http://127.0.0.1:9"),
    );
    let oidc = spawn(s).await;
    assert_eq!(
        dev_login(&oidc, json!({"user": "alice"}), None)
            .await
            .status(),
        404
    );
    let config: Value = oidc
        .client
        .get(format!("{}/auth/config", oidc.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&config["mode"], &config["dev_users"]),
        (&json!("oidc"), &json!([]))
    );
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let app = spawn_demo().await;
    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    if steward::http::web::built() {
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        let html = page.text().await.unwrap();
        let asset = html
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned();
        let js = app
            .client
            .get(format!("{}{asset}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(js.status(), 200);
        assert!(
            js.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(
            js.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    } else {
        eprintln!("web assets not built: checked the built-in page only");
    }
    for bad in ["/assets/nope.js", "/assets/..%2Fbuild.rs", "/assets/%00"] {
        let r = app
            .client
            .get(format!("{}{bad}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
    }
}
