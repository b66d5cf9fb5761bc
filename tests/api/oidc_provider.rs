//! The test OpenID Provider (`tests/oidc/provider.mjs`, panva's oidc-provider)
//! started on a free loopback port, and a self-test of the browserless login
//! flow the single sign-on tests rely on. Reported SKIPPED when Node or the
//! provider's packages (`npm ci` in tests/oidc, done by `.ci/run`) are missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::helpers::root;

/// A running provider; killed on drop.
pub struct OidcProvider {
    child: Child,
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

impl OidcProvider {
    /// Stops the provider (as an outage would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the provider with `clients` (JSON array of client metadata; `None`
    /// for the defaults) on `port` (0: any free one), or returns `None` after
    /// saying why the test is skipped.
    pub fn start(test: &str, clients: Option<&str>, port: u16) -> Option<OidcProvider> {
        let dir = root().join("tests/oidc");
        if !dir.join("node_modules/oidc-provider").is_dir() {
            eprintln!(
                "SKIPPED {test}: tests/oidc/node_modules missing (run `npm ci` in tests/oidc)"
            );
            return None;
        }
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("TEST_CONTROL", "1")
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("OIDC_PROVIDER_LOG") {
                Some(path) => std::fs::File::create(path).map_or(Stdio::null(), Stdio::from),
                None => Stdio::null(),
            });
        if let Some(c) = clients {
            cmd.env("CLIENTS_JSON", c);
        }
        let Ok(mut child) = cmd.spawn() else {
            eprintln!("SKIPPED {test}: node is not installed");
            return None;
        };
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        let issuer = line
            .trim()
            .strip_prefix("oidc-provider listening on ")?
            .to_owned();
        // Keep draining its output: a closed pipe would kill it at its next notice.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Some(OidcProvider { child, issuer })
    }
}

/// A free loopback port (for a provider that must be configured before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Signs `user` in at the provider (default `steward` client) and returns
/// the token response: ID token and a JWT access token for steward's API.
pub async fn user_tokens(idp: &OidcProvider, user: &str, password: &str) -> serde_json::Value {
    let http = browserless();
    let redirect = "http://127.0.0.1:8080/auth/callback";
    let (verifier, challenge) = pkce();
    let interaction = begin_login(&http, idp, redirect, &challenge, "t").await;
    let callback = finish_login(&http, idp, &interaction, user, password).await;
    exchange_code(&http, idp, &callback, redirect, &verifier).await
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
pub fn pkce() -> (String, String) {
    use rand::RngExt;
    let verifier = URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The claims of a JWT, unverified (the provider's own output, for the self-test).
pub fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// An HTTP client that keeps the provider's cookies and does not follow redirects.
pub fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Signs `user` in at an interaction and follows the provider back to the
/// client: returns the redirect URI it sends the browser to (with `code`).
pub async fn finish_login(
    http: &reqwest::Client,
    idp: &OidcProvider,
    interaction: &str,
    user: &str,
    password: &str,
) -> url::Url {
    let login = http
        .post(format!("{}{interaction}", idp.issuer))
        .form(&[("login", user), ("password", password)])
        .send()
        .await
        .unwrap();
    let resume = login.headers()["location"].to_str().unwrap().to_owned();
    let back = http.get(&resume).send().await.unwrap();
    url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap()
}

/// Redeems the `code` in `callback` at the token endpoint as the default
/// `steward` client; returns the token response.
pub async fn exchange_code(
    http: &reqwest::Client,
    idp: &OidcProvider,
    callback: &url::Url,
    redirect: &str,
    verifier: &str,
) -> serde_json::Value {
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("the callback carries a code")
        .1
        .into_owned();
    http.post(format!("{}/token", idp.issuer))
        .basic_auth("steward", Some("steward-test-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Starts an authorization request (code flow, PKCE S256, nonce = "n-" + state)
/// and returns the interaction path the provider redirects to.
pub async fn begin_login(
    http: &reqwest::Client,
    idp: &OidcProvider,
    redirect: &str,
    challenge: &str,
    state: &str,
) -> String {
    let nonce = format!("n-{state}");
    let auth = http
        .get(format!("{}/auth", idp.issuer))
        .query(&[
            ("client_id", "steward"),
            ("response_type", "code"),
            ("scope", "openid email profile groups api"),
            ("resource", "urn:steward:api"),
            ("redirect_uri", redirect),
            ("state", state),
            ("nonce", &nonce),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), 303);
    auth.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_test_provider_signs_users_in_without_a_browser() {
    let Some(idp) = OidcProvider::start("the_test_provider_signs_users_in", None, 0) else {
        return;
    };
    let http = browserless();
    let discovery: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    assert_eq!(discovery["backchannel_logout_supported"], true);
    for endpoint in [
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        assert!(discovery[endpoint].is_string(), "{endpoint}");
    }

    let (verifier, challenge) = pkce();
    let redirect = "http://127.0.0.1:8080/auth/callback";
    let interaction = begin_login(&http, &idp, redirect, &challenge, "s1").await;
    let wrong = http
        .post(format!("{}{interaction}", idp.issuer))
        .form(&[("login", "alice"), ("password", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 303);
    // A failed login ends the request with an error at the client, no code.
    let resume = wrong.headers()["location"].to_str().unwrap().to_owned();
    let denied = http.get(&resume).send().await.unwrap();
    let to = denied.headers()["location"].to_str().unwrap();
    assert!(
        to.contains("error=access_denied") && !to.contains("code="),
        "{to}"
    );

    // Again, with the right password (the first request never produced a code).
    let interaction = begin_login(&http, &idp, redirect, &challenge, "s2").await;
    let callback = finish_login(&http, &idp, &interaction, "alice", "alice-pw").await;
    assert!(callback.as_str().starts_with(redirect));
    let tokens = exchange_code(&http, &idp, &callback, redirect, &verifier).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["nonce"], "n-s2");
    assert_eq!(id["groups"], serde_json::json!(["data-analysts"]));
    assert!(id["sid"].is_string());
}

/// A public client (PKCE, no secret, so no secret reaches the test process)
/// for a steward at `base`, with refresh tokens (JSON for `CLIENTS_JSON`).
pub fn public_client(base: &str) -> String {
    serde_json::json!([{
        "client_id": "steward",
        "token_endpoint_auth_method": "none",
        "redirect_uris": [format!("{base}/auth/callback")],
        "post_logout_redirect_uris": [format!("{base}/")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid email profile groups"
    }])
    .to_string()
}
