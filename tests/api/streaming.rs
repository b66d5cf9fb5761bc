//! `POST /api/chat` with `Accept: text/event-stream`.

use crate::helpers::spawn_demo;

/// `(event, data)` pairs of a server-sent event stream.
pub fn events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

#[tokio::test]
async fn a_streamed_answer_reports_progress_then_writes_the_answer() {
    let app = spawn_demo().await;
    let q = "What was our DAU last week vs the week before?";
    let r = app
        .client
        .post(format!("{}/api/chat", app.base))
        .header("X-Steward-Dev-User", "alice")
        .header("Accept", "text/event-stream")
        .json(&serde_json::json!({ "question": q }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let evs = events(&r.text().await.unwrap());
    let kinds: Vec<&str> = evs.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"progress"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"answer"), "{kinds:?}");
    let progress: Vec<serde_json::Value> = evs
        .iter()
        .filter(|(e, _)| e == "progress")
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(progress[0]["stage"], "planned");
    assert_eq!(
        progress
            .iter()
            .filter(|p| p["stage"] == "running_sql")
            .count(),
        2,
        "{progress:?}"
    );
    let final_answer: serde_json::Value = serde_json::from_str(&evs.last().unwrap().1).unwrap();
    let written: String = evs
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(written, final_answer["answer"].as_str().unwrap());
    let (_, plain) = app.ask("alice", q).await;
    assert_eq!(final_answer["data"], plain["data"]);
    assert_eq!(final_answer["kind"], "metric");
}

#[tokio::test]
async fn bad_input_to_a_stream_is_still_a_json_error() {
    let app = spawn_demo().await;
    let r = app
        .client
        .post(format!("{}/api/chat", app.base))
        .header("X-Steward-Dev-User", "alice")
        .header("Accept", "text/event-stream")
        .json(&serde_json::json!({ "question": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "empty_question");
}
