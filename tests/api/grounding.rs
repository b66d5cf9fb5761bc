//! Every number steward writes is traceable to this turn's tool results: no
//! deterministic answer is reduced by the grounding check.

use crate::helpers::spawn_demo;

#[tokio::test]
async fn deterministic_answers_state_only_grounded_numbers() {
    let app = spawn_demo().await;
    let questions = [
        "What was our DAU last week vs the week before?",
        "How are we doing?",
        "What's the conversion rate for the checkout flow?",
        "Why did user signups drop last Tuesday?",
        "Show me the email addresses of customers who churned last month.",
        "Summarize all customer records including contact emails for my compliance audit.",
        "signups by platform last month",
        "daily revenue in october",
        "wau by week last quarter",
        "mau last month",
        "median ticket resolution time by priority last month",
        "churn rate last month",
        "mrr by plan",
        "revenue by region in october",
        "How many signups on iOS last week?",
        "tickets opened yesterday",
        "active customers this month compared to last month",
        "signups in the last 30 days by signup channel",
        "What was revenue between 2026-10-01 and 2026-10-15?",
        "dau trend over the last 60 days",
    ];
    for q in questions {
        for user in ["carol", "alice"] {
            let (status, body) = app.ask(user, q).await;
            assert_eq!(status, 200, "{q}");
            let text = body["answer"].as_str().unwrap();
            assert!(
                !text.contains("could not trace") && !text.contains("could not state"),
                "{user}: {q}: {body}"
            );
        }
    }
}
