//! Centralized root access on the event path and in a member's scan: `AssumeRoot` reported
//! (and remembered, so the member's records can be paired with it), a member's root call
//! reported as a root session from the management account when it pairs, the features
//! switched on or off, and a member's leftover root credentials.

use chrono::Duration;

use super::{App, AppError, Failure, Lifecycle, Report, RunOptions, one_message_each};
use crate::checks::root_access::{
    RootSessionStart, RootTask, SessionOrigin, check_member_root_credentials, root_feature_changed,
    root_session_started, root_session_used,
};
use crate::checks::root_used;
use crate::event::{AssumeRootCall, RootActivity, RootFeatureChange};
use crate::finding::{CheckId, Finding, Scope, sort_findings};
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, RootSession, UserDirectory};

/// How long an `AssumeRoot` session lasts at most (`DurationSeconds` ≤ 900).
const SESSION_MAX: Duration = Duration::minutes(15);
/// Leeway either side of a session for clocks and CloudTrail's delivery.
const SESSION_LEEWAY: Duration = Duration::minutes(5);

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// `AssumeRoot`: `root-session-started` in the caller's account, and the session remembered
    /// (when a log is wired) so the member's calls can be paired with it. A failed write still
    /// publishes the finding and fails the invocation by name. No IAM call.
    pub(super) async fn handle_root_session_started(
        &self,
        c: AssumeRootCall,
        opts: &RunOptions,
    ) -> Result<Report, AppError> {
        let trigger = "event:AssumeRoot".to_owned();
        let call = &c.call;
        let scope = Scope {
            account: call.account.clone(),
            region: call.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        let start = RootSessionStart {
            target_account: &c.target_account,
            task: &c.task,
            access_key_id: c.access_key_id.as_deref(),
            actor: &call.actor,
            context: &call.context,
        };
        let finding = root_session_started(&start, &scope);
        tracing::warn!(
            caller = %call.actor.arn,
            target_account = %c.target_account,
            task = %c.task.name(),
            "root session started"
        );
        let mut failures = Vec::new();
        match (&self.root_sessions, &c.access_key_id) {
            (Some(log), Some(key)) => {
                let session = RootSession {
                    target_account: c.target_account.clone(),
                    access_key_id: key.clone(),
                    caller: call.actor.arn.clone(),
                    caller_account: call.account.clone(),
                    task: c.task.name().to_owned(),
                    started_at: call.context.event_time.unwrap_or(opts.now),
                    source_ip: call.context.source_ip.clone(),
                    mfa: call.context.mfa_authenticated,
                };
                if let Err(e) = log.record_root_session(&session).await {
                    failures.push(Failure::RootSessionLog(e));
                }
            }
            (Some(_), None) => tracing::warn!(
                target_account = %c.target_account,
                "AssumeRoot recorded no session key: the member's calls cannot be paired with it"
            ),
            (None, _) => {}
        }
        let mut findings = vec![finding];
        sort_findings(&mut findings);
        self.finish(trigger, findings, failures, opts, None, Lifecycle::default(), one_message_each).await
    }

    /// `Enable…`/`Disable…OrganizationsRoot…`: a finding naming who switched which feature
    /// (disabling is critical). No IAM call: the event says it all.
    pub(super) async fn handle_root_feature_changed(
        &self,
        c: RootFeatureChange,
        opts: &RunOptions,
    ) -> Result<Report, AppError> {
        let call = &c.call;
        let trigger = format!("event:{}", call.event_name);
        let scope = Scope {
            account: call.account.clone(),
            region: call.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        let finding = root_feature_changed(c.feature, c.enabled, &call.event_name, &call.actor, &call.context, &scope);
        let mut findings = vec![finding];
        findings.extend(call.actor.root.then(|| root_used(&call.event_name, &call.actor, &call.context, &scope)));
        sort_findings(&mut findings);
        self.finish(trigger, findings, Vec::new(), opts, None, Lifecycle::default(), one_message_each).await
    }

    /// The `root-used` finding for root's call, and whether it was made in a root session the
    /// management account started (its temporary key matches a remembered `AssumeRoot` into this
    /// account, within the session's 15 minutes). Without a log, or with another key, it is the
    /// plain `root-used`; a failed lookup is too, and the failure is reported by name.
    pub(super) async fn root_use(
        &self,
        activity: &RootActivity,
        scope: &Scope,
        failures: &mut Vec<Failure>,
    ) -> (Finding, bool) {
        let plain = || root_used(&activity.event_name, &activity.actor, &activity.context, scope);
        // Root sessions use temporary (ASIA…) keys; a long-term root key (AKIA…) never pairs.
        let key = activity.caller_key_id.as_deref().filter(|k| k.starts_with("ASIA"));
        let (Some(log), Some(key)) = (&self.root_sessions, key) else { return (plain(), false) };
        let session = match log.find_root_session(&activity.account, key).await {
            Ok(Some(session)) => session,
            Ok(None) => return (plain(), false),
            Err(e) => {
                failures.push(Failure::RootSessionLog(e));
                return (plain(), false);
            }
        };
        let at = activity.context.event_time.unwrap_or(scope.now);
        let within =
            at >= session.started_at - SESSION_LEEWAY && at <= session.started_at + SESSION_MAX + SESSION_LEEWAY;
        if !within {
            tracing::warn!(key, started_at = %session.started_at, "a root session key seen outside its session");
            return (plain(), false);
        }
        let task = RootTask::from_policy_arn(&session.task);
        let origin = SessionOrigin {
            caller: &session.caller,
            caller_account: &session.caller_account,
            task: &task,
            started_at: session.started_at,
            source_ip: session.source_ip.as_deref(),
            mfa: session.mfa,
        };
        (root_session_used(&activity.event_name, &activity.actor, &activity.context, key, &origin, scope), true)
    }

    /// Organization mode, in a member whose organization manages root centrally (the scan
    /// request says so): `member-root-credentials-present` from the account summary (one
    /// `GetAccountSummary` through the member role). A member whose root holds no password,
    /// key or certificate cannot sign in as root, so `root-without-mfa` is dropped there. A
    /// failed read is a named failure; nothing is assumed.
    pub(super) async fn scan_member_root(
        &self,
        scope: &Scope,
        findings: &mut Vec<Finding>,
        failures: &mut Vec<Failure>,
    ) {
        let Some(org) = &self.organization else { return };
        if org.management || org.root_managed_centrally != Some(true) {
            return;
        }
        match self.directory.read_root_summary().await {
            Ok(summary) => {
                findings.extend(check_member_root_credentials(&summary, scope));
                if !(summary.password_present || summary.access_keys_present || summary.signing_certificates_present) {
                    findings.retain(|f| f.check != CheckId::RootWithoutMfa);
                }
            }
            Err(e) => failures.push(Failure::NotJudged(e)),
        }
    }
}
