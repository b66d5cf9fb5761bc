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
