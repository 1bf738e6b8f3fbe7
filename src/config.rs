//! Configuration from environment variables, validated once at start-up.
//!
//! A bad value stops start-up with an error naming the variable and the values it
//! accepts; nothing here is read again during an invocation.

use crate::domain::cidr::Cidr;
use crate::domain::password::PasswordMinimums;

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

/// Records a bad value and carries on with `fallback`, so every problem is reported at once.
fn report<T>(errors: &std::cell::RefCell<Vec<ConfigError>>, result: Result<T, ConfigError>, fallback: T) -> T {
    result.unwrap_or_else(|e| {
        errors.borrow_mut().push(e);
        fallback
    })
}

fn bad(variable: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError { variable, value: value.to_owned(), expected: expected.into() }
}

impl Config {
    /// Reads and validates the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigErrors> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads and validates the configuration from `lookup` (the environment, or a map in tests).
    /// Every variable is checked; all bad ones are reported together.
    // One variable after another, in the documented order: splitting it would scatter the list.
    #[allow(clippy::too_many_lines)]
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let errors = std::cell::RefCell::new(Vec::new());
        let days = |name: &'static str, default: i64, max: i64| -> i64 {
            days_in(name, &get, &errors, default, 0..=max, "days")
        };
        let arn_list = |name: &'static str| -> Vec<String> {
            let Some(v) = get(name) else {
                return Vec::new();
            };
            let items: Vec<String> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            let parsed = match items.iter().find(|a| !is_arn(a)) {
                Some(item) => {
                    Err(bad(name, &v, format!("a comma-separated list of ARNs (arn:aws:…); {item:?} is not one")))
                }
                None => Ok(items),
            };
            report(&errors, parsed, Vec::new())
        };

        let default = Policy::default();
        let exception_tag_key = match get("EXCEPTION_TAG_KEY") {
            None => default.exception_tag_key.clone(),
            Some(k) if k.len() <= 128 && !k.to_ascii_lowercase().starts_with("aws:") => k,
            Some(k) => report(
                &errors,
                Err(bad("EXCEPTION_TAG_KEY", &k, "an IAM tag key of 1 to 128 characters not starting with aws:")),
                default.exception_tag_key.clone(),
            ),
        };
        let key_max_age_days = days("KEY_MAX_AGE_DAYS", default.key_max_age_days, 3650);
        let key_warn_days = days("KEY_WARN_DAYS", default.key_warn_days, 3650);
        if key_warn_days >= key_max_age_days {
            errors.borrow_mut().push(bad(
                "KEY_WARN_DAYS",
                &key_warn_days.to_string(),
                format!("fewer days than KEY_MAX_AGE_DAYS ({key_max_age_days})"),
            ));
        }
        let mfa_scope = match get("MFA_SCOPE").as_deref() {
            None | Some("console") => MfaScope::Console,
            Some("all-users") => MfaScope::AllUsers,
            Some(v) => report(&errors, Err(bad("MFA_SCOPE", v, "`console` or `all-users`")), MfaScope::Console),
        };
        let auto_remediate = match get("AUTO_REMEDIATE").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => report(&errors, Err(bad("AUTO_REMEDIATE", v, "`true` or `false`")), false),
        };
        let security_hub = match get("SECURITY_HUB").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => report(&errors, Err(bad("SECURITY_HUB", v, "`true` or `false`")), false),
        };
        let findings_topic_arn = match get("FINDINGS_TOPIC_ARN") {
            Some(v) if !v.starts_with("arn:") || !v.contains(":sns:") => report(
                &errors,
                Err(bad("FINDINGS_TOPIC_ARN", &v, "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")),
                None,
            ),
            v => v,
        };
        let approvals_secret_id = get("APPROVALS_SECRET_ID").unwrap_or_else(|| {
            errors.borrow_mut().push(bad(
                "APPROVALS_SECRET_ID",
                "",
                "the name or ARN of the Secrets Manager secret that holds the approvals registry",
            ));
            String::new()
        });
        let self_role_arn = match get("SELF_ROLE_ARN") {
            Some(v) if !is_arn(&v) || !v.contains(":role/") => {
                report(&errors, Err(bad("SELF_ROLE_ARN", &v, "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")), None)
            }
            v => v,
        };
        let required_tags = get("REQUIRED_TAGS")
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let exception_warn_days = days("EXCEPTION_WARN_DAYS", default.exception_warn_days, 365);
        let approver_principals = arn_list("APPROVER_PRINCIPALS");
        let key_unused_days = days("KEY_UNUSED_DAYS", default.key_unused_days, 3650);
        let network_guardrail = match get("NETWORK_GUARDRAIL").as_deref() {
            None | Some("scp") => NetworkGuardrail::Scp,
            Some("identity-policy") => NetworkGuardrail::IdentityPolicy,
            Some("both") => NetworkGuardrail::Both,
            Some(v) => report(
                &errors,
                Err(bad("NETWORK_GUARDRAIL", v, "`scp`, `identity-policy` or `both`")),
                NetworkGuardrail::Scp,
            ),
        };
        let enterprise_cidrs = match get("ENTERPRISE_CIDRS") {
            None if network_guardrail.needs_identity_policy() => report(
                &errors,
                Err(bad(
                    "ENTERPRISE_CIDRS",
                    "",
                    "the enterprise networks as comma-separated CIDRs (NETWORK_GUARDRAIL needs them)",
                )),
                Vec::new(),
            ),
            None => Vec::new(),
            Some(v) => {
                let parsed: Result<Vec<Cidr>, _> =
                    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Cidr::parse).collect();
                report(
                    &errors,
                    parsed.map_err(|e| bad("ENTERPRISE_CIDRS", &v, format!("comma-separated CIDRs; {e}"))),
                    Vec::new(),
                )
            }
        };
        let password = PasswordMinimums {
            min_length: u32::try_from(days_in("PASSWORD_MIN_LENGTH", &get, &errors, 14, 6..=128, "characters"))
                .unwrap_or(14),
            reuse_prevention: u32::try_from(days_in(
                "PASSWORD_REUSE_PREVENTION",
                &get,
                &errors,
                24,
                1..=24,
                "passwords remembered",
            ))
            .unwrap_or(24),
            max_age_days: match days_in("PASSWORD_MAX_AGE_DAYS", &get, &errors, 0, 0..=1095, "days (0: no rotation)") {
                0 => None,
                d => u32::try_from(d).ok(),
            },
            ..PasswordMinimums::default()
        };
        let break_glass_roles = arn_list("BREAK_GLASS_ROLE_ARNS");
        if let Some(not_role) = break_glass_roles.iter().find(|a| !a.contains(":role/")) {
            errors.borrow_mut().push(bad(
                "BREAK_GLASS_ROLE_ARNS",
                not_role,
                "IAM role ARNs (arn:aws:iam::ACCOUNT:role/NAME)",
            ));
        }
        let break_glass_users: Vec<String> = get("BREAK_GLASS_USERS")
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        if let Some(bad_name) = break_glass_users.iter().find(|u| !crate::domain::names::is_valid_user_name(u)) {
            errors.borrow_mut().push(bad("BREAK_GLASS_USERS", bad_name, "comma-separated IAM user names"));
        }
        let rotation = Rotation {
            enabled: match get("ROTATE_KEYS").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(v) => report(&errors, Err(bad("ROTATE_KEYS", v, "`true` or `false`")), false),
            },
            tag_key: get("ROTATION_TAG_KEY").unwrap_or_else(|| Rotation::default().tag_key),
            deactivate_after_days: days("ROTATION_DEACTIVATE_DAYS", 10, 365),
            delete_after_days: days("ROTATION_DELETE_DAYS", 10, 365),
            kms_key_id: get("ROTATION_KMS_KEY_ID"),
            tag_value: match get("ROTATION_TAG_VALUE") {
                None => ROTATION_OPT_IN.to_owned(),
                Some(v) if v.len() <= 256 => v,
                Some(v) => report(
                    &errors,
                    Err(bad("ROTATION_TAG_VALUE", &v, "an IAM tag value of at most 256 characters")),
                    ROTATION_OPT_IN.to_owned(),
                ),
            },
            secret_readers: arn_list("ROTATION_SECRET_READERS"),
        };
        let stale_keys = StaleKeys {
            mode: match get("DEACTIVATE_STALE_KEYS").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("false") => StaleKeyMode::Off,
                Some("dry-run") => StaleKeyMode::DryRun,
                Some("true") => StaleKeyMode::On,
                Some(v) => report(
                    &errors,
                    Err(bad("DEACTIVATE_STALE_KEYS", v, "`false`, `dry-run` or `true`")),
                    StaleKeyMode::Off,
                ),
            },
            grace_days: days("STALE_GRACE_DAYS", StaleKeys::default().grace_days, 3650),
            exempt_tag: match get("STALE_KEY_EXEMPT_TAG") {
                None => StaleKeys::default().exempt_tag,
                Some(k) if k.len() <= 128 && !k.to_ascii_lowercase().starts_with("aws:") => k,
                Some(k) => report(
                    &errors,
                    Err(bad(
                        "STALE_KEY_EXEMPT_TAG",
                        &k,
                        "an IAM tag key of 1 to 128 characters not starting with aws:",
                    )),
                    StaleKeys::default().exempt_tag,
                ),
            },
            rotation: rotation.enabled.then(|| rotation.clone()),
        };
        let organization = organization(&get, &errors, &rotation, &stale_keys, security_hub);
        let state_table = match get("STATE_TABLE") {
            Some(t) if !is_table_name(&t) => report(
                &errors,
                Err(bad("STATE_TABLE", &t, "a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ - .) or its ARN")),
                None,
            ),
            t => t,
        };
        let remind_days = u32::try_from(days("REMIND_DAYS", 7, 365)).unwrap_or(7);

        let errors = errors.into_inner();
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            policy: Policy {
                exception_tag_key,
                exception_warn_days,
                approver_principals,
                key_max_age_days,
                key_warn_days,
                key_unused_days,
                mfa_scope,
                required_tags,
                network_guardrail,
                enterprise_cidrs,
                password,
                break_glass_roles,
                break_glass_users,
            },
            findings_topic_arn,
            approvals_secret_id,
            auto_remediate,
            self_role_arn,
            self_session_name: None,
            security_hub,
            rotation,
            stale_keys,
            organization,
            state_table,
            remind_days,
        })
    }
}

/// `ORGANIZATION_MODE` and its variables. The member role only reads IAM and removes the
/// exception tag, so key rotation and stale-key deactivation (which change keys) are refused.
fn organization(
    get: &impl Fn(&str) -> Option<String>,
    errors: &std::cell::RefCell<Vec<ConfigError>>,
    rotation: &Rotation,
    stale_keys: &StaleKeys,
    security_hub: bool,
) -> Option<Organization> {
    let enabled = match get("ORGANIZATION_MODE").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => report(errors, Err(bad("ORGANIZATION_MODE", v, "`true` or `false`")), false),
    };
    if !enabled {
        return None;
    }
    let default = Organization::default();
    let member_role_name = match get("MEMBER_ROLE_NAME") {
        None => default.member_role_name,
        Some(n) if is_role_name(&n) => n,
        Some(n) => report(
            errors,
            Err(bad("MEMBER_ROLE_NAME", &n, "an IAM role name (1 to 64 of A-Z a-z 0-9 + = , . @ _ -)")),
            default.member_role_name,
        ),
    };
    let scp_policy = get("SCP_POLICY").unwrap_or(default.scp_policy);
    if rotation.enabled {
        errors.borrow_mut().push(bad(
            "ROTATE_KEYS",
            "true",
            "`false` with ORGANIZATION_MODE=true: the member role cannot create or delete keys",
        ));
    }
    if security_hub {
        errors.borrow_mut().push(bad(
            "SECURITY_HUB",
            "true",
            "`false` with ORGANIZATION_MODE=true: Security Hub takes a finding only from the account it is about, \
             not from the central account",
        ));
    }
    if stale_keys.mode == StaleKeyMode::On {
        errors.borrow_mut().push(bad(
            "DEACTIVATE_STALE_KEYS",
            "true",
            "`false` or `dry-run` with ORGANIZATION_MODE=true: the member role cannot deactivate keys",
        ));
    }
    Some(Organization { member_role_name, scp_policy })
}

/// An IAM role name: 1 to 64 of the characters IAM allows.
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
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

/// A DynamoDB table name, or a table ARN (`arn:aws:dynamodb:…:table/NAME`).
fn is_table_name(t: &str) -> bool {
    let name = t.strip_prefix("arn:").and_then(|_| t.split_once(":table/").map(|(_, n)| n)).unwrap_or(t);
    (3..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A whole number of `unit` within `range` from variable `name`, or `default` when unset.
fn days_in(
    name: &'static str,
    get: &impl Fn(&str) -> Option<String>,
    errors: &std::cell::RefCell<Vec<ConfigError>>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    unit: &str,
) -> i64 {
    let parsed = match get(name) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            bad(name, &v, format!("a whole number of {unit} from {} to {}", range.start(), range.end()))
        }),
    };
    report(errors, parsed, default)
}

fn is_arn(s: &str) -> bool {
    s.starts_with("arn:") && s.split(':').count() >= 6
}

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
        let src = include_str!("config.rs");
        let code = &src[..src.find("pub const VARIABLES").unwrap()];
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
