//! Boards of saved answers: pins re-run under each viewer's grants (checked
//! against hand-written SQL on the demo warehouse), served from the result
//! cache on a second open with their as-of time; personal boards hidden
//! from everyone else; hostile and malformed requests refused.

use serde_json::{Value, json};

use crate::helpers::{TestApp, demo_db, oracle, spawn_demo};

const QUESTION: &str = "How many customers are on each plan?";

/// The sum of the numeric cells of an answer's table.
fn total(answer: &Value) -> f64 {
    answer["data"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().filter_map(Value::as_f64))
        .sum()
}

async fn board(app: &TestApp, user: &str, name: &str, shared: bool) -> String {
    let (status, b) = app
        .post(
            Some(user),
            "/api/boards",
            &json!({"name": name, "shared": shared}),
        )
        .await;
    assert_eq!(status, 201, "{b}");
    b["id"].as_str().unwrap().to_owned()
}

async fn run(app: &TestApp, user: &str, board: &str, pin: &str) -> (u16, Value) {
    app.post(
        Some(user),
        &format!("/api/boards/{board}/pins/{pin}/run"),
        &json!({}),
    )
    .await
}

#[tokio::test]
async fn a_shared_board_shows_each_viewer_what_they_may_see() {
    let app = spawn_demo().await;
    let shared = board(&app, "alice", "  Customer   health ", true).await;
    let (status, pin) = app
        .post(
            Some("alice"),
            &format!("/api/boards/{shared}/pins"),
            &json!({"question": QUESTION}),
        )
        .await;
    assert_eq!(status, 201, "{pin}");
    let pin = pin["id"].as_str().unwrap().to_owned();

    // Everyone sees the shared board; its name was tidied.
    let (_, list) = app.get(Some("erin"), "/api/boards").await;
    let listed = &list["boards"][0];
    assert_eq!(
        (&listed["name"], &listed["owner"], &listed["pins"]),
        (&json!("Customer health"), &json!("alice"), &json!(1)),
        "{list}"
    );

    // alice (analyst) sees every customer; erin (EMEA analyst) only EMEA ones.
    let all = oracle(demo_db(), "SELECT CAST(COUNT(*) AS REAL) FROM customers").await[0];
    let emea = oracle(
        demo_db(),
        "SELECT CAST(COUNT(*) AS REAL) FROM customers WHERE region = 'EMEA'",
    )
    .await[0];
    assert!(emea > 0.0 && emea < all);
    let (status, a) = run(&app, "alice", &shared, &pin).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(total(&a["answer"]), all, "{a}");
    assert!(a["answer"]["as_of"].is_string(), "{a}");
    let (_, e) = run(&app, "erin", &shared, &pin).await;
    assert_eq!(total(&e["answer"]), emea, "{e}");
    // dave (viewer) may not run ad-hoc SQL: no customer table for him.
    let (_, d) = run(&app, "dave", &shared, &pin).await;
    assert!(
        d["answer"]["data"]["rows"].as_array().unwrap().is_empty(),
        "{d}"
    );

    // Opened again a while later: from the cache, with the first read's
    // as-of time (to within the few milliseconds between the run's start
    // and the cache's record), not the time of this open.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, again) = run(&app, "alice", &shared, &pin).await;
    assert_eq!(again["answer"]["cached"], true, "{again}");
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["answer"]["as_of"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert!((at(&again) - at(&a)).abs() < 1000, "{again}");
    assert_eq!(total(&again["answer"]), all);

    // Each run is audited under the viewer.
    let event = e["answer"]["event_id"].as_str().unwrap();
    let (_, audited) = app
        .get(Some("bob"), &format!("/api/admin/audit/{event}"))
        .await;
    assert_eq!(audited["event"]["principal"], "erin", "{audited}");

    // Only the owner changes it; an admin may delete it.
    let (status, _) = app
        .post(
            Some("erin"),
            &format!("/api/boards/{shared}/pins"),
            &json!({"question": "What was DAU last week?"}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        app.delete(Some("erin"), &format!("/api/boards/{shared}/pins/{pin}"))
            .await,
        403
    );
    assert_eq!(
        app.delete(Some("erin"), &format!("/api/boards/{shared}"))
            .await,
        403
    );
    assert_eq!(
        app.delete(Some("bob"), &format!("/api/boards/{shared}"))
            .await,
        204
    );
    assert_eq!(
        app.get(Some("alice"), &format!("/api/boards/{shared}"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn personal_boards_are_hidden_and_bad_requests_refused() {
    let app = spawn_demo().await;
    let mine = board(&app, "alice", "Mine", false).await;
    let (_, pin) = app
        .post(
            Some("alice"),
            &format!("/api/boards/{mine}/pins"),
            &json!({"question": "What was DAU last week?"}),
        )
        .await;
    let pin = pin["id"].as_str().unwrap().to_owned();
    let (status, opened) = app.get(Some("alice"), &format!("/api/boards/{mine}")).await;
    assert_eq!(status, 200);
    assert_eq!(opened["pins"][0]["question"], "What was DAU last week?");

    // Someone else's personal board does not exist for anyone else, admins included.
    for user in ["erin", "bob"] {
        assert_eq!(
            app.get(Some(user), &format!("/api/boards/{mine}")).await.0,
            404
        );
        assert_eq!(run(&app, user, &mine, &pin).await.0, 404, "{user}");
        let (_, list) = app.get(Some(user), "/api/boards").await;
        assert!(list["boards"].as_array().unwrap().is_empty(), "{list}");
    }
    // Unauthenticated.
    assert_eq!(app.get(None, "/api/boards").await.0, 401);
    assert_eq!(
        app.post(None, "/api/boards", &json!({"name": "x"})).await.0,
        401
    );

    // Malformed and hostile input.
    for body in [
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(81)}),
        json!({"name": "a\u{0007}b"}),
        json!({"name": "ok", "owner": "bob"}),
        json!({"name": 3}),
    ] {
        let (status, b) = app.post(Some("alice"), "/api/boards", &body).await;
        assert_eq!(status, 400, "{body}: {b}");
    }
    for id in ["nope", "../../etc/passwd", &"f".repeat(32), "' OR 1=1 --"] {
        let path = format!("/api/boards/{}", urlencoding(id));
        assert_eq!(app.get(Some("alice"), &path).await.0, 404, "{id}");
    }
    assert_eq!(run(&app, "alice", &mine, &"0".repeat(32)).await.0, 404);
    let pins = format!("/api/boards/{mine}/pins");
    for (body, want) in [
        (json!({"question": ""}), 400),
        (json!({"question": "x".repeat(5000)}), 413),
        (json!({"question": "What was DAU last week?"}), 400),
        (json!({"q": "DAU"}), 400),
    ] {
        let (status, b) = app.post(Some("alice"), &pins, &body).await;
        assert_eq!(status, want, "{b}");
    }
    // A full board takes no more.
    for i in 1..steward::boards::MAX_PINS_PER_BOARD {
        let (status, b) = app
            .post(
                Some("alice"),
                &pins,
                &json!({"question": format!("DAU on day {i}")}),
            )
            .await;
        assert_eq!(status, 201, "{b}");
    }
    // Shown in the order pinned, although pinned within the same second.
    let (_, opened) = app.get(Some("alice"), &format!("/api/boards/{mine}")).await;
    let order: Vec<&str> = opened["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["question"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = std::iter::once("What was DAU last week?".to_owned())
        .chain((1..steward::boards::MAX_PINS_PER_BOARD).map(|i| format!("DAU on day {i}")))
        .collect();
    assert_eq!(order, expected);
    let (status, b) = app
        .post(Some("alice"), &pins, &json!({"question": "one more"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("at most"),
        "{b}"
    );

    // The owner removes a pin, then the board.
    assert_eq!(
        app.delete(Some("alice"), &format!("{pins}/{pin}")).await,
        204
    );
    assert_eq!(
        app.delete(Some("alice"), &format!("{pins}/{pin}")).await,
        404
    );
    assert_eq!(
        app.delete(Some("alice"), &format!("/api/boards/{mine}"))
            .await,
        204
    );
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Per-user limits hold under parallel requests (the count and the insert
/// are one serialized transaction), and every governed action is an audit
/// event naming who took it.
#[tokio::test]
async fn limits_hold_under_parallel_requests_and_actions_are_audited() {
    let app = spawn_demo().await;
    let created = |path: String, body: Value, n: usize| {
        let app = &app;
        async move {
            let posts = (0..n).map(|i| {
                let mut body = body.clone();
                if body.get("name").is_some() {
                    body["name"] = json!(format!("board {i}"));
                }
                if body.get("question").is_some() {
                    body["question"] = json!(format!("{QUESTION} ({i})"));
                }
                let path = path.clone();
                async move { app.post(Some("alice"), &path, &body).await }
            });
            let results = futures_util::future::join_all(posts).await;
            for (status, body) in &results {
                assert!(*status == 201 || *status == 400, "{status} {body}");
            }
            results.iter().filter(|(s, _)| *s == 201).count()
        }
    };
    assert_eq!(
        created("/api/boards".into(), json!({"name": ""}), 60).await,
        steward::boards::MAX_BOARDS_PER_USER as usize
    );
    let (_, list) = app.get(Some("alice"), "/api/boards").await;
    let boards = list["boards"].as_array().unwrap();
    assert_eq!(boards.len(), steward::boards::MAX_BOARDS_PER_USER as usize);
    let target = boards[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created(
            format!("/api/boards/{target}/pins"),
            json!({"question": ""}),
            40
        )
        .await,
        steward::boards::MAX_PINS_PER_BOARD as usize
    );
    let (_, opened) = app
        .get(Some("alice"), &format!("/api/boards/{target}"))
        .await;
    assert_eq!(
        opened["pins"].as_array().unwrap().len(),
        steward::boards::MAX_PINS_PER_BOARD as usize
    );
    assert_eq!(
        created(
            "/api/subscriptions".into(),
            json!({"question": "", "cron": "0 9 * * 1"}),
            80
        )
        .await,
        steward::subscriptions::MAX_PER_USER
    );

    // Each creation is an audit event under alice, with the object's id.
    let (status, events) = app
        .get(
            Some("bob"),
            "/api/admin/audit?user=alice&kind=board&limit=1000",
        )
        .await;
    assert_eq!(status, 200, "{events}");
    let events = events["events"].as_array().unwrap();
    let created_boards = events
        .iter()
        .filter(|e| e["detail"]["name"].is_string() && e["outcome"] == "created")
        .count();
    assert_eq!(
        created_boards,
        steward::boards::MAX_BOARDS_PER_USER as usize
    );
    let pin_event = events
        .iter()
        .find(|e| e["detail"]["pin"].is_string())
        .expect("a pin's event");
    assert_eq!(pin_event["id"], pin_event["detail"]["pin"]);
    let (_, subs) = app
        .get(
            Some("bob"),
            "/api/admin/audit?user=alice&kind=subscription&limit=1000",
        )
        .await;
    assert_eq!(
        subs["events"].as_array().unwrap().len(),
        steward::subscriptions::MAX_PER_USER
    );

    // Deleting is audited too, with the object as parent; a pin's run is
    // attributed to the pin.
    let pin = opened["pins"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = run(&app, "alice", &target, &pin).await;
    assert_eq!(status, 200);
    let (_, questions) = app
        .get(Some("bob"), "/api/admin/audit?user=alice&kind=question")
        .await;
    let q = &questions["events"][0];
    assert_eq!(
        (&q["purpose"], &q["parent"]),
        (&json!("board"), &json!(pin)),
        "{q}"
    );
    assert_eq!(
        app.delete(Some("alice"), &format!("/api/boards/{target}"))
            .await,
        204
    );
    let (_, after) = app
        .get(
            Some("bob"),
            "/api/admin/audit?user=alice&kind=board&outcome=deleted",
        )
        .await;
    assert_eq!(after["events"][0]["parent"], json!(target), "{after}");
}
