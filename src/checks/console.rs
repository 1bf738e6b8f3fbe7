//! Console passwords nobody uses (CIS v5.0 1.11 covers passwords as well as keys; seed 004's
//! "limited access": a service account that only needs keys should not have a password).

use serde_json::json;

use super::{user_finding, whole_days};
use crate::config::Policy;
use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::UserSnapshot;

/// `console-password-unused`: a password unused for `KEY_UNUSED_DAYS` or more, or never used
/// and set at least that long ago (a new password gets the same grace period as a new key).
pub(super) fn check(user: &UserSnapshot, policy: &Policy, scope: &Scope) -> Option<Finding> {
    if !user.password_enabled {
        return None;
    }
    // Neither a last use nor when it was set: nothing to count from (not judged, not guessed).
    let idle_since = user.password_last_used.or(user.password_set)?;
    let idle = whole_days(idle_since, scope.now);
    if idle < policy.key_unused_days {
        return None;
    }
    let message = match user.password_last_used {
        Some(last) => format!(
            "{}'s console password has not been used for {idle} days (last sign-in {}): remove it if the user \
             no longer needs the console",
            user.name,
            last.format("%Y-%m-%d")
        ),
        None => format!(
            "{}'s console password was set {idle} days ago and never used: remove it (keys alone need no password)",
            user.name
        ),
    };
    let mut f = user_finding(scope, CheckId::ConsolePasswordUnused, user, message);
    f.evidence = json!({
        "password_last_used": user.password_last_used,
        "password_set": user.password_set,
        "unused_days": idle,
        "threshold_days": policy.key_unused_days,
    });
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn console(last_used: Option<i64>, set: Option<i64>) -> UserSnapshot {
        let mut u = user("ops-olga");
        u.password_enabled = true;
        u.password_last_used = last_used.map(days_ago);
        u.password_set = set.map(days_ago);
        u
    }

    fn run(u: &UserSnapshot) -> Option<Finding> {
        check(u, &Policy::default(), &scope())
    }

    #[test]
    fn unused_for_45_days_or_more_is_medium() {
        assert!(run(&console(Some(44), Some(400))).is_none());
        let f = run(&console(Some(45), Some(400))).unwrap();
        assert_eq!(f.check, CheckId::ConsolePasswordUnused);
        assert_eq!(f.severity, crate::finding::Severity::Medium);
        assert_eq!(f.evidence["unused_days"], 45);
        assert!(f.message.contains("not been used for 45 days"), "{}", f.message);
    }

    #[test]
    fn a_never_used_password_counts_from_when_it_was_set() {
        assert!(run(&console(None, Some(10))).is_none(), "grace period for a new password");
        let f = run(&console(None, Some(60))).unwrap();
        assert!(f.message.contains("set 60 days ago and never used"), "{}", f.message);
    }

    #[test]
    fn no_password_or_nothing_to_count_from_is_not_judged() {
        let mut u = console(Some(400), Some(400));
        u.password_enabled = false;
        assert!(run(&u).is_none());
        assert!(run(&console(None, None)).is_none());
    }

    #[test]
    fn the_threshold_is_key_unused_days() {
        let policy = Policy { key_unused_days: 90, ..Policy::default() };
        assert!(check(&console(Some(60), None), &policy, &scope()).is_none());
        assert!(check(&console(Some(90), None), &policy, &scope()).is_some());
    }
}
