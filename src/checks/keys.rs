//! Access keys: age (CIS v5.0 1.13, 90 days), use (CIS v5.0 1.11, 45 days), and more than one active key (1.12).

use serde_json::json;

use super::{user_finding, whole_days};
use crate::config::Policy;
use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::{KeyRef, UserSnapshot};

/// Key checks for one user. Inactive keys grant nothing and are not reported.
pub(super) fn check(user: &UserSnapshot, policy: &Policy, scope: &Scope) -> Vec<Finding> {
    let mut out = Vec::new();
    let active: Vec<_> = user.keys.iter().filter(|k| k.active).collect();
    for key in &active {
        let age = whole_days(key.created, scope.now);
        let resource = key.resource();
        let created = key.created.format("%Y-%m-%d");
        // A key of exactly KEY_MAX_AGE_DAYS is still within "90 days or less" (CIS).
        let age_check = if age > policy.key_max_age_days {
            Some((
                CheckId::AccessKeyStale,
                format!(
                    "{}'s key {resource} is {age} days old (limit {}): rotate it",
                    user.name, policy.key_max_age_days
                ),
            ))
        } else if age > policy.key_max_age_days - policy.key_warn_days {
            Some((
                CheckId::AccessKeyRotationDue,
                format!(
                    "{}'s key {resource} is {age} days old: rotate it within {} days",
                    user.name,
                    policy.key_max_age_days - age
                ),
            ))
        } else {
            None
        };
        if let Some((check, message)) = age_check {
            let mut f = user_finding(scope, check, user, message);
            f.resource = Some(resource.clone());
            f.evidence = json!({ "created": key.created, "age_days": age, "max_age_days": policy.key_max_age_days });
            out.push(f);
        }

        // Never-used keys get a grace period: they count from creation, not from day 0.
        let idle_since = key.last_used.unwrap_or(key.created);
        let idle = whole_days(idle_since, scope.now);
        if idle >= policy.key_unused_days {
            let message = match key.last_used {
                Some(last) => format!(
                    "{}'s key {resource} has not been used for {idle} days (last used {}): deactivate it",
                    user.name,
                    last.format("%Y-%m-%d")
                ),
                // A scan names the key by slot and creation date already: say the date once.
                None => match key.key {
                    KeyRef::Slot(_) => {
                        format!("{}'s key {resource} has never been used in {idle} days: deactivate it", user.name)
                    }
                    KeyRef::Id(_) => format!(
                        "{}'s key {resource} was created {created} and never used in {idle} days: deactivate it",
                        user.name
                    ),
                },
            };
            let mut f = user_finding(scope, CheckId::AccessKeyUnused, user, message);
            f.resource = Some(resource);
            f.evidence = json!({ "created": key.created, "last_used": key.last_used, "unused_days": idle });
            out.push(f);
        }
    }
    if active.len() > 1 {
        let keys: Vec<String> = active.iter().map(|k| k.resource()).collect();
        let mut f = user_finding(
            scope,
            CheckId::AccessKeyMultipleActive,
            user,
            format!("{} has {} active keys ({}): keep one", user.name, keys.len(), keys.join(", ")),
        );
        f.resource = Some(keys.join(", "));
        f.evidence = json!({ "active_keys": keys });
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::AccessKey;

    fn run_keys(keys: Vec<AccessKey>) -> Vec<Finding> {
        let mut u = user("svc");
        u.keys = keys;
        check(&u, &Policy::default(), &scope())
    }

    #[test]
    fn a_never_used_key_gives_its_creation_date_once() {
        let by_slot = AccessKey { key: KeyRef::Slot(1), active: true, created: days_ago(50), last_used: None };
        let f = run_keys(vec![by_slot]);
        let message = &f.iter().find(|f| f.check == CheckId::AccessKeyUnused).unwrap().message;
        let date = days_ago(50).format("%Y-%m-%d").to_string();
        assert_eq!(message.matches(&date).count(), 1, "{message}");
        assert!(message.contains("never been used in 50 days"), "{message}");
        let f = run_keys(vec![key("AKIA1", true, 50, None)]);
        let message = &f.iter().find(|f| f.check == CheckId::AccessKeyUnused).unwrap().message;
        assert_eq!(message.matches(&date).count(), 1, "{message}");
    }

    #[test]
    fn age_boundaries() {
        assert!(run_keys(vec![key("AKIA1", true, 76, Some(0))]).is_empty());
        assert_eq!(checks_of(&run_keys(vec![key("AKIA1", true, 77, Some(0))])), ["access-key-rotation-due"]);
        assert_eq!(checks_of(&run_keys(vec![key("AKIA1", true, 90, Some(0))])), ["access-key-rotation-due"]);
        let f = run_keys(vec![key("AKIA1", true, 91, Some(0))]);
        assert_eq!(checks_of(&f), ["access-key-stale"]);
        assert_eq!(f[0].resource.as_deref(), Some("AKIA1"));
        assert_eq!(f[0].evidence["age_days"], 91);
    }

    #[test]
    fn unused_boundaries_and_grace_for_new_keys() {
        assert!(run_keys(vec![key("AKIA1", true, 44, None)]).is_empty());
        assert_eq!(checks_of(&run_keys(vec![key("AKIA1", true, 45, None)])), ["access-key-unused"]);
        assert!(run_keys(vec![key("AKIA1", true, 60, Some(44))]).is_empty());
        assert_eq!(checks_of(&run_keys(vec![key("AKIA1", true, 60, Some(45))])), ["access-key-unused"]);
    }

    #[test]
    fn inactive_keys_are_ignored() {
        assert!(run_keys(vec![key("AKIA1", false, 400, None), key("AKIA2", true, 1, None)]).is_empty());
    }

    #[test]
    fn two_active_keys_name_both() {
        let f = run_keys(vec![key("AKIA1", true, 1, None), key("AKIA2", true, 2, Some(1))]);
        assert_eq!(checks_of(&f), ["access-key-multiple-active"]);
        assert_eq!(f[0].resource.as_deref(), Some("AKIA1, AKIA2"));
    }

    #[test]
    fn scan_keys_are_named_by_slot_and_creation_date() {
        let k = AccessKey { key: KeyRef::Slot(2), active: true, created: days_ago(100), last_used: Some(days_ago(1)) };
        let f = run_keys(vec![k]);
        assert_eq!(f[0].resource.as_deref(), Some("access_key_2 created 2026-08-15"));
    }
}
