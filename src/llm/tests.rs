//! Unit tests of the client: configuration, cost accounting, retries.
use super::*;

#[test]
fn no_url_means_no_client_and_bad_schemes_fail() {
    let mut s = LlmSettings::default();
    assert!(LlmClient::from_settings(&s).unwrap().is_none());
    s.url = Some("file:///etc/passwd".into());
    assert!(matches!(
        LlmClient::from_settings(&s),
        Err(LlmError::Failed(m)) if m.contains("http")
    ));
    s.url = Some("not a url".into());
    assert!(LlmClient::from_settings(&s).is_err());
    s.url = Some("http://127.0.0.1:9/v1/".into());
    assert!(LlmClient::from_settings(&s).unwrap().is_some());
}

#[test]
fn candidate_settings_out_of_range_are_refused_by_name() {
    let ok = LlmSettings {
        url: Some("http://127.0.0.1:9/v1".into()),
        ..LlmSettings::default()
    };
    assert!(LlmClient::from_settings(&ok).unwrap().is_some());
    for (bad, key) in [
        (
            LlmSettings {
                candidates: 0,
                ..ok.clone()
            },
            "llm.candidates",
        ),
        (
            LlmSettings {
                min_agreement: 1.5,
                ..ok.clone()
            },
            "llm.min_agreement",
        ),
        (
            LlmSettings {
                sample_temperature: -1.0,
                ..ok.clone()
            },
            "llm.sample_temperature",
        ),
    ] {
        assert!(
            matches!(LlmClient::from_settings(&bad), Err(LlmError::Failed(m)) if m.contains(key)),
            "{key}"
        );
    }
}

#[test]
fn usage_prices_tokens_per_million() {
    let s = LlmSettings {
        url: Some("http://127.0.0.1:9/v1".into()),
        prompt_usd_per_mtok: 2.0,
        completion_usd_per_mtok: 8.0,
        ..LlmSettings::default()
    };
    let c = LlmClient::from_settings(&s).unwrap().unwrap();
    let u = c.usage(
        Some(&async_openai::types::chat::CompletionUsage {
            prompt_tokens: 1_000,
            completion_tokens: 500,
            total_tokens: 1_500,
            ..Default::default()
        }),
        1,
    );
    assert!((u.cost_usd - 0.006).abs() < 1e-12, "{u:?}");
    let mut total = Usage::default();
    total.add(&u);
    total.add(&u);
    assert_eq!((total.requests, total.prompt_tokens), (2, 2_000));
}

#[tokio::test]
async fn a_closed_port_is_unavailable_after_bounded_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = LlmSettings {
        url: Some(format!("http://127.0.0.1:{port}/v1")),
        max_retries: 1,
        ..LlmSettings::default()
    };
    let c = LlmClient::from_settings(&s).unwrap().unwrap();
    let e = c.complete(&[], &Format::Text).await.unwrap_err();
    assert!(matches!(e, LlmError::Unavailable(_)), "{e}");
}
