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
        let concerned = match concerned(&change.reach, &structure) {
            Ok(accounts) => accounts,
            Err(why) => return Ok(Report::ignored(trigger, why)),
        };
        if let ChangeReach::Target { target, policy } = &change.reach
            && call.event_name == "AttachPolicy"
            && !structure.is_attached(policy, target)
        {
            return Ok(Report::ignored(
                trigger,
                format!(
                    "{policy} is not a service control policy attached to {target} now (another policy type, AWS's \
                     FullAWSAccess, or detached since): SCP coverage did not change"
                ),
            ));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::organizations::OrgAccount;
    use crate::org::coverage::{AttachedPolicy, NodeKind, OrgNode};

    /// root r-root1 ─ OU Sandbox (ou-root1-sandbox1) ─ 222 (sandbox-1); 333 (shared) and 111 (management) under the root.
    fn org() -> OrgStructure {
        let account = |id: &str, name: &str| OrgAccount { id: id.into(), name: name.into() };
        let node = |id: &str, kind| (id.to_owned(), OrgNode { id: id.into(), kind, name: String::new() });
        OrgStructure {
            management_account: "111111111111".into(),
            accounts: vec![
                account("111111111111", "management"),
                account("222222222222", "sandbox-1"),
                account("333333333333", "shared"),
            ],
            parents: [
                ("222222222222", "ou-root1-sandbox1"),
                ("333333333333", "r-root1"),
                ("111111111111", "r-root1"),
                ("ou-root1-sandbox1", "r-root1"),
            ]
            .into_iter()
            .map(|(c, p)| (c.to_owned(), p.to_owned()))
            .collect(),
            nodes: [node("r-root1", NodeKind::Root), node("ou-root1-sandbox1", NodeKind::OrganizationalUnit)].into(),
            attached: [(
                "ou-root1-sandbox1".to_owned(),
                vec![AttachedPolicy { id: "p-sandbox1".into(), name: "SandboxGuardrail".into() }],
            )]
            .into(),
            documents: std::collections::BTreeMap::new(),
        }
    }

    fn ids(reach: &ChangeReach) -> Result<Vec<String>, String> {
        concerned(reach, &org()).map(|s| s.into_iter().collect())
    }

    #[test]
    fn a_change_reaches_the_member_accounts_at_or_under_its_target() {
        let target = |t: &str| ChangeReach::Target { target: t.into(), policy: "p-sandbox1".into() };
        assert_eq!(ids(&target("r-root1")).unwrap(), ["222222222222", "333333333333"]);
        assert_eq!(ids(&target("ou-root1-sandbox1")).unwrap(), ["222222222222"]);
        assert!(ids(&target("111111111111")).unwrap_err().contains("never apply to the management account"));
        assert!(ids(&target("ou-root1-elsewhere")).unwrap_err().contains("no member account"));
        assert_eq!(ids(&ChangeReach::Policy("p-sandbox1".into())).unwrap(), ["222222222222"]);
        assert!(ids(&ChangeReach::Policy("p-nowhere1".into())).unwrap_err().contains("applies to no member account"));
    }

    #[test]
    fn accounts_are_members_or_ignored_and_unknowable_reaches_everyone() {
        assert_eq!(ids(&ChangeReach::Account("333333333333".into())).unwrap(), ["333333333333"]);
        assert!(ids(&ChangeReach::Account("444444444444".into())).unwrap_err().contains("not an active member"));
        assert!(ids(&ChangeReach::Account("111111111111".into())).unwrap_err().contains("management account"));
        assert_eq!(ids(&ChangeReach::AccountNamed("shared".into())).unwrap(), ["333333333333"]);
        assert_eq!(ids(&ChangeReach::AccountNamed("not-yet".into())).unwrap(), ["222222222222", "333333333333"]);
        assert_eq!(ids(&ChangeReach::Organization).unwrap(), ["222222222222", "333333333333"]);
    }
}
