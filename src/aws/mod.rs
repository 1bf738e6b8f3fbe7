//! AWS adapters behind the ports: IAM, Secrets Manager, SNS, Security Hub, Organizations, STS; plus SDK set-up shared by all.

pub mod approvals;
pub mod iam;
pub mod members;
pub mod org_structure;
pub mod organizations;
pub mod root_access;
pub mod rotation;
pub mod securityhub;
pub mod sns;
pub mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::ports::CallError;

/// Where to reach AWS: `None` fields fall back to the SDK's environment chain.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// Override of every service endpoint (the local emulator); `AWS_ENDPOINT_URL` also works.
    pub url: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Longest time one call may take, retries included (interactive use); `None` in Lambda,
    /// where the invocation's deadline bounds the work.
    pub call_timeout: Option<Duration>,
}

/// Checks an endpoint URL before any call is made: `http://` or `https://`, then a host.
pub fn validate_endpoint_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "endpoint URL {url:?} is not valid: expected http://HOST[:PORT] or https://HOST[:PORT], \
             e.g. http://127.0.0.1:5000 for a local emulator"
        )),
    }
}

/// The retry policy of every client: standard mode (throttling errors, 5xx and timeouts
/// are retried), 5 attempts, jittered exponential backoff from `initial` up to 5 s.
#[must_use]
pub fn retry_config(initial: Duration) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(5).with_initial_backoff(initial).with_max_backoff(Duration::from_secs(5))
}

/// Backoff before the first retry; IAM throttles bursts, so start well above zero.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// Loads the SDK configuration with the explicit [`retry_config`] and timeouts.
pub async fn load_sdk_config(endpoint: &Endpoint) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config(INITIAL_BACKOFF)).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        );
    if let Some(url) = &endpoint.url {
        loader = loader.endpoint_url(url);
    }
    if let Some(limit) = endpoint.call_timeout {
        loader = loader.timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(limit.min(Duration::from_secs(20)))
                .operation_timeout(limit)
                .build(),
        );
    }
    if let Some(region) = &endpoint.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    loader.load().await
}

/// Counts AWS API calls by `service:Operation` (and attempts, which include retries).
///
/// Attached to every client; each invocation logs its counts, and the benchmark reads them.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    inner: Arc<Mutex<Counts>>,
}

/// Call counts by `service:Operation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Operations started.
    pub calls: BTreeMap<String, u64>,
    /// HTTP attempts made (calls plus retries).
    pub attempts: BTreeMap<String, u64>,
}

impl Counts {
    /// Total operations started.
    #[must_use]
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

impl CallCounter {
    /// The counts so far.
    #[must_use]
    pub fn snapshot(&self) -> Counts {
        self.inner.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Clears the counts (at the start of an invocation).
    pub fn reset(&self) {
        if let Ok(mut c) = self.inner.lock() {
            *c = Counts::default();
        }
    }

    fn bump(&self, cfg: &ConfigBag, attempt: bool) {
        let Some(meta) = cfg.load::<Metadata>() else {
            return;
        };
        let service: String = meta.service().chars().filter(|c| !c.is_whitespace()).collect();
        let name = format!("{}:{}", service.to_ascii_lowercase(), meta.name());
        if let Ok(mut c) = self.inner.lock() {
            let map = if attempt { &mut c.attempts } else { &mut c.calls };
            *map.entry(name).or_default() += 1;
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Once per operation: the operation's metadata is in the bag by the time it is serialised.
    fn read_after_serialization(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.bump(cfg, false);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.bump(cfg, true);
        Ok(())
    }
}

/// Wraps an SDK error into a [`CallError`] naming the action and target, with a short, stable
/// reason (the service's error code and message, or what went wrong on the way). The SDK's
/// full diagnostic goes to the debug log only, and never for Secrets Manager, whose responses
/// carry secret material.
pub(crate) fn call_error<E, R>(action: &'static str, target: &str, err: &SdkError<E, R>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if !action.starts_with("secretsmanager:") {
        tracing::debug!(action, target, detail = %aws_sdk_iam::error::DisplayErrorContext(err), "AWS call failed");
    }
    CallError { action, target: target.to_owned(), message: short_reason(err) }
}

/// One line: `Code: message` for service errors, otherwise the kind of failure and its root cause.
fn short_reason<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let root_cause = |e: &(dyn std::error::Error + 'static)| {
        let mut e = e;
        while let Some(next) = e.source() {
            e = next;
        }
        first_line(&e.to_string())
    };
    match err {
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or("UnknownError");
            match err.message() {
                Some(m) if !m.is_empty() => format!("{code}: {}", first_line(m)),
                _ => code.to_owned(),
            }
        }
        SdkError::TimeoutError(_) => "no answer within the time limit".to_owned(),
        SdkError::DispatchFailure(d) => match d.as_connector_error() {
            Some(c) if c.is_timeout() => "no answer (timed out)".to_owned(),
            Some(c) if c.is_io() => format!("could not connect: {}", root_cause(c)),
            Some(c) => format!("request not sent: {}", root_cause(c)),
            None => "request not sent".to_owned(),
        },
        SdkError::ResponseError(_) => {
            format!("unreadable response: {}", std::error::Error::source(err).map_or_else(String::new, root_cause))
        }
        SdkError::ConstructionFailure(_) => {
            format!("request not built: {}", std::error::Error::source(err).map_or_else(String::new, root_cause))
        }
        _ => first_line(&err.to_string()),
    }
}

/// The first line of a message, at most 300 characters: reasons stay one line and short.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// Converts an SDK timestamp to `chrono`.
pub(crate) fn to_utc(t: &aws_sdk_iam::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
