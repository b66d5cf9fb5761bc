//! Subscriptions: the API, and runs delivered under the recipient's grants
//! of the moment (the identity directory changed between runs, as
//! re-validation with the provider changes it), exactly once with two
//! instances on one database, late after downtime, and to Slack only for
//! the recipient's own Slack user.

use serde_json::{Value, json};
use steward::session::{DirectoryEntry, SessionStore};
use steward::settings::Settings;
use steward::startup::Application;
use steward::subscriptions::{Deliverer, SubscriptionStore};

use crate::helpers::{TestApp, capture_logs, demo_settings};

/// An app whose scheduler is off (the test runs ticks itself), and its deliverer.
async fn app(settings: &Settings) -> (TestApp, Deliverer) {
    capture_logs();
    let mut s = settings.clone();
    s.subscriptions.tick_secs = 0;
    let app = Application::build(&s).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let deliverer = app.deliverer();
    tokio::spawn(app.run_until_stopped());
    (
        TestApp {
            base,
            client: reqwest::Client::new(),
        },
        deliverer,
    )
}

async fn subscribe(app: &TestApp, user: &str, body: Value) -> (u16, Value) {
    app.post(Some(user), "/api/subscriptions", &body).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Makes subscription `id` due `ago` seconds in the past.
async fn make_due(store: &SubscriptionStore, id: &str, ago: i64) {
    store.set_paused(id, false, now() - ago).await.unwrap();
}

async fn record(db: &SessionStore, user: &str, roles: &[&str]) {
    db.record_identity(&DirectoryEntry {
        sub: format!("sub-{user}"),
        email: format!("{user}@example.com"),
        user: user.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: Vec::new(),
        updated_at: now(),
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn runs_are_answered_under_the_recipients_grants_at_send_time() {
    let settings = demo_settings();
    let (app, deliverer) = app(&settings).await;
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    let store = SubscriptionStore::new(db.clone());
    // The provider says alice is an analyst.
    record(&db, "alice", &["analyst"]).await;
    let (status, s) = subscribe(
        &app,
        "alice",
        json!({"question": "How many customers are on each plan?", "cron": "0 9 * * 1", "timezone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    assert!(s["next_run_at"].as_i64().unwrap() > now());

    make_due(&store, &id, 30).await;
    assert_eq!(deliverer.tick(now()).await, 1);
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    let first = &inbox["deliveries"][0];
    assert_eq!(first["outcome"], "sent", "{inbox}");
    assert_eq!(first["late"], false);
    assert_eq!(first["body"]["kind"], "sql", "{inbox}");
    assert!(first["body"]["data"]["rows"].as_array().unwrap().len() >= 3);
    // Audited like a question, through the subscription channel.
    let event = first["event_id"].as_str().unwrap();
    let (_, audited) = app
        .get(Some("bob"), &format!("/api/admin/audit/{event}"))
        .await;
    assert_eq!(audited["event"]["channel"], "subscription", "{audited}");
    assert_eq!(audited["event"]["principal"], "alice");
    // The next run is the next Monday, not again now.
    let (_, list) = app.get(Some("alice"), "/api/subscriptions").await;
    assert!(list["subscriptions"][0]["next_run_at"].as_i64().unwrap() > now());

    // The provider now says viewer: no ad-hoc SQL, so no customer table.
    record(&db, "alice", &["viewer"]).await;
    make_due(&store, &id, 20).await;
    deliverer.tick(now()).await;
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    let second = &inbox["deliveries"][0];
    assert_eq!(second["outcome"], "sent");
    assert_ne!(
        second["body"]["kind"], "sql",
        "a viewer gets no ad-hoc SQL: {inbox}"
    );

    // No role left: a notice, no data, and the subscription pauses.
    record(&db, "alice", &[]).await;
    make_due(&store, &id, 10).await;
    deliverer.tick(now()).await;
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    let third = &inbox["deliveries"][0];
    assert_eq!(third["outcome"], "notice", "{inbox}");
    assert!(third["body"].get("data").is_none(), "{inbox}");
    assert!(third["event_id"].is_null());
    let (_, list) = app.get(Some("alice"), "/api/subscriptions").await;
    assert_eq!(list["subscriptions"][0]["paused"], true);
}

#[tokio::test]
async fn each_run_is_delivered_once_by_one_of_two_instances_and_late_after_downtime() {
    let settings = demo_settings();
    let (app, one) = app(&settings).await;
    // A second instance: its own index, the same database and audit key.
    let mut other = settings.clone();
    other.index_dir = crate::helpers::fresh_index_dir();
    let (_, two) = self::app(&other).await;
    let store = SubscriptionStore::new(SessionStore::connect(&settings.sessions).await.unwrap());
    let (_, s) = subscribe(
        &app,
        "alice",
        json!({"question": "What was DAU last week?", "cron": "*/5 * * * *"}),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_owned();
    // Due an hour ago: both instances look at once.
    make_due(&store, &id, 3600).await;
    let t = now();
    let (a, b) = tokio::join!(one.tick(t), two.tick(t));
    assert_eq!(a + b, 1, "exactly one instance delivered");
    assert_eq!(store.delivery_count(&id).await.unwrap(), 1);
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    assert_eq!(inbox["deliveries"][0]["late"], true, "{inbox}");
    assert_eq!(inbox["deliveries"][0]["body"]["metric"], "dau");
    // The missed runs in between are not sent: the next run is in the future.
    let (_, list) = app.get(Some("alice"), "/api/subscriptions").await;
    assert!(list["subscriptions"][0]["next_run_at"].as_i64().unwrap() > t);
    assert_eq!(one.tick(now()).await + two.tick(now()).await, 0);
    assert_eq!(store.delivery_count(&id).await.unwrap(), 1);
}

#[tokio::test]
async fn the_api_refuses_bad_schedules_and_other_peoples_subscriptions() {
    let settings = demo_settings();
    let (app, _) = app(&settings).await;
    for (body, says) in [
        (
            json!({"question": "DAU", "cron": "* * *"}),
            "five cron fields",
        ),
        (
            json!({"question": "DAU", "cron": "99 * * * *"}),
            "invalid cron",
        ),
        (
            json!({"question": "DAU", "cron": "0 9 * * 1", "timezone": "Nowhere/Here"}),
            "unknown time zone",
        ),
        (
            json!({"question": "", "cron": "0 9 * * 1"}),
            "ask a question",
        ),
        (
            json!({"question": "x".repeat(3000), "cron": "0 9 * * 1"}),
            "limited to",
        ),
        (
            json!({"question": "DAU", "cron": "0 9 * * 1", "target": "slack", "slack_user": "U1"}),
            "Slack is not enabled",
        ),
        (
            json!({"question": "DAU", "cron": "0 0 30 2 *"}),
            "never runs",
        ),
    ] {
        let (status, out) = subscribe(&app, "alice", body.clone()).await;
        assert_eq!(status, 400, "{body}: {out}");
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&says.to_lowercase()),
            "{body}: {out}"
        );
    }
    for body in [
        json!({"question": "DAU"}),
        json!({"question": "DAU", "cron": "0 9 * * 1", "to": "x"}),
    ] {
        let (status, _) = subscribe(&app, "alice", body.clone()).await;
        assert!(status == 400 || status == 422, "{body}");
    }
    assert_eq!(
        app.post(
            None,
            "/api/subscriptions",
            &json!({"question": "DAU", "cron": "0 9 * * 1"})
        )
        .await
        .0,
        401
    );
    let (_, s) = subscribe(
        &app,
        "alice",
        json!({"question": "DAU last week", "cron": "0 9 * * 1"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    // carol may not see, pause or delete alice's; an admin may.
    let (_, carol) = app.get(Some("carol"), "/api/subscriptions").await;
    assert!(carol["subscriptions"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get(Some("carol"), "/api/subscriptions?all=true")
            .await
            .0,
        403
    );
    let pause = format!("/api/subscriptions/{id}/pause");
    assert_eq!(app.post(Some("carol"), &pause, &json!({})).await.0, 404);
    let del = app
        .client
        .delete(format!("{}/api/subscriptions/{id}", app.base))
        .header("X-Steward-Dev-User", "carol")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 404);
    let (_, all) = app.get(Some("bob"), "/api/subscriptions?all=true").await;
    assert!(
        all["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id)
    );
    // The owner pauses, resumes and deletes.
    let (status, paused) = app.post(Some("alice"), &pause, &json!({})).await;
    assert_eq!((status, &paused["paused"]), (200, &json!(true)));
    let (_, resumed) = app
        .post(
            Some("alice"),
            &format!("/api/subscriptions/{id}/resume"),
            &json!({}),
        )
        .await;
    assert_eq!(resumed["paused"], false);
    assert!(resumed["next_run_at"].as_i64().unwrap() > now());
    let del = app
        .client
        .delete(format!("{}/api/subscriptions/{id}", app.base))
        .header("X-Steward-Dev-User", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let (_, mine) = app.get(Some("alice"), "/api/subscriptions").await;
    assert!(mine["subscriptions"].as_array().unwrap().is_empty());
    for bad in ["../x", "0123456789abcdef0123456789abcdef"] {
        assert_eq!(
            app.post(
                Some("alice"),
                &format!("/api/subscriptions/{bad}/pause"),
                &json!({})
            )
            .await
            .0,
            404,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn slack_deliveries_go_only_to_the_recipients_own_slack_user() {
    let capture = crate::slack::Capture::start().await;
    let mut settings = demo_settings();
    crate::slack::with_slack(&mut settings, &capture);
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    record(&db, "alice", &["analyst"]).await;
    record(&db, "carol", &["compliance"]).await;
    capture.user("UALICE", "alice@example.com", true);
    capture.user("UCAROL", "carol@example.com", true);
    let (app, deliverer) = app(&settings).await;
    let store = SubscriptionStore::new(db.clone());

    let (status, own) = subscribe(
        &app,
        "alice",
        json!({"question": "What was DAU last week?", "cron": "0 9 * * 1", "target": "slack", "slack_user": "UALICE"}),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    make_due(&store, own["id"].as_str().unwrap(), 30).await;
    assert_eq!(deliverer.tick(now()).await, 1);
    let dm = capture
        .delivered(|c| c.path == "chat.postMessage" && c.body["channel"] == "UALICE")
        .await;
    assert!(
        dm.body.to_string().contains("daily active users"),
        "{}",
        dm.body
    );

    // alice naming carol's Slack user: nothing is posted there.
    let (_, other) = subscribe(
        &app,
        "alice",
        json!({"question": "What was DAU last week?", "cron": "0 9 * * 1", "target": "slack", "slack_user": "UCAROL"}),
    )
    .await;
    make_due(&store, other["id"].as_str().unwrap(), 20).await;
    assert_eq!(deliverer.tick(now()).await, 0);
    assert!(
        !capture
            .calls()
            .iter()
            .any(|c| c.path == "chat.postMessage" && c.body["channel"] == "UCAROL"),
        "nothing for carol"
    );
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    let refused = inbox["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscription_id"] == other["id"])
        .expect("the run is recorded");
    assert_eq!(refused["outcome"], "refused");
    assert!(refused["body"].is_null());
}

#[tokio::test]
async fn a_chat_message_asking_for_a_schedule_subscribes() {
    let settings = demo_settings();
    let (app, _) = app(&settings).await;
    let (status, body) = app
        .post(
            Some("alice"),
            "/api/chat",
            &json!({"question": "Send me weekly active users every Monday at 9:00", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "subscription", "{body}");
    assert!(body["data"]["rows"].as_array().unwrap().is_empty());
    let (_, list) = app.get(Some("alice"), "/api/subscriptions").await;
    let s = &list["subscriptions"][0];
    assert_eq!(
        (&s["question"], &s["cron"], &s["timezone"], &s["target"]),
        (
            &json!("weekly active users"),
            &json!("0 9 * * 1"),
            &json!("Europe/Berlin"),
            &json!("inbox")
        )
    );
    // A bad zone: a refusal saying why, and nothing stored.
    let (_, bad) = app
        .post(
            Some("dave"),
            "/api/chat",
            &json!({"question": "send me DAU every day at 8am", "timezone": "Atlantis/Nowhere"}),
        )
        .await;
    assert_eq!(bad["kind"], "refusal", "{bad}");
    assert!(
        bad["reason"]
            .as_str()
            .unwrap()
            .contains("unknown time zone")
    );
    let (_, none) = app.get(Some("dave"), "/api/subscriptions").await;
    assert!(none["subscriptions"].as_array().unwrap().is_empty());
    // A question that only mentions "every day" is answered, not subscribed.
    let (_, q) = app
        .post(
            Some("dave"),
            "/api/chat",
            &json!({"question": "How many signups every day last week?"}),
        )
        .await;
    assert_ne!(q["kind"], "subscription", "{q}");
}

/// Slack unreachable at send time: the run is neither lost nor refused; the
/// schedule does not advance, and after the lease another tick claims it again.
#[tokio::test]
async fn a_run_that_cannot_be_sent_now_is_retried_after_the_lease() {
    let capture = crate::slack::Capture::start().await;
    let mut settings = demo_settings();
    crate::slack::with_slack(&mut settings, &capture);
    // Nothing listens here: every Slack call fails.
    settings.slack.api_base_url =
        format!("http://127.0.0.1:{}/api", crate::oidc_provider::free_port());
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    record(&db, "alice", &["analyst"]).await;
    let (app, deliverer) = app(&settings).await;
    let store = SubscriptionStore::new(db);
    let (_, s) = subscribe(
        &app,
        "alice",
        json!({"question": "What was DAU last week?", "cron": "0 9 * * 1", "target": "slack", "slack_user": "UALICE"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    make_due(&store, id, 30).await;
    let t = now();
    assert_eq!(deliverer.tick(t).await, 0);
    let due_at = store.get(id).await.unwrap().unwrap().next_run_at;
    assert!(due_at <= t, "the schedule did not advance");
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    assert!(
        inbox["deliveries"].as_array().unwrap().is_empty(),
        "{inbox}"
    );
    // Within the lease nobody takes it; after it, a tick claims it again.
    assert!(
        !store
            .claim(id, due_at, "other", t + 1, false)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim(
                id,
                due_at,
                "other",
                t + steward::subscriptions::LEASE_SECS + 1,
                false
            )
            .await
            .unwrap()
    );
    assert_eq!(store.delivery_count(id).await.unwrap(), 1);
}

/// Threshold alerts: set in chat or by API on a named metric; a run sends
/// only when the value (under the recipient's grants) crosses the
/// threshold, once per crossing.
#[tokio::test]
async fn threshold_alerts_send_only_when_the_metric_crosses() {
    let settings = demo_settings();
    let (app, deliverer) = app(&settings).await;
    let store = SubscriptionStore::new(SessionStore::connect(&settings.sessions).await.unwrap());
    let (_, body) = app
        .post(
            Some("alice"),
            "/api/chat",
            &json!({"question": "Tell me when checkout conversion falls below 30%"}),
        )
        .await;
    assert_eq!(body["kind"], "subscription", "{body}");
    let (_, list) = app.get(Some("alice"), "/api/subscriptions").await;
    let alert = &list["subscriptions"][0]["alert"];
    assert_eq!(
        (&alert["metric"], &alert["above"], &alert["threshold"]),
        (
            &json!("checkout_conversion_rate"),
            &json!(false),
            &json!(0.3)
        ),
        "{list}"
    );
    // A rate is always below 2 and never above it.
    let mut ids = Vec::new();
    for above in [false, true] {
        let (status, s) = subscribe(
            &app,
            "alice",
            json!({"question": "ignored", "cron": "0 9 * * *", "alert": {"metric": "checkout_conversion_rate", "above": above, "threshold": 2.0}}),
        )
        .await;
        assert_eq!(status, 201, "{s}");
        make_due(&store, s["id"].as_str().unwrap(), 30).await;
        ids.push(s["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        deliverer.tick(now()).await,
        1,
        "only the alert that fires sends"
    );
    let (_, inbox) = app.get(Some("alice"), "/api/inbox").await;
    let sent = inbox["deliveries"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{inbox}");
    assert_eq!(sent[0]["subscription_id"], ids[0].as_str());
    assert_eq!(sent[0]["body"]["metric"], "checkout_conversion_rate");
    assert_eq!(
        store.delivery_count(&ids[1]).await.unwrap(),
        1,
        "the quiet run is recorded"
    );
    // Still below the next day: once per crossing, so quiet this time.
    make_due(&store, &ids[0], 10).await;
    assert_eq!(
        deliverer.tick(now()).await,
        0,
        "no second alert for one crossing"
    );
    assert_eq!(store.delivery_count(&ids[0]).await.unwrap(), 2);
    assert!(store.get(&ids[0]).await.unwrap().unwrap().alert_firing);
    // Unknown metrics: 400 by API, a refusal in chat.
    let (status, _) = subscribe(
        &app,
        "alice",
        json!({"question": "x", "cron": "0 9 * * *", "alert": {"metric": "nope", "above": true, "threshold": 1.0}}),
    )
    .await;
    assert_eq!(status, 400);
    let (_, refused) = app
        .post(
            Some("alice"),
            "/api/chat",
            &json!({"question": "tell me when the moon phase rises above 3"}),
        )
        .await;
    assert_eq!(refused["kind"], "refusal", "{refused}");
}

/// The inbox copy of subscription `id`'s newest run.
async fn last_run(app: &TestApp, user: &str, id: &str) -> Value {
    let (_, inbox) = app.get(Some(user), "/api/inbox").await;
    inbox["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscription_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no run of {id}: {inbox}"))
}

/// A Slack channel gets a run only when every member (steward's own bot
/// aside) is known to steward, the creator is among them, and each member's
/// own grants give the same answer; otherwise nothing is posted and the
/// creator is told why.
#[tokio::test]
async fn a_channel_gets_only_what_every_member_may_see() {
    use crate::slack::BOT_USER;
    let capture = crate::slack::Capture::start().await;
    let mut settings = demo_settings();
    crate::slack::with_slack(&mut settings, &capture);
    settings.subscriptions.max_channel_members = 3;
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    for (user, role, slack) in [
        ("alice", "analyst", "UALICE"),
        ("bob", "admin", "UBOB"),
        ("erin", "analyst_emea", "UERIN"),
    ] {
        record(&db, user, &[role]).await;
        capture.user(slack, &format!("{user}@example.com"), true);
    }
    capture.user("UFRANK", "frank@example.com", true);
    let (app, deliverer) = app(&settings).await;
    let store = SubscriptionStore::new(db);
    let posts_to = |channel: &'static str| {
        move |c: &crate::slack::Call| c.path == "chat.postMessage" && c.body["channel"] == channel
    };
    let posted = |channel: &str| {
        capture
            .calls()
            .iter()
            .filter(|c| c.path == "chat.postMessage" && c.body["channel"] == channel)
            .count()
    };
    let channel_run = |channel: &str, question: &str| json!({"question": question, "cron": "0 9 * * 1", "target": "channel", "slack_channel": channel});

    // alice and bob see the same DAU: posted, without feedback buttons.
    capture.channel("CSAME", &["UALICE", BOT_USER, "UBOB"]);
    let (status, same) = subscribe(
        &app,
        "alice",
        channel_run("CSAME", "What was DAU last week?"),
    )
    .await;
    assert_eq!(status, 201, "{same}");
    let same_id = same["id"].as_str().unwrap();
    make_due(&store, same_id, 30).await;
    assert_eq!(deliverer.tick(now()).await, 1);
    let post = capture.delivered(posts_to("CSAME")).await;
    let text = post.body.to_string();
    assert!(text.contains("daily active users"), "{text}");
    assert!(
        !text.contains("feedback"),
        "no feedback buttons in a channel: {text}"
    );
    assert_eq!(last_run(&app, "alice", same_id).await["outcome"], "sent");
    // Each member's answer is computed under that member's roles but
    // attributed to alice's delivery: purpose `delivery`, the subscription
    // as parent; no event names bob, who asked nothing.
    let (_, audit) = app
        .get(Some("bob"), "/api/admin/audit?kind=question&limit=20")
        .await;
    let runs: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["channel"] == "subscription" && e["parent"] == same_id)
        .collect();
    assert_eq!(runs.len(), 2, "{audit}");
    assert!(
        runs.iter()
            .all(|e| e["principal"] == "alice" && e["purpose"] == "delivery"),
        "{audit}"
    );
    assert_ne!(runs[0]["roles"], runs[1]["roles"], "{audit}");

    // erin sees EMEA customers only: customers per plan differ, so nothing
    // is posted and alice hears why, by direct message.
    capture.channel("CMIXED", &["UALICE", "UERIN"]);
    let (_, mixed) = subscribe(
        &app,
        "alice",
        channel_run("CMIXED", "How many customers are on each plan?"),
    )
    .await;
    let mixed_id = mixed["id"].as_str().unwrap();
    make_due(&store, mixed_id, 30).await;
    assert_eq!(deliverer.tick(now()).await, 0);
    assert_eq!(posted("CMIXED"), 0, "nothing in the channel");
    let told = capture.delivered(posts_to("UALICE")).await;
    assert!(
        told.body.to_string().contains("different data"),
        "{}",
        told.body
    );
    let run = last_run(&app, "alice", mixed_id).await;
    assert_eq!(run["outcome"], "refused", "{run}");
    assert!(
        run["body"]["notice"]
            .as_str()
            .unwrap()
            .contains("different data")
    );

    // A member steward cannot vouch for; a channel alice left; one too large;
    // one Slack will not list: refused each time, nothing posted.
    for (channel, members, why) in [
        (
            "CSTRANGER",
            &["UALICE", "UFRANK"][..],
            "not known to steward",
        ),
        ("CLEFT", &["UBOB"][..], "not a member"),
        (
            "CBIG",
            &["UALICE", "UBOB", "UERIN", "UFRANK"][..],
            "more than 3 members",
        ),
        ("CMISSING", &[][..], "would not list"),
    ] {
        if channel != "CMISSING" {
            capture.channel(channel, members);
        }
        let (status, s) = subscribe(
            &app,
            "alice",
            channel_run(channel, "What was DAU last week?"),
        )
        .await;
        assert_eq!(status, 201, "{s}");
        let id = s["id"].as_str().unwrap();
        make_due(&store, id, 30).await;
        assert_eq!(deliverer.tick(now()).await, 0, "{channel}");
        assert_eq!(posted(channel), 0, "{channel}");
        let run = last_run(&app, "alice", id).await;
        assert_eq!(run["outcome"], "refused", "{channel}: {run}");
        assert!(
            run["body"]["notice"].as_str().unwrap().contains(why),
            "{channel}: {run}"
        );
    }
    // Which member is steward's own bot is asked of Slack once, not per run.
    assert_eq!(
        capture.count("auth.test"),
        1,
        "auth.test calls over six channel runs"
    );

    // Bad channel ids, and channel targets without Slack, are refused up front.
    for bad in ["", "UALICE", "C1;DROP", &"C".repeat(40)] {
        let (status, body) =
            subscribe(&app, "alice", channel_run(bad, "What was DAU last week?")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let plain = demo_settings();
    let (no_slack, _) = self::app(&plain).await;
    let (status, body) = subscribe(&no_slack, "alice", channel_run("C1", "DAU")).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("Slack is not enabled here"))
    );
}

/// Subscribing from Slack: a direct message subscribes the asker to
/// direct messages, in their Slack time zone; "post to this channel" in a
/// channel subscribes the channel. Each is confirmed where it was asked.
#[tokio::test]
async fn slack_messages_subscribe_the_asker_or_the_channel() {
    use crate::slack::{mention, post_signed};
    let capture = crate::slack::Capture::start().await;
    let mut settings = demo_settings();
    crate::slack::with_slack(&mut settings, &capture);
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    record(&db, "alice", &["analyst"]).await;
    capture.set_user(
        "UALICE",
        json!({"id": "UALICE", "deleted": false, "is_bot": false, "is_email_confirmed": true,
               "tz": "America/New_York", "profile": {"email": "alice@example.com"}}),
    );
    let (app, _) = app(&settings).await;

    // Sends a Slack message event and waits for the reply for which `pick` holds.
    let say = |id: &'static str,
               text: &'static str,
               where_: &'static str,
               pick: fn(&crate::slack::Call) -> bool| {
        let (base, capture) = (&app.base, &capture);
        async move {
            let event = mention(id, "UALICE", text, where_);
            assert_eq!(
                post_signed(base, "/slack/events", &event, false)
                    .await
                    .status(),
                200
            );
            capture.delivered(pick).await
        }
    };
    say(
        "Ev-s1",
        "send me weekly active users every Monday at 9:00",
        "im",
        |c| {
            c.path == "chat.postMessage"
                && c.body["channel"] == "D1"
                && c.body.to_string().contains("Subscribed")
        },
    )
    .await;
    say(
        "Ev-s2",
        "<@UBOT> post to this channel DAU every weekday at 8:30",
        "channel",
        |c| c.path == "chat.postEphemeral" && c.body.to_string().contains("every member"),
    )
    .await;
    // A channel subscription asked for in a direct message has no channel.
    say("Ev-s3", "post to this channel DAU every day", "im", |c| {
        c.body
            .to_string()
            .contains("in the channel it should be posted to")
    })
    .await;

    let (_, list) = app.get(Some("alice"), "/api/subscriptions").await;
    let mut list = list["subscriptions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    list.sort_by_key(|s| s["target"] != "slack");
    assert_eq!(
        (&list[0]["target"], &list[0]["slack_user"], &list[0]["cron"]),
        (&json!("slack"), &json!("UALICE"), &json!("0 9 * * 1"))
    );
    // Read in the asker's Slack time zone, from the users.info call that
    // identified them: one call per message, not two.
    assert_eq!(list[0]["timezone"], "America/New_York");
    assert_eq!(
        capture.count("users.info"),
        3,
        "users.info calls for three messages"
    );
    assert_eq!(
        (
            &list[1]["target"],
            &list[1]["slack_channel"],
            &list[1]["cron"]
        ),
        (&json!("channel"), &json!("C1"), &json!("30 8 * * 1-5"))
    );
}

/// A recipient the identity provider has not vouched for within
/// `subscriptions.identity_max_age_secs` gets a notice asking them to sign
/// in, not data; the subscription stays on and delivers again once the
/// provider has confirmed them. Old deliveries are purged.
#[tokio::test]
async fn stale_identities_get_a_notice_and_old_deliveries_are_purged() {
    let mut settings = demo_settings();
    settings.subscriptions.identity_max_age_secs = 3600;
    settings.subscriptions.inbox_keep_days = 1;
    let db = SessionStore::connect(&settings.sessions).await.unwrap();
    let (app, deliverer) = app(&settings).await;
    let store = SubscriptionStore::new(db.clone());
    let mut old = DirectoryEntry {
        sub: "sub-alice".into(),
        email: "alice@example.com".into(),
        user: "alice".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
        updated_at: now() - 7200,
    };
    db.record_identity(&old).await.unwrap();
    let (_, s) = subscribe(
        &app,
        "alice",
        json!({"question": "What was DAU last week?", "cron": "0 9 * * *"}),
    )
    .await;
    let id = s["id"].as_str().unwrap();
    make_due(&store, id, 30).await;
    assert_eq!(deliverer.tick(now()).await, 1);
    let run = last_run(&app, "alice", id).await;
    assert_eq!(run["outcome"], "notice", "{run}");
    assert!(
        run["body"]["notice"].as_str().unwrap().contains("Sign in"),
        "{run}"
    );
    assert!(run["body"].get("data").is_none());
    assert!(!store.get(id).await.unwrap().unwrap().paused);

    old.updated_at = now();
    db.record_identity(&old).await.unwrap();
    make_due(&store, id, 20).await;
    assert_eq!(deliverer.tick(now()).await, 1);
    assert_eq!(last_run(&app, "alice", id).await["body"]["kind"], "metric");
    assert_eq!(store.delivery_count(id).await.unwrap(), 2);

    // Two days on, a fresh deliverer (its first tick purges) drops both runs.
    store.set_paused(id, true, now()).await.unwrap();
    let later = app_deliverer_clone(&deliverer);
    later.tick(now() + 2 * 86_400).await;
    assert_eq!(store.delivery_count(id).await.unwrap(), 0);
}

/// A deliverer like `d` that has not purged yet.
fn app_deliverer_clone(d: &Deliverer) -> Deliverer {
    Deliverer {
        last_purge: Default::default(),
        ..d.clone()
    }
}
