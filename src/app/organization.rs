//! Organizations events (organization mode): an SCP attached, detached, edited or deleted, an
//! account moved, created or invited. The organization's structure is read once, in bulk, and
//! the SCP coverage of every account the change reaches is judged and published, one message
//! per finding, each carrying who changed what.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{App, AppError, Lifecycle, Outcome, Report, RunOptions, one_message_each};
use crate::checks::root_used;
use crate::event::{ChangeReach, OrganizationChange};
use crate::finding::{Scope, sort_findings};
use crate::org::coverage::{OrgStructure, judge_coverage};
use crate::org::scp_settings;
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, UserDirectory};

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// Reads the organization (only the account concerned when the event names one), judges the
    /// SCP coverage of every member account the change reaches, and publishes the findings.
    pub(super) async fn handle_organization_change(
        &self,
        change: OrganizationChange,
        opts: &RunOptions,
    ) -> Result<Report, AppError> {
        let call = &change.call;
        let trigger = format!("event:{}", call.event_name);
        let Some(org) = &self.organization else {
            return Ok(Report::ignored(
                trigger,
                format!(
                    "{} is an Organizations event: organization events need ORGANIZATION_MODE=true (the function \
                     then reads the organization's SCPs)",
                    call.event_name
                ),
            ));
        };
        let only: Option<BTreeSet<String>> = match &change.reach {
            ChangeReach::Account(a) | ChangeReach::Target { target: a, .. } if crate::event::is_account_id(a) => {
                Some(BTreeSet::from([a.clone()]))
            }
            _ => None,
        };
        let structure = org.reader.read_structure(only.as_ref()).await?;
        if let ChangeReach::Target { target, policy } = &change.reach
            && call.event_name == "AttachPolicy"
            && !structure.is_attached(policy, target)
            && *target != structure.management_account
        {
            return Ok(Report::ignored(
                trigger,
                format!(
                    "{policy} is not a service control policy attached to {target} now (another policy type, AWS's \
                     FullAWSAccess, or detached since): SCP coverage did not change"
                ),
            ));
        }
        let concerned = match concerned(&change.reach, &structure) {
            Ok(accounts) => accounts,
            Err(why) => return Ok(Report::ignored(trigger, why)),
        };
        let scope = Scope {
            account: call.account.clone(),
            region: call.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        let mut findings = judge_coverage(&structure, &scp_settings(&self.config), &scope, Some(&concerned));
        let mut evidence = call.context.evidence(&call.event_name, &call.actor);
        evidence["changed"] = Value::String(change.reach.to_string());
        for f in &mut findings {
            if let (Some(e), Value::Object(extra)) = (f.evidence.as_object_mut(), evidence.clone()) {
                e.extend(extra);
            }
        }
        tracing::info!(
            event = %call.event_name,
            changed = %change.reach,
            accounts = concerned.len(),
            findings = findings.len(),
            "organization change judged"
        );
        findings.extend(call.actor.root.then(|| root_used(&call.event_name, &call.actor, &call.context, &scope)));
        if findings.is_empty() {
            return Ok(Report::without_findings(trigger, Outcome::Processed));
        }
        sort_findings(&mut findings);
        self.finish(trigger, findings, Vec::new(), opts, None, Lifecycle::default(), one_message_each).await
    }
}

/// The member accounts a change reaches in `org`; `Err` with the reason when it reaches none.
fn concerned(reach: &ChangeReach, org: &OrgStructure) -> Result<BTreeSet<String>, String> {
    let all = || org.members().map(str::to_owned).collect::<BTreeSet<String>>();
    let accounts = match reach {
        ChangeReach::Target { target, .. } => {
            if *target == org.management_account {
                return Err(format!("{reach}: SCPs never apply to the management account"));
            }
            let under = org.accounts_under(target);
            if under.is_empty() {
                return Err(format!("{reach}: no member account is at or under {target}"));
            }
            under
        }
        ChangeReach::Policy(policy) => {
            let reached = org.accounts_reached_by(policy);
            if reached.is_empty() {
                return Err(format!(
                    "{reach} applies to no member account (attached nowhere, or not a service control policy): \
                     no account's coverage changed"
                ));
            }
            reached
        }
        ChangeReach::Account(account) if *account == org.management_account => {
            return Err(format!("{reach} is the management account: SCPs never apply to it"));
        }
        ChangeReach::Account(account) if !org.members().any(|a| a == account) => {
            return Err(format!(
                "{reach} is not an active member of the organization (yet): the daily scan judges it once it is"
            ));
        }
        ChangeReach::Account(account) => BTreeSet::from([account.clone()]),
        ChangeReach::AccountNamed(name) => {
            let named: BTreeSet<String> = org
                .accounts
                .iter()
                .filter(|a| a.name == *name && a.id != org.management_account)
                .map(|a| a.id.clone())
                .collect();
            if named.is_empty() { all() } else { named }
        }
        ChangeReach::Organization => all(),
    };
    Ok(accounts)
}
