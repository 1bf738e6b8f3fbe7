//! MFA (seed 004: `aws:MultiFactorAuthPresent`): console users always, every user with `MFA_SCOPE=all-users`.

use serde_json::json;

use super::user_finding;
use crate::config::{MfaScope, Policy};
use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::UserSnapshot;

/// MFA checks for one user. A user without any credential cannot sign in and is not reported.
pub(super) fn check(user: &UserSnapshot, policy: &Policy, scope: &Scope) -> Option<Finding> {
    if user.mfa_active {
        return None;
    }
    let active_keys = user.keys.iter().filter(|k| k.active).count();
    let (check, message) = if user.password_enabled {
        (
            CheckId::ConsoleWithoutMfa,
            format!("{} can sign in to the console with a password and has no MFA device", user.name),
        )
    } else if policy.mfa_scope == MfaScope::AllUsers && active_keys > 0 {
        (CheckId::UserWithoutMfa, format!("{} has {active_keys} active access key(s) and no MFA device", user.name))
    } else {
        return None;
    };
    let mut f = user_finding(scope, check, user, message);
    f.evidence = json!({ "password_enabled": user.password_enabled, "mfa_active": false, "active_keys": active_keys });
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn console_without_mfa_is_high_and_mfa_clears_it() {
        let mut u = user("dave");
        u.password_enabled = true;
        let f = check(&u, &Policy::default(), &scope()).unwrap();
        assert_eq!(f.check, CheckId::ConsoleWithoutMfa);
        u.mfa_active = true;
        assert!(check(&u, &Policy::default(), &scope()).is_none());
    }

    #[test]
    fn key_only_users_need_mfa_only_with_all_users_scope() {
        let mut u = user("svc");
        u.keys.push(key("AKIA1", true, 1, None));
        assert!(check(&u, &Policy::default(), &scope()).is_none());
        let all = Policy { mfa_scope: MfaScope::AllUsers, ..Policy::default() };
        assert_eq!(check(&u, &all, &scope()).unwrap().check, CheckId::UserWithoutMfa);
        assert!(check(&user("nobody"), &all, &scope()).is_none());
    }
}
