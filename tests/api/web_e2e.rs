//! The web chat end to end: `web/e2e/chat.test.mjs` drives headless Chromium
//! (playwright-core, Debian's chromium) against a steward started here in dev
//! identity mode with the test OpenID Provider configured, so both the dev
//! picker and company sign-in are exercised. Screenshots go to
//! `target/e2e-screenshots/`. Reported skipped when the web assets were not
//! built into this binary (`npm run build` in web/ before `cargo test`), when
//! web/node_modules or Chromium is missing; `.ci/run` provides all three.

use std::path::PathBuf;
use std::process::Command;

use steward::auth::oidc::OidcSettings;

use crate::helpers::{demo_settings, root, spawn};
use crate::oidc_provider::{OidcProvider, free_port, public_client};

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

#[tokio::test]
async fn the_web_chat_works_in_a_real_browser() {
    let test = "the_web_chat_works_in_a_real_browser";
    if !steward::http::web::built() {
        eprintln!("SKIPPED {test}: web assets not built into this binary (npm run build in web/)");
        return;
    }
    if !root().join("web/node_modules/playwright-core").is_dir() || !chromium().exists() {
        eprintln!(
            "SKIPPED {test}: web/node_modules or {} missing",
            chromium().display()
        );
        return;
    }
    let (idp_port, port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let clients = public_client(&base);
    let Some(idp) = OidcProvider::start(test, Some(&clients), idp_port) else {
        return;
    };
    let mut settings = demo_settings();
    settings.bind = format!("127.0.0.1:{port}");
    settings.auth.oidc = Some(OidcSettings::new(&idp.issuer, "steward").with_web_sign_in(&base));
    // The review queue's regression run answers the demo's labelled questions.
    settings.review.eval_sets = vec![root().join("eval/demo.jsonl")];
    let _app = spawn(settings).await;
    let shots = root().join("target/e2e-screenshots");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "test/", "e2e/"])
            .current_dir(root().join("web"))
            .env("STEWARD_URL", &base)
            .env("SCREENSHOTS", &shots)
            .env("CHROMIUM", chromium())
            .env("SSO_USER", "alice")
            .env("SSO_PASSWORD", "alice-pw")
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let out = String::from_utf8_lossy(&run.stdout);
    println!("{out}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the browser tests failed:\n{out}");
    assert!(
        out.contains("ℹ skipped 0"),
        "every browser test ran:\n{out}"
    );
    drop(idp);
}
