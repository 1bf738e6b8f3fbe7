//! Reading the configuration: every variable parsed and validated, every bad one reported at
//! once with the values it accepts.

use super::{
    Cidr, Config, ConfigError, ConfigErrors, MfaScope, NetworkGuardrail, Organization, PasswordMinimums, Policy,
    ROTATION_OPT_IN, Rotation, StaleKeyMode, StaleKeys,
};

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
