//! The privileged paths: break-glass roles and users (used → reported at once; kept ready by the
//! scan) and the approvals registry itself (a write by a non-approver → reported at once).

use chrono::{DateTime, Utc};
use futures_util::future::join_all;

use super::{App, AppError, Failure, Lifecycle, Report, RunOptions, one_message_each};
use crate::checks::break_glass::{self, Readiness, Session};
use crate::checks::registry::{self, Content, Write};
use crate::event::{RoleAssumption, SecretChange, UserSignIn};
use crate::finding::{Finding, Scope, sort_findings};
use crate::ports::{AccountReader, AccountSnapshot, ApprovalsStore, FindingsSink, UserDirectory};

/// What the scan learnt about the privileged paths, beyond its findings and failures.
pub(super) struct PrivilegedScan {
    /// Every configured break-glass role was looked up (the lifecycle may resolve earlier findings).
    pub break_glass_checked: bool,
    /// When the registry last changed, for the digest.
    pub registry_last_changed_at: Option<DateTime<Utc>>,
}

fn event_scope(trigger: &str, account: &str, region: &str, opts: &RunOptions) -> Scope {
    Scope { account: account.to_owned(), region: region.to_owned(), trigger: trigger.to_owned(), now: opts.now }
}

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    async fn publish_each(
        &self,
        trigger: String,
        mut findings: Vec<Finding>,
        failures: Vec<Failure>,
        opts: &RunOptions,
    ) -> Result<Report, AppError> {
        sort_findings(&mut findings);
        self.finish(trigger, findings, failures, opts, None, Lifecycle::default(), one_message_each).await
    }

    /// `AssumeRole`: `break-glass-used` for a configured role, ignored otherwise. No AWS read.
    pub(super) async fn handle_role_assumed(&self, a: RoleAssumption, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = "event:AssumeRole".to_owned();
        if !break_glass::is_break_glass_role(&self.config.policy, &a.role_arn) {
            return Ok(Report::ignored(
                trigger,
                format!("AssumeRole of {}: not a break-glass role (BREAK_GLASS_ROLE_ARNS)", a.role_arn),
            ));
        }
        tracing::warn!(role = %a.role_arn, caller = %a.actor.arn, "break-glass role assumed");
        let scope = event_scope(&trigger, &a.account, &a.region, opts);
        let session = Session { role_arn: &a.role_arn, name: a.session_name.as_deref(), arn: a.session_arn.as_deref() };
        let finding = break_glass::role_assumed(&session, &a.actor, &a.context, &scope);
        self.publish_each(trigger, vec![finding], Vec::new(), opts).await
    }

    /// An IAM user's `ConsoleLogin`: `break-glass-used` for a configured user who got in. A
    /// failed attempt is logged as a warning and ignored: nobody signed in, but who tried matters.
    pub(super) async fn handle_user_sign_in(&self, s: UserSignIn, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = "event:ConsoleLogin".to_owned();
        if !self.config.policy.is_break_glass_user(&s.user_name) {
            return Ok(Report::ignored(
                trigger,
                format!(
                    "ConsoleLogin by IAM user {}: not a break-glass user (BREAK_GLASS_USERS); only root and \
                     break-glass sign-ins are handled",
                    s.user_name
                ),
            ));
        }
        if let Some(why) = &s.failure {
            let from = s.context.source_ip.as_deref().unwrap_or("an unknown address");
            tracing::warn!(user = %s.user_name, source_ip = %from, failure = %why, "failed console sign-in of a break-glass user");
            return Ok(Report::ignored(
                trigger,
                format!(
                    "failed console sign-in of break-glass user {} from {from} ({why}): logged as a warning; \
                     nobody signed in",
                    s.user_name
                ),
            ));
        }
        tracing::warn!(user = %s.user_name, caller = %s.actor.arn, "break-glass user signed in");
        let scope = event_scope(&trigger, &s.account, &s.region, opts);
        let finding = break_glass::user_signed_in(&s.user_name, &s.actor, &s.context, &scope);
        self.publish_each(trigger, vec![finding], Vec::new(), opts).await
    }

    /// A write to a secret: ignored unless it is the registry; by an approver, logged; by anybody
    /// else, `registry-changed-by-non-approver` with the approvals added and removed (two
    /// `GetSecretValue` calls, `AWSCURRENT` and `AWSPREVIOUS`, for changes of content; none otherwise).
    pub(super) async fn handle_secret_changed(&self, c: SecretChange, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = format!("event:{}", c.event_name);
        if !registry::secret_matches(&self.config.approvals_secret_id, &c.secret_id) {
            return Ok(Report::ignored(
                trigger,
                format!("{} on secret {}: not the approvals registry", c.event_name, c.secret_id),
            ));
        }
        if registry::is_approver(&self.config.policy, &c.actor) {
            // Never the content: who, what and when is enough to audit an expected change.
            tracing::info!(event = %c.event_name, caller = %c.actor.arn, secret_id = %c.secret_id, "approvals registry changed by an approver");
            return Ok(Report::ignored(
                trigger,
                format!(
                    "{} on the approvals registry by approver {}: logged; the next digest shows when the registry \
                     last changed",
                    c.event_name, c.actor.arn
                ),
            ));
        }
        tracing::warn!(event = %c.event_name, caller = %c.actor.arn, secret_id = %c.secret_id, "approvals registry changed by a non-approver");
        let mut failures = Vec::new();
        let content = if registry::changes_content(&c.event_name) {
            let (current, previous) =
                tokio::join!(self.approvals.version("AWSCURRENT"), self.approvals.version("AWSPREVIOUS"));
            match (current, previous) {
                (Ok(current), Ok(previous)) => Content::Compared { previous, current },
                (Err(e), _) | (_, Err(e)) => {
                    let content = Content::Unreadable(e.to_string());
                    failures.push(Failure::NotJudged(e));
                    content
                }
            }
        } else {
            Content::NotCompared(registry::not_compared_reason(&c.event_name))
        };
        let scope = event_scope(&trigger, &c.account, &c.region, opts);
        let write = Write { event_name: &c.event_name, secret_id: &c.secret_id, actor: &c.actor, context: &c.context };
        let finding = registry::changed_by_non_approver(&write, &content, &self.config.policy, &scope);
        self.publish_each(trigger, vec![finding], failures, opts).await
    }

    /// The scan's privileged paths: break-glass readiness — one `GetRole` per configured role
    /// (concurrently), the users from the snapshot; a lookup that fails is a failure of the scan,
    /// never a pass — and, at the same time, when the registry last changed. Runs after
    /// remediation: its findings plan no action.
    pub(super) async fn scan_privileged(
        &self,
        snapshot: &AccountSnapshot,
        scope: &Scope,
        findings: &mut Vec<Finding>,
        failures: &mut Vec<Failure>,
    ) -> PrivilegedScan {
        let policy = &self.config.policy;
        let roles = join_all(policy.break_glass_roles.iter().map(|r| self.directory.role_exists(r)));
        let (lookups, registry_last_changed_at) = tokio::join!(roles, self.registry_last_changed());
        let mut missing_roles = Vec::new();
        let mut break_glass_checked = true;
        for (role, found) in policy.break_glass_roles.iter().zip(lookups) {
            match found {
                Ok(true) => {}
                Ok(false) => missing_roles.push(role.clone()),
                Err(e) => {
                    break_glass_checked = false;
                    failures.push(Failure::NotJudged(e));
                }
            }
        }
        let readiness = Readiness {
            users: &snapshot.users,
            users_not_in_report: &snapshot.users_not_in_report,
            missing_roles: &missing_roles,
        };
        findings.extend(break_glass::not_ready(policy, &readiness, scope));
        PrivilegedScan { break_glass_checked, registry_last_changed_at }
    }

    /// When the registry last changed, for the digest (one `DescribeSecret`). Informational: a
    /// failure is logged and leaves the line out rather than failing the scan.
    async fn registry_last_changed(&self) -> Option<DateTime<Utc>> {
        match self.approvals.last_changed().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "could not read when the approvals registry last changed");
                None
            }
        }
    }
}
