//! Configuration from environment variables, validated once at start-up.
//!
//! A bad value stops start-up with an error naming the variable and the values it
//! accepts; nothing here is read again during an invocation.

use crate::domain::cidr::Cidr;
use crate::domain::password::PasswordMinimums;

mod from_env;

/// Which users must have MFA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaScope {
    /// Only users with a console password (`console-without-mfa`).
    Console,
    /// Every user, also key-only ones (`user-without-mfa`).
    AllUsers,
}

/// Which control keeps IAM users inside the enterprise network (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkGuardrail {
    /// The organisation's SCP does it: no identity policy is expected (the default).
    Scp,
    /// Accounts without Organizations: every user with credentials must be covered by the
    /// `EnterpriseNetworkRestriction` identity policy.
    IdentityPolicy,
    /// Both: the SCP, and the identity policy as a second line.
    Both,
}

impl NetworkGuardrail {
    /// Whether users must be covered by the identity policy.
    #[must_use]
    pub fn needs_identity_policy(self) -> bool {
        matches!(self, NetworkGuardrail::IdentityPolicy | NetworkGuardrail::Both)
    }
}

/// The thresholds and names the pure checks apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The exception tag key (`AccessException`), matched case-insensitively.
    pub exception_tag_key: String,
    /// Warn this many days before an approval expires.
    pub exception_warn_days: i64,
    /// Principals allowed to set the exception tag; empty means "anyone but the user itself".
    pub approver_principals: Vec<String>,
    /// Maximum key age (CIS: 90 days).
    pub key_max_age_days: i64,
    /// Warn this many days before the maximum age.
    pub key_warn_days: i64,
    /// A key unused this many days is reported (CIS: 45 days).
    pub key_unused_days: i64,
    /// Who must have MFA.
    pub mfa_scope: MfaScope,
    /// Tags every user must carry.
    pub required_tags: Vec<String>,
    /// Which control restricts users to the enterprise network (`NETWORK_GUARDRAIL`).
    pub network_guardrail: NetworkGuardrail,
    /// The enterprise networks (`ENTERPRISE_CIDRS`); required unless the guardrail is `scp`.
    pub enterprise_cidrs: Vec<Cidr>,
    /// What the account password policy must at least require.
    pub password: PasswordMinimums,
    /// Break-glass roles (`BREAK_GLASS_ROLE_ARNS`): their use is always reported.
    pub break_glass_roles: Vec<String>,
    /// Break-glass users (`BREAK_GLASS_USERS`): never remediated, their sign-ins always reported.
    pub break_glass_users: Vec<String>,
}

impl Policy {
    /// Whether `user` is a configured break-glass user (names compared as IAM does, ignoring case).
    #[must_use]
    pub fn is_break_glass_user(&self, user: &str) -> bool {
        self.break_glass_users.iter().any(|u| u.eq_ignore_ascii_case(user))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            exception_tag_key: "AccessException".to_owned(),
            exception_warn_days: 14,
            approver_principals: Vec::new(),
            key_max_age_days: 90,
            key_warn_days: 14,
            key_unused_days: 45,
            mfa_scope: MfaScope::Console,
            required_tags: Vec::new(),
            network_guardrail: NetworkGuardrail::Scp,
            enterprise_cidrs: Vec::new(),
            password: PasswordMinimums::default(),
            break_glass_roles: Vec::new(),
            break_glass_users: Vec::new(),
        }
    }
}

/// Opt-in access key rotation (users tagged `ROTATION_TAG_KEY=auto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// `ROTATE_KEYS=true`: carry the steps out; `false` (default): report them as `dry-run`.
    pub enabled: bool,
    /// The opt-in tag key (`iam-sentinel:rotation`); its value must be `auto`.
    pub tag_key: String,
    /// Days the old key stays active after the new one is created.
    pub deactivate_after_days: i64,
    /// Days an old key stays inactive before it is deleted.
    pub delete_after_days: i64,
    /// KMS key for new rotation secrets (the stack's key); `None`: Secrets Manager's default.
    pub kms_key_id: Option<String>,
    /// The opt-in tag's value (`ROTATION_TAG_VALUE`, default `auto`); the template feeds it and
    /// the role's condition from one parameter.
    pub tag_value: String,
    /// Principals that may read every rotation secret besides its user (`ROTATION_SECRET_READERS`).
    pub secret_readers: Vec<String>,
}

impl Rotation {
    /// Whether `tags` opt a user in (`tag_key` = `tag_value`, both matched ignoring case).
    #[must_use]
    pub fn opts_in(&self, tags: &[crate::snapshot::Tag]) -> bool {
        tags.iter().any(|t| t.key.eq_ignore_ascii_case(&self.tag_key) && t.value.eq_ignore_ascii_case(&self.tag_value))
    }
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            enabled: false,
            tag_key: "iam-sentinel:rotation".to_owned(),
            deactivate_after_days: 10,
            delete_after_days: 10,
            kms_key_id: None,
            tag_value: ROTATION_OPT_IN.to_owned(),
            secret_readers: Vec::new(),
        }
    }
}

/// The value of the opt-in tag that turns rotation on for a user.
pub const ROTATION_OPT_IN: &str = "auto";

/// Whether `tags` opt a user in to key rotation (`tag_key` = `auto`, both matched ignoring case).
#[must_use]
pub fn opted_in_to_rotation(tags: &[crate::snapshot::Tag], tag_key: &str) -> bool {
    tags.iter().any(|t| t.key.eq_ignore_ascii_case(tag_key) && t.value.eq_ignore_ascii_case(ROTATION_OPT_IN))
}

/// The whole configuration of the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What the checks enforce.
    pub policy: Policy,
    /// SNS topic for findings (`FINDINGS_TOPIC_ARN`); required to publish.
    pub findings_topic_arn: Option<String>,
    /// Secrets Manager id of the approvals registry (`APPROVALS_SECRET_ID`).
    pub approvals_secret_id: String,
    /// Remove unapproved exception tags (`AUTO_REMEDIATE`).
    pub auto_remediate: bool,
    /// The function's own role: events it caused are ignored (`SELF_ROLE_ARN`).
    pub self_role_arn: Option<String>,
    /// The session name the function's own sessions of `self_role_arn` carry (organization mode:
    /// `iam-sentinel` in the member role); `None`: any session of that role is the function's.
    pub self_session_name: Option<String>,
    /// Import findings into AWS Security Hub and resolve them there after each scan (`SECURITY_HUB`).
    pub security_hub: bool,
    /// Opt-in key rotation.
    pub rotation: Rotation,
    /// Whether and when stale or unused keys are deactivated (`DEACTIVATE_STALE_KEYS`, …).
    pub stale_keys: StaleKeys,
    /// Organization mode (`ORGANIZATION_MODE=true`): every account of the organization is guarded
    /// through its member role; `None` guards the function's own account only.
    pub organization: Option<Organization>,
    /// The state table (`STATE_TABLE`): what was announced, event ids, the action journal.
    /// `None`: stateless (every run announces everything it finds, as without memory).
    pub state_table: Option<String>,
    /// Days between reminders of an open high or critical finding (`REMIND_DAYS`, 0 = never).
    pub remind_days: u32,
}

/// Organization mode: one deployment guards every account of an AWS Organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The role assumed in each member account (`MEMBER_ROLE_NAME`, default `iam-sentinel-member`).
    pub member_role_name: String,
    /// The name or id (`p-…`) of seed 000's SCP (`SCP_POLICY`, default `RestrictIAMUserAccessWithExceptions`).
    pub scp_policy: String,
}

impl Default for Organization {
    fn default() -> Self {
        Organization {
            member_role_name: "iam-sentinel-member".to_owned(),
            scp_policy: "RestrictIAMUserAccessWithExceptions".to_owned(),
        }
    }
}

/// `DEACTIVATE_STALE_KEYS`: what happens to an active key long past its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaleKeyMode {
    /// Report only (the default).
    #[default]
    Off,
    /// Say in the finding which key would be deactivated, change nothing.
    DryRun,
    /// Deactivate the key (never delete it).
    On,
}

/// Deactivation of other users' stale keys (opt-in per account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleKeys {
    /// Off, dry-run or on (`DEACTIVATE_STALE_KEYS`).
    pub mode: StaleKeyMode,
    /// Days past `KEY_MAX_AGE_DAYS` / `KEY_UNUSED_DAYS` before a key is deactivated (`STALE_GRACE_DAYS`).
    pub grace_days: i64,
    /// A user carrying this tag (any value) never has a key deactivated (`STALE_KEY_EXEMPT_TAG`).
    pub exempt_tag: String,
    /// When key rotation runs (`ROTATE_KEYS=true`), the users it opted in are the rotation's,
    /// never deactivated here; with rotation off, the opt-in tag exempts nothing.
    pub rotation: Option<Rotation>,
}

impl Default for StaleKeys {
    fn default() -> Self {
        StaleKeys {
            mode: StaleKeyMode::Off,
            grace_days: 30,
            exempt_tag: "iam-sentinel:keep-keys".to_owned(),
            rotation: None,
        }
    }
}

/// A configuration variable with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "configuration: {variable}{}: expected {expected}",
    if value.is_empty() { " is not set".to_owned() } else { format!("={value:?} is not valid") }
)]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// The value found (never a secret: none of these variables hold one).
    pub value: String,
    /// What is accepted.
    pub expected: String,
}

/// Every bad configuration variable at once, so one deployment fixes them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The variables that are wrong, in the order checked.
    #[must_use]
    pub fn variables(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.variable).collect()
    }
}

/// The environment variables the configuration reads, with what each means (for `--help`).
pub const VARIABLES: &[(&str, &str)] = &[
    ("APPROVALS_SECRET_ID", "Secrets Manager secret holding the approvals registry (required)"),
    ("FINDINGS_TOPIC_ARN", "SNS topic for findings (required unless --no-publish)"),
    ("AUTO_REMEDIATE", "true: remove unapproved exception tags (default false)"),
    ("EXCEPTION_TAG_KEY", "the exception tag (default AccessException)"),
    ("EXCEPTION_WARN_DAYS", "warn this many days before an approval expires (default 14)"),
    ("APPROVER_PRINCIPALS", "comma-separated ARNs allowed to set the exception tag"),
    ("SELF_ROLE_ARN", "the function's own role: events it caused are ignored"),
    ("KEY_MAX_AGE_DAYS", "maximum access key age (default 90)"),
    ("KEY_WARN_DAYS", "rotation warning before that age (default 14)"),
    ("KEY_UNUSED_DAYS", "a key or password unused this long is reported (default 45)"),
    ("MFA_SCOPE", "console (default) or all-users"),
    ("REQUIRED_TAGS", "comma-separated tags every user must carry"),
    ("SECURITY_HUB", "true: import findings into Security Hub and resolve them there (default false)"),
    (
        "NETWORK_GUARDRAIL",
        "scp (default), identity-policy or both: which control keeps users on the enterprise network",
    ),
    ("ENTERPRISE_CIDRS", "comma-separated enterprise CIDRs (required unless NETWORK_GUARDRAIL=scp)"),
    ("PASSWORD_MIN_LENGTH", "shortest password the account policy must require (default 14)"),
    ("PASSWORD_REUSE_PREVENTION", "previous passwords the account policy must remember (default 24)"),
    ("PASSWORD_MAX_AGE_DAYS", "longest password age the account policy must enforce (default 0: not judged)"),
    ("BREAK_GLASS_ROLE_ARNS", "comma-separated break-glass role ARNs: every assumption is reported"),
    (
        "ROTATE_KEYS",
        "true: rotate the keys of users tagged ROTATION_TAG_KEY=ROTATION_TAG_VALUE (default false: dry-run)",
    ),
    ("ROTATION_TAG_KEY", "the opt-in tag key (default iam-sentinel:rotation)"),
    ("ROTATION_TAG_VALUE", "the opt-in tag's value (default auto)"),
    ("ROTATION_SECRET_READERS", "comma-separated principal ARNs that may read rotation secrets besides the user"),
    ("ROTATION_DEACTIVATE_DAYS", "days the old key stays active after rotation (default 10)"),
    ("ROTATION_DELETE_DAYS", "days an old key stays inactive before deletion (default 10)"),
    ("ROTATION_KMS_KEY_ID", "KMS key for new rotation secrets (default: Secrets Manager's own key)"),
    ("BREAK_GLASS_USERS", "comma-separated break-glass user names: sign-ins reported, never remediated"),
    ("DEACTIVATE_STALE_KEYS", "false (default), dry-run or true: deactivate keys past their limit plus the grace"),
    ("STALE_GRACE_DAYS", "days past KEY_MAX_AGE_DAYS or KEY_UNUSED_DAYS before deactivation (default 30)"),
    ("STALE_KEY_EXEMPT_TAG", "users carrying this tag never have keys deactivated (default iam-sentinel:keep-keys)"),
    ("ORGANIZATION_MODE", "true: guard every account of the AWS Organization through its member role (default false)"),
    ("MEMBER_ROLE_NAME", "the role assumed in each member account (default iam-sentinel-member)"),
    ("SCP_POLICY", "name or id of the exception-tag SCP (default RestrictIAMUserAccessWithExceptions)"),
    ("STATE_TABLE", "DynamoDB state table: announce only what is new, changed or resolved; journal actions"),
    ("REMIND_DAYS", "days between reminders of open high and critical findings (default 7, 0 = never)"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let mut map: HashMap<String, String> =
            HashMap::from([("APPROVALS_SECRET_ID".into(), "iam-sentinel/approvals".into())]);
        for (k, v) in vars {
            map.insert((*k).into(), (*v).into());
        }
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_cis_and_the_design() {
        let c = with(&[]).unwrap();
        assert_eq!(c.policy, Policy::default());
        assert!(!c.auto_remediate);
        assert!(!c.security_hub);
        assert_eq!(c.policy.key_max_age_days - c.policy.key_warn_days, 76);
    }

    #[test]
    fn bad_values_name_the_variable_and_accepted_values() {
        for (var, val, expect) in [
            ("AUTO_REMEDIATE", "yes", "`true` or `false`"),
            ("MFA_SCOPE", "everyone", "all-users"),
            ("KEY_MAX_AGE_DAYS", "-1", "whole number"),
            ("EXCEPTION_WARN_DAYS", "two weeks", "whole number"),
            ("APPROVER_PRINCIPALS", "arn:aws:iam::1:user/a, bob", "\"bob\""),
            ("FINDINGS_TOPIC_ARN", "findings", "SNS topic ARN"),
            ("SELF_ROLE_ARN", "arn:aws:iam::123456789012:user/x", "role ARN"),
            ("KEY_WARN_DAYS", "90", "fewer days than KEY_MAX_AGE_DAYS"),
            ("SECURITY_HUB", "on", "`true` or `false`"),
            ("NETWORK_GUARDRAIL", "vpc", "`identity-policy`"),
            ("ENTERPRISE_CIDRS", "192.0.2.0/24, 10.0.0.0/33", "\"10.0.0.0/33\""),
            ("PASSWORD_MIN_LENGTH", "5", "from 6 to 128"),
            ("PASSWORD_REUSE_PREVENTION", "25", "from 1 to 24"),
            ("PASSWORD_MAX_AGE_DAYS", "-3", "days (0: no rotation)"),
            ("BREAK_GLASS_ROLE_ARNS", "arn:aws:iam::123456789012:user/x", "role ARNs"),
            ("ROTATE_KEYS", "yes", "`true` or `false`"),
            ("ROTATION_DEACTIVATE_DAYS", "ten", "whole number of days"),
            ("BREAK_GLASS_USERS", "ok, not ok", "\"not ok\""),
        ] {
            let err = with(&[(var, val)]).unwrap_err().to_string();
            assert!(err.contains(var) && err.contains(expect), "{var}: {err}");
        }
    }

    #[test]
    fn organization_mode_reads_its_variables_and_refuses_what_the_member_role_cannot_do() {
        assert_eq!(with(&[]).unwrap().organization, None);
        let c = with(&[("ORGANIZATION_MODE", "true"), ("SCP_POLICY", "p-abc123")]).unwrap();
        let org = c.organization.unwrap();
        assert_eq!((org.member_role_name.as_str(), org.scp_policy.as_str()), ("iam-sentinel-member", "p-abc123"));
        let err = with(&[
            ("ORGANIZATION_MODE", "true"),
            ("MEMBER_ROLE_NAME", "no spaces allowed"),
            ("ROTATE_KEYS", "true"),
            ("DEACTIVATE_STALE_KEYS", "true"),
            ("SECURITY_HUB", "true"),
        ])
        .unwrap_err();
        assert_eq!(err.variables(), ["MEMBER_ROLE_NAME", "ROTATE_KEYS", "SECURITY_HUB", "DEACTIVATE_STALE_KEYS"]);
        assert!(with(&[("ORGANIZATION_MODE", "true"), ("DEACTIVATE_STALE_KEYS", "dry-run")]).is_ok());
        assert_eq!(with(&[("ORGANIZATION_MODE", "maybe")]).unwrap_err().variables(), ["ORGANIZATION_MODE"]);
    }

    #[test]
    fn the_registry_secret_is_required() {
        let err = Config::from_lookup(|_| None).unwrap_err();
        assert_eq!(err.variables(), ["APPROVALS_SECRET_ID"]);
        assert!(err.to_string().contains("APPROVALS_SECRET_ID is not set"), "{err}");
    }

    #[test]
    fn every_bad_variable_is_reported_at_once_without_stray_spaces() {
        let err =
            with(&[("KEY_MAX_AGE_DAYS", "abc"), ("MFA_SCOPE", "everyone"), ("AUTO_REMEDIATE", "yes")]).unwrap_err();
        assert_eq!(err.variables(), ["KEY_MAX_AGE_DAYS", "MFA_SCOPE", "AUTO_REMEDIATE"]);
        let text = err.to_string();
        assert!(text.contains("configuration: KEY_MAX_AGE_DAYS=\"abc\" is not valid"), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn help_lists_every_variable_the_configuration_reads() {
        // Every variable name the parsing code spells out (the parsing's own file).
        let code = include_str!("config/from_env.rs");
        let read: std::collections::BTreeSet<&str> =
            code.split('"').filter(|w| w.len() > 3 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')).collect();
        let listed: std::collections::BTreeSet<&str> = VARIABLES.iter().map(|(v, _)| *v).collect();
        assert_eq!(read, listed);
    }

    #[test]
    fn the_identity_policy_guardrail_needs_the_enterprise_cidrs() {
        let err = with(&[("NETWORK_GUARDRAIL", "identity-policy")]).unwrap_err();
        assert_eq!(err.variables(), ["ENTERPRISE_CIDRS"]);
        let c = with(&[("NETWORK_GUARDRAIL", "both"), ("ENTERPRISE_CIDRS", "192.0.2.0/24,2001:db8::/32")]).unwrap();
        assert_eq!(c.policy.network_guardrail, NetworkGuardrail::Both);
        assert_eq!(c.policy.enterprise_cidrs.len(), 2);
        assert_eq!(with(&[]).unwrap().policy.network_guardrail, NetworkGuardrail::Scp);
    }

    #[test]
    fn password_minimums_default_to_cis_and_rotation_is_opt_in() {
        let c = with(&[]).unwrap();
        assert_eq!(c.policy.password, PasswordMinimums::default());
        let c = with(&[("PASSWORD_MAX_AGE_DAYS", "90"), ("PASSWORD_MIN_LENGTH", "16")]).unwrap();
        assert_eq!((c.policy.password.max_age_days, c.policy.password.min_length), (Some(90), 16));
    }

    #[test]
    fn break_glass_users_match_ignoring_case() {
        let c = with(&[
            ("BREAK_GLASS_USERS", "BreakGlass1, ops-emergency"),
            ("BREAK_GLASS_ROLE_ARNS", "arn:aws:iam::123456789012:role/BreakGlass"),
        ])
        .unwrap();
        assert!(c.policy.is_break_glass_user("breakglass1"));
        assert!(!c.policy.is_break_glass_user("alice"));
        assert_eq!(c.policy.break_glass_roles, ["arn:aws:iam::123456789012:role/BreakGlass"]);
    }

    #[test]
    fn stale_key_deactivation_is_off_unless_asked_and_validated() {
        let c = with(&[]).unwrap();
        assert_eq!(c.stale_keys, StaleKeys::default());
        assert_eq!(c.stale_keys.mode, StaleKeyMode::Off);
        let c = with(&[("DEACTIVATE_STALE_KEYS", "dry-run"), ("STALE_GRACE_DAYS", "7")]).unwrap();
        assert_eq!((c.stale_keys.mode, c.stale_keys.grace_days), (StaleKeyMode::DryRun, 7));
        assert_eq!(with(&[("DEACTIVATE_STALE_KEYS", "TRUE")]).unwrap().stale_keys.mode, StaleKeyMode::On);
        let e =
            with(&[("DEACTIVATE_STALE_KEYS", "yes"), ("STALE_GRACE_DAYS", "-1"), ("STALE_KEY_EXEMPT_TAG", "aws:x")])
                .unwrap_err();
        assert_eq!(e.variables(), ["DEACTIVATE_STALE_KEYS", "STALE_GRACE_DAYS", "STALE_KEY_EXEMPT_TAG"]);
        assert!(e.to_string().contains("`false`, `dry-run` or `true`"), "{e}");
    }

    #[test]
    fn lists_are_comma_separated() {
        let c = with(&[
            ("REQUIRED_TAGS", "owner, cost-center,"),
            ("APPROVER_PRINCIPALS", "arn:aws:iam::123456789012:role/SecurityAdmin"),
            ("AUTO_REMEDIATE", "TRUE"),
            ("MFA_SCOPE", "all-users"),
        ])
        .unwrap();
        assert_eq!(c.policy.required_tags, ["owner", "cost-center"]);
        assert_eq!(c.policy.approver_principals.len(), 1);
        assert!(c.auto_remediate);
        assert_eq!(c.policy.mfa_scope, MfaScope::AllUsers);
    }
}
