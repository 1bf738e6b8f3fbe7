//! The exception tag (`AccessException=True` lets an IAM user past the SCP) and tag drift.

use serde_json::json;

use super::{TagChange, user_finding};
use crate::approvals::Approvals;
use crate::config::Policy;
use crate::finding::{Action, CheckId, Finding, Remediation, RemediationStatus, Scope};
use crate::snapshot::UserSnapshot;

/// Why a break-glass user's exception tag is left in place.
pub const BREAK_GLASS_NOT_REMEDIATED: &str = "break-glass user (BREAK_GLASS_USERS): the tag is reported, never removed automatically; remove it by hand if \
     the exception is not wanted";

/// The only value the SCP's `StringNotEquals aws:PrincipalTag/AccessException` accepts.
pub const EXCEPTION_VALUE: &str = "True";

/// Approval checks on the exception tag, plus who set it when an event says so.
pub(super) fn check(
    user: &UserSnapshot,
    approvals: Option<&Approvals>,
    change: Option<&TagChange>,
    policy: &Policy,
    scope: &Scope,
) -> Vec<Finding> {
    let key = &policy.exception_tag_key;
    let mut out = Vec::new();
    let tagged_by = change.map(|c| c.actor.arn.clone());
    let evidence = |extra: serde_json::Value| {
        let mut e = extra;
        if let Some(by) = &tagged_by {
            e["tagged_by"] = json!(by);
        }
        e
    };

    out.extend(self_granted(user, change, policy, scope));

    let approval = approvals.and_then(|a| a.for_user(&user.name));
    match user.tag(key) {
        Some(tag) if tag.value != EXCEPTION_VALUE => {
            let mut f = user_finding(
                scope,
                CheckId::ExceptionTagMalformed,
                user,
                format!(
                    "{} carries {}={:?}; only {key}={EXCEPTION_VALUE} (case-sensitive) is an exception: fix or remove the tag",
                    user.name, tag.key, tag.value
                ),
            );
            f.evidence = evidence(json!({ "tag_key": tag.key, "tag_value": tag.value }));
            out.push(f);
        }
        Some(tag) => {
            if approvals.is_none() {
                return out;
            }
            let (check, message) = match approval {
                None => (
                    CheckId::ExceptionUnapproved,
                    format!("{} carries {}={EXCEPTION_VALUE} with no approval in the registry", user.name, tag.key),
                ),
                Some(a) if a.expires <= scope.now => (
                    CheckId::ExceptionExpired,
                    format!(
                        "{} carries {}={EXCEPTION_VALUE} but approval {} expired on {}",
                        user.name,
                        tag.key,
                        a.ticket,
                        a.expires.format("%Y-%m-%d %H:%M UTC")
                    ),
                ),
                Some(a) if a.expires - scope.now <= chrono::Duration::days(policy.exception_warn_days) => (
                    CheckId::ExceptionExpiring,
                    format!(
                        "approval {} for {}'s {} expires on {}: renew it or let it lapse",
                        a.ticket,
                        user.name,
                        tag.key,
                        a.expires.format("%Y-%m-%d %H:%M UTC")
                    ),
                ),
                Some(_) => return out,
            };
            let mut f = user_finding(scope, check, user, message);
            let mut e = json!({ "tag_key": tag.key, "tag_value": tag.value });
            if matches!(check, CheckId::ExceptionUnapproved | CheckId::ExceptionExpired) {
                if policy.is_break_glass_user(&user.name) {
                    // An emergency path must never be cut by automation: reported, never untagged.
                    e["break_glass_user"] = json!(true);
                    f.remediation = Some(Remediation {
                        action: "untag".into(),
                        status: RemediationStatus::Skipped,
                        detail: Some(BREAK_GLASS_NOT_REMEDIATED.into()),
                    });
                } else {
                    f.action = Some(Action::Untag { user: user.name.clone(), tag_key: tag.key.clone() });
                }
            }
            if let Some(a) = approval {
                e["approval"] = json!({ "ticket": a.ticket, "approved_by": a.approved_by, "expires": a.expires });
            }
            f.evidence = evidence(e);
            out.push(f);
        }
        None => {
            if let Some(a) = approval.filter(|a| a.expires > scope.now) {
                let mut f = user_finding(
                    scope,
                    CheckId::ExceptionApprovedUntagged,
                    user,
                    format!(
                        "{} has approval {} until {} but no {key} tag: the SCP denies the user all access",
                        user.name,
                        a.ticket,
                        a.expires.format("%Y-%m-%d")
                    ),
                );
                f.evidence = evidence(
                    json!({ "approval": { "ticket": a.ticket, "approved_by": a.approved_by, "expires": a.expires } }),
                );
                out.push(f);
            }
        }
    }
    out
}

/// When the user last used any credential (password or key), if ever.
#[must_use]
pub fn last_used(user: &UserSnapshot) -> Option<chrono::DateTime<chrono::Utc>> {
    let password = user.password_last_used.filter(|_| user.password_enabled);
    user.keys.iter().filter_map(|k| k.last_used).chain(password).max()
}

/// `exception-unused`: an approved exception (tagged `True`, approval valid) whose user has
/// not used a password or key for `KEY_UNUSED_DAYS`; never-used credentials count from when
/// the newest was created (the same grace period as a new key). No credentials at all: counted
/// from the user's creation (a user created minutes ago is not "unused"), then the exception
/// serves nothing.
pub(super) fn unused(
    user: &UserSnapshot,
    approvals: Option<&Approvals>,
    policy: &Policy,
    scope: &Scope,
) -> Option<Finding> {
    let tag = user.tag(&policy.exception_tag_key).filter(|t| t.value == EXCEPTION_VALUE)?;
    let approval = approvals?.for_user(&user.name).filter(|a| a.expires > scope.now)?;
    let last = last_used(user);
    let created = user.keys.iter().map(|k| k.created).chain(user.password_set.filter(|_| user.password_enabled)).max();
    let since = match (last, created) {
        (Some(t), _) => format!("last used {}", t.format("%Y-%m-%d")),
        (None, Some(c)) => format!("never used (credentials since {})", c.format("%Y-%m-%d")),
        (None, None) => "has no password or access key".to_owned(),
    };
    if let Some(reference) = last.or(created).or(user.created)
        && super::whole_days(reference, scope.now) < policy.key_unused_days
    {
        return None;
    }
    let mut f = user_finding(
        scope,
        CheckId::ExceptionUnused,
        user,
        format!(
            "{} holds an approved {} (ticket {}, until {}) but {since}: the exception can end",
            user.name,
            tag.key,
            approval.ticket,
            approval.expires.format("%Y-%m-%d")
        ),
    );
    f.evidence = json!({
        "approval": { "ticket": approval.ticket, "approved_by": approval.approved_by, "expires": approval.expires },
        "last_used": last,
        "unused_days_threshold": policy.key_unused_days,
    });
    Some(f)
}

/// `exception-self-granted`: the event set the tag, and the caller is the user or not an approver.
fn self_granted(user: &UserSnapshot, change: Option<&TagChange>, policy: &Policy, scope: &Scope) -> Option<Finding> {
    let c = change.filter(|c| c.exception_value_set.as_deref() == Some(EXCEPTION_VALUE))?;
    let key = &policy.exception_tag_key;
    let by_self = c.actor.arn == user.arn;
    let outside_approvers =
        !policy.approver_principals.is_empty() && !policy.approver_principals.iter().any(|p| c.actor.is(p));
    if !by_self && !outside_approvers {
        return None;
    }
    let why = if by_self { "the user tagged itself" } else { "the caller is not in APPROVER_PRINCIPALS" };
    let mut f = user_finding(
        scope,
        CheckId::ExceptionSelfGranted,
        user,
        format!("{} was granted {key}={EXCEPTION_VALUE} by {}: {why}", user.name, c.actor.arn),
    );
    f.evidence = json!({ "tag_value": EXCEPTION_VALUE, "reason": why, "tagged_by": c.actor.arn });
    Some(f)
}

/// `required-tag-missing`: one finding per user listing every absent required tag.
pub(super) fn check_required_tags(user: &UserSnapshot, policy: &Policy, scope: &Scope) -> Option<Finding> {
    let missing: Vec<&str> =
        policy.required_tags.iter().filter(|k| user.tag(k).is_none()).map(String::as_str).collect();
    if missing.is_empty() {
        return None;
    }
    let mut f = user_finding(
        scope,
        CheckId::RequiredTagMissing,
        user,
        format!("{} lacks required tag(s): {}", user.name, missing.join(", ")),
    );
    f.evidence = json!({ "missing": missing });
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Actor, TagChange, UserInput, check_user_tags};
    use super::*;
    use crate::approvals::ExceptionApproval;
    use chrono::{DateTime, Duration, Utc};

    fn approvals(user: &str, expires: DateTime<Utc>) -> Approvals {
        Approvals::new(vec![ExceptionApproval {
            user: user.into(),
            approved_by: "sec-lead@example.com".into(),
            ticket: "SEC-1".into(),
            expires,
            reason: None,
            account: None,
        }])
    }

    fn run(user: &UserSnapshot, a: Option<&Approvals>, change: Option<&TagChange>, policy: &Policy) -> Vec<Finding> {
        // The tag checks alone: these users have no credentials, which exception-unused judges.
        check_user_tags(&UserInput { user, approvals: a, change, policy, scope: &scope(), access: None })
    }

    fn change(actor: &str, value: &str) -> TagChange {
        TagChange {
            actor: Actor { arn: actor.into(), issuer_arn: None, root: false },
            exception_value_set: Some(value.into()),
        }
    }

    #[test]
    fn unapproved_tag_is_high() {
        let f = run(&tagged("alice", "AccessException", "True"), Some(&Approvals::default()), None, &Policy::default());
        assert_eq!(checks_of(&f), ["exception-unapproved"]);
        assert_eq!(f[0].severity, crate::finding::Severity::High);
        assert_eq!(f[0].evidence["tag_value"], "True");
    }

    #[test]
    fn tag_key_matches_case_insensitively() {
        let f = run(&tagged("alice", "accessexception", "True"), Some(&Approvals::default()), None, &Policy::default());
        assert_eq!(checks_of(&f), ["exception-unapproved"]);
    }

    #[test]
    fn value_must_be_exactly_true() {
        for value in ["true", "TRUE", "True ", "yes", ""] {
            let f =
                run(&tagged("alice", "AccessException", value), Some(&Approvals::default()), None, &Policy::default());
            assert_eq!(checks_of(&f), ["exception-tag-malformed"], "value {value:?}");
        }
    }

    #[test]
    fn approval_expiring_at_now_is_expired() {
        let a = approvals("alice", now());
        let f = run(&tagged("alice", "AccessException", "True"), Some(&a), None, &Policy::default());
        assert_eq!(checks_of(&f), ["exception-expired"]);
    }

    #[test]
    fn approval_one_second_after_now_is_expiring_not_expired() {
        let a = approvals("alice", now() + Duration::seconds(1));
        let f = run(&tagged("alice", "AccessException", "True"), Some(&a), None, &Policy::default());
        assert_eq!(checks_of(&f), ["exception-expiring"]);
    }

    #[test]
    fn expiring_window_is_warn_days() {
        let user = tagged("alice", "AccessException", "True");
        let inside = approvals("alice", now() + Duration::days(14));
        assert_eq!(checks_of(&run(&user, Some(&inside), None, &Policy::default())), ["exception-expiring"]);
        let outside = approvals("alice", now() + Duration::days(14) + Duration::seconds(1));
        assert!(run(&user, Some(&outside), None, &Policy::default()).is_empty());
    }

    #[test]
    fn approved_but_untagged_is_info() {
        let a = approvals("alice", now() + Duration::days(60));
        let f = run(&user("alice"), Some(&a), None, &Policy::default());
        assert_eq!(checks_of(&f), ["exception-approved-untagged"]);
        assert!(run(&user("alice"), Some(&approvals("alice", now())), None, &Policy::default()).is_empty());
    }

    #[test]
    fn unreadable_registry_skips_approval_checks_but_not_malformed() {
        assert!(run(&tagged("alice", "AccessException", "True"), None, None, &Policy::default()).is_empty());
        let f = run(&tagged("alice", "AccessException", "yes"), None, None, &Policy::default());
        assert_eq!(checks_of(&f), ["exception-tag-malformed"]);
    }

    #[test]
    fn self_granted_even_with_an_approval() {
        let user = tagged("alice", "AccessException", "True");
        let a = approvals("alice", now() + Duration::days(60));
        let f = run(&user, Some(&a), Some(&change(&user.arn, "True")), &Policy::default());
        assert_eq!(checks_of(&f), ["exception-self-granted"]);
        assert_eq!(f[0].evidence["tagged_by"], user.arn);
    }

    #[test]
    fn caller_outside_approvers_is_self_granted_and_role_issuer_counts() {
        let user = tagged("alice", "AccessException", "True");
        let a = approvals("alice", now() + Duration::days(60));
        let policy = Policy {
            approver_principals: vec!["arn:aws:iam::123456789012:role/SecurityAdmin".into()],
            ..Policy::default()
        };
        let outsider = change("arn:aws:iam::123456789012:user/bob", "True");
        assert_eq!(checks_of(&run(&user, Some(&a), Some(&outsider), &policy)), ["exception-self-granted"]);
        let approver = TagChange {
            actor: Actor {
                arn: "arn:aws:sts::123456789012:assumed-role/SecurityAdmin/jdoe".into(),
                issuer_arn: Some("arn:aws:iam::123456789012:role/SecurityAdmin".into()),
                root: false,
            },
            exception_value_set: Some("True".into()),
        };
        assert!(run(&user, Some(&a), Some(&approver), &policy).is_empty());
    }

    #[test]
    fn tag_findings_carry_who_set_the_tag() {
        let user = tagged("alice", "AccessException", "True");
        let f = run(
            &user,
            Some(&Approvals::default()),
            Some(&change("arn:aws:iam::123456789012:user/bob", "True")),
            &Policy::default(),
        );
        assert_eq!(checks_of(&f), ["exception-unapproved"]);
        assert_eq!(f[0].evidence["tagged_by"], "arn:aws:iam::123456789012:user/bob");
    }

    #[test]
    fn a_break_glass_user_is_reported_but_never_untagged() {
        let policy = Policy { break_glass_users: vec!["Break-Glass-Admin".into()], ..Policy::default() };
        let user = tagged("break-glass-admin", "AccessException", "True");
        let f = run(&user, Some(&Approvals::default()), None, &policy);
        assert_eq!(checks_of(&f), ["exception-unapproved"]);
        assert_eq!(f[0].action, None, "no untag planned");
        let r = f[0].remediation.as_ref().unwrap();
        assert_eq!(r.status, RemediationStatus::Skipped);
        assert!(r.detail.as_deref().unwrap().contains("never removed automatically"));
        assert_eq!(f[0].evidence["break_glass_user"], true);
        let expired = approvals("break-glass-admin", now() - Duration::days(1));
        let f = run(&user, Some(&expired), None, &policy);
        assert_eq!((checks_of(&f), f[0].action.clone()), (vec!["exception-expired"], None));
        let other = tagged("alice", "AccessException", "True");
        assert!(run(&other, Some(&Approvals::default()), None, &policy)[0].action.is_some(), "others still are");
    }

    #[test]
    fn required_tags_are_listed_once() {
        let policy = Policy { required_tags: vec!["owner".into(), "team".into()], ..Policy::default() };
        let f = run(&tagged("alice", "Owner", "x"), Some(&Approvals::default()), None, &policy);
        assert_eq!(checks_of(&f), ["required-tag-missing"]);
        assert_eq!(f[0].evidence["missing"], json!(["team"]));
    }

    fn approved(name: &str) -> (UserSnapshot, Approvals) {
        (tagged(name, "AccessException", "True"), approvals(name, now() + Duration::days(90)))
    }

    fn unused_of(user: &UserSnapshot, a: &Approvals) -> Option<Finding> {
        unused(user, Some(a), &Policy::default(), &scope())
    }

    #[test]
    fn an_exception_whose_key_is_unused_for_45_days_can_end() {
        let (mut u, a) = approved("vendor");
        u.keys.push(key("AKIAVENDOR", true, 300, Some(45)));
        let f = unused_of(&u, &a).expect("unused");
        assert_eq!(f.check, CheckId::ExceptionUnused);
        assert!(f.message.contains("last used 2026-10-09"), "{}", f.message);
        assert_eq!(f.evidence["approval"]["ticket"], "SEC-1");
        u.keys[0].last_used = Some(days_ago(44));
        assert!(unused_of(&u, &a).is_none(), "used 44 days ago");
    }

    #[test]
    fn the_most_recent_credential_counts_password_or_key() {
        let (mut u, a) = approved("vendor");
        u.keys.push(key("AKIAVENDOR", true, 300, Some(200)));
        u.password_enabled = true;
        u.password_last_used = Some(days_ago(3));
        assert!(unused_of(&u, &a).is_none());
        u.password_enabled = false;
        assert!(unused_of(&u, &a).is_some(), "a removed password's last use does not count");
    }

    #[test]
    fn never_used_credentials_get_the_grace_period_and_none_at_all_get_none() {
        let (mut u, a) = approved("vendor");
        u.keys.push(key("AKIAVENDOR", true, 10, None));
        assert!(unused_of(&u, &a).is_none(), "a new key");
        u.keys[0].created = days_ago(45);
        assert!(unused_of(&u, &a).unwrap().message.contains("never used (credentials since"));
        u.keys.clear();
        assert!(unused_of(&u, &a).unwrap().message.contains("has no password or access key"));
        // Created minutes ago, no credentials yet (even on the TagUser that granted it): not unused.
        u.created = Some(now() - Duration::minutes(5));
        assert!(unused_of(&u, &a).is_none(), "a new user gets the grace period of a new key");
        u.created = Some(days_ago(45));
        assert!(unused_of(&u, &a).unwrap().message.contains("has no password or access key"));
    }

    #[test]
    fn only_approved_and_valid_exceptions_are_judged() {
        let (u, a) = approved("vendor");
        assert!(unused_of(&u, &Approvals::default()).is_none(), "unapproved: exception-unapproved instead");
        let expired = approvals("vendor", now() - Duration::days(1));
        assert!(unused_of(&u, &expired).is_none(), "expired: exception-expired instead");
        let malformed = tagged("vendor", "AccessException", "true");
        assert!(unused_of(&malformed, &a).is_none());
        assert!(unused(&u, None, &Policy::default(), &scope()).is_none(), "registry unreadable");
    }
}
