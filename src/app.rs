//! The one place that wires trigger → collect → check → remediate → publish.
//!
//! The Lambda handler and the CLI both build an [`App`] and call [`App::handle`].

pub use crate::state::resolution as lifecycle;
mod organization;
mod policy_events;
mod privileged;
mod root_sessions;
pub mod rotation;
mod stale_keys;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::approvals::Approvals;
use crate::checks::access::AccessJudge;
use crate::checks::{
    EXCEPTION_VALUE, TagChange, UserInput, check_root, check_root_summary, check_user, check_user_tags, last_used,
    password, root_used,
};
use crate::config::Config;
use crate::domain::timing::Phase;
use crate::event::{EventError, IamChange, Parsed, RootActivity, Trigger, parse_event};
use crate::finding::{Action, CheckId, Finding, Remediation, RemediationStatus, Scope, Severity, sort_findings};
use crate::message::{ActiveException, MAX_BODY_BYTES, Message, ScanSummary, digest};
use crate::ports::{
    AccountReader, ApprovalsStore, CallError, EventClaim, FindingsSink, FindingsStore, PublishError,
    RegistryUnavailable, ScanError, StoreError, UserDirectory,
};
use crate::render::asff;

/// Events that give a user credentials (a password, a new or reactivated key): the network and
/// MFA policy checks apply from that moment, so these also read what reaches the user (GAAD).
const CREDENTIAL_EVENTS: &[&str] = &["CreateLoginProfile", "CreateAccessKey", "UpdateAccessKey"];

/// Per-invocation choices.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The one "now" of this invocation (`--as-of` in the CLI).
    pub now: DateTime<Utc>,
    /// Report what remediation would do without doing it.
    pub dry_run: bool,
    /// Publish findings to the topic.
    pub publish: bool,
    /// When work must stop, shortly before Lambda's deadline (see [`stop_before`]). Checked
    /// while the account is read, before each untag and before each publish batch.
    pub stop_by: Option<Instant>,
    /// Message ids an earlier attempt at the same event already published (a retry sends
    /// only the rest); filled by [`App::handle`] from the state table.
    pub already_sent: std::sync::Arc<HashSet<String>>,
}

/// How long before a deadline `remaining` away the invocation stops: a tenth of the time, at
/// most 10 s, so it can fail loudly instead of being killed, whatever the function's timeout.
#[must_use]
pub fn stop_before(remaining: std::time::Duration) -> Instant {
    let margin = (remaining / 10).min(std::time::Duration::from_secs(10));
    Instant::now() + remaining.saturating_sub(margin)
}

impl RunOptions {
    /// Options for `now` with publishing on, no dry run, no deadline.
    #[must_use]
    pub fn at(now: DateTime<Utc>) -> RunOptions {
        RunOptions { now, dry_run: false, publish: true, stop_by: None, already_sent: std::sync::Arc::default() }
    }

    /// Whether the time to stop has come.
    fn must_stop(&self) -> bool {
        self.stop_by.is_some_and(|t| Instant::now() >= t)
    }
}

/// What an invocation did, apart from its findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// Checks ran.
    Processed,
    /// The event needs no action; the reason says why.
    Ignored(String),
    /// The user the event names no longer exists.
    UserGone(String),
}

/// The result of one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `event:<EventName>`, `schedule`, or `event` when ignored before the name was known.
    pub trigger: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Findings reported before that this scan no longer produces (`state: resolved`).
    pub resolved: Vec<Finding>,
    /// How many messages the topic accepted.
    pub published: usize,
    /// How many findings (open and resolved) Security Hub accepted.
    pub imported: usize,
    /// For scans: what was scanned (report age, users outside the report).
    pub scan: Option<ScanSummary>,
    /// Set when the invocation must fail after its findings were produced (registry
    /// unavailable, remediation or publish failed): every failure, one line, `; `-separated.
    pub failure: Option<String>,
    /// The same failures, typed; entrypoints turn the first into an error.
    #[serde(skip)]
    pub failures: Vec<Failure>,
    /// Ids of the messages the topic accepted in this invocation.
    #[serde(skip)]
    pub sent: Vec<String>,
    /// Records of the state table that could not be read (key and problem): skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub state_warnings: Vec<String>,
    /// Where the run spent its time (scans: each read, judging, remediation, publishing).
    #[serde(skip)]
    pub phases: Vec<crate::domain::timing::Phase>,
}

impl Report {
    fn ignored(trigger: String, reason: String) -> Report {
        Report::without_findings(trigger, Outcome::Ignored(reason))
    }

    fn without_findings(trigger: String, outcome: Outcome) -> Report {
        Report {
            trigger,
            outcome,
            findings: Vec::new(),
            resolved: Vec::new(),
            published: 0,
            imported: 0,
            scan: None,
            failure: None,
            failures: Vec::new(),
            sent: Vec::new(),
            state_warnings: Vec::new(),
            phases: Vec::new(),
        }
    }
}

/// Why an invocation that produced findings must still fail (so Lambda retries it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The approvals registry could not be used: nothing was judged or untagged.
    #[error(transparent)]
    RegistryUnavailable(RegistryUnavailable),
    /// The registry could not be re-read just before untagging: nothing was untagged.
    #[error("not untagged: the registry could not be re-read ({0})")]
    RegistryReRead(RegistryUnavailable),
    /// An untag or key deactivation call failed.
    #[error(transparent)]
    Remediation(CallError),
    /// A key rotation step failed (a new key whose secret could not be written is deleted again).
    #[error("key rotation: {0}")]
    Rotation(CallError),
    /// Root's account summary could not be read after a root event (`root-used` still went out).
    #[error(transparent)]
    RootSummary(CallError),
    /// A root session could not be remembered, or looked up to pair a member's root call (the
    /// findings still went out, unpaired).
    #[error("root sessions: {0}")]
    RootSessionLog(CallError),
    /// Some findings were not published.
    #[error(transparent)]
    Publish(PublishError),
    /// A read needed to judge part of the invocation failed (a break-glass role's `GetRole`, the
    /// registry's versions): what did not need it was still reported, and that part was not judged.
    #[error("not judged: {0}")]
    NotJudged(CallError),
    /// Some findings were not imported into Security Hub, or its open findings could not be
    /// read (resolutions would go unannounced); the findings still went to the topic.
    #[error(transparent)]
    SecurityHub(StoreError),
    /// The state table could not be read or written: the findings were published as if
    /// stateless (nothing suppressed), and the run fails so that it is retried.
    #[error("{0} (findings were published without memory)")]
    State(crate::ports::StateError),
}

impl Failure {
    /// A stable name for alarms, logs and the dead-letter queue.
    #[must_use]
    pub fn error_type(&self) -> &'static str {
        match self {
            Failure::RegistryUnavailable(_) | Failure::RegistryReRead(_) => "RegistryUnavailable",
            Failure::Remediation(_) => "RemediationFailed",
            Failure::Rotation(_) => "RotationFailed",
            Failure::RootSummary(_) | Failure::NotJudged(_) | Failure::RootSessionLog(_) => "AwsCallFailed",
            Failure::Publish(_) => "FindingsIncomplete",
            Failure::SecurityHub(e) if e.not_enabled => "SecurityHubNotEnabled",
            Failure::SecurityHub(_) => "SecurityHubIncomplete",
            Failure::State(_) => "StateUnavailable",
        }
    }
}

/// Errors that stop an invocation before it has findings.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The event is not one this function can read.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Collecting IAM data failed.
    #[error(transparent)]
    Collect(#[from] CallError),
    /// The scan could not collect the account.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The Lambda deadline is near: work stopped; the message says exactly what was done.
    #[error("stopped before the Lambda deadline: completed {completed}")]
    DeadlineNear {
        /// What was done before stopping (untagged N of M, published K of L).
        completed: String,
    },
    /// Another invocation is handling the same CloudTrail event right now; retried later.
    #[error("event {event_id} is being handled by another invocation until {until}; retry later")]
    EventInProgress {
        /// The CloudTrail `eventID`.
        event_id: String,
        /// When that invocation's claim lapses.
        until: DateTime<Utc>,
    },
    /// Publishing was asked for but no topic is configured.
    #[error("FINDINGS_TOPIC_ARN is not set: set it to the findings topic, or pass --no-publish")]
    NoTopic,
}

/// The application: configuration plus the ports it talks to.
pub struct App<D, A, S> {
    /// Security Hub, when `SECURITY_HUB=true`: findings imported, resolutions found.
    pub findings_store: Option<Box<dyn FindingsStore>>,
    /// Validated configuration.
    pub config: Config,
    /// IAM.
    pub directory: D,
    /// The approvals registry.
    pub approvals: A,
    /// The findings topic, if configured.
    pub sink: Option<S>,
    /// The region the function runs in (findings carry it).
    pub region: String,
    /// Key rotation for opted-in users; `None` where it is not wired (tests of other parts).
    pub key_rotation: Option<Box<dyn crate::ports::KeyRotation>>,
    /// Organization mode: the organization's reader and this account's name; `None` otherwise.
    pub organization: Option<crate::org::OrgContext>,
    /// The state table (`STATE_TABLE`); `None`: stateless.
    pub state: Option<Arc<dyn crate::ports::StateStore>>,
    /// Where `AssumeRoot` sessions are remembered, so a member's root calls can be paired with
    /// the session that made them; `None`: no pairing (a member's root call is plain `root-used`).
    pub root_sessions: Option<std::sync::Arc<dyn crate::ports::RootSessionLog>>,
}

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// Handles one EventBridge event (or an event file given to the CLI).
    pub async fn handle(&self, event: Value, opts: &RunOptions) -> Result<Report, AppError> {
        if opts.publish && self.sink.is_none() {
            return Err(AppError::NoTopic);
        }
        let delivery = delivery_of(&event);
        let parsed = parse_event(event, &self.config.policy.exception_tag_key)?;
        let claim = match (&parsed, &self.state, delivery) {
            (Parsed::Trigger(t), Some(state), Some(delivery))
                if opts.publish && !matches!(t, Trigger::Schedule { .. }) =>
            {
                Some((state, delivery))
            }
            _ => None,
        };
        let Some((state, delivery)) = claim else { return self.dispatch(parsed, opts).await };
        // At-least-once delivery: an event id is handled once (a conditional write, with TTL).
        let lease_until = opts.now + lease(opts.stop_by);
        let (opts, claim_failure) =
            match state.claim_event(&delivery.account, &delivery.event_id, opts.now, lease_until).await {
                Ok(EventClaim::First) => (opts.clone(), None),
                Ok(EventClaim::Done { at }) => {
                    return Ok(Report::ignored(
                        "event".into(),
                        format!(
                            "event {} was already handled at {} (a duplicate delivery)",
                            delivery.event_id,
                            at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    ));
                }
                Ok(EventClaim::InProgress { until }) => {
                    return Err(AppError::EventInProgress { event_id: delivery.event_id, until });
                }
                Ok(EventClaim::Retry { sent }) => (RunOptions { already_sent: Arc::new(sent), ..opts.clone() }, None),
                // Without the table the event is handled as if stateless, and the run says so.
                Err(e) => (opts.clone(), Some(e)),
            };
        let result = self.dispatch(parsed, &opts).await;
        if claim_failure.is_some() {
            return result.map(|mut report| {
                report.failures.extend(claim_failure.map(Failure::State));
                report.failure = Some(report.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
                report
            });
        }
        let sent: Vec<String> = match &result {
            Ok(report) => report.sent.clone(),
            Err(_) => Vec::new(),
        };
        let done = result.as_ref().is_ok_and(|r| r.failures.is_empty());
        let finished = state.finish_event(&delivery.account, &delivery.event_id, &sent, done, opts.now).await;
        match (result, finished) {
            (Ok(mut report), Err(e)) => {
                report.failures.push(Failure::State(e));
                report.failure = Some(report.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
                Ok(report)
            }
            (result, _) => result,
        }
    }

    async fn dispatch(&self, parsed: Parsed, opts: &RunOptions) -> Result<Report, AppError> {
        match parsed {
            Parsed::Ignored(reason) => Ok(Report::ignored("event".into(), reason)),
            // Boxed: the collect-and-publish future holds several SDK calls and is large.
            Parsed::Trigger(Trigger::IamChange(change)) => Box::pin(self.handle_change(change, opts)).await,
            Parsed::Trigger(Trigger::RootActivity(activity)) => Box::pin(self.handle_root(activity, opts)).await,
            Parsed::Trigger(Trigger::Schedule { account, .. }) => Box::pin(self.scan(account, opts)).await,
            Parsed::Trigger(Trigger::AccessChange(change)) => Box::pin(self.handle_access(change, opts)).await,
            Parsed::Trigger(Trigger::PasswordPolicyChange(call)) => {
                Box::pin(self.handle_password_policy(call, opts)).await
            }
            Parsed::Trigger(Trigger::RoleAssumed(a)) => Box::pin(self.handle_role_assumed(a, opts)).await,
            Parsed::Trigger(Trigger::UserSignIn(s)) => Box::pin(self.handle_user_sign_in(s, opts)).await,
            Parsed::Trigger(Trigger::SecretChanged(c)) => Box::pin(self.handle_secret_changed(c, opts)).await,
            Parsed::Trigger(Trigger::OrganizationChange(c)) => Box::pin(self.handle_organization_change(c, opts)).await,
            Parsed::Trigger(Trigger::RootSessionStarted(c)) => {
                Box::pin(self.handle_root_session_started(c, opts)).await
            }
            Parsed::Trigger(Trigger::RootFeatureChanged(c)) => {
                Box::pin(self.handle_root_feature_changed(c, opts)).await
            }
        }
    }

    async fn handle_change(&self, change: IamChange, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = format!("event:{}", change.event_name);
        if let Some(own) = &self.config.self_role_arn
            && change.actor.is_own(own, self.config.self_session_name.as_deref())
        {
            return Ok(Report::ignored(trigger, format!("{} was made by this function's own role", change.event_name)));
        }
        // A user given credentials now needs the network and MFA policies: read what reaches it.
        let gives_credentials = CREDENTIAL_EVENTS.contains(&change.event_name.as_str());
        let read_access = async { if gives_credentials { Some(self.directory.read_access().await) } else { None } };
        let (user, approvals, access) =
            tokio::join!(self.directory.read_user(&change.user_name), self.approvals.load(), read_access);
        let access = access.transpose()?;
        let scope = Scope {
            account: change.account.clone(),
            region: change.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        // Root acting on a user is reported even when the user is gone by now.
        let root_use = change.actor.root.then(|| root_used(&change.event_name, &change.actor, &change.context, &scope));
        let Some(user) = user? else {
            let outcome = Outcome::UserGone(format!("user {} no longer exists", change.user_name));
            let Some(root_use) = root_use else { return Ok(Report::without_findings(trigger, outcome)) };
            let findings = vec![root_use];
            let report =
                self.finish(trigger, findings, Vec::new(), opts, None, Lifecycle::default(), one_message_each).await?;
            return Ok(Report { outcome, ..report });
        };
        let tag_change =
            TagChange { actor: change.actor.clone(), exception_value_set: change.exception_value_set.clone() };
        let mut user = user;
        if let Some(access) = &access {
            user.policies = access.users.iter().find(|(n, _)| *n == user.name).map(|(_, p)| p.clone());
        }
        let judge = access.as_ref().map(|a| AccessJudge::new(&a.catalogue, &self.config.policy.enterprise_cidrs));
        let mut findings = check_user(&UserInput {
            user: &user,
            approvals: approvals.as_ref().ok(),
            change: Some(&tag_change),
            policy: &self.config.policy,
            scope: &scope,
            access: judge.as_ref(),
        });
        crate::remediate::stale::attach(&mut findings, &user, &self.config.policy, &self.config.stale_keys, opts.now);
        findings.extend(root_use);
        let mut failures = self.remediate_or_report(&mut findings, approvals.err(), &scope, opts).await?;
        let (opt_in, failed) = self.judge_opt_in(&change, &user, &scope, opts).await;
        findings.extend(opt_in);
        failures.extend(failed);
        if change.event_name.contains("AccessKey") {
            // A key changed: an opted-in user's rotation may have a step to take now.
            let (rotated, failed) = self.rotate_keys(&[&user], &scope, opts).await;
            findings.extend(rotated);
            failures.extend(failed);
        }
        sort_findings(&mut findings);
        self.finish(trigger, findings, failures, opts, None, Lifecycle::default(), one_message_each).await
    }

    /// Root acted on itself or signed in: `root-used`, then root's keys and MFA from the
    /// account summary (one call), with the event as evidence.
    async fn handle_root(&self, activity: RootActivity, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = format!("event:{}", activity.event_name);
        let scope = Scope {
            account: activity.account.clone(),
            region: activity.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        // The root-used alert goes out even if the summary cannot be read; the failure is reported.
        let mut failures = Vec::new();
        let (root_use, in_session) = self.root_use(&activity, &scope, &mut failures).await;
        let mut findings = vec![root_use];
        // A paired root session holds no credentials to judge: its task is the whole story.
        let summary = if in_session { None } else { Some(self.directory.read_root_summary().await) };
        match summary {
            None => {}
            Some(Ok(summary)) => findings.extend(check_root_summary(
                summary,
                &activity.event_name,
                &activity.actor,
                &activity.context,
                activity.access_key_id.as_deref(),
                &scope,
            )),
            Some(Err(e)) => failures.push(Failure::RootSummary(e)),
        }
        sort_findings(&mut findings);
        self.finish(trigger, findings, failures, opts, None, Lifecycle::default(), one_message_each).await
    }

    /// Runs the daily scan: bulk reads only, every user checked, a digest published.
    pub async fn scan(&self, event_account: Option<String>, opts: &RunOptions) -> Result<Report, AppError> {
        if opts.publish && self.sink.is_none() {
            return Err(AppError::NoTopic);
        }
        let reading = std::time::Instant::now();
        let approvals_read = async {
            let started = std::time::Instant::now();
            (self.approvals.load().await, Phase::since("approvals", started))
        };
        // Boxed: the reads' future is large; the scan's own stays small for its callers.
        let collect = Box::pin(async { tokio::join!(self.directory.read_account(), approvals_read) });
        let (snapshot, (approvals, approvals_phase)) = match opts.stop_by {
            None => collect.await,
            Some(stop) => tokio::time::timeout_at(stop, collect).await.map_err(|_| AppError::DeadlineNear {
                completed: "nothing: the credential report and GetAccountAuthorizationDetails were still being \
                                read; no finding was published, no tag removed"
                    .into(),
            })?,
        };
        let mut snapshot = snapshot?;
        let mut phases = std::mem::take(&mut snapshot.phases);
        phases.push(approvals_phase);
        phases.push(Phase::since("read", reading));
        let judging = std::time::Instant::now();
        let scope = Scope {
            account: snapshot.account.clone().or(event_account).unwrap_or_else(|| "unknown".into()),
            region: self.region.clone(),
            trigger: "schedule".into(),
            now: opts.now,
        };
        let registry = approvals.as_ref().ok();
        let exceptions = registry.map(|a| exceptions_in_force(&snapshot.users, a, &self.config.policy, opts.now));
        let exceptions_active = exceptions.as_ref().map(Vec::len);
        let registry_read = registry.is_some();
        let mut findings = self.judge_users(&snapshot, registry, &scope, opts);
        if let Some(root) = &snapshot.root {
            findings.extend(check_root(root, &scope));
        }
        findings.extend(password::check(snapshot.password_policy.as_ref(), &self.config.policy.password, &scope));
        if self.organization.as_ref().is_some_and(|o| o.management) {
            // SCPs never apply to the management account: its IAM users are unrestricted.
            let names: Vec<String> = snapshot.users.iter().map(|u| u.name.clone()).collect();
            findings.extend(crate::org::coverage::management_account_users(&scope.account, &names, &scope));
        }
        if opts.must_stop() {
            return Err(AppError::DeadlineNear {
                completed: format!(
                    "read and checked {} users ({} findings); stopped before remediation and publishing",
                    snapshot.users.len(),
                    findings.len()
                ),
            });
        }
        phases.push(Phase::since("judge", judging));
        let remediating = std::time::Instant::now();
        let mut failures = self.remediate_or_report(&mut findings, approvals.err(), &scope, opts).await?;
        self.scan_member_root(&scope, &mut findings, &mut failures).await;
        let privileged = self.scan_privileged(&snapshot, &scope, &mut findings, &mut failures).await;
        self.rotate_scanned(&snapshot, &scope, opts, &mut findings, &mut failures).await;
        sort_findings(&mut findings);
        phases.push(Phase::since("remediate", remediating));
        let planning = std::time::Instant::now();
        let coverage = lifecycle::Coverage {
            account: &scope.account,
            registry_read,
            root_checked: snapshot.root.is_some(),
            users_not_in_report: &snapshot.users_not_in_report,
            break_glass_checked: privileged.break_glass_checked,
        };
        let lifecycle = self.lifecycle(&findings, &coverage, opts).await;
        phases.push(Phase::since("state.plan", planning));
        failures.extend(lifecycle.failure.clone());
        failures.extend(lifecycle.state_failure.clone());
        let summary = ScanSummary {
            account: scope.account.clone(),
            region: scope.region.clone(),
            observed_at: opts.now,
            credential_report_generated_at: snapshot.report_generated_at,
            users_scanned: snapshot.users.len(),
            exceptions_active,
            exceptions: exceptions.unwrap_or_default(),
            users_not_in_report: snapshot.users_not_in_report,
            users_deleted_since_report: snapshot.users_deleted_since_report,
            registry_last_changed_at: privileged.registry_last_changed_at,
            changes: lifecycle.plan.as_ref().map(|p| p.changes.clone()),
        };
        let messages = |findings: &[Finding], summary: Option<&ScanSummary>, resolved: &[Finding]| {
            let mut messages = summary.map(|s| digest(s, findings, MAX_BODY_BYTES)).unwrap_or_default();
            messages.extend(findings.iter().filter(|f| f.severity >= Severity::High).map(Message::finding));
            messages.extend(resolved.iter().map(Message::finding));
            messages
        };
        let finishing = std::time::Instant::now();
        // Boxed: the publishing future is large; the scan's own stays small for its callers.
        let report =
            Box::pin(self.finish("schedule".into(), findings, failures, opts, Some(summary), lifecycle, messages))
                .await?;
        phases.push(Phase::since("publish", finishing));
        Ok(Report { phases, ..report })
    }

    /// Every user of the snapshot judged: all checks, or only the tag checks for a user the
    /// credential report does not list yet; stale keys get their remediation attached.
    fn judge_users(
        &self,
        snapshot: &crate::ports::AccountSnapshot,
        registry: Option<&Approvals>,
        scope: &Scope,
        opts: &RunOptions,
    ) -> Vec<Finding> {
        let policy = &self.config.policy;
        let judge = AccessJudge::new(&snapshot.catalogue, &policy.enterprise_cidrs);
        snapshot
            .users
            .iter()
            .flat_map(|user| {
                let input = UserInput { user, approvals: registry, change: None, policy, scope, access: Some(&judge) };
                if snapshot.users_not_in_report.contains(&user.name) {
                    check_user_tags(&input)
                } else {
                    let mut found = check_user(&input);
                    crate::remediate::stale::attach(&mut found, user, policy, &self.config.stale_keys, opts.now);
                    found
                }
            })
            .collect()
    }

    /// Reads the store's open findings and decides which this scan resolves (pure, in
    /// [`lifecycle::resolved`]). Without a store, or without publishing, there is nothing to do.
    async fn lifecycle(
        &self,
        findings: &[Finding],
        coverage: &lifecycle::Coverage<'_>,
        opts: &RunOptions,
    ) -> Lifecycle {
        if !opts.publish {
            return Lifecycle::default();
        }
        // The state table decides what is announced and resolved; Security Hub follows it.
        if let Some(state) = &self.state {
            match state.threads(coverage.account).await {
                Ok(read) => {
                    let plan =
                        crate::state::plan_scan(&read.records, findings, coverage, opts.now, self.config.remind_days);
                    return Lifecycle {
                        first_seen: first_seen_by_asff_id(&plan, findings),
                        resolved: plan.resolved.clone(),
                        warnings: read.malformed,
                        plan: Some(plan),
                        ..Lifecycle::default()
                    };
                }
                Err(e) => {
                    // Unreadable: announce as if stateless, and fail by name so the run is retried.
                    let failure = Some(Failure::State(e));
                    return Lifecycle {
                        state_failure: failure,
                        ..self.store_lifecycle(findings, coverage, opts.now).await
                    };
                }
            }
        }
        self.store_lifecycle(findings, coverage, opts.now).await
    }

    /// The lifecycle Security Hub's open findings give (without the state table).
    async fn store_lifecycle(
        &self,
        findings: &[Finding],
        coverage: &lifecycle::Coverage<'_>,
        now: DateTime<Utc>,
    ) -> Lifecycle {
        let Some(store) = self.findings_store.as_ref() else { return Lifecycle::default() };
        match store.open_findings(coverage.account).await {
            Ok(open) => Lifecycle {
                first_seen: open.iter().filter_map(|s| Some((s.store_id.clone(), s.first_observed_at?))).collect(),
                resolved: lifecycle::resolved(&open, findings, coverage, now),
                ..Lifecycle::default()
            },
            Err(e) => Lifecycle { failure: Some(Failure::SecurityHub(e)), ..Lifecycle::default() },
        }
    }

    /// Imports `findings` into the store, if there is one; returns how many it accepted.
    async fn import(
        &self,
        findings: &[Finding],
        first_seen: &HashMap<String, DateTime<Utc>>,
        opts: &RunOptions,
        failures: &mut Vec<Failure>,
    ) -> usize {
        let Some(store) = self.findings_store.as_ref().filter(|_| opts.publish && !findings.is_empty()) else {
            return 0;
        };
        let documents: Vec<Value> =
            findings.iter().map(|f| asff::document(f, first_seen.get(&asff::finding_id(f)).copied())).collect();
        match store.import(&documents, opts.stop_by).await {
            Ok(n) => n,
            Err(e) => {
                let n = e.imported;
                failures.push(Failure::SecurityHub(e));
                n
            }
        }
    }

    /// The baseline most tools implement: list users, then read each one with per-user
    /// calls (about 5 per user). Kept for the benchmark; never used by the Lambda.
    pub async fn scan_per_user(&self, opts: &RunOptions) -> Result<Report, AppError> {
        let names = self.directory.list_user_names().await?;
        let approvals = self.approvals.load().await.ok();
        let mut findings = Vec::new();
        for name in &names {
            let Some(user) = self.directory.read_user(name).await? else { continue };
            let scope = Scope {
                account: user.arn.split(':').nth(4).unwrap_or("unknown").to_owned(),
                region: self.region.clone(),
                trigger: "schedule".into(),
                now: opts.now,
            };
            findings.extend(check_user(&UserInput {
                user: &user,
                approvals: approvals.as_ref(),
                change: None,
                policy: &self.config.policy,
                scope: &scope,
                access: None,
            }));
        }
        sort_findings(&mut findings);
        Ok(Report { findings, ..Report::without_findings("schedule".into(), Outcome::Processed) })
    }

    /// Imports the findings into Security Hub (when enabled), publishes the `messages` built
    /// from them (only when publishing; batch by batch, stopping before the deadline), then archives the resolved findings once their
    /// announcement is out, and collects every failure into the report. A deadline reached
    /// with findings unpublished is an error that says how far publishing got.
    // One step after another, in the order the README documents.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        trigger: String,
        mut findings: Vec<Finding>,
        mut failures: Vec<Failure>,
        opts: &RunOptions,
        scan: Option<ScanSummary>,
        mut lifecycle: Lifecycle,
        messages: impl FnOnce(&[Finding], Option<&ScanSummary>, &[Finding]) -> Vec<Message>,
    ) -> Result<Report, AppError> {
        if let Some(name) = self.organization.as_ref().and_then(|o| o.account_name.as_ref()) {
            for f in findings.iter_mut().chain(lifecycle.resolved.iter_mut()) {
                f.account_name.get_or_insert_with(|| name.clone());
            }
        }
        // Every remediation applied is journaled before anything is announced.
        self.journal(&findings, &mut failures).await;
        let mut warnings = std::mem::take(&mut lifecycle.warnings);
        let mut plan = lifecycle.plan.take();
        if plan.is_none() && scan.is_none() && opts.publish && !findings.is_empty() {
            match self.plan_event(&findings, opts).await {
                Ok(Some((p, w))) => {
                    plan = Some(p);
                    warnings.extend(w);
                }
                Ok(None) => {}
                Err(e) => failures.push(Failure::State(e)),
            }
        }
        for w in &warnings {
            tracing::warn!(record = %w, "state table: malformed record skipped");
        }
        if let Some(plan) = &plan {
            let notices: HashMap<&str, &crate::finding::Notice> =
                plan.announce.iter().filter_map(|f| Some((f.id.as_str(), f.notice.as_ref()?))).collect();
            for f in &mut findings {
                f.notice = notices.get(f.id.as_str()).map(|n| (*n).clone());
            }
        }
        // Security Hub not enabled: reading failed already, and every import would fail the same way.
        let store_usable =
            !lifecycle.failure.as_ref().is_some_and(|f| matches!(f, Failure::SecurityHub(e) if e.not_enabled));
        let mut imported = 0;
        if store_usable {
            imported = self.import(&findings, &lifecycle.first_seen, opts, &mut failures).await;
        }
        let mut published = 0;
        // Rendered only to be sent: a run that does not publish renders nothing.
        let messages = match &plan {
            _ if !opts.publish => Vec::new(),
            Some(plan) => announcements(plan, &findings, scan.as_ref()),
            None => messages(&findings, scan.as_ref(), &lifecycle.resolved),
        };
        // A retry after a partial publish sends only what was not sent.
        let messages: Vec<Message> = messages.into_iter().filter(|m| !opts.already_sent.contains(&m.id)).collect();
        let mut sent = Vec::new();
        if !messages.is_empty() {
            let sink = self.sink.as_ref().ok_or(AppError::NoTopic)?;
            match sink.publish(&messages, opts.stop_by).await {
                Ok(n) => {
                    published = n;
                    sent = messages.iter().map(|m| m.id.clone()).collect();
                }
                Err(e) if e.deadline => {
                    return Err(AppError::DeadlineNear {
                        completed: format!(
                            "{}published {} of {} messages ({} findings); the rest were not sent",
                            untag_progress(&findings),
                            e.published,
                            e.total,
                            findings.len()
                        ),
                    });
                }
                Err(e) => {
                    published = e.published;
                    sent.clone_from(&e.sent);
                    failures.push(Failure::Publish(e));
                }
            }
        }
        // Remembered once sent: a record whose message did not go out is announced next time.
        if let (Some(state), Some(plan)) = (&self.state, &plan) {
            let delivered: HashSet<String> = sent.iter().chain(opts.already_sent.iter()).cloned().collect();
            let writes = crate::state::writes_after(plan, &delivered);
            if !writes.is_empty()
                && let Err(e) = state.write_threads(&writes).await
            {
                failures.push(Failure::State(e));
            }
        }
        // Archived only once announced: if publishing failed, the next scan finds them open
        // again and announces them then, rather than never.
        let announced = !failures.iter().any(|f| matches!(f, Failure::Publish(_)));
        if store_usable && announced {
            imported += self.import(&lifecycle.resolved, &lifecycle.first_seen, opts, &mut failures).await;
        }
        let failure =
            (!failures.is_empty()).then(|| failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
        Ok(Report {
            trigger,
            outcome: Outcome::Processed,
            findings,
            resolved: lifecycle.resolved,
            published,
            imported,
            scan,
            failure,
            failures,
            sent,
            state_warnings: warnings,
            phases: Vec::new(),
        })
    }

    /// The event path's plan: the records of the findings' threads (one `BatchGetItem`), then
    /// what is new or changed. `None` without a state table.
    async fn plan_event(
        &self,
        findings: &[Finding],
        opts: &RunOptions,
    ) -> Result<Option<(crate::state::Plan, Vec<String>)>, crate::ports::StateError> {
        let Some(state) = &self.state else { return Ok(None) };
        let account = &findings[0].account;
        let threads: Vec<String> =
            findings.iter().filter(|f| !crate::state::is_act(f.check)).map(Finding::thread_id).collect();
        let read = state.threads_of(account, &threads).await?;
        Ok(Some((crate::state::plan_event(&read.records, findings, opts.now), read.malformed)))
    }

    /// Writes every applied remediation that carries its undo record to the action journal.
    async fn journal(&self, findings: &[Finding], failures: &mut Vec<Failure>) {
        let Some(state) = &self.state else { return };
        for f in
            findings.iter().filter(|f| f.remediation.as_ref().is_some_and(|r| r.status == RemediationStatus::Applied))
        {
            let Some(record) = f.evidence.get("undo").and_then(|u| serde_json::from_value(u.clone()).ok()) else {
                continue;
            };
            let entry =
                crate::state::journal::JournalEntry::applied(&f.account, &f.id, record, f.observed_at, &f.trigger);
            if let Err(e) = state.journal(&entry).await {
                failures.push(Failure::State(e));
            }
        }
    }

    /// With a readable registry, remediates; without one, adds the critical finding and
    /// touches nothing (never untag on uncertainty). Returns the failures.
    async fn remediate_or_report(
        &self,
        findings: &mut Vec<Finding>,
        registry_error: Option<RegistryUnavailable>,
        scope: &Scope,
        opts: &RunOptions,
    ) -> Result<Vec<Failure>, AppError> {
        let mut failures = match registry_error {
            None => self.remediate(findings, opts).await?,
            Some(e) => {
                findings.push(self.registry_unavailable(scope, &e));
                vec![Failure::RegistryUnavailable(e)]
            }
        };
        // Stale keys do not depend on the registry: they are judged from IAM alone.
        failures.extend(self.deactivate_stale_keys(findings, opts).await?);
        Ok(failures)
    }

    fn registry_unavailable(&self, scope: &Scope, error: &RegistryUnavailable) -> Finding {
        let mut f = scope.finding(
            CheckId::ApprovalsRegistryUnavailable,
            self.approvals.location(),
            format!("the approvals registry could not be used, so no exception tag was judged or removed: {error}"),
        );
        f.evidence = json!({ "secret_id": self.approvals.location(), "error": error.to_string() });
        f
    }

    /// Carries out the findings' untag actions, re-reading the registry first so an approval
    /// that landed since the first read is honoured, and checking the deadline before each
    /// call. Returns the failures; a deadline reached midway is an error naming the progress.
    async fn remediate(&self, findings: &mut [Finding], opts: &RunOptions) -> Result<Vec<Failure>, AppError> {
        let mut targets: Vec<&mut Finding> =
            findings.iter_mut().filter(|f| matches!(f.action, Some(Action::Untag { .. }))).collect();
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let set = |f: &mut Finding, status, detail: Option<String>| {
            f.remediation = Some(Remediation { action: "untag".into(), status, detail });
        };
        if !self.config.auto_remediate || opts.dry_run {
            let why = if opts.dry_run { "--dry-run" } else { "AUTO_REMEDIATE=false" };
            for f in targets {
                set(f, RemediationStatus::DryRun, Some(format!("would remove the tag ({why})")));
            }
            return Ok(Vec::new());
        }
        let fresh: Approvals = match self.approvals.load().await {
            Ok(a) => a,
            Err(e) => {
                let failure = Failure::RegistryReRead(e);
                for f in targets {
                    set(f, RemediationStatus::Failed, Some(failure.to_string()));
                }
                return Ok(vec![failure]);
            }
        };
        let total = targets.len();
        let (mut failures, mut applied) = (Vec::new(), 0);
        for f in &mut targets {
            let Some(Action::Untag { user, tag_key }) = f.action.clone() else { continue };
            if opts.must_stop() {
                return Err(AppError::DeadlineNear {
                    completed: format!(
                        "judged {total} exception tag(s) to remove, untagged {applied} of {total}; nothing was published"
                    ),
                });
            }
            if fresh.is_valid_for(&user, opts.now) {
                set(f, RemediationStatus::Skipped, Some("an approval appeared when the registry was re-read".into()));
                continue;
            }
            match self.directory.remove_tag(&user, &tag_key).await {
                Ok(()) => {
                    tracing::warn!(user = %user, tag_key = %tag_key, check = %f.check, "removed exception tag");
                    let previous_value = f.evidence["tag_value"].as_str().unwrap_or(EXCEPTION_VALUE).to_owned();
                    crate::remediate::undo::record(
                        &mut f.evidence,
                        &crate::remediate::undo::UndoRecord::Untag { user: user.clone(), tag_key, previous_value },
                    );
                    set(f, RemediationStatus::Applied, None);
                    applied += 1;
                }
                Err(e) => {
                    set(f, RemediationStatus::Failed, Some(e.to_string()));
                    failures.push(Failure::Remediation(e));
                }
            }
        }
        Ok(failures)
    }
}

/// What a scan learnt from the findings store: when each open finding was first reported
/// (by store id), the findings it resolves, and why the store could not be read, if it could not.
#[derive(Debug, Default)]
struct Lifecycle {
    first_seen: HashMap<String, DateTime<Utc>>,
    resolved: Vec<Finding>,
    failure: Option<Failure>,
    /// The state table could not be read: the scan announces as if stateless.
    state_failure: Option<Failure>,
    /// What the state table decided (announcements, resolutions, writes).
    plan: Option<crate::state::Plan>,
    /// Malformed records of the table, skipped.
    warnings: Vec<String>,
}

/// When each finding (and resolution) was first seen, keyed by its Security Hub id.
fn first_seen_by_asff_id(plan: &crate::state::Plan, findings: &[Finding]) -> HashMap<String, DateTime<Utc>> {
    findings
        .iter()
        .chain(&plan.resolved)
        .filter_map(|f| Some((asff::finding_id(f), *plan.first_seen.get(&f.thread_id())?)))
        .collect()
}

/// The exceptions in force: tagged `True` under a valid approval (a metric and a list for the
/// approver in the digest, not findings).
fn exceptions_in_force(
    users: &[crate::snapshot::UserSnapshot],
    approvals: &Approvals,
    policy: &crate::config::Policy,
    now: DateTime<Utc>,
) -> Vec<ActiveException> {
    users
        .iter()
        .filter(|u| u.tag(&policy.exception_tag_key).is_some_and(|t| t.value == EXCEPTION_VALUE))
        .filter_map(|u| {
            let a = approvals.for_user(&u.name).filter(|a| a.expires > now)?;
            Some(ActiveException {
                user: u.name.clone(),
                approved_by: a.approved_by.clone(),
                ticket: a.ticket.clone(),
                expires: a.expires,
                last_used: last_used(u),
            })
        })
        .collect()
}

/// One message per finding (and per resolution): the event path's publishing.
fn one_message_each(findings: &[Finding], _: Option<&ScanSummary>, resolved: &[Finding]) -> Vec<Message> {
    findings.iter().chain(resolved).map(Message::finding).collect()
}

/// `untagged N of M, ` for the deadline message, from the findings' remediation statuses.
fn untag_progress(findings: &[Finding]) -> String {
    let planned = findings.iter().filter(|f| matches!(f.action, Some(Action::Untag { .. }))).count();
    if planned == 0 {
        return String::new();
    }
    let applied = findings
        .iter()
        .filter(|f| f.remediation.as_ref().is_some_and(|r| r.status == RemediationStatus::Applied))
        .count();
    format!("untagged {applied} of {planned}, ")
}

/// Which delivery an event is: its account and CloudTrail `eventID` (EventBridge's `id` when
/// the detail has none).
struct Delivery {
    account: String,
    event_id: String,
}

fn delivery_of(event: &Value) -> Option<Delivery> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let event_id = text(&event["detail"]["eventID"]).or_else(|| text(&event["id"]))?;
    let account = text(&event["account"]).or_else(|| text(&event["detail"]["recipientAccountId"]))?;
    Some(Delivery { account, event_id })
}

/// How long an event is claimed: until the invocation's deadline, or 15 minutes (Lambda's
/// longest timeout) without one; a claim outliving a crashed attempt lapses then.
fn lease(stop_by: Option<Instant>) -> chrono::Duration {
    let remaining = stop_by.map_or(std::time::Duration::from_mins(15), |t| t.saturating_duration_since(Instant::now()));
    chrono::Duration::from_std(remaining + std::time::Duration::from_secs(10)).unwrap_or(chrono::Duration::minutes(15))
}

/// What the state table says to announce: the scan's digest, then one message per new,
/// changed or reminded finding, then one per resolution of a thread that was announced.
fn announcements(plan: &crate::state::Plan, findings: &[Finding], scan: Option<&ScanSummary>) -> Vec<Message> {
    let announced_threads: HashSet<&str> = plan.writes.iter().filter_map(|(k, _)| k.as_deref()).collect();
    let mut out = scan.map(|s| digest(s, findings, MAX_BODY_BYTES)).unwrap_or_default();
    out.extend(plan.announce.iter().map(Message::finding));
    out.extend(plan.resolved.iter().filter(|f| announced_threads.contains(f.id.as_str())).map(Message::finding));
    out
}
