//! A bounded load generator for a steward on loopback (run by `scripts/load`).
//!
//! `--concurrency` clients ask questions from a mix (one per line in
//! `--questions`, or a built-in mix of ten everyday questions) in turn, as
//! the `--users` in turn, through `POST /api/chat` with the dev identity
//! header, for `--duration-secs`. It reports answers per second, latency
//! percentiles of answers (nearest-rank, milliseconds), 503s and 429s (shed
//! load, counted apart from errors), errors, the server's resident set (with
//! `--server-pid`: the largest `VmRSS` sampled every 100 ms during the run,
//! and `VmHWM`, the peak since it started, start-up included), and, with
//! `--audit-db`, the question events written during the run against the
//! answers returned (they must be equal). Output is one JSON object on stdout.
//!
//! It refuses any URL that is not loopback: this is for measuring your own
//! instance, never for pointing at someone else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

/// Ten questions people ask every day: metrics, a breakdown, a comparison,
/// the KPI overview, a listing, documentation, and a refused PII request.
const MIX: [&str; 10] = [
    "What was our DAU last week vs the week before?",
    "How many signups last week?",
    "What is MRR by plan?",
    "Show me the KPI overview",
    "Signups last week by platform",
    "What was revenue last month?",
    "Which dashboard should I open to look at churn?",
    "Show me the email addresses of customers who churned last month.",
    "How many tickets were opened last week?",
    "What's the conversion rate for the checkout flow?",
];

#[derive(Parser, Debug)]
#[command(about = "Bounded load against a steward on loopback")]
struct Args {
    /// steward's base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Clients asking at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// How long to ask, in seconds.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Questions, one per line (default: the built-in mix of ten).
    #[arg(long)]
    questions: Option<std::path::PathBuf>,
    /// Dev users to ask as, comma-separated.
    #[arg(long, default_value = "alice,bob,carol,dave,erin,sam")]
    users: String,
    /// Ask every question as every user once before measuring (a warm cache).
    #[arg(long)]
    warm: bool,
    /// The server's process id, for its peak resident set.
    #[arg(long)]
    server_pid: Option<u32>,
    /// steward's database URL (`sqlite://…` or `postgres://…`), to count the
    /// question events written during the run.
    #[arg(long)]
    audit_db: Option<String>,
}

/// What one request ended as.
enum Outcome {
    Answer(Duration),
    Busy,
    RateLimited,
    Error(String),
}

async fn ask(client: &reqwest::Client, url: &str, user: &str, question: &str) -> Outcome {
    let started = Instant::now();
    let sent = client
        .post(format!("{url}/api/chat"))
        .header("X-Steward-Dev-User", user)
        .json(&json!({ "question": question }))
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("transport: {e}")),
    };
    let status = response.status().as_u16();
    // The whole body is part of the answer's latency.
    let body = response.bytes().await;
    match (status, body) {
        (200, Ok(_)) => Outcome::Answer(started.elapsed()),
        (503, Ok(b)) if String::from_utf8_lossy(&b).contains("\"busy\"") => Outcome::Busy,
        (429, Ok(_)) => Outcome::RateLimited,
        (s, _) => Outcome::Error(format!("HTTP {s}")),
    }
}

/// The `p`-th percentile (0–100) of sorted `ms`, nearest-rank.
fn percentile(ms: &[f64], p: f64) -> f64 {
    if ms.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
    ms[rank.clamp(1, ms.len()) - 1]
}

/// A memory figure of `pid` in MiB: `VmHWM` (peak resident set since it
/// started) or `VmRSS` (now), from `/proc/PID/status`.
fn rss_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Question events written since `since_ms` (answered or refused, and all).
async fn question_events(db: &str, since_ms: i64) -> anyhow::Result<(i64, i64)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db).await?;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(since_ms)
                .fetch_one(&pool)
                .await
        }
    };
    let answered = count(
        "SELECT count(*) FROM audit_events WHERE kind = 'question' AND at_ms >= $1 \
         AND outcome IN ('answered', 'refused')",
    )
    .await?;
    let all =
        count("SELECT count(*) FROM audit_events WHERE kind = 'question' AND at_ms >= $1").await?;
    Ok((answered, all))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = url::Url::parse(&args.url)?;
    let authority = match host.port() {
        Some(p) => format!("{}:{p}", host.host_str().unwrap_or_default()),
        None => host.host_str().unwrap_or_default().to_owned(),
    };
    anyhow::ensure!(
        steward::http::is_loopback_host(&authority),
        "refusing {}: the load generator only targets loopback",
        args.url
    );
    anyhow::ensure!(
        args.concurrency > 0 && args.duration_secs > 0,
        "concurrency and duration must be positive"
    );
    let questions: Vec<String> = match &args.questions {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        None => MIX.iter().map(|q| (*q).to_owned()).collect(),
    };
    let users: Vec<String> = args.users.split(',').map(str::to_owned).collect();
    anyhow::ensure!(
        !questions.is_empty() && !users.is_empty(),
        "no questions or no users"
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    if args.warm {
        for q in &questions {
            for u in &users {
                if let Outcome::Error(e) = ask(&client, &args.url, u, q).await {
                    anyhow::bail!("warm-up failed: {e}");
                }
            }
        }
    }
    let since_ms = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    let next = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new((questions, users));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, url, next, shared) = (
                client.clone(),
                args.url.clone(),
                Arc::clone(&next),
                Arc::clone(&shared),
            );
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (questions, users) = &*shared;
                    let q = &questions[i % questions.len()];
                    // Users advance once per full pass of the mix, so every
                    // user asks every question.
                    let u = &users[(i / questions.len()) % users.len()];
                    let outcome = ask(&client, &url, u, q).await;
                    if matches!(outcome, Outcome::Busy | Outcome::RateLimited) {
                        // A polite client backs off instead of hammering.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();
    // The server's resident set, sampled every 100 ms while the run lasts.
    let sampler = args.server_pid.map(|pid| {
        tokio::spawn(async move {
            let mut max: f64 = 0.0;
            while Instant::now() < deadline {
                if let Some(now) = rss_mib(pid, "VmRSS:") {
                    max = max.max(now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            max
        })
    });
    let mut latencies = Vec::new();
    let (mut busy, mut limited) = (0usize, 0usize);
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for w in workers {
        for o in w.await? {
            match o {
                Outcome::Answer(d) => latencies.push(d.as_secs_f64() * 1000.0),
                Outcome::Busy => busy += 1,
                Outcome::RateLimited => limited += 1,
                Outcome::Error(e) => *errors.entry(e).or_default() += 1,
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_during_run = match sampler {
        Some(s) => Some(s.await?),
        None => None,
    };
    latencies.sort_by(f64::total_cmp);
    let audit = match &args.audit_db {
        Some(db) => {
            // The last answers' events are written before they are sent.
            let (answered, all) = question_events(db, since_ms).await?;
            json!({
                "question_events_answered": answered,
                "question_events_all": all,
                "matches_answers": answered == latencies.len() as i64,
            })
        }
        None => Value::Null,
    };
    let report = json!({
        "concurrency": args.concurrency,
        "duration_secs": elapsed,
        "warm": args.warm,
        "answers": latencies.len(),
        "answers_per_sec": latencies.len() as f64 / elapsed,
        "latency_ms": {
            "p50": percentile(&latencies, 50.0),
            "p95": percentile(&latencies, 95.0),
            "p99": percentile(&latencies, 99.0),
            "max": latencies.last().copied().unwrap_or(0.0),
        },
        "busy_503": busy,
        "rate_limited_429": limited,
        "errors": errors,
        "server_rss_mib": {
            "max_during_run": rss_during_run,
            "peak_since_start": args.server_pid.and_then(|p| rss_mib(p, "VmHWM:")),
        },
        "audit": audit,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
