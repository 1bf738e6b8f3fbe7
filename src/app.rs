//! The one place that wires trigger → collect → check → remediate → publish.
//!
//! The Lambda handler and the CLI both build an [`App`] and call [`App::handle`].

pub use crate::state::resolution as lifecycle;
mod events;
mod executor;
mod organization;
mod policy_events;
mod privileged;
mod root_sessions;
pub mod rotation;
mod scan;
mod stale_keys;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::Config;
use crate::event::EventError;
use crate::finding::Finding;
use crate::message::ScanSummary;
use crate::ports::{CallError, FindingsStore, PublishError, RegistryUnavailable, ScanError, StoreError};
use executor::{Lifecycle, one_message_each};

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
