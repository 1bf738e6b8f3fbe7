//! The account password policy (seed 004: rotate passwords; CIS v5.0 1.7 length, 1.8 reuse).

use std::fmt;

use serde::Serialize;
use serde_json::json;

pub use crate::domain::password::{PasswordMinimums, PasswordPolicy};
use crate::finding::{CheckId, Finding, Scope};

/// One way the password policy falls short of the minimums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "weakness", rename_all = "kebab-case")]
pub enum Weakness {
    /// The account has no password policy: IAM's default allows 8 characters and reuse.
    NoPolicy,
    /// `MinimumPasswordLength` below the minimum (or unset).
    LengthTooShort { actual: Option<u32>, minimum: u32 },
    /// `PasswordReusePrevention` below the minimum (or off).
    ReuseAllowed { actual: Option<u32>, minimum: u32 },
    /// Passwords never expire, but the organisation rotates them.
    NoExpiry { maximum: u32 },
    /// `MaxPasswordAge` longer than the maximum.
    ExpiryTooLong { actual: u32, maximum: u32 },
    /// A required character class is not required by the policy.
    CharacterClassMissing { class: &'static str },
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPolicy => write!(f, "the account has no password policy"),
            Self::LengthTooShort { actual: Some(n), minimum } => {
                write!(f, "minimum password length is {n}, below {minimum}")
            }
            Self::LengthTooShort { actual: None, minimum } => {
                write!(f, "no minimum password length is set (needs {minimum})")
            }
            Self::ReuseAllowed { actual: Some(n), minimum } => {
                write!(f, "only the last {n} passwords cannot be reused (needs {minimum})")
            }
            Self::ReuseAllowed { actual: None, minimum } => {
                write!(f, "passwords can be reused (needs the last {minimum} remembered)")
            }
            Self::NoExpiry { maximum } => write!(f, "passwords never expire (needs at most {maximum} days)"),
            Self::ExpiryTooLong { actual, maximum } => {
                write!(f, "passwords expire after {actual} days, more than {maximum}")
            }
            Self::CharacterClassMissing { class } => write!(f, "{class} are not required"),
        }
    }
}

/// Judges the account password policy (`None`: the account has none) against `minimums`;
/// empty when it meets them all.
#[must_use]
pub fn judge_password_policy(policy: Option<&PasswordPolicy>, minimums: &PasswordMinimums) -> Vec<Weakness> {
    let Some(p) = policy else { return vec![Weakness::NoPolicy] };
    let mut out = Vec::new();
    if p.minimum_password_length.is_none_or(|n| n < minimums.min_length) {
        out.push(Weakness::LengthTooShort { actual: p.minimum_password_length, minimum: minimums.min_length });
    }
    // IAM reports 0 or omits the field when reuse prevention is off.
    let reuse = p.password_reuse_prevention.filter(|&n| n > 0);
    if reuse.is_none_or(|n| n < minimums.reuse_prevention) {
        out.push(Weakness::ReuseAllowed { actual: reuse, minimum: minimums.reuse_prevention });
    }
    if let Some(maximum) = minimums.max_age_days {
        match p.max_password_age.filter(|&d| d > 0 && p.expire_passwords) {
            None => out.push(Weakness::NoExpiry { maximum }),
            Some(actual) if actual > maximum => out.push(Weakness::ExpiryTooLong { actual, maximum }),
            Some(_) => {}
        }
    }
    for (wanted, has, class) in [
        (minimums.require_symbols, p.require_symbols, "symbols"),
        (minimums.require_numbers, p.require_numbers, "numbers"),
        (minimums.require_uppercase, p.require_uppercase_characters, "uppercase letters"),
        (minimums.require_lowercase, p.require_lowercase_characters, "lowercase letters"),
    ] {
        if wanted && !has {
            out.push(Weakness::CharacterClassMissing { class });
        }
    }
    out
}

/// `password-policy-weak` for the account in `scope`, when the policy falls short; the finding
/// names the account (`arn:…:root`) and lists every shortfall.
#[must_use]
pub fn check(policy: Option<&PasswordPolicy>, minimums: &PasswordMinimums, scope: &Scope) -> Option<Finding> {
    let weaknesses = judge_password_policy(policy, minimums);
    if weaknesses.is_empty() {
        return None;
    }
    let account_arn = format!("arn:aws:iam::{}:root", scope.account);
    let mut f = scope.finding(
        CheckId::PasswordPolicyWeak,
        &account_arn,
        format!(
            "the account password policy is weak: {}",
            weaknesses.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ),
    );
    f.resource = Some("account password policy".into());
    f.evidence = json!({
        "weaknesses": weaknesses,
        "policy": policy.map(|p| json!({
            "minimum_password_length": p.minimum_password_length,
            "password_reuse_prevention": p.password_reuse_prevention,
            "max_password_age": p.max_password_age,
            "expire_passwords": p.expire_passwords,
            "hard_expiry": p.hard_expiry,
        })),
        "minimums": {
            "min_length": minimums.min_length,
            "reuse_prevention": minimums.reuse_prevention,
            "max_age_days": minimums.max_age_days,
        },
    });
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_finding_per_account_listing_every_shortfall() {
        let scope = crate::checks::fixtures::scope();
        let weak = PasswordPolicy { minimum_password_length: Some(8), ..PasswordPolicy::default() };
        let f = check(Some(&weak), &PasswordMinimums::default(), &scope).unwrap();
        assert_eq!(f.check, CheckId::PasswordPolicyWeak);
        assert_eq!(f.principal, "arn:aws:iam::123456789012:root");
        assert_eq!(
            f.message,
            "the account password policy is weak: minimum password length is 8, below 14; passwords can be reused \
             (needs the last 24 remembered)"
        );
        assert_eq!(f.evidence["policy"]["minimum_password_length"], 8);
        assert_eq!(f.evidence["weaknesses"].as_array().unwrap().len(), 2);
        let none = check(None, &PasswordMinimums::default(), &scope).unwrap();
        assert_eq!(none.evidence["weaknesses"][0]["weakness"], "no-policy");
        assert!(none.evidence["policy"].is_null());
        assert!(check(Some(&cis()), &PasswordMinimums::default(), &scope).is_none());
    }

    fn cis() -> PasswordPolicy {
        PasswordPolicy {
            minimum_password_length: Some(14),
            password_reuse_prevention: Some(24),
            allow_users_to_change_password: true,
            ..PasswordPolicy::default()
        }
    }

    #[test]
    fn no_policy_is_weak() {
        assert_eq!(judge_password_policy(None, &PasswordMinimums::default()), vec![Weakness::NoPolicy]);
    }

    #[test]
    fn cis_v5_minimums_pass_exactly_at_the_threshold() {
        assert!(judge_password_policy(Some(&cis()), &PasswordMinimums::default()).is_empty());
    }

    #[test]
    fn length_13_and_reuse_23_are_one_short() {
        let p = PasswordPolicy { minimum_password_length: Some(13), password_reuse_prevention: Some(23), ..cis() };
        assert_eq!(
            judge_password_policy(Some(&p), &PasswordMinimums::default()),
            vec![
                Weakness::LengthTooShort { actual: Some(13), minimum: 14 },
                Weakness::ReuseAllowed { actual: Some(23), minimum: 24 },
            ]
        );
    }

    #[test]
    fn unset_length_and_zero_reuse_count_as_missing() {
        let p = PasswordPolicy { minimum_password_length: None, password_reuse_prevention: Some(0), ..cis() };
        let w = judge_password_policy(Some(&p), &PasswordMinimums::default());
        assert_eq!(
            w,
            vec![
                Weakness::LengthTooShort { actual: None, minimum: 14 },
                Weakness::ReuseAllowed { actual: None, minimum: 24 }
            ]
        );
        assert_eq!(w[1].to_string(), "passwords can be reused (needs the last 24 remembered)");
    }

    #[test]
    fn max_age_is_judged_only_when_configured() {
        let never = cis();
        assert!(judge_password_policy(Some(&never), &PasswordMinimums::default()).is_empty());
        let rotate = PasswordMinimums { max_age_days: Some(90), ..PasswordMinimums::default() };
        assert_eq!(judge_password_policy(Some(&never), &rotate), vec![Weakness::NoExpiry { maximum: 90 }]);
        let long = PasswordPolicy { max_password_age: Some(365), expire_passwords: true, ..cis() };
        assert_eq!(
            judge_password_policy(Some(&long), &rotate),
            vec![Weakness::ExpiryTooLong { actual: 365, maximum: 90 }]
        );
        let ok = PasswordPolicy { max_password_age: Some(90), expire_passwords: true, ..cis() };
        assert!(judge_password_policy(Some(&ok), &rotate).is_empty());
    }

    #[test]
    fn max_age_without_expire_passwords_does_not_expire() {
        let rotate = PasswordMinimums { max_age_days: Some(90), ..PasswordMinimums::default() };
        let p = PasswordPolicy { max_password_age: Some(60), expire_passwords: false, ..cis() };
        assert_eq!(judge_password_policy(Some(&p), &rotate), vec![Weakness::NoExpiry { maximum: 90 }]);
    }

    #[test]
    fn character_classes_only_when_asked_for() {
        let strict = PasswordMinimums { require_symbols: true, require_uppercase: true, ..PasswordMinimums::default() };
        let p = PasswordPolicy { require_uppercase_characters: true, ..cis() };
        assert!(judge_password_policy(Some(&p), &PasswordMinimums::default()).is_empty());
        assert_eq!(
            judge_password_policy(Some(&p), &strict),
            vec![Weakness::CharacterClassMissing { class: "symbols" }]
        );
    }

    #[test]
    fn weaknesses_serialise_with_a_kebab_case_tag() {
        let v = serde_json::to_value(Weakness::LengthTooShort { actual: Some(8), minimum: 14 }).unwrap();
        assert_eq!(v, serde_json::json!({ "weakness": "length-too-short", "actual": 8, "minimum": 14 }));
    }
}
