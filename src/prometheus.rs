//! Operational metrics in the Prometheus text format (served at `/metrics`),
//! with the prometheus-client crate. Labels carry routes, methods, status
//! codes and decision names only — never users, questions or values.
//!
//! - `steward_http_requests_total{route,method,status}` and
//!   `steward_http_request_duration_seconds{route}` (histogram);
//! - `steward_llm_tokens_total{kind="prompt"|"completion"}`;
//! - `steward_guard_decisions_total{decision="allowed"|"denied"}`;
//! - `steward_warehouse_seconds` (histogram of statement time);
//! - `steward_audit_events_total{kind}` and `steward_audit_failures_total`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    tokens: Family<Labels, Counter>,
    guard: Family<Labels, Counter>,
    warehouse: Histogram,
    audit_events: Family<Labels, Counter>,
    audit_failures: Counter,
    cache: Family<Labels, Counter>,
    shed: Family<Labels, Counter>,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("steward");
    let requests = Family::<Labels, Counter>::default();
    let latency =
        Family::<Labels, Histogram>::new_with_constructor(seconds_histogram as fn() -> Histogram);
    let tokens = Family::<Labels, Counter>::default();
    // Token counters exist from the start (at 0), so dashboards see them before first use.
    for kind in ["prompt", "completion"] {
        tokens
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc_by(0);
    }
    let guard = Family::<Labels, Counter>::default();
    let warehouse = seconds_histogram();
    let audit_events = Family::<Labels, Counter>::default();
    let audit_failures = Counter::default();
    let cache = Family::<Labels, Counter>::default();
    let shed = Family::<Labels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests by route, method and status",
        requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency by route",
        latency.clone(),
    );
    registry.register(
        "llm_tokens",
        "Language model tokens by kind",
        tokens.clone(),
    );
    registry.register("guard_decisions", "SQL guard decisions", guard.clone());
    registry.register(
        "warehouse_seconds",
        "Time statements spent in the warehouse",
        warehouse.clone(),
    );
    registry.register(
        "audit_events",
        "Audit events written, by kind",
        audit_events.clone(),
    );
    registry.register(
        "audit_failures",
        "Audit events that could not be written",
        audit_failures.clone(),
    );
    registry.register(
        "result_cache_lookups",
        "Statements served from the result cache (hit) or run (miss)",
        cache.clone(),
    );
    registry.register(
        "requests_shed",
        "Requests turned away: busy (503) or rate_limited (429)",
        shed.clone(),
    );
    Metrics {
        registry,
        cache,
        shed,
        requests,
        latency,
        tokens,
        guard,
        warehouse,
        audit_events,
        audit_failures,
    }
});

/// Records one HTTP request (`route` is the matched route pattern).
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let m = &*METRICS;
    m.requests
        .get_or_create(&vec![
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ])
        .inc();
    m.latency
        .get_or_create(&vec![("route", route.to_owned())])
        .observe(took.as_secs_f64());
}

/// Adds language model tokens.
pub fn llm_tokens(prompt: u64, completion: u64) {
    let m = &*METRICS;
    m.tokens
        .get_or_create(&vec![("kind", "prompt".to_owned())])
        .inc_by(prompt);
    m.tokens
        .get_or_create(&vec![("kind", "completion".to_owned())])
        .inc_by(completion);
}

/// Counts a guard decision (`allowed` or `denied`).
pub fn guard_decision(allowed: bool) {
    let decision = if allowed { "allowed" } else { "denied" };
    METRICS
        .guard
        .get_or_create(&vec![("decision", decision.to_owned())])
        .inc();
}

/// Counts a result cache lookup.
pub fn cache_hit(hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    METRICS
        .cache
        .get_or_create(&vec![("outcome", outcome.to_owned())])
        .inc();
}

/// Counts a request turned away (`busy`, `rate_limited`).
pub fn shed(reason: &'static str) {
    METRICS
        .shed
        .get_or_create(&vec![("reason", reason.to_owned())])
        .inc();
}

/// Records a statement's time in the warehouse.
pub fn warehouse_time(took: Duration) {
    METRICS.warehouse.observe(took.as_secs_f64());
}

/// Counts an audit event written (`kind`) or, with `None`, a failed write.
pub fn audit_event(kind: Option<&str>) {
    match kind {
        Some(k) => {
            METRICS
                .audit_events
                .get_or_create(&vec![("kind", k.to_owned())])
                .inc();
        }
        None => {
            METRICS.audit_failures.inc();
        }
    }
}

/// Everything, in the Prometheus text exposition format.
pub fn render() -> String {
    let mut out = String::new();
    let _ = encode(&mut out, &METRICS.registry);
    out
}
