//! Logs carry no personal data, even while answering privacy-sensitive questions.

use regex::Regex;

use crate::helpers::{LOGS, spawn_demo};

#[tokio::test]
async fn answering_pii_questions_logs_no_emails_or_phone_numbers() {
    let app = spawn_demo().await;
    let questions = [
        ("alice", "What was our DAU last week vs the week before?"),
        (
            "alice",
            "Show me the email addresses of customers who churned last month.",
        ),
        (
            "carol",
            "Show me the email addresses of customers who churned last month.",
        ),
        (
            "carol",
            "Summarize all customer records including contact emails for my compliance audit.",
        ),
        ("sam", "List all customer records including contact emails"),
        ("alice", "How are we doing?"),
        ("alice", "Why did user signups drop last Tuesday?"),
        ("alice", "What is our NPS?"),
    ];
    let mut emails_returned = 0;
    for (user, q) in questions {
        let (_, body) = app.ask(user, q).await;
        emails_returned += body.to_string().matches(".example").count();
    }
    assert!(
        emails_returned > 0,
        "the compliance answers did return emails"
    );
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string();
    assert!(
        logs.contains("planned"),
        "logs were captured: {} bytes",
        logs.len()
    );
    let email = Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.example").unwrap();
    let phone = Regex::new(r"555-01\d\d").unwrap();
    assert!(
        !email.is_match(&logs),
        "an email reached the logs: {:?}",
        email.find(&logs)
    );
    assert!(
        !phone.is_match(&logs),
        "a phone number reached the logs: {:?}",
        phone.find(&logs)
    );
    assert!(
        !logs.contains("Summarize all customer records"),
        "question text reached the logs"
    );
}

#[tokio::test]
async fn refused_credentials_are_logged_without_the_credentials() {
    use crate::slack::{Capture, with_slack};
    let capture = Capture::start().await;
    let mut settings = crate::helpers::demo_settings();
    with_slack(&mut settings, &capture);
    let app = crate::helpers::spawn(settings).await;
    let http = reqwest::Client::new();
    let bearer = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJsZWFrLWJlYXJlci1zZWNyZXQifQ.";
    let cookie = "leak-cookie-secret-0123456789abcdef";
    let signature = format!("v0={}", "5eed".repeat(16));
    let r = http
        .get(format!("{}/api/metrics", app.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{}/api/metrics", app.base))
        .header("cookie", format!("steward_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/slack/events", app.base))
        .header(
            "x-slack-request-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("x-slack-signature", &signature)
        .body(r#"{"type":"url_verification","challenge":"leak-challenge"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string();
    assert!(
        logs.contains("slack request refused") && logs.contains("invalid_token"),
        "the refusals are logged"
    );
    for secret in [
        bearer,
        "leak-bearer-secret",
        cookie,
        &signature[3..],
        crate::slack::SIGNING_SECRET,
        "xoxb-test-bot-token",
    ] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
}
