//! HTTP hardening: DNS rebinding in dev mode, slow-headers clients, the
//! connection limit, and the `/metrics` bearer token.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::helpers::{demo_db, demo_settings, spawn, spawn_demo, steward_command};
use crate::oidc_provider::free_port;

#[tokio::test]
async fn dev_mode_answers_only_loopback_host_names() {
    let app = spawn_demo().await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    for (host, want) in [
        ("evil.example".to_owned(), 421),
        (format!("evil.example:{port}"), 421),
        (format!("rebind.127.0.0.1.nip.io:{port}"), 421),
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.1:{port}"), 200),
    ] {
        let r = app
            .client
            .get(format!("{}/api/metrics", app.base))
            .header("Host", &host)
            .header("X-Steward-Dev-User", "carol")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{host}");
    }
}

/// Opens a connection and sends part of a request's headers.
fn half_request(base: &str) -> std::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    s
}

#[tokio::test]
async fn slow_header_clients_are_cut_off_and_connections_are_bounded() {
    let mut s = demo_settings();
    s.limits.header_read_timeout_ms = 400;
    s.limits.max_connections = 2;
    let app = spawn(s).await;
    let base = app.base.clone();
    // A client that never finishes its headers is disconnected.
    let started = Instant::now();
    let closed = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            let mut c = half_request(&base);
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let _ = c.read_to_end(&mut buf);
        }
    });
    closed.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Two held connections take both places; a third request waits for one.
    let held = [half_request(&base), half_request(&base)];
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    assert!(quick.get(format!("{base}/healthz")).send().await.is_err());
    drop(held);
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let port = free_port();
    let mut child = steward_command()
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--warehouse",
            &format!("sqlite://{}", demo_db().display()),
        ])
        .env("STEWARD_METRICS_TOKEN", "s3cret-scrape-token")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = |auth: Option<&'static str>| {
        let mut r = http.get(format!("{base}/metrics"));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let outcome = if up {
        Some((
            status(None).await,
            status(Some("Bearer wrong")).await,
            status(Some("Bearer s3cret-scrape-token-and-more")).await,
            status(Some("Bearer s3cret-scrape-token")).await,
        ))
    } else {
        None
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(outcome, Some((401, 401, 401, 200)));
}
