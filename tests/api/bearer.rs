//! API clients with `Authorization: Bearer` access tokens from the real test
//! provider: user tokens mapped through their groups, client-credentials
//! tokens through their client id (policies/identity.yaml), and every kind of
//! bad token refused.

use crate::backchannel::app_with;
use crate::helpers::{TestApp, demo_settings, spawn};
use crate::oidc_provider::{OidcProvider, free_port, user_tokens};

async fn call(app: &TestApp, token: &str, method: &str, path: &str) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", app.base);
    let req = match method {
        "POST" => app
            .client
            .post(url)
            .json(&serde_json::json!({"question": "What was DAU last week vs the week before?"})),
        _ => app.client.get(url),
    };
    let r = req
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

async fn client_token(idp: &OidcProvider, id: &str, secret: &str) -> String {
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", idp.issuer))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "api")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn access_tokens_map_to_principals_and_bad_ones_are_refused() {
    let port = free_port();
    let Some(idp) = OidcProvider::start("access_tokens_map_to_principals", None, port) else {
        return;
    };
    let (app, _) = app_with(&idp.issuer).await;

    // A user's token: alice's group data-analysts → analyst.
    let alice = user_tokens(&idp, "alice", "alice-pw").await;
    let at = alice["access_token"].as_str().unwrap();
    let (status, answer) = call(&app, at, "POST", "/api/chat").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["kind"], "metric");
    assert_eq!(call(&app, at, "GET", "/api/admin/sessions").await.0, 403);
    // bob's group data-admins → admin.
    let bob = user_tokens(&idp, "bob", "bob-pw").await;
    let bt = bob["access_token"].as_str().unwrap();
    assert_eq!(call(&app, bt, "GET", "/api/admin/sessions").await.0, 200);

    // A client acting for itself: steward-api → viewer (metrics, no SQL).
    let ct = client_token(&idp, "steward-api", "steward-api-secret").await;
    assert_eq!(call(&app, &ct, "GET", "/api/metrics").await.0, 200);
    assert_eq!(call(&app, &ct, "GET", "/api/admin/sessions").await.0, 403);
    // A client identity.yaml does not list gets nothing.
    let st = client_token(&idp, "stranger", "stranger-secret").await;
    let (status, body) = call(&app, &st, "GET", "/api/metrics").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("no_role"))
    );

    // A role change at the provider shows in the next token.
    let changed = reqwest::Client::new()
        .post(format!("{}/test/users/alice/groups", idp.issuer))
        .json(&serde_json::json!({"groups": ["data-admins"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let promoted = user_tokens(&idp, "alice", "alice-pw").await;
    let pt = promoted["access_token"].as_str().unwrap();
    assert_eq!(call(&app, pt, "GET", "/api/admin/sessions").await.0, 200);

    // An ID token is not an access token; tampering, alg none and junk fail.
    let id_token = alice["id_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    let none = {
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"none","typ":"at+jwt"}"#);
        format!("{h}.{}.", parts[1])
    };
    for (name, token) in [
        ("id token", id_token.to_owned()),
        ("tampered", tampered),
        ("alg none", none),
        ("junk", "not-a-token".to_owned()),
        ("oversized", "a".repeat(20_000)),
    ] {
        let (status, body) = call(&app, &token, "GET", "/api/metrics").await;
        assert_eq!(status, 401, "{name}: {body}");
    }
    let basic = app
        .client
        .get(format!("{}/api/metrics", app.base))
        .header("authorization", "Basic YWxpY2U6eA==")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    // Without a configured provider, bearer tokens are refused.
    let plain = spawn(demo_settings()).await;
    assert_eq!(call(&plain, &ct, "GET", "/api/metrics").await.0, 401);
}
