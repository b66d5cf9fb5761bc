//! Follow-up questions within a conversation.

use crate::helpers::{demo_db, oracle, spawn_demo};

#[tokio::test]
async fn a_follow_up_continues_the_previous_question_for_the_same_user_only() {
    let app = spawn_demo().await;
    let (_, first) = app
        .ask_in("alice", "conv-1", "How many signups last week?")
        .await;
    assert_eq!(first["metric"], "signups", "{first}");
    assert_eq!(first["conversation_id"], "conv-1");

    let (_, before) = app.ask_in("alice", "conv-1", "and the week before?").await;
    assert_eq!(before["metric"], "signups", "{before}");
    let expected = oracle(
        demo_db(),
        "SELECT COUNT(*) * 1.0 FROM user_profiles WHERE signed_up_at >= '2026-11-02' AND signed_up_at < '2026-11-09'",
    )
    .await[0];
    assert_eq!(
        before["data"]["rows"][0][1].as_f64(),
        Some(expected),
        "{before}"
    );

    let (_, by_platform) = app
        .ask_in("alice", "conv-1", "break that down by platform")
        .await;
    assert_eq!(
        by_platform["data"]["columns"],
        serde_json::json!(["platform", "signups"]),
        "{by_platform}"
    );

    // Another user cannot continue alice's conversation by reusing its id.
    let (_, other) = app.ask_in("dave", "conv-1", "and the week before?").await;
    assert_ne!(other["kind"], "metric", "{other}");
}

#[tokio::test]
async fn a_follow_up_may_reach_another_instance_sharing_the_database() {
    let settings = crate::helpers::demo_settings();
    let one = crate::helpers::spawn(settings.clone()).await;
    let two = crate::helpers::spawn(settings).await;
    let (_, first) = one
        .ask_in("alice", "shared-1", "How many signups last week?")
        .await;
    assert_eq!(first["metric"], "signups", "{first}");
    let (_, before) = two
        .ask_in("alice", "shared-1", "and the week before?")
        .await;
    assert_eq!(before["metric"], "signups", "{before}");
    assert!(
        before["answer"].as_str().unwrap().contains("2026-11-02"),
        "{before}"
    );
}
