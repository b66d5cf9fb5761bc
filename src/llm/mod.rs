//! A client for the OpenAI-compatible chat-completions API
//! (<https://platform.openai.com/docs/api-reference/chat>), as served by
//! OpenAI, Azure OpenAI, vLLM, Ollama and llama.cpp's server, built on the
//! `async-openai` crate.
//!
//! The client adds what the orchestrator needs around the crate: a request
//! timeout, bounded retries with exponential backoff for transient failures
//! (connection errors, HTTP 429 and 5xx), three output formats (free text, a
//! JSON document constrained by a JSON Schema through `response_format`, or
//! native tool calls), streaming, and token and cost accounting per request.
//! The API key comes only from [`API_KEY_ENV`] and is held as a secret.

pub mod messages;

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestMessage, ChatCompletionTool,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionResponse, FunctionObject, ResponseFormat, ResponseFormatJsonSchema,
    ToolChoiceOptions,
};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Environment variable holding the API key (never read from files or flags).
pub const API_KEY_ENV: &str = "STEWARD_LLM_API_KEY";

/// How the model is asked for its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanMode {
    /// A JSON document constrained by a JSON Schema (`response_format`);
    /// the reliable choice for small local models.
    Json,
    /// Native tool calls (`tools`, `tool_choice: required`).
    Tools,
}

/// How the model answers a question that needs SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmPath {
    /// Text-to-SQL for small models: the linked schema as `CREATE TABLE`
    /// text, SQL written directly in a fenced block, several candidates
    /// run and the largest group of equal results taken
    /// (`orchestrator::sqlgen`). Principals without the `sql` capability
    /// get the plan path.
    Sql,
    /// The plan → act loop over declared tools (`query_metric`, `run_sql`,
    /// `search_docs`, …), for models that follow tool schemas well.
    Plan,
}

/// What happens to a text-to-SQL answer whose candidates mostly disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LowAgreement {
    /// Show it, labelled as low confidence.
    Label,
    /// Refuse it.
    Refuse,
}

/// Which questions go to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The deterministic planner answers what it recognises (metrics, KPI
    /// overview, listings, documentation); the model gets the rest.
    Fallback,
    /// Every question goes to the model (for evaluation).
    Always,
}

/// Where [`LlmClient::samples`] stops decoding: a code fence alone on its
/// line. An opening fence names its language (```` ```sql ````) or starts
/// the reply, so only a closing one matches.
pub const SQL_STOP: &str = "\n```\n";

/// LLM settings (the `[llm]` table of `steward.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// Base URL of the API including the version path, e.g.
    /// `http://127.0.0.1:8091/v1`; `None` disables the LLM path.
    pub url: Option<String>,
    /// Model name sent with each request.
    pub model: String,
    /// How questions that need SQL are answered: `sql` (text-to-SQL with
    /// candidates, for small models) or `plan` (tool plans).
    pub path: LlmPath,
    /// How plans are requested (the `plan` path).
    pub mode: PlanMode,
    /// SQL candidates per question on the `sql` path: one greedy, the rest
    /// sampled at `sample_temperature` (1 = greedy only).
    pub candidates: u8,
    /// Temperature of the sampled candidates.
    pub sample_temperature: f32,
    /// Seed of every sampled request (the API's `seed`, which llama.cpp
    /// and OpenAI honour): the same seed, prompt and model give the same
    /// candidates, so two runs of a benchmark differ only by the change
    /// between them. Requests made one at a time in place of one `n`
    /// request use `seed + i`. `None` leaves sampling unseeded.
    #[serde(default = "default_seed")]
    pub seed: Option<i64>,
    /// Below this share of candidates agreeing on the chosen result, an
    /// answer is low-confidence (0.0–1.0).
    pub min_agreement: f64,
    /// What to do with a low-confidence answer.
    pub low_agreement: LowAgreement,
    /// Statement timeout for a candidate, in milliseconds (the policy's
    /// `statement_timeout_ms` when lower): a candidate that would run long
    /// is dropped rather than holding up the answer.
    #[serde(default = "default_candidate_timeout_ms")]
    pub candidate_timeout_ms: u64,
    /// Rows a candidate's result is read to for comparing (the policy's
    /// `max_rows` when lower); the chosen statement is run again in full
    /// when its candidate result was cut short.
    #[serde(default = "default_candidate_max_rows")]
    pub candidate_max_rows: u64,
    /// Which questions go to the model.
    pub route: Route,
    /// Per-request timeout, in seconds (a stream may not stall longer).
    pub timeout_secs: u64,
    /// Retries after the first attempt for transient failures.
    pub max_retries: u32,
    /// Model calls allowed per question (plan steps plus the answer).
    pub max_steps: u32,
    /// Times a guard rejection or SQL error is fed back for a new statement.
    pub max_repairs: u32,
    /// Completion tokens per request.
    pub max_tokens: u32,
    /// Most requests to the model at once, over all questions; more wait
    /// for a slot.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// How long a request waits for a slot, in milliseconds, before the
    /// question is turned away as busy (HTTP 503).
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// Sampling temperature (0 for repeatable plans).
    pub temperature: f32,
    /// Price of prompt tokens, US dollars per million.
    pub prompt_usd_per_mtok: f64,
    /// Price of completion tokens, US dollars per million.
    pub completion_usd_per_mtok: f64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            url: None,
            model: "qwen2.5-coder-0.5b-instruct".into(),
            path: LlmPath::Sql,
            mode: PlanMode::Json,
            candidates: 4,
            sample_temperature: 0.7,
            seed: default_seed(),
            min_agreement: 0.5,
            low_agreement: LowAgreement::Label,
            candidate_timeout_ms: default_candidate_timeout_ms(),
            candidate_max_rows: default_candidate_max_rows(),
            route: Route::Fallback,
            timeout_secs: 120,
            max_retries: 2,
            max_steps: 5,
            max_repairs: 2,
            max_tokens: 400,
            max_concurrent: default_max_concurrent(),
            queue_timeout_ms: default_queue_timeout_ms(),
            temperature: 0.0,
            prompt_usd_per_mtok: 0.0,
            completion_usd_per_mtok: 0.0,
        }
    }
}

fn default_seed() -> Option<i64> {
    Some(0)
}

fn default_candidate_timeout_ms() -> u64 {
    5_000
}

fn default_candidate_max_rows() -> u64 {
    1_000
}

fn default_max_concurrent() -> usize {
    4
}

fn default_queue_timeout_ms() -> u64 {
    30_000
}

/// Tokens and cost, summed over requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Requests made (retries included).
    pub requests: u32,
    /// Prompt tokens, as reported by the server.
    pub prompt_tokens: u64,
    /// Completion tokens, as reported by the server.
    pub completion_tokens: u64,
    /// Cost in US dollars from the configured prices.
    pub cost_usd: f64,
}

impl Usage {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_usd += other.cost_usd;
    }
}

/// A tool the model may call: name, description, JSON Schema of its arguments.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Tool name.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// What the reply must look like.
#[derive(Debug, Clone)]
pub enum Format {
    /// Free text.
    Text,
    /// A JSON document valid against `schema`.
    Json {
        /// Schema name (letters, digits, `_`, `-`).
        name: &'static str,
        /// The JSON Schema.
        schema: serde_json::Value,
    },
    /// One or more native tool calls (`tool_choice: required`).
    Tools(Vec<ToolSpec>),
}

/// One tool call from the model; `arguments` is the raw JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Call id, echoed in the tool result message.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text (may be malformed: the model wrote it).
    pub arguments: String,
}

/// A model reply.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Text content, if any.
    pub content: Option<String>,
    /// Native tool calls, if any.
    pub tool_calls: Vec<ToolCall>,
    /// What this reply cost.
    pub usage: Usage,
}

/// Several completions of one prompt ([`LlmClient::samples`]).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// The texts, in the server's order (empty strings for empty choices).
    pub texts: Vec<String>,
    /// What the request cost.
    pub usage: Usage,
}

/// Why a model call failed. Messages name the failure, never the prompt.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No model is configured.
    #[error("no language model is configured")]
    NotConfigured,
    /// The server could not be reached or did not answer in time, after retries.
    #[error("the language model is unavailable: {0}")]
    Unavailable(String),
    /// The server answered with an error or a reply that could not be read.
    #[error("the language model failed: {0}")]
    Failed(String),
    /// Every model slot stayed taken past `llm.queue_timeout_ms`; the request
    /// was not sent.
    #[error("the language model is busy")]
    Busy,
}

/// An OpenAI-compatible chat-completions client.
pub struct LlmClient {
    client: Client<OpenAIConfig>,
    settings: LlmSettings,
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("url", &self.settings.url)
            .field("model", &self.settings.model)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// Builds a client from settings; `None` when no URL is configured.
    ///
    /// # Errors
    /// [`LlmError::Failed`] when the URL is not http(s), a candidate setting
    /// is out of range (`candidates` 0, `min_agreement` outside 0–1,
    /// `sample_temperature` outside 0–2) or the HTTP client cannot be built.
    pub fn from_settings(settings: &LlmSettings) -> Result<Option<LlmClient>, LlmError> {
        let Some(url) = settings.url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if settings.candidates == 0 {
            return Err(LlmError::Failed("llm.candidates must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&settings.min_agreement) {
            return Err(LlmError::Failed(
                "llm.min_agreement must be between 0 and 1".into(),
            ));
        }
        if !(0.0..=2.0).contains(&settings.sample_temperature) {
            return Err(LlmError::Failed(
                "llm.sample_temperature must be between 0 and 2".into(),
            ));
        }
        let parsed = url::Url::parse(url).map_err(|e| LlmError::Failed(format!("llm.url: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(LlmError::Failed(format!(
                "llm.url must be http or https, not {}",
                parsed.scheme()
            )));
        }
        let key = std::env::var(API_KEY_ENV)
            .map(SecretString::from)
            .unwrap_or_else(|_| SecretString::from("none"));
        let config = OpenAIConfig::new()
            .with_api_base(url.trim_end_matches('/'))
            .with_api_key(key.expose_secret());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(settings.timeout_secs))
            .build()
            .map_err(|e| LlmError::Failed(format!("http client: {e}")))?;
        Ok(Some(LlmClient {
            client: Client::with_config(config).with_http_client(http),
            settings: settings.clone(),
            slots: tokio::sync::Semaphore::new(settings.max_concurrent.max(1)),
        }))
    }

    /// The settings in use.
    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// Waits for one of `llm.max_concurrent` request slots, up to
    /// `llm.queue_timeout_ms`; then the question is marked overloaded
    /// ([`crate::audit::scope::note_overloaded`]) and this fails.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, LlmError> {
        let wait = Duration::from_millis(self.settings.queue_timeout_ms);
        match tokio::time::timeout(wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                crate::audit::scope::note_overloaded();
                Err(LlmError::Busy)
            }
        }
    }

    /// One chat completion in `format`, retried on transient failures.
    ///
    /// # Errors
    /// [`LlmError::Unavailable`] after the retries; [`LlmError::Failed`] for
    /// errors a retry cannot fix (bad request, unreadable reply).
    pub async fn complete(
        &self,
        messages: &[ChatCompletionRequestMessage],
        format: &Format,
    ) -> Result<Reply, LlmError> {
        let (response, attempts) = self.create(self.request(messages, format, false)).await?;
        let mut reply = Reply {
            usage: self.usage(response.usage.as_ref(), attempts),
            ..Reply::default()
        };
        if let Some(choice) = response.choices.into_iter().next() {
            reply.content = choice.message.content;
            reply.tool_calls = tool_calls(choice.message.tool_calls);
        }
        Ok(reply)
    }

    /// `n` free-text completions of one prompt at `temperature`, seeded
    /// with `llm.seed`. They are asked for in one request (the API's `n`;
    /// llama.cpp evaluates the prompt once and decodes the sequences in
    /// parallel slots). A server that rejects `n` or returns fewer choices
    /// (llama.cpp with one slot, several OpenAI-compatible servers) is sent
    /// the missing ones as single requests at the same time, seeded
    /// `seed + i`, so the caller always gets `n` texts when the server
    /// answers at all.
    /// Decoding stops at the line after a closing code fence
    /// ([`SQL_STOP`]): the statement is in the fence, and the request lasts
    /// as long as its longest sequence, so one that goes on to explain
    /// itself would hold up every candidate.
    ///
    /// # Errors
    /// As [`LlmClient::complete`], when no request returns a text.
    pub async fn samples(
        &self,
        messages: &[ChatCompletionRequestMessage],
        n: u8,
        temperature: f32,
    ) -> Result<Samples, LlmError> {
        let n = n.max(1);
        let first = self.sample_request(messages, n, temperature, 0).await;
        let mut out = match first {
            Ok(s) => s,
            Err(e) if n == 1 => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, n, "a request for several samples failed; asking one at a time");
                Samples::default()
            }
        };
        out.texts.truncate(usize::from(n));
        let missing = usize::from(n) - out.texts.len();
        if missing == 0 {
            return Ok(out);
        }
        let offset = out.texts.len() as i64;
        let singles = futures_util::future::join_all(
            (0..missing as i64).map(|i| self.sample_request(messages, 1, temperature, offset + i)),
        )
        .await;
        let mut last_error = None;
        for single in singles {
            match single {
                Ok(s) => {
                    out.usage.add(&s.usage);
                    out.texts.extend(s.texts.into_iter().take(1));
                }
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) if out.texts.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// One request for `n` samples, seeded `llm.seed + offset`.
    async fn sample_request(
        &self,
        messages: &[ChatCompletionRequestMessage],
        n: u8,
        temperature: f32,
        offset: i64,
    ) -> Result<Samples, LlmError> {
        let mut request = self.request(messages, &Format::Text, false);
        request.temperature = Some(temperature);
        // OpenAI marks `seed` deprecated; llama.cpp and vLLM honour it, and a
        // server that ignores it only makes runs less repeatable.
        #[allow(deprecated)]
        {
            request.seed = self.settings.seed.map(|s| s.wrapping_add(offset));
        }
        request.stop = Some(async_openai::types::chat::StopConfiguration::String(
            SQL_STOP.to_owned(),
        ));
        if n > 1 {
            request.n = Some(n);
        }
        let (response, attempts) = self.create(request).await?;
        let texts = response
            .choices
            .into_iter()
            .map(|c| c.message.content.unwrap_or_default())
            .collect();
        Ok(Samples {
            texts,
            usage: self.usage(response.usage.as_ref(), attempts),
        })
    }

    /// Sends `request`, retrying transient failures; the response and the
    /// number of attempts it took.
    async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<(CreateChatCompletionResponse, u32), LlmError> {
        let _slot = self.slot().await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = tokio::time::timeout(
                Duration::from_secs(self.settings.timeout_secs),
                self.client.chat().create(request.clone()),
            )
            .await;
            let error = match result {
                Ok(Ok(response)) => return Ok((response, attempts)),
                Ok(Err(e)) => e,
                Err(_) => {
                    if attempts > self.settings.max_retries {
                        return Err(LlmError::Unavailable("timed out".into()));
                    }
                    backoff(attempts).await;
                    continue;
                }
            };
            if !retryable(&error) {
                return Err(LlmError::Failed(short(&error)));
            }
            if attempts > self.settings.max_retries {
                return Err(LlmError::Unavailable(short(&error)));
            }
            tracing::warn!(attempt = attempts, error = %short(&error), "llm request failed; retrying");
            backoff(attempts).await;
        }
    }

    /// A free-text completion streamed from the server; `on_delta` sees each
    /// piece of text as it arrives. Retried only while nothing has arrived.
    ///
    /// # Errors
    /// As [`LlmClient::complete`]; a stream that stalls longer than the
    /// timeout is [`LlmError::Unavailable`].
    pub async fn stream_text(
        &self,
        messages: &[ChatCompletionRequestMessage],
        mut on_delta: impl FnMut(&str),
    ) -> Result<Reply, LlmError> {
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        let request = self.request(messages, &Format::Text, true);
        let _slot = self.slot().await?;
        let mut attempts = 0;
        let mut stream = loop {
            attempts += 1;
            match tokio::time::timeout(timeout, self.client.chat().create_stream(request.clone()))
                .await
            {
                Ok(Ok(s)) => break s,
                Ok(Err(e)) if !retryable(&e) => return Err(LlmError::Failed(short(&e))),
                Ok(Err(e)) if attempts > self.settings.max_retries => {
                    return Err(LlmError::Unavailable(short(&e)));
                }
                Err(_) if attempts > self.settings.max_retries => {
                    return Err(LlmError::Unavailable("timed out".into()));
                }
                _ => backoff(attempts).await,
            }
        };
        let mut reply = Reply {
            content: Some(String::new()),
            usage: self.usage(None, attempts),
            ..Reply::default()
        };
        let mut reported = None;
        loop {
            let next = tokio::time::timeout(timeout, stream.next())
                .await
                .map_err(|_| LlmError::Unavailable("stream stalled".into()))?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| LlmError::Failed(short(&e)))?;
            if chunk.usage.is_some() {
                reported = chunk.usage.clone();
            }
            for choice in chunk.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    on_delta(&text);
                    reply.content.get_or_insert_default().push_str(&text);
                }
            }
        }
        reply.usage = self.usage(reported.as_ref(), attempts);
        Ok(reply)
    }

    fn request(
        &self,
        messages: &[ChatCompletionRequestMessage],
        format: &Format,
        stream: bool,
    ) -> CreateChatCompletionRequest {
        let mut request = CreateChatCompletionRequest {
            model: self.settings.model.clone(),
            messages: messages.to_vec(),
            temperature: Some(self.settings.temperature),
            max_completion_tokens: Some(self.settings.max_tokens),
            ..Default::default()
        };
        if stream {
            request.stream = Some(true);
            request.stream_options = Some(async_openai::types::chat::ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
        }
        match format {
            Format::Text => {}
            Format::Json { name, schema } => {
                request.response_format = Some(ResponseFormat::JsonSchema {
                    json_schema: ResponseFormatJsonSchema {
                        name: (*name).to_owned(),
                        schema: schema.clone(),
                        strict: Some(true),
                        description: None,
                    },
                });
            }
            Format::Tools(tools) => {
                request.tools = Some(
                    tools
                        .iter()
                        .map(|t| {
                            ChatCompletionTools::Function(ChatCompletionTool {
                                function: FunctionObject {
                                    name: t.name.to_owned(),
                                    description: Some(t.description.to_owned()),
                                    parameters: Some(t.parameters.clone()),
                                    strict: None,
                                },
                            })
                        })
                        .collect(),
                );
                request.tool_choice = Some(ChatCompletionToolChoiceOption::Mode(
                    ToolChoiceOptions::Required,
                ));
            }
        }
        request
    }

    fn usage(
        &self,
        reported: Option<&async_openai::types::chat::CompletionUsage>,
        requests: u32,
    ) -> Usage {
        let (p, c) = reported
            .map(|u| (u64::from(u.prompt_tokens), u64::from(u.completion_tokens)))
            .unwrap_or_default();
        Usage {
            requests,
            prompt_tokens: p,
            completion_tokens: c,
            cost_usd: (p as f64 * self.settings.prompt_usd_per_mtok
                + c as f64 * self.settings.completion_usd_per_mtok)
                / 1e6,
        }
    }
}

fn tool_calls(calls: Option<Vec<ChatCompletionMessageToolCalls>>) -> Vec<ToolCall> {
    calls
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| match c {
            ChatCompletionMessageToolCalls::Function(f) => Some(ToolCall {
                id: f.id,
                name: f.function.name,
                arguments: f.function.arguments,
            }),
            ChatCompletionMessageToolCalls::Custom(_) => None,
        })
        .collect()
}

/// Connection failures, timeouts, HTTP 429 and 5xx are worth another try.
fn retryable(e: &OpenAIError) -> bool {
    match e {
        OpenAIError::Reqwest(r) => {
            r.is_connect()
                || r.is_timeout()
                || r.status()
                    .is_some_and(|s| s.as_u16() == 429 || s.is_server_error())
        }
        OpenAIError::ApiError(a) => {
            a.status_code.as_u16() == 429 || a.status_code.is_server_error()
        }
        OpenAIError::StreamError(_) => true,
        _ => false,
    }
}

/// 250 ms, 500 ms, 1 s, … capped at 4 s.
async fn backoff(attempt: u32) {
    let ms = 250u64 << attempt.saturating_sub(1).min(4);
    tokio::time::sleep(Duration::from_millis(ms.min(4000))).await;
}

/// An error message without response bodies (which may echo the prompt).
fn short(e: &OpenAIError) -> String {
    match e {
        OpenAIError::ApiError(a) => format!("HTTP {}", a.status_code),
        OpenAIError::Reqwest(r) if r.is_connect() => "connection refused".into(),
        OpenAIError::Reqwest(r) if r.is_timeout() => "timed out".into(),
        OpenAIError::Reqwest(r) => r
            .status()
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| "request failed".into()),
        OpenAIError::JSONDeserialize(..) => "unreadable reply".into(),
        OpenAIError::StreamError(_) => "stream failed".into(),
        _ => "invalid request".into(),
    }
}

#[cfg(test)]
mod tests;
