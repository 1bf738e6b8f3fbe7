//! The pure checks: plain data in, findings out. No AWS types, no I/O, no clock.
//!
//! One file per family. [`check_user`] runs every user check; the event path and
//! the scan both call it, so one user gets the same findings from either.

pub mod access;
pub mod break_glass;
mod console;
mod exceptions;
mod keys;
mod mfa;
pub mod password;
pub mod policy;
pub mod registry;
mod root;
pub mod root_access;

use chrono::{DateTime, Utc};

use crate::approvals::Approvals;
use crate::config::Policy;
use crate::finding::{Finding, Scope};
use crate::snapshot::UserSnapshot;

pub use crate::domain::call::{Actor, CallContext};
pub use exceptions::{EXCEPTION_VALUE, last_used};
pub use root::{RootSummary, check_root, check_root_summary, root_used};

/// What the event being handled did to the exception tag (event path only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChange {
    /// Who made the call.
    pub actor: Actor,
    /// The exception tag value the call set, if it set one.
    pub exception_value_set: Option<String>,
}

/// Everything the user checks look at: one snapshot, judged under one policy at one moment.
#[derive(Debug, Clone, Copy)]
pub struct UserInput<'a> {
    /// The user as IAM describes it.
    pub user: &'a UserSnapshot,
    /// The registry; `None` when it could not be read: the approval checks are then skipped
    /// (the caller reports `approvals-registry-unavailable`).
    pub approvals: Option<&'a Approvals>,
    /// What the event being handled did to the exception tag (event path only).
    pub change: Option<&'a TagChange>,
    /// Thresholds and names.
    pub policy: &'a Policy,
    /// Account, region, trigger and now.
    pub scope: &'a Scope,
    /// The account's policies, judged; `None` on paths that did not read them (the policy
    /// checks then do not run).
    pub access: Option<&'a access::AccessJudge<'a>>,
}

/// Runs every user check on one snapshot.
#[must_use]
pub fn check_user(input: &UserInput<'_>) -> Vec<Finding> {
    let mut findings = check_user_tags(input);
    // Needs the credentials' last use, so not in the tag-only checks.
    findings.extend(exceptions::unused(input.user, input.approvals, input.policy, input.scope));
    findings.extend(keys::check(input.user, input.policy, input.scope));
    findings.extend(mfa::check(input.user, input.policy, input.scope));
    findings.extend(console::check(input.user, input.policy, input.scope));
    if let Some(judge) = input.access {
        findings.extend(access::check(input.user, judge, input.policy, input.scope));
    }
    findings
}

/// Only the tag checks (exception tag, required tags), for a user whose credentials
/// are unknown (created after the credential report was generated).
#[must_use]
pub fn check_user_tags(input: &UserInput<'_>) -> Vec<Finding> {
    let UserInput { user, approvals, change, policy, scope, .. } = *input;
    let mut findings = exceptions::check(user, approvals, change, policy, scope);
    findings.extend(exceptions::check_required_tags(user, policy, scope));
    findings
}

/// Whole days from `from` to `to` (negative if `to` is earlier); the one place durations are rounded.
#[must_use]
pub fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_days()
}

/// A finding about `user`, with the user's name and ARN filled in.
fn user_finding(scope: &Scope, check: crate::finding::CheckId, user: &UserSnapshot, message: String) -> Finding {
    let mut f = scope.finding(check, &user.arn, message);
    f.user = Some(user.name.clone());
    f
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Builders for plain test values.
    use super::*;
    use crate::snapshot::{AccessKey, KeyRef, Tag};

    pub fn now() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    pub fn days_ago(d: i64) -> DateTime<Utc> {
        now() - chrono::Duration::days(d)
    }

    pub fn scope() -> Scope {
        Scope { account: "123456789012".into(), region: "us-east-1".into(), trigger: "schedule".into(), now: now() }
    }

    pub fn user(name: &str) -> UserSnapshot {
        UserSnapshot {
            created: None,
            name: name.into(),
            arn: format!("arn:aws:iam::123456789012:user/{name}"),
            tags: vec![],
            keys: vec![],
            password_enabled: false,
            password_last_used: None,
            password_set: None,
            mfa_active: false,
            policies: None,
        }
    }

    pub fn tagged(name: &str, key: &str, value: &str) -> UserSnapshot {
        let mut u = user(name);
        u.tags.push(Tag::new(key, value));
        u
    }

    pub fn key(id: &str, active: bool, created_days_ago: i64, used_days_ago: Option<i64>) -> AccessKey {
        AccessKey {
            key: KeyRef::Id(id.into()),
            active,
            created: days_ago(created_days_ago),
            last_used: used_days_ago.map(days_ago),
        }
    }

    pub fn checks_of(findings: &[Finding]) -> Vec<&'static str> {
        let mut v: Vec<_> = findings.iter().map(|f| f.check.as_str()).collect();
        v.sort_unstable();
        v
    }
}
