//! A typed client for Tasker's REST API (SPEC §8.1).
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker_client::ClientError> {
//! use tasker_client::Client;
//! use tasker_types::api::TaskRequest;
//!
//! let client = Client::new("http://127.0.0.1:8080")?;
//! let task = client
//!     .create_task(&TaskRequest::new("linear_workflow", "mathematical_sequence", serde_json::json!({"value": 6})))
//!     .await?;
//! println!("{} is {}", task.task_uuid, task.state);
//! # Ok(()) }
//! ```
//!
//! API errors come back as [`ClientError::Api`] with the server's `code`,
//! `message` and `details`, so callers branch on codes, not on text.
//! [`Client::with_credentials`] sends a JWT or an API key when the server
//! has auth on; [`watch`] follows a task over gRPC's `WatchTask`.

pub mod watch;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tasker_types::api::{
    ErrorBody, HealthReport, StepActionRequest, StepAudit, StepView, TaskList, TaskListQuery,
    TaskRequest, TaskView, TemplateDetail, TemplateRegistration, TemplateSummary, ValidationReport,
};
use tasker_types::dlq::{
    DlqBulkResolve, DlqBulkResult, DlqEntryView, DlqList, DlqListQuery, DlqStats, DlqUpdate,
};
use tasker_types::ids::{DlqEntryUuid, StepUuid, TaskUuid};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{message} ({status} {code})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code, e.g. `duplicate_task`.
        code: String,
        /// The server's explanation.
        message: String,
        /// Structured details.
        details: Value,
    },
    /// The server could not be reached or did not answer in time.
    #[error("cannot reach the Tasker server at {url}: {source}")]
    Transport {
        /// The server's base URL.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The server answered with something this client does not understand.
    #[error("unexpected response from the server ({status}): {message}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What went wrong.
        message: String,
    },
    /// The base URL is not usable.
    #[error("`{0}` is not an http(s) URL")]
    InvalidUrl(String),
}

impl ClientError {
    /// The API error code, if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What the client proves itself with (SPEC §8.3); nothing when the
/// server runs with auth off.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials.
    #[default]
    None,
    /// A JWT, sent as `Authorization: Bearer <token>`.
    Bearer(String),
    /// An API key, sent as `X-API-Key: <key>`.
    ApiKey(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs and panics.
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Bearer(_) => "Bearer(…)",
            Credentials::ApiKey(_) => "ApiKey(…)",
        })
    }
}

impl Credentials {
    /// The header name and value to send, if any.
    pub fn header(&self) -> Option<(&'static str, String)> {
        match self {
            Credentials::None => None,
            Credentials::Bearer(token) => Some(("authorization", format!("Bearer {token}"))),
            Credentials::ApiKey(key) => Some(("x-api-key", key.clone())),
        }
    }
}

/// How the client retries requests the server refused with 503 and
/// `Retry-After` (SPEC §12 backpressure): at most `max_retries` times,
/// waiting what the server asked but never more than `max_wait`. A request
/// that is not idempotent (`POST`, `PATCH`) is retried only when the server
/// says it refused it before doing anything (`circuit_open`,
/// `backpressure`), so nothing is done twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try; 0 turns retrying off.
    pub max_retries: u32,
    /// The longest single wait.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_wait: Duration::from_secs(10),
        }
    }
}

/// Error codes of requests refused before anything was done.
const REFUSED_CODES: [&str; 2] = ["circuit_open", "backpressure"];

impl RetryPolicy {
    /// How long to wait before retry number `retry` (1-based) of a `method`
    /// request answered `status` with error `code` and a `Retry-After` of
    /// `retry_after` seconds; `None`: do not retry.
    pub fn delay(
        &self,
        retry: u32,
        method: &Method,
        status: StatusCode,
        code: Option<&str>,
        retry_after: Option<u64>,
    ) -> Option<Duration> {
        if retry > self.max_retries || status != StatusCode::SERVICE_UNAVAILABLE {
            return None;
        }
        let seconds = retry_after?;
        let idempotent = !matches!(*method, Method::POST | Method::PATCH);
        let refused = code.is_some_and(|c| REFUSED_CODES.contains(&c));
        (idempotent || refused).then(|| Duration::from_secs(seconds).min(self.max_wait))
    }
}

/// A Tasker REST client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    retry: RetryPolicy,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`),
    /// with a 30-second request timeout.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] for a non-http(s) URL.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, Duration::from_secs(30))
    }

    /// A client with a custom request timeout.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] for a non-http(s) URL.
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("tasker-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Transport {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            http,
            base,
            credentials: Credentials::None,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client retrying refused requests as `policy` says.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The same client sending `credentials` with every request.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// The credentials it sends.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match self.credentials.header() {
            Some((name, value)) => builder.header(name, value),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        self.send_accepting(builder, &[]).await
    }

    /// Sends, treating `also_ok` statuses as successes (e.g. 503 from
    /// readiness), and retrying refusals as the [`RetryPolicy`] says.
    async fn send_accepting<T: DeserializeOwned>(
        &self,
        mut builder: RequestBuilder,
        also_ok: &[StatusCode],
    ) -> Result<T, ClientError> {
        let transport = |source| ClientError::Transport {
            url: self.base.clone(),
            source,
        };
        let method = builder
            .try_clone()
            .and_then(|b| b.build().ok())
            .map(|r| r.method().clone());
        let mut retry = 0;
        loop {
            retry += 1;
            // Bodies here are JSON in memory, so a builder always clones;
            // one that did not is simply sent once.
            let again = builder.try_clone();
            let response = builder.send().await.map_err(transport)?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let bytes = response.bytes().await.map_err(transport)?;
            if status.is_success() || also_ok.contains(&status) {
                return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                    status: status.as_u16(),
                    message: e.to_string(),
                });
            }
            let error = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) => ClientError::Api {
                    status: status.as_u16(),
                    code: body.error.code,
                    message: body.error.message,
                    details: body.error.details,
                },
                Err(_) => ClientError::Decode {
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                },
            };
            let delay = method.as_ref().and_then(|m| {
                self.retry
                    .delay(retry, m, status, error.code(), retry_after)
            });
            match (delay, again) {
                (Some(delay), Some(again)) => {
                    tokio::time::sleep(delay).await;
                    builder = again;
                }
                _ => return Err(error),
            }
        }
    }

    /// `POST /v1/tasks`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `template_not_found`, `schema_mismatch`,
    /// `duplicate_task` (details carry the existing `task_uuid`), …
    pub async fn create_task(&self, request: &TaskRequest) -> Result<TaskView, ClientError> {
        self.send(self.request(Method::POST, "/v1/tasks").json(request))
            .await
    }

    /// `GET /v1/tasks/{uuid}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `task_not_found`.
    pub async fn get_task(&self, task: TaskUuid) -> Result<TaskView, ClientError> {
        self.send(self.request(Method::GET, &format!("/v1/tasks/{task}")))
            .await
    }

    /// `GET /v1/tasks`.
    ///
    /// # Errors
    /// [`ClientError::Api`] for invalid filters.
    pub async fn list_tasks(&self, query: &TaskListQuery) -> Result<TaskList, ClientError> {
        self.send(self.request(Method::GET, "/v1/tasks").query(query))
            .await
    }

    /// `DELETE /v1/tasks/{uuid}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `task_not_found` or `already_finished`.
    pub async fn cancel_task(
        &self,
        task: TaskUuid,
        reason: Option<&str>,
    ) -> Result<TaskView, ClientError> {
        let mut builder = self.request(Method::DELETE, &format!("/v1/tasks/{task}"));
        if let Some(reason) = reason {
            builder = builder.query(&[("reason", reason)]);
        }
        self.send(builder).await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `task_not_found`.
    pub async fn list_steps(&self, task: TaskUuid) -> Result<Vec<StepView>, ClientError> {
        self.send(self.request(Method::GET, &format!("/v1/tasks/{task}/workflow_steps")))
            .await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `task_not_found` or `step_not_found`.
    pub async fn get_step(&self, task: TaskUuid, step: StepUuid) -> Result<StepView, ClientError> {
        self.send(self.request(
            Method::GET,
            &format!("/v1/tasks/{task}/workflow_steps/{step}"),
        ))
        .await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}/audit`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `task_not_found` or `step_not_found`.
    pub async fn step_audit(
        &self,
        task: TaskUuid,
        step: StepUuid,
    ) -> Result<StepAudit, ClientError> {
        self.send(self.request(
            Method::GET,
            &format!("/v1/tasks/{task}/workflow_steps/{step}/audit"),
        ))
        .await
    }

    /// `PATCH /v1/tasks/{uuid}/workflow_steps/{step_uuid}`: an operator's
    /// repair of a step (`reset_for_retry`, `resolve_manually` or
    /// `complete_manually`), audited with `actor` and `reason`. Returns the
    /// step after the action; the task resumes from there.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `bad_request` (a missing `actor`, `reason`
    /// or `result`, or a field the action does not take), `task_not_found`,
    /// `step_not_found`, `invalid_step_action` (the step's state does not
    /// allow it) or `already_finished` (the task is complete or cancelled).
    pub async fn act_on_step(
        &self,
        task: TaskUuid,
        step: StepUuid,
        request: &StepActionRequest,
    ) -> Result<StepView, ClientError> {
        self.send(
            self.request(
                Method::PATCH,
                &format!("/v1/tasks/{task}/workflow_steps/{step}"),
            )
            .json(request),
        )
        .await
    }

    /// `GET /v1/dlq`: DLQ entries, newest first, one page at a time.
    ///
    /// # Errors
    /// [`ClientError::Api`] for invalid filters.
    pub async fn list_dlq(&self, query: &DlqListQuery) -> Result<DlqList, ClientError> {
        self.send(self.request(Method::GET, "/v1/dlq").query(query))
            .await
    }

    /// `GET /v1/dlq/stats`: counts of DLQ entries by reason and status.
    ///
    /// # Errors
    /// [`ClientError`] on transport failure.
    pub async fn dlq_stats(&self) -> Result<DlqStats, ClientError> {
        self.send(self.request(Method::GET, "/v1/dlq/stats")).await
    }

    /// `GET /v1/dlq/task/{uuid}`: every DLQ entry of one task, newest first.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `task_not_found`.
    pub async fn dlq_for_task(&self, task: TaskUuid) -> Result<Vec<DlqEntryView>, ClientError> {
        self.send(self.request(Method::GET, &format!("/v1/dlq/task/{task}")))
            .await
    }

    /// `PATCH /v1/dlq/entry/{uuid}`: records an investigation's outcome.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `bad_request` (closing without
    /// `resolved_by`), `dlq_entry_not_found`, or `dlq_status_conflict` (the
    /// entry is closed, or the change goes backwards).
    pub async fn update_dlq_entry(
        &self,
        entry: DlqEntryUuid,
        update: &DlqUpdate,
    ) -> Result<DlqEntryView, ClientError> {
        self.send(
            self.request(Method::PATCH, &format!("/v1/dlq/entry/{entry}"))
                .json(update),
        )
        .await
    }

    /// `POST /v1/dlq/resolve`: applies one update to every open entry
    /// matching a filter. Returns how many changed.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `bad_request` (e.g. closing without
    /// `resolved_by`).
    pub async fn resolve_dlq(
        &self,
        request: &DlqBulkResolve,
    ) -> Result<DlqBulkResult, ClientError> {
        self.send(self.request(Method::POST, "/v1/dlq/resolve").json(request))
            .await
    }

    /// `GET /v1/templates`.
    ///
    /// # Errors
    /// [`ClientError`] on transport failure.
    pub async fn list_templates(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<TemplateSummary>, ClientError> {
        let mut builder = self.request(Method::GET, "/v1/templates");
        if let Some(namespace) = namespace {
            builder = builder.query(&[("namespace", namespace)]);
        }
        self.send(builder).await
    }

    /// `GET /v1/templates/{namespace}/{name}/{version}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `template_not_found`.
    pub async fn get_template(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<TemplateDetail, ClientError> {
        self.send(self.request(
            Method::GET,
            &format!("/v1/templates/{namespace}/{name}/{version}"),
        ))
        .await
    }

    /// `POST /v1/templates` with a YAML body.
    ///
    /// # Errors
    /// [`ClientError::Api`] with `invalid_template` (details list every
    /// problem) or `template_conflict`.
    pub async fn register_template(&self, yaml: &str) -> Result<TemplateRegistration, ClientError> {
        let builder = self
            .request(Method::POST, "/v1/templates")
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(yaml.to_owned());
        self.send(builder).await
    }

    /// `POST /v1/templates/validate` with a YAML body.
    ///
    /// # Errors
    /// [`ClientError`] on transport failure.
    pub async fn validate_template(&self, yaml: &str) -> Result<ValidationReport, ClientError> {
        let builder = self
            .request(Method::POST, "/v1/templates/validate")
            .header(reqwest::header::CONTENT_TYPE, "application/yaml")
            .body(yaml.to_owned());
        self.send(builder).await
    }

    /// `GET /health/detailed` (an unhealthy server's report is returned, not an error).
    ///
    /// # Errors
    /// [`ClientError::Transport`] when the server cannot be reached.
    pub async fn health(&self) -> Result<HealthReport, ClientError> {
        self.send_accepting(
            self.request(Method::GET, "/health/detailed"),
            &[StatusCode::SERVICE_UNAVAILABLE],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

    #[test]
    fn refusals_are_retried_after_the_servers_wait_capped_and_bounded() {
        let policy = RetryPolicy {
            max_retries: 2,
            max_wait: Duration::from_secs(5),
        };
        let post = Method::POST;
        assert_eq!(
            policy.delay(1, &post, UNAVAILABLE, Some("backpressure"), Some(2)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay(2, &post, UNAVAILABLE, Some("circuit_open"), Some(60)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            policy.delay(3, &post, UNAVAILABLE, Some("backpressure"), Some(1)),
            None
        );
    }

    #[test]
    fn a_post_that_may_have_run_is_not_retried_but_a_read_is() {
        let policy = RetryPolicy::default();
        // `unavailable` or `timeout`: the server may have done the work.
        assert_eq!(
            policy.delay(1, &Method::POST, UNAVAILABLE, Some("timeout"), Some(1)),
            None
        );
        assert_eq!(
            policy.delay(1, &Method::POST, UNAVAILABLE, Some("unavailable"), Some(1)),
            None
        );
        assert_eq!(
            policy.delay(1, &Method::GET, UNAVAILABLE, Some("unavailable"), Some(1)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn only_a_503_with_retry_after_is_retried() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, &Method::GET, UNAVAILABLE, None, None), None);
        assert_eq!(
            policy.delay(
                1,
                &Method::GET,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                Some(1)
            ),
            None
        );
        let off = RetryPolicy {
            max_retries: 0,
            ..policy
        };
        assert_eq!(off.delay(1, &Method::GET, UNAVAILABLE, None, Some(1)), None);
    }
}
