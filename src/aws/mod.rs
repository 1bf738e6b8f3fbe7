//! AWS adapters behind the ports: IAM, Secrets Manager, SNS; plus SDK set-up shared by all.

pub mod approvals;
pub mod iam;
pub mod sns;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::ports::CallError;

/// Every IAM, SNS and Secrets Manager action the function calls: the deployment role
/// grants exactly these (a test compares them with `infra/template.yaml`).
#[must_use]
pub fn required_actions() -> Vec<&'static str> {
    let mut all: Vec<&str> = [iam::IAM_ACTIONS, sns::SNS_ACTIONS, approvals::SECRETS_MANAGER_ACTIONS]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    all.sort_unstable();
    all
}

/// Where to reach AWS: `None` fields fall back to the SDK's environment chain.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// Override of every service endpoint (the local emulator); `AWS_ENDPOINT_URL` also works.
    pub url: Option<String>,
    /// Region override.
    pub region: Option<String>,
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

/// Wraps an SDK error into a [`CallError`] naming the action and target.
pub(crate) fn call_error<E>(action: &'static str, target: &str, err: &E) -> CallError
where
    E: std::error::Error + 'static,
{
    CallError { action, target: target.to_owned(), message: aws_sdk_iam::error::DisplayErrorContext(err).to_string() }
}

/// Converts an SDK timestamp to `chrono`.
pub(crate) fn to_utc(t: &aws_sdk_iam::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
