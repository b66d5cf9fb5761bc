//! Building the application from settings: policy, semantic layer, warehouse
//! (the demo one generated on first run), docs index, and the HTTP listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use tokio::net::TcpListener;

use crate::auth::DevIdentities;
use crate::demo::{self, DemoManifest};
use crate::http::{AppState, router};
use crate::llm::LlmClient;
use crate::orchestrator::prompt::Prompts;
use crate::orchestrator::{Orchestrator, verified};
use crate::policy::Policy;
use crate::retrieval::Retriever;
use crate::semantic::{SemanticLayer, SemanticSource};
use crate::settings::Settings;
use crate::warehouse;

/// Loads the policy and the semantic layer from a policy directory; row
/// filters follow the semantic models' entities as well as `schema.yaml`'s keys.
///
/// # Errors
/// A policy or metric file that does not load (`file:line: reason`).
pub fn load_policy(dir: &Path) -> anyhow::Result<(Policy, SemanticLayer)> {
    load_policy_from(dir, &SemanticSource::Dir(dir.join("semantic")))
}

/// [`load_policy`] with the semantic layer read from `semantic` (a dbt
/// project or manifest); `schema.yaml` still holds what dbt does not know:
/// column classes, synonyms, row filters.
///
/// # Errors
/// A policy or metric file that does not load (`file:line: reason`); a
/// semantic model whose table `schema.yaml` does not list names both files.
pub fn load_policy_from(
    dir: &Path,
    semantic: &SemanticSource,
) -> anyhow::Result<(Policy, SemanticLayer)> {
    let mut policy = Policy::load(dir)?;
    let semantic = SemanticLayer::load_from(semantic, &policy.schema).map_err(|mut e| {
        if e.reason.contains("schema.yaml does not list") {
            e.reason = format!("{} ({})", e.reason, dir.join("schema.yaml").display());
        }
        e
    })?;
    policy
        .add_foreign_keys(semantic.foreign_keys())
        .map_err(|(role, table, reason)| {
            anyhow::anyhow!(
                "{}: role {role}, table {table}: {reason}",
                dir.join("roles.yaml").display()
            )
        })?;
    Ok((policy, semantic))
}

/// Builds the orchestrator: loads and validates policy files, opens the
/// warehouse (generating the demo one when it is the default and missing),
/// and opens or builds the docs index.
///
/// # Errors
/// Invalid policy, metric or verified-query files (with file, line and
/// reason), an unreachable warehouse, an unreadable docs corpus, a broken
/// prompt template, or an invalid `llm.url`.
pub async fn build_orchestrator(settings: &Settings) -> anyhow::Result<Orchestrator> {
    let source = settings.semantic_source().map_err(anyhow::Error::msg)?;
    let (policy, semantic) = load_policy_from(&settings.policies, &source)?;
    let mut as_of = settings.as_of;
    if let Some(path) = settings.demo_warehouse_path() {
        if !path.exists() {
            let day = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            tracing::info!(path = %path.display(), as_of = %day, "generating the demo warehouse (first run)");
            demo::generate(&path, day, 1.0).await?;
        }
        if as_of.is_none() {
            as_of = DemoManifest::read(&path).map(|m| m.as_of);
        }
    } else if let Some(path) = settings.warehouse.strip_prefix("sqlite://")
        && as_of.is_none()
    {
        as_of = DemoManifest::read(Path::new(path)).map(|m| m.as_of);
    }
    let warehouse =
        warehouse::connect_governed(&settings.warehouse, settings.enforce_in_database, &policy)
            .await
            .context("opening the warehouse")?;

    let docs = open_docs(settings).await?;
    let verified = verified::load(&settings.policies, &policy, warehouse.dialect())
        .map_err(anyhow::Error::msg)?;
    let prompts = Prompts::load(&settings.prompts).map_err(anyhow::Error::msg)?;
    let llm = LlmClient::from_settings(&settings.llm)?.map(Arc::new);
    if let Some(l) = &llm {
        tracing::info!(model = %l.settings().model, mode = ?l.settings().mode, route = ?l.settings().route, "language model configured");
    }
    let database = crate::session::SessionStore::connect(&settings.sessions)
        .await
        .context("opening steward's database (sessions.database)")?;
    let queue_timeout = std::time::Duration::from_millis(settings.limits.queue_timeout_ms);
    let mut bounded = warehouse::cache::Bounded::new(
        warehouse,
        &settings.warehouse,
        &settings.cache,
        settings.limits.max_concurrent_statements,
        queue_timeout,
    );
    if settings.cache.shared {
        bounded = bounded.with_shared_tier(database.clone(), settings.cache.max_age_secs);
    }
    let warehouse: Arc<dyn warehouse::Warehouse> = Arc::new(bounded);
    let conversations = crate::orchestrator::conversation::ConversationStore::new(database.clone());
    let audit = crate::audit::AuditLog::new(database, &settings.audit)?;
    audit.check_key().await?;
    let mut orchestrator = Orchestrator {
        audit,
        policy: Arc::new(policy),
        semantic: Arc::new(semantic),
        warehouse,
        docs: Arc::new(docs),
        as_of: as_of.unwrap_or_else(|| chrono::Utc::now().date_naive()),
        dimension_values: Default::default(),
        samples: Default::default(),
        conversations,
        llm,
        prompts: Arc::new(prompts),
        verified: Arc::new(verified::VerifiedSet::new(verified)),
        retry_after_secs: queue_timeout.as_secs().max(1),
    };
    let review = crate::review::ReviewStore::new(orchestrator.audit.database().clone());
    crate::review::refresh(&orchestrator, &review)
        .await
        .context("reading approved verified queries")?;
    let saved = settings.index_dir.join("dimension_values.json");
    orchestrator
        .load_dimension_values(settings.index_dir.is_dir().then_some(saved.as_path()))
        .await;
    Ok(orchestrator)
}

/// The docs index in `index_dir`. When that index is new or mirrors the
/// configured `docs` corpus, the corpus is ingested into it first
/// (incremental: on later starts only what changed is re-read and
/// re-embedded); an index `steward ingest` built from other paths is served as
/// it is. An unusable `index_dir` falls back to an in-memory index of `docs`.
///
/// # Errors
/// An unreadable corpus or a failing vector store in the in-memory fallback.
pub async fn open_docs(settings: &Settings) -> anyhow::Result<Retriever> {
    let dir = &settings.index_dir;
    let corpus = std::slice::from_ref(&settings.docs);
    let (retriever, on_disk) = match Retriever::open(Some(dir), &settings.retrieval).await {
        Ok(r) => (r, true),
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "docs index unusable; indexing in memory");
            (Retriever::open(None, &settings.retrieval).await?, false)
        }
    };
    if !settings.docs.is_dir() || !retriever.mirrors(corpus) {
        return Ok(retriever);
    }
    match retriever.ingest(corpus, false).await {
        Ok(report) => tracing::info!(
            documents = report.documents,
            changed = report.added.len() + report.changed.len() + report.deleted.len(),
            chunks = report.chunks,
            embedded = report.embedded,
            failed = report.errors.len(),
            mode = ?report.mode,
            "documentation index up to date"
        ),
        Err(e) if on_disk => {
            tracing::warn!(error = %e, "updating the docs index failed; serving it as it was");
        }
        Err(e) => return Err(e).context("indexing the documentation"),
    }
    Ok(retriever)
}

/// The running service.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    subscriptions: crate::settings::SubscriptionSettings,
}

impl Application {
    /// Builds everything and binds the listener (`bind` may use port 0).
    ///
    /// # Errors
    /// Anything [`build_orchestrator`] reports;
    /// dev identity mode on a non-loopback address; oidc mode without
    /// `auth.oidc.redirect_uri`; an unknown mode; a bind failure.
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let addr: SocketAddr = settings
            .bind
            .parse()
            .with_context(|| format!("bind address {:?}", settings.bind))?;
        let dev = match settings.auth.mode.as_str() {
            "dev" => {
                if !addr.ip().is_loopback() {
                    bail!("dev identity mode only listens on loopback; refusing to bind {addr}");
                }
                true
            }
            "oidc" => {
                if settings
                    .auth
                    .oidc
                    .as_ref()
                    .is_none_or(|o| o.redirect_uri.is_none())
                {
                    bail!("auth.mode \"oidc\" needs auth.oidc.issuer, client_id and redirect_uri");
                }
                false
            }
            other => bail!("auth.mode {other:?} is not supported; use \"dev\" or \"oidc\""),
        };
        let orchestrator = build_orchestrator(settings).await?;
        // In oidc mode no dev identity exists, so the dev header names nobody.
        let dev_users = if dev {
            settings.auth.dev_users.clone()
        } else {
            Default::default()
        };
        let identities = DevIdentities::new(&dev_users, &orchestrator.policy);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let sessions = orchestrator.audit.database().clone();
        let identity =
            crate::auth::identity_map::IdentityMap::load(&settings.policies, &orchestrator.policy)
                .map_err(anyhow::Error::msg)?;
        let sso = settings
            .auth
            .oidc
            .clone()
            .filter(|o| o.redirect_uri.is_some())
            .map(|o| Arc::new(crate::auth::sso::Sso::new(o)));
        let slack = crate::slack::Slack::from_settings(&settings.slack)
            .map_err(anyhow::Error::msg)?
            .map(Arc::new);
        let metrics_token = std::env::var("STEWARD_METRICS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| Arc::new(secrecy::SecretString::from(t)));
        let state = AppState {
            metrics_token,
            dev_mode: dev,
            slack,
            sso,
            identity: Arc::new(identity),
            orchestrator: Arc::new(orchestrator),
            identities: Arc::new(identities),
            limits: Arc::new(settings.limits.clone()),
            questions: Arc::new(crate::http::rate::QuestionLimiter::new(&settings.limits)),
            admission: Arc::new(crate::http::rate::Admission::new(&settings.limits)),
            draining: Arc::default(),
            review: Arc::new(crate::review::RegressionSets {
                sets: settings.review.eval_sets.clone(),
                users: settings.auth.dev_users.clone(),
            }),
            sessions,
            oidc: settings
                .auth
                .oidc
                .clone()
                .map(|o| Arc::new(crate::auth::oidc::Provider::new(o))),
        };
        Ok(Application {
            listener,
            state,
            subscriptions: settings.subscriptions.clone(),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// What runs this instance's subscription deliveries (the scheduler
    /// `run_until_stopped` starts calls it every
    /// `subscriptions.tick_secs`); tests call its `tick` directly.
    pub fn deliverer(&self) -> crate::subscriptions::Deliverer {
        crate::subscriptions::Deliverer {
            orchestrator: Arc::clone(&self.state.orchestrator),
            sessions: self.state.sessions.clone(),
            store: crate::subscriptions::SubscriptionStore::new(self.state.sessions.clone()),
            dev_users: self
                .state
                .dev_mode
                .then(|| Arc::clone(&self.state.identities)),
            slack: self.state.slack.clone(),
            instance: crate::audit::new_id(),
            settings: self.subscriptions.clone(),
            last_purge: Arc::default(),
        }
    }

    /// The as-of date answers use.
    pub fn as_of(&self) -> NaiveDate {
        self.state.orchestrator.as_of
    }

    /// Serves until SIGTERM or Ctrl-C, then drains: `/readyz` fails, no new
    /// connection is accepted, idle connections close, and requests in
    /// flight (streamed answers included) get `limits.shutdown_grace_secs`
    /// to finish before the process exits anyway.
    ///
    /// # Errors
    /// I/O errors of the server.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(port = self.port(), "steward listening");
        let audit = self.state.orchestrator.audit.clone();
        let conversations = self.state.orchestrator.conversations.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(audit.settings().purge_every_secs.max(60));
            loop {
                match audit.purge(chrono::Utc::now().timestamp_millis()).await {
                    Ok(e) => tracing::info!(purged = e.rows.unwrap_or(0), "audit retention purge"),
                    Err(e) => tracing::error!(error = %e, "audit retention purge failed"),
                }
                match conversations
                    .forget_idle(chrono::Utc::now().timestamp())
                    .await
                {
                    Ok(n) => tracing::debug!(forgotten = n, "idle conversations purged"),
                    Err(e) => tracing::warn!(error = %e, "idle conversation purge failed"),
                }
                tokio::time::sleep(every).await;
            }
        });
        if self.subscriptions.tick_secs > 0 {
            let deliverer = self.deliverer();
            let every = std::time::Duration::from_secs(self.subscriptions.tick_secs);
            tokio::spawn(async move {
                loop {
                    let n = deliverer.tick(chrono::Utc::now().timestamp()).await;
                    if n > 0 {
                        tracing::info!(delivered = n, "subscription runs delivered");
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
        let limits = Arc::clone(&self.state.limits);
        let draining = Arc::clone(&self.state.draining);
        let grace_secs = limits.shutdown_grace_secs;
        serve(self.listener, router(self.state), &limits, async move {
            stop_signal().await;
            tracing::info!(grace_secs, "shutting down: finishing answers in flight");
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
        })
        .await;
        Ok(())
    }
}

/// Completes on SIGTERM (what container runtimes and systemd send) or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves HTTP/1.1 connections (hyper) until `shutdown` completes, then
/// stops accepting and lets open connections finish their requests for up
/// to `limits.shutdown_grace_secs` (hyper's graceful shutdown). At most
/// `limits.max_connections` at once (past it, new connections wait in the
/// listen backlog instead of taking file descriptors), and a client that
/// does not send its headers within `limits.header_read_timeout_ms` is
/// disconnected. TLS and HTTP/2 belong to the proxy in front of steward.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: &crate::settings::Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_millis(
            limits.header_read_timeout_ms.max(1),
        ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = Arc::clone(&permits).acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, never spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
    drop(listener);
    let grace = std::time::Duration::from_secs(limits.shutdown_grace_secs);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections finished; stopped"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; stopping with requests in flight"),
    }
}
