//! Events that change policies or the password policy: the policy checks judge every user a
//! change concerns, from bulk reads, as the scan does.

use futures_util::future::try_join_all;
use serde_json::json;

use super::{App, AppError, Lifecycle, Outcome, Report, RunOptions, one_message_each};
use crate::checks::access::{self, AccessJudge, AccessTarget};
use crate::checks::{password, root_used};
use crate::event::{AccessChange, AccountCall};
use crate::finding::{Finding, Scope, sort_findings};
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, UserDirectory};
use crate::snapshot::{PolicyCatalogue, UserSnapshot};

/// Up to this many users concerned, each is read with the per-user calls (fresh credentials,
/// ≤ 6 calls each); beyond it, the credential report is read once instead.
pub const FRESH_READS: usize = 5;

impl AccountCall {
    fn scope(&self, now: chrono::DateTime<chrono::Utc>) -> Scope {
        Scope {
            account: self.account.clone(),
            region: self.region.clone(),
            trigger: format!("event:{}", self.event_name),
            now,
        }
    }

    /// Who changed what, added to every finding the event produces.
    fn evidence(&self, target: &str) -> serde_json::Value {
        json!({
            "event": self.event_name,
            "changed": target,
            "changed_by": self.actor.arn,
            "source_ip": self.context.source_ip,
            "event_time": self.context.event_time,
        })
    }

    fn root_use(&self, scope: &Scope) -> Option<Finding> {
        self.actor.root.then(|| root_used(&self.event_name, &self.actor, &self.context, scope))
    }
}

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// A user's policies or groups, a group's policies, or a policy's default version changed:
    /// reads the account's policies in bulk (`GetAccountAuthorizationDetails`), finds every
    /// user the change reaches, and runs the policy checks on each.
    pub(super) async fn handle_access(&self, change: AccessChange, opts: &RunOptions) -> Result<Report, AppError> {
        let scope = change.call.scope(opts.now);
        let trigger = scope.trigger.clone();
        let access = self.directory.read_access().await?;
        let reached: Vec<String> =
            access::users_reached(&change.target, &access.catalogue, access.users.iter().map(|(n, p)| (n.as_str(), p)))
                .into_iter()
                .map(str::to_owned)
                .collect();
        let root_use = change.call.root_use(&scope);
        if reached.is_empty() && root_use.is_none() {
            let why = match &change.target {
                AccessTarget::User(u) => format!("user {u} no longer exists"),
                other => format!("{other} reaches no user"),
            };
            return Ok(Report::ignored(trigger, why));
        }
        let (catalogue, users) = if reached.len() <= FRESH_READS {
            let read = try_join_all(reached.iter().map(|name| self.directory.read_user(name))).await?;
            let mut users: Vec<UserSnapshot> = read.into_iter().flatten().collect();
            for user in &mut users {
                user.policies = access.users.iter().find(|(n, _)| *n == user.name).map(|(_, p)| p.clone());
            }
            (access.catalogue, users)
        } else {
            self.concerned_from_report(&reached).await?
        };
        let judge = AccessJudge::new(&catalogue, &self.config.policy.enterprise_cidrs);
        let changed = change.target.to_string();
        let mut findings: Vec<Finding> = users
            .iter()
            .flat_map(|user| access::check(user, &judge, &self.config.policy, &scope))
            .map(|mut f| {
                add_evidence(&mut f, change.call.evidence(&changed));
                f
            })
            .collect();
        tracing::info!(
            event = %change.call.event_name,
            target = %changed,
            users = users.len(),
            findings = findings.len(),
            "policy change judged"
        );
        findings.extend(root_use);
        sort_findings(&mut findings);
        self.finish(trigger, findings, Vec::new(), opts, None, Lifecycle::default(), one_message_each).await
    }

    /// A change reaching many users: their credentials from the credential report (bulk), and
    /// per-user reads only for those created since it was generated.
    async fn concerned_from_report(
        &self,
        reached: &[String],
    ) -> Result<(PolicyCatalogue, Vec<UserSnapshot>), AppError> {
        let snapshot = self.directory.read_account().await?;
        let mut users = Vec::with_capacity(reached.len());
        for mut user in snapshot.users.into_iter().filter(|u| reached.contains(&u.name)) {
            if snapshot.users_not_in_report.contains(&user.name) {
                let policies = user.policies.take();
                let Some(fresh) = self.directory.read_user(&user.name).await? else { continue };
                user = UserSnapshot { policies, ..fresh };
            }
            users.push(user);
        }
        Ok((snapshot.catalogue, users))
    }

    /// The password policy changed or was deleted: one `GetAccountPasswordPolicy`, judged.
    pub(super) async fn handle_password_policy(
        &self,
        call: AccountCall,
        opts: &RunOptions,
    ) -> Result<Report, AppError> {
        let scope = call.scope(opts.now);
        let policy = self.directory.read_password_policy().await?;
        let mut findings: Vec<Finding> = password::check(policy.as_ref(), &self.config.policy.password, &scope)
            .into_iter()
            .map(|mut f| {
                add_evidence(&mut f, call.evidence("account password policy"));
                f
            })
            .collect();
        findings.extend(call.root_use(&scope));
        if findings.is_empty() {
            return Ok(Report::without_findings(scope.trigger, Outcome::Processed));
        }
        sort_findings(&mut findings);
        self.finish(scope.trigger.clone(), findings, Vec::new(), opts, None, Lifecycle::default(), one_message_each)
            .await
    }
}

/// Merges `extra` into the finding's evidence object.
fn add_evidence(f: &mut Finding, extra: serde_json::Value) {
    if let (Some(evidence), serde_json::Value::Object(extra)) = (f.evidence.as_object_mut(), extra) {
        evidence.extend(extra);
    }
}
