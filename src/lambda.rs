//! The Lambda entrypoint: translate the invocation into one [`App::handle`] call.

use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use tracing::Instrument;

use crate::app::{App, AppError, Outcome, Report, RunOptions};
use crate::aws::{CallCounter, Endpoint};
use crate::config::Config;
use crate::org::run::{OrgError, OrgRequest};
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, UserDirectory};
use crate::runtime::Deployment;

/// A failed invocation, with a stable `error_type` for alarms and the DLQ.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvocationError {
    /// `MalformedEvent`, `AwsCallFailed`, `Misconfigured`, `DeadlineExceeded`, or one of
    /// [`crate::app::Failure::error_type`] (`RegistryUnavailable`, `RemediationFailed`, `FindingsIncomplete`,
    /// `SecurityHubNotEnabled`, `SecurityHubIncomplete`).
    pub error_type: &'static str,
    /// One line naming what failed.
    pub message: String,
}

impl InvocationError {
    fn from_app_error_type(e: &AppError) -> &'static str {
        match e {
            AppError::Event(_) => "MalformedEvent",
            AppError::Collect(_) | AppError::Scan(_) => "AwsCallFailed",
            AppError::NoTopic => "Misconfigured",
            AppError::DeadlineNear { .. } => "DeadlineExceeded",
            AppError::EventInProgress { .. } => "EventInProgress",
        }
    }
}

impl From<AppError> for InvocationError {
    fn from(e: AppError) -> Self {
        InvocationError { error_type: InvocationError::from_app_error_type(&e), message: e.to_string() }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        Diagnostic { error_type: e.error_type.to_owned(), error_message: e.message }
    }
}

/// Starts the runtime loop; configuration errors stop start-up with the variable's name.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let started = std::time::Instant::now();
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = crate::aws::load_sdk_config(&Endpoint::default()).await;
    let deployment = Deployment::build(config, &sdk)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot start in organization mode"))?;
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        organization = deployment.is_organization(),
        "ready for events"
    );
    let deployment = &deployment;
    Box::pin(lambda_runtime::run(service_fn(move |event| handle_deployment(deployment, event)))).await
}

/// Handles one invocation of the deployed function: the organization scan's steps
/// (`list_accounts`, `scan_account`, `org_digest`), or an EventBridge event, handled by the app
/// of the account it comes from (a member's through its role, in organization mode).
pub async fn handle_deployment(deployment: &Deployment, event: LambdaEvent<Value>) -> Result<Value, InvocationError> {
    let request = crate::org::run::request(&event.payload).map_err(org_error)?;
    let Some(request) = request else {
        let account = event.payload.get("account").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !deployment.is_organization() || account.is_empty() {
            return handle(&deployment.central, Some(&deployment.counter), event).await;
        }
        let app = deployment.app_for(&account, None, false, Utc::now()).await.map_err(|e| {
            tracing::error!(error = %e, account, "cannot reach the event's account");
            InvocationError { error_type: "AwsCallFailed", message: format!("account {account}: {e}") }
        })?;
        return handle(&app, Some(&deployment.counter), event).await;
    };
    deployment.counter.reset();
    let opts = RunOptions { stop_by: stop_by(event.context.deadline), ..RunOptions::at(Utc::now()) };
    let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
    Box::pin(org_step(deployment, request, &opts)).instrument(span).await
}

/// Runs one step of the organization scan and returns the function's answer.
pub async fn org_step(
    deployment: &Deployment,
    request: OrgRequest,
    opts: &RunOptions,
) -> Result<Value, InvocationError> {
    let started = std::time::Instant::now();
    match request {
        OrgRequest::ListAccounts => {
            let out = crate::org::run::list_accounts(deployment).await.map_err(org_error)?;
            tracing::info!(aws_calls = ?deployment.counter.snapshot().calls, "listed the organization's accounts");
            Ok(out)
        }
        OrgRequest::ScanAccount { account, account_name, management_account, root_managed_centrally } => {
            let (report, result) = crate::org::run::scan_account(
                deployment,
                &account,
                account_name,
                management_account.as_deref(),
                root_managed_centrally,
                opts,
            )
            .await
            .map_err(org_error)?;
            let calls = deployment.counter.snapshot();
            log_report(&report, &calls.calls);
            println!("{}", crate::metrics::document(&report, Some(&account), opts.now, started.elapsed()));
            if let (Some(message), Some(first)) = (&report.failure, report.failures.first()) {
                return Err(InvocationError {
                    error_type: first.error_type(),
                    message: format!("account {account}: {message}"),
                });
            }
            let mut out = response(&report);
            for part in [serde_json::to_value(&result), serde_json::to_value(result.compact())] {
                if let (Value::Object(out), Ok(Value::Object(part))) = (&mut out, part) {
                    out.extend(part);
                }
            }
            Ok(out)
        }
        OrgRequest::Digest(input) => {
            let failure = input.failure.as_ref().map(crate::org::run::failure_text);
            let results = input.results.unwrap_or_default();
            let crate::org::run::Digested { summary, org_findings, published, .. } =
                crate::org::run::digest(deployment, &input.accounts, &results, failure, None, opts)
                    .await
                    .map_err(org_error)?;
            tracing::info!(
                accounts_scanned = summary.accounts_scanned,
                accounts_failed = summary.accounts_failed,
                organization_findings = org_findings.len(),
                published,
                failure = summary.failure.as_deref().unwrap_or(""),
                "published the organization digest"
            );
            Ok(serde_json::json!({
                "org_digest": summary,
                "organization_findings": org_findings.len(),
                "published": published,
            }))
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(org_error)`: the error ends here
fn org_error(e: OrgError) -> InvocationError {
    let error_type = match &e {
        OrgError::NotOrganization(_) => "Misconfigured",
        OrgError::Malformed { .. } => "MalformedEvent",
        OrgError::Call(_) => "AwsCallFailed",
        OrgError::Scan { source, .. } => InvocationError::from_app_error_type(source),
        OrgError::Publish(_) => "FindingsIncomplete",
    };
    tracing::error!(error = %e, error_type, "organization step failed");
    InvocationError { error_type, message: e.to_string() }
}

/// Handles one invocation: findings are published before the result is returned, and any
/// failure after that (registry, remediation, publish) fails the invocation so Lambda retries.
/// Every invocation prints its metrics as one EMF line on stdout ([`crate::metrics`]): the
/// report's, or `InvocationsFailed` for one that failed before it had a report.
pub async fn handle<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink>(
    app: &App<D, A, S>,
    counter: Option<&CallCounter>,
    event: LambdaEvent<Value>,
) -> Result<Value, InvocationError> {
    handle_emitting(app, counter, event, &|line| println!("{line}")).await
}

/// [`handle`], giving its EMF line to `emit` instead of stdout (what a test reads).
pub async fn handle_emitting<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink>(
    app: &App<D, A, S>,
    counter: Option<&CallCounter>,
    event: LambdaEvent<Value>,
    emit: &(dyn Fn(&str) + Sync),
) -> Result<Value, InvocationError> {
    let time_left_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX) - Utc::now().timestamp_millis();
    let span = tracing::info_span!("invocation", request_id = %event.context.request_id, time_left_ms);
    async move {
        if let Some(c) = counter {
            c.reset();
        }
        let opts = RunOptions { stop_by: stop_by(event.context.deadline), ..RunOptions::at(Utc::now()) };
        let event_account = event.payload.get("account").and_then(Value::as_str).map(str::to_owned);
        let trigger = trigger_of(&event.payload);
        let started = std::time::Instant::now();
        let result = app.handle(event.payload, &opts).await;
        let calls = counter.map(CallCounter::snapshot).unwrap_or_default();
        match result {
            Err(e) => {
                tracing::error!(error = %e, aws_calls = ?calls.calls, "invocation failed");
                let e = InvocationError::from(e);
                emit(
                    &crate::metrics::failure_document(
                        &trigger,
                        event_account.as_deref(),
                        e.error_type,
                        opts.now,
                        started.elapsed(),
                    )
                    .to_string(),
                );
                Err(e)
            }
            Ok(report) => {
                log_report(&report, &calls.calls);
                // The EMF line: CloudWatch Logs turns it into the dashboard's metrics.
                emit(
                    &crate::metrics::document(&report, event_account.as_deref(), opts.now, started.elapsed())
                        .to_string(),
                );
                match (&report.failure, report.failures.first()) {
                    (Some(message), Some(first)) => {
                        Err(InvocationError { error_type: first.error_type(), message: message.clone() })
                    }
                    _ => Ok(response(&report)),
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// The trigger an event names before it is parsed (`event:<EventName>`, `schedule`, or
/// `event`), for the metrics of an invocation that failed before it had a report.
fn trigger_of(payload: &Value) -> String {
    if let Some(name) = payload.get("detail").and_then(|d| d.get("eventName")).and_then(Value::as_str) {
        return format!("event:{name}");
    }
    if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        return "schedule".to_owned();
    }
    "event".to_owned()
}

/// When to stop, from the invocation's deadline (milliseconds since the epoch). A deadline
/// already past when the invocation starts is no deadline at all (local runtime emulators
/// send durations there): it is logged and ignored rather than failing every scan.
fn stop_by(deadline_ms: u64) -> Option<tokio::time::Instant> {
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    if deadline_ms <= now_ms {
        if deadline_ms != 0 {
            tracing::warn!(deadline_ms, now_ms, "the runtime's deadline is already past; running without one");
        }
        return None;
    }
    Some(crate::app::stop_before(std::time::Duration::from_millis(deadline_ms - now_ms)))
}

fn log_report(report: &Report, calls: &std::collections::BTreeMap<String, u64>) {
    match &report.outcome {
        Outcome::Ignored(reason) | Outcome::UserGone(reason) => {
            tracing::info!(trigger = %report.trigger, reason = %reason, aws_calls = ?calls, "nothing to check");
        }
        Outcome::Processed => tracing::info!(
            trigger = %report.trigger,
            findings = report.findings.len(),
            published = report.published,
            failure = report.failure.as_deref().unwrap_or(""),
            aws_calls = ?calls,
            "checked"
        ),
    }
}

/// The invocation's result: outcome and counts (the findings themselves went to SNS).
#[must_use]
pub fn response(report: &Report) -> Value {
    #[derive(serde::Serialize)]
    struct Response<'a> {
        trigger: &'a str,
        #[serde(flatten)]
        outcome: &'a Outcome,
        findings: usize,
        published: usize,
        summary: String,
    }
    serde_json::to_value(Response {
        trigger: &report.trigger,
        outcome: &report.outcome,
        findings: report.findings.len(),
        published: report.published,
        summary: crate::output::summary(&report.findings),
    })
    .unwrap_or(Value::Null)
}
