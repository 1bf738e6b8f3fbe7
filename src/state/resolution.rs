//! Which findings a scan resolves: pure, from what the findings store holds as open and what
//! the scan just produced: the open threads of the state table, or Security Hub's open findings.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::stored::StoredFinding;
use crate::finding::{CheckId, Finding, FindingState, stable_id};

/// What the scan could judge; a condition it could not judge is never declared resolved.
#[derive(Debug, Clone, Copy)]
pub struct Coverage<'a> {
    /// The account scanned.
    pub account: &'a str,
    /// The approvals registry was read: the exception checks were judged.
    pub registry_read: bool,
    /// The credential report had a root row: the root checks were judged.
    pub root_checked: bool,
    /// Users only in GetAccountAuthorizationDetails: only their tags were judged.
    pub users_not_in_report: &'a [String],
    /// Every configured break-glass role was looked up (no `GetRole` failed).
    pub break_glass_checked: bool,
}

/// Checks only the event path produces (they describe an act, not a state): a scan cannot
/// see them end, so it never resolves them.
#[must_use]
pub fn event_only(check: CheckId) -> bool {
    matches!(
        check,
        CheckId::ExceptionSelfGranted
            | CheckId::RootUsed
            | CheckId::BreakGlassUsed
            | CheckId::RegistryChangedByNonApprover
            | CheckId::RootSessionStarted
            | CheckId::RootAccessCentralized
            | CheckId::RotationOptIn
    )
}

/// Checks judged from tags and the registry (what the scan runs for users not yet in the report).
fn tag_check(check: CheckId) -> bool {
    check.as_str().starts_with("exception-") || check == CheckId::RequiredTagMissing
}

fn judged(stored: &StoredFinding, check: CheckId, coverage: &Coverage<'_>) -> bool {
    if event_only(check) || stored.account != coverage.account {
        return false;
    }
    if !coverage.registry_read
        && (check.as_str().starts_with("exception-") || check == CheckId::ApprovalsRegistryUnavailable)
    {
        return false;
    }
    if matches!(check, CheckId::RootAccessKey | CheckId::RootWithoutMfa) && !coverage.root_checked {
        return false;
    }
    if check == CheckId::BreakGlassNotReady && !coverage.break_glass_checked {
        return false;
    }
    let partly_read = stored.user.as_ref().is_some_and(|u| coverage.users_not_in_report.contains(u));
    !partly_read || tag_check(check)
}

/// The stored open findings the scan no longer produces, as resolved findings observed `now`.
/// A stored finding stays open when the scan produced the same condition (same
/// [`Finding::thread_id`]), or, for one the event path reported (which names keys by id where
/// the scan names them by slot), any finding of the same check about the same principal.
#[must_use]
pub fn resolved(
    open: &[StoredFinding],
    current: &[Finding],
    coverage: &Coverage<'_>,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let threads: HashSet<String> = current.iter().map(Finding::thread_id).collect();
    let checks: HashSet<(CheckId, &str)> = current.iter().map(|f| (f.check, f.principal.as_str())).collect();
    open.iter()
        .filter_map(|stored| {
            let check = stored.check?;
            if !judged(stored, check, coverage) {
                return None;
            }
            let f = resolution(stored, check, now);
            let still_open = threads.contains(&f.thread_id())
                || (stored.trigger.starts_with("event:") && checks.contains(&(check, stored.principal.as_str())));
            (!still_open).then_some(f)
        })
        .collect()
}

/// The resolved finding for a stored one: same account, check, principal and resource (so the
/// same thread id), observed now.
fn resolution(stored: &StoredFinding, check: CheckId, now: DateTime<Utc>) -> Finding {
    let since = stored.first_observed_at.map(|t| format!(" (reported since {})", t.format("%Y-%m-%d")));
    let mut f = Finding {
        id: String::new(),
        check,
        severity: check.severity(),
        account: stored.account.clone(),
        account_name: None,
        region: stored.region.clone(),
        principal: stored.principal.clone(),
        user: stored.user.clone(),
        resource: stored.resource.clone(),
        message: format!(
            "resolved: the daily scan no longer finds this{}: {}",
            since.unwrap_or_default(),
            stored.message
        ),
        evidence: json!({
            "first_observed_at": stored.first_observed_at,
            "reported_by": stored.trigger,
            "security_hub_id": stored.store_id,
        }),
        remediation: None,
        observed_at: now,
        trigger: "schedule".into(),
        action: None,
        state: FindingState::Resolved,
        notice: None,
    };
    // Distinct from the open finding's per-day id, so a subscriber de-duplicating on it never
    // drops the resolution as a copy of the finding reported the same day.
    f.id = stable_id(&[&f.thread_id(), "resolved", &now.format("%Y-%m-%d").to_string()]);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Scope;

    const ACCOUNT: &str = "123456789012";

    fn now() -> DateTime<Utc> {
        "2026-11-24T06:00:00Z".parse().unwrap()
    }

    fn current(check: CheckId, user: &str, resource: Option<&str>) -> Finding {
        let scope =
            Scope { account: ACCOUNT.into(), region: "us-east-1".into(), trigger: "schedule".into(), now: now() };
        let mut f = scope.finding(check, &format!("arn:aws:iam::{ACCOUNT}:user/{user}"), "m".into());
        f.user = Some(user.into());
        f.resource = resource.map(str::to_owned);
        f
    }

    fn stored(check: CheckId, user: &str, resource: Option<&str>, trigger: &str) -> StoredFinding {
        StoredFinding {
            store_id: format!("iam-sentinel/{check}/x"),
            check: Some(check),
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            principal: format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
            user: Some(user.into()),
            resource: resource.map(str::to_owned),
            trigger: trigger.into(),
            message: "alice's key is 120 days old".into(),
            first_observed_at: Some("2026-11-20T06:00:00Z".parse().unwrap()),
        }
    }

    fn full() -> Coverage<'static> {
        Coverage {
            account: ACCOUNT,
            registry_read: true,
            root_checked: true,
            users_not_in_report: &[],
            break_glass_checked: true,
        }
    }

    #[test]
    fn a_condition_the_scan_no_longer_finds_is_resolved_with_the_same_thread() {
        let slot = Some("access_key_1 created 2026-05-07");
        let open = [
            stored(CheckId::AccessKeyStale, "alice", slot, "schedule"),
            stored(CheckId::ConsoleWithoutMfa, "bob", None, "schedule"),
        ];
        let now_found = [current(CheckId::ConsoleWithoutMfa, "bob", None)];
        let out = resolved(&open, &now_found, &full(), now());
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(
            (r.check, r.user.as_deref(), r.state),
            (CheckId::AccessKeyStale, Some("alice"), FindingState::Resolved)
        );
        assert_eq!(r.thread_id(), current(CheckId::AccessKeyStale, "alice", slot).thread_id());
        assert_eq!(r.severity, CheckId::AccessKeyStale.severity());
        assert_ne!(r.id, current(CheckId::AccessKeyStale, "alice", slot).stable_id());
        assert!(
            r.message.starts_with("resolved: the daily scan no longer finds this (reported since 2026-11-20)"),
            "{}",
            r.message
        );
    }

    #[test]
    fn a_rotated_key_resolves_the_old_slot_even_if_the_new_key_has_a_finding() {
        let open = [stored(CheckId::AccessKeyStale, "alice", Some("access_key_1 created 2026-05-07"), "schedule")];
        let now_found = [current(CheckId::AccessKeyRotationDue, "alice", Some("access_key_1 created 2026-11-24"))];
        assert_eq!(resolved(&open, &now_found, &full(), now()).len(), 1);
    }

    #[test]
    fn event_findings_match_the_scan_by_check_and_principal() {
        let open = [stored(CheckId::AccessKeyUnused, "alice", Some("AKIAIOSFODNN7EXAMPLE"), "event:CreateAccessKey")];
        let still = [current(CheckId::AccessKeyUnused, "alice", Some("access_key_1 created 2026-05-07"))];
        assert!(resolved(&open, &still, &full(), now()).is_empty());
        assert_eq!(resolved(&open, &[], &full(), now()).len(), 1);
    }

    #[test]
    fn what_the_scan_could_not_judge_stays_open() {
        let acts = [
            stored(CheckId::RootUsed, "alice", None, "event:ConsoleLogin"),
            stored(CheckId::ExceptionSelfGranted, "alice", None, "event:TagUser"),
        ];
        assert!(resolved(&acts, &[], &full(), now()).is_empty(), "acts are not states");
        let exception = [stored(CheckId::ExceptionUnapproved, "alice", None, "schedule")];
        let no_registry = Coverage { registry_read: false, ..full() };
        assert!(resolved(&exception, &[], &no_registry, now()).is_empty());
        let key = [stored(CheckId::AccessKeyStale, "carol", Some("access_key_1 created 2026-05-07"), "schedule")];
        let not_in_report = ["carol".to_owned()];
        let partial = Coverage { users_not_in_report: &not_in_report, ..full() };
        assert!(resolved(&key, &[], &partial, now()).is_empty());
        let tag = [stored(CheckId::RequiredTagMissing, "carol", None, "schedule")];
        assert_eq!(resolved(&tag, &[], &partial, now()).len(), 1, "tags were judged");
        let mut root = stored(CheckId::RootAccessKey, "x", None, "schedule");
        root.user = None;
        assert!(resolved(&[root.clone()], &[], &Coverage { root_checked: false, ..full() }, now()).is_empty());
        assert_eq!(resolved(&[root], &[], &full(), now()).len(), 1);
        let role = stored(CheckId::BreakGlassNotReady, "x", None, "schedule");
        let unchecked = Coverage { break_glass_checked: false, ..full() };
        assert!(
            resolved(std::slice::from_ref(&role), &[], &unchecked, now()).is_empty(),
            "a failed GetRole resolves nothing"
        );
        assert_eq!(resolved(&[role], &[], &full(), now()).len(), 1);
        let mut other_account = stored(CheckId::AccessKeyStale, "alice", None, "schedule");
        other_account.account = "210987654321".into();
        let mut unknown = stored(CheckId::AccessKeyStale, "alice", None, "schedule");
        unknown.check = None;
        assert!(resolved(&[other_account, unknown], &[], &full(), now()).is_empty());
    }
}
