//! The one output shape: a [`Finding`], with its stable [`CheckId`] and [`Severity`].
//!
//! Check ids are the SNS filter-policy vocabulary: they are defined here once and
//! serialised with the exact names documented in the README.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad a finding is; ordered so that `Critical > High > … > Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: nothing is exposed, but someone should know.
    Info,
    /// Hygiene: act within the normal cycle.
    Low,
    /// A control is weakened.
    Medium,
    /// A control is bypassed or about to be.
    High,
    /// The account itself is exposed, or the function cannot do its job.
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL_DESCENDING: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

    /// The lowercase name used in findings, message attributes and `--fail-on`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a severity name as written in findings (`high`, `critical`, …).
    #[must_use]
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL_DESCENDING.into_iter().find(|sev| sev.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! check_ids {
    ($( $(#[$doc:meta])* $variant:ident => $id:literal, $sev:ident; )*) => {
        /// A stable check identifier; subscribers filter on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum CheckId {
            $( $(#[$doc])* #[serde(rename = $id)] $variant, )*
        }

        impl CheckId {
            /// Every check, in documentation order.
            pub const ALL: &'static [CheckId] = &[$(CheckId::$variant),*];

            /// The id as published (`exception-unapproved`, …).
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(CheckId::$variant => $id,)* }
            }

            /// The severity every finding of this check carries.
            #[must_use]
            pub fn severity(self) -> Severity {
                match self { $(CheckId::$variant => Severity::$sev,)* }
            }
        }
    };
}

check_ids! {
    /// `AccessException=True` with no approval in the registry.
    ExceptionUnapproved => "exception-unapproved", High;
    /// The approval behind the tag has expired.
    ExceptionExpired => "exception-expired", High;
    /// The approval expires within `EXCEPTION_WARN_DAYS`.
    ExceptionExpiring => "exception-expiring", Low;
    /// The tag was set by the tagged user itself, or by someone not in `APPROVER_PRINCIPALS`.
    ExceptionSelfGranted => "exception-self-granted", High;
    /// The exception tag is present with a value other than exactly `True`.
    ExceptionTagMalformed => "exception-tag-malformed", Medium;
    /// An approval exists but the user does not carry the tag.
    ExceptionApprovedUntagged => "exception-approved-untagged", Info;
    /// A tag named in `REQUIRED_TAGS` is absent.
    RequiredTagMissing => "required-tag-missing", Low;
    /// An active key is due for rotation soon.
    AccessKeyRotationDue => "access-key-rotation-due", Low;
    /// An active key is older than `KEY_MAX_AGE_DAYS`.
    AccessKeyStale => "access-key-stale", Medium;
    /// An active key has not been used for `KEY_UNUSED_DAYS`.
    AccessKeyUnused => "access-key-unused", Medium;
    /// The user has two active keys.
    AccessKeyMultipleActive => "access-key-multiple-active", Low;
    /// Console password enabled without an MFA device.
    ConsoleWithoutMfa => "console-without-mfa", High;
    /// No MFA device at all (`MFA_SCOPE=all-users`).
    UserWithoutMfa => "user-without-mfa", Medium;
    /// The root account has an active access key.
    RootAccessKey => "root-access-key", Critical;
    /// The root account has no MFA.
    RootWithoutMfa => "root-without-mfa", Critical;
    /// The approvals registry could not be read or is invalid: nothing was remediated.
    ApprovalsRegistryUnavailable => "approvals-registry-unavailable", Critical;
    /// The root user made a handled call or signed in to the console.
    RootUsed => "root-used", Critical;
    /// A console password unused (or never used) for `KEY_UNUSED_DAYS` or more.
    ConsolePasswordUnused => "console-password-unused", Medium;
    /// `NETWORK_GUARDRAIL` includes the identity policy: a user with credentials is not covered by a
    /// policy denying requests from outside `ENTERPRISE_CIDRS`.
    NetworkRestrictionMissing => "network-restriction-missing", High;
    /// A network restriction policy reaches the user, but its CIDRs, deny or exemption differ.
    NetworkRestrictionWeakened => "network-restriction-weakened", High;
    /// A console user not covered by a policy that denies (nearly) everything without MFA.
    MfaPolicyMissing => "mfa-policy-missing", Medium;
    /// No account password policy, or one below the configured minimums.
    PasswordPolicyWeak => "password-policy-weak", Medium;
    /// A user allowed `*` on `*` (or all of IAM), by any path.
    UserAdminAccess => "user-admin-access", High;
    /// Policies attached to the user directly or inline instead of through a group.
    UserDirectPolicy => "user-direct-policy", Low;
    /// A configured break-glass role was assumed, or a break-glass user signed in.
    BreakGlassUsed => "break-glass-used", Critical;
    /// A configured break-glass role is gone, or a break-glass user has no MFA.
    BreakGlassNotReady => "break-glass-not-ready", High;
    /// The approvals secret was changed by a principal outside `APPROVER_PRINCIPALS`.
    RegistryChangedByNonApprover => "registry-changed-by-non-approver", Critical;
    /// An approved exception whose user's credentials were unused for `KEY_UNUSED_DAYS`.
    ExceptionUnused => "exception-unused", Low;
    /// The function rotated an opted-in user's key, or took the rotation's next step.
    AccessKeyRotated => "access-key-rotated", Info;
    /// The rotation cannot take its next step: the old key is still used, or the keys are not
    /// in a state it can act on safely.
    RotationStalled => "rotation-stalled", Medium;
    /// Organization mode: no SCP doing what seed 000's does applies to a member account.
    ScpNotAttached => "scp-not-attached", Critical;
    /// Organization mode: the configured SCP, or a copy, applies to an account but does less than the seed's.
    ScpWeakened => "scp-weakened", Critical;
    /// Organization mode: IAM users in the management account, where SCPs never apply.
    ManagementAccountIamUsers => "management-account-iam-users", High;
    /// Event path: someone set a user's key-rotation opt-in tag (who opted whom in); with
    /// `APPROVER_PRINCIPALS` set, an opt-in by anyone else is not honoured (the tag is removed).
    RotationOptIn => "rotation-opt-in", Low;
    /// Organization mode: `RootCredentialsManagement` or `RootSessions` is not enabled, or was just disabled.
    RootAccessNotCentralized => "root-access-not-centralized", High;
    /// Organization mode, root managed centrally: a member still has a root password, key, MFA device or certificate.
    MemberRootCredentialsPresent => "member-root-credentials-present", High;
    /// `sts:AssumeRoot` started a root session in a member account; the severity follows the task policy.
    RootSessionStarted => "root-session-started", High;
    /// A centralized root access feature was enabled (the audit trail of the change).
    RootAccessCentralized => "root-access-centralized", Info;
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recommendation of the CIS AWS Foundations Benchmark that a check relates to; the one
/// mapping every rendering (HTML, ASFF `Compliance.RelatedRequirements`, …) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CisControl {
    /// The recommendation's number in [`CisControl::BENCHMARK`] (`1.3`).
    pub id: &'static str,
    /// Its title, as the benchmark words it.
    pub title: &'static str,
}

impl CisControl {
    /// The benchmark and version the ids refer to (section 1, Identity and Access Management).
    pub const BENCHMARK: &'static str = "CIS AWS Foundations Benchmark v5.0.0";
}

impl CheckId {
    /// The CIS AWS Foundations Benchmark v5.0 recommendation this check relates to, if any
    /// (the exception-tag checks enforce this project's own policy, not a CIS control).
    #[must_use]
    pub fn cis_control(self) -> Option<CisControl> {
        let (id, title) = match self {
            // A member's root access key is the same exposure, wherever it is found.
            CheckId::RootAccessKey | CheckId::MemberRootCredentialsPresent => {
                ("1.3", "Ensure no 'root' user account access key exists")
            }
            CheckId::RootWithoutMfa => ("1.4", "Ensure MFA is enabled for the 'root' user account"),
            // A root session is a use of root, however short.
            CheckId::RootUsed | CheckId::RootSessionStarted => {
                ("1.6", "Eliminate use of the 'root' user for administrative and daily tasks")
            }
            CheckId::ConsoleWithoutMfa => (
                "1.9",
                "Ensure multi-factor authentication (MFA) is enabled for all IAM users that have a console password",
            ),
            CheckId::AccessKeyUnused | CheckId::ConsolePasswordUnused => {
                ("1.11", "Ensure credentials unused for 45 days or more are disabled")
            }
            CheckId::AccessKeyMultipleActive => {
                ("1.12", "Ensure there is only one active access key for any single IAM user")
            }
            // Rotation due is the early warning for the same 90-day control.
            CheckId::AccessKeyStale | CheckId::AccessKeyRotationDue => {
                ("1.13", "Ensure access keys are rotated every 90 days or less")
            }
            CheckId::PasswordPolicyWeak => {
                ("1.7", "Ensure IAM password policy requires minimum length of 14 or greater")
            }
            CheckId::UserDirectPolicy => ("1.14", "Ensure IAM users receive permissions only through groups"),
            CheckId::UserAdminAccess => {
                ("1.15", "Ensure IAM policies that allow full \"*:*\" administrative privileges are not attached")
            }
            // Named explicitly, not `_`, so that a new check must decide its control here.
            CheckId::ExceptionUnapproved
            | CheckId::ExceptionExpired
            | CheckId::ExceptionExpiring
            | CheckId::ExceptionSelfGranted
            | CheckId::ExceptionTagMalformed
            | CheckId::ExceptionApprovedUntagged
            | CheckId::RequiredTagMissing
            | CheckId::UserWithoutMfa
            | CheckId::ApprovalsRegistryUnavailable
            | CheckId::NetworkRestrictionMissing
            | CheckId::NetworkRestrictionWeakened
            | CheckId::MfaPolicyMissing
            | CheckId::BreakGlassUsed
            | CheckId::BreakGlassNotReady
            | CheckId::RegistryChangedByNonApprover
            | CheckId::ExceptionUnused
            | CheckId::AccessKeyRotated
            | CheckId::RotationStalled
            | CheckId::ScpNotAttached
            | CheckId::ScpWeakened
            | CheckId::ManagementAccountIamUsers
            | CheckId::RotationOptIn
            // CIS v7.0 2.1.1 "Ensure centralized root access"; v5.0 has no such control.
            | CheckId::RootAccessNotCentralized
            | CheckId::RootAccessCentralized => return None,
        };
        Some(CisControl { id, title })
    }
}

/// What remediation did (or would do) about a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    /// The action: `untag` (remove the exception tag) or `deactivate` (make a stale key inactive).
    pub action: String,
    /// `applied`, `dry-run`, `skipped` or `failed`.
    pub status: RemediationStatus,
    /// Why it failed or was skipped, when it did not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcome of one remediation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationStatus {
    /// The tag was removed (the key deactivated).
    Applied,
    /// Remediation is off (`AUTO_REMEDIATE=false` or `--dry-run`): this is what it would do.
    DryRun,
    /// Not applied on purpose (an approval appeared when the registry was re-read).
    Skipped,
    /// The call failed; the invocation fails too.
    Failed,
}

impl RemediationStatus {
    /// The name used in findings (`applied`, `dry-run`, `skipped`, `failed`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationStatus::Applied => "applied",
            RemediationStatus::DryRun => "dry-run",
            RemediationStatus::Skipped => "skipped",
            RemediationStatus::Failed => "failed",
        }
    }
}

/// One problem found about one principal; the shape documented in the README.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: a hash of account, check, principal, resource and day. A retried
    /// invocation produces the same id, so subscribers can drop duplicates.
    #[serde(default)]
    pub id: String,
    /// Stable check id.
    pub check: CheckId,
    /// Severity of the check.
    pub severity: Severity,
    /// Account the principal lives in.
    pub account: String,
    /// The account's name in the organization (organization mode, when Organizations names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// Region the function observed from.
    pub region: String,
    /// ARN of the principal (user, root, or the registry secret).
    pub principal: String,
    /// IAM user name, when the finding is about a user.
    pub user: Option<String>,
    /// Access key id (event path) or `access_key_N created YYYY-MM-DD` (scan); null when not about a key.
    pub resource: Option<String>,
    /// One sentence a person can act on.
    pub message: String,
    /// The facts behind the finding.
    pub evidence: serde_json::Value,
    /// What remediation did, for remediable checks.
    pub remediation: Option<Remediation>,
    /// When the function looked ("now" of the invocation).
    pub observed_at: DateTime<Utc>,
    /// `event:<EventName>` or `schedule`.
    pub trigger: String,
    /// What the check decided should be done about it; carried out (or not) by the app.
    #[serde(skip)]
    pub action: Option<Action>,
    /// `open` while the condition holds; `resolved` when a later scan no longer finds it.
    #[serde(default, skip_serializing_if = "FindingState::is_open")]
    pub state: FindingState,
    /// Why this finding is announced (new, changed, reminder, resolved), when the state table
    /// decided it; absent without the table and in the digest's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
}

/// Why a finding is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// Not reported before (or back after a resolution).
    New,
    /// Severity rose or the remediation status changed since it was announced.
    Changed,
    /// Still open, announced `REMIND_DAYS` or more ago.
    Reminder,
    /// Open before, no longer produced.
    Resolved,
}

/// What the announcement of a finding says about its thread (serialised as `notice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Why it is announced.
    pub kind: NoticeKind,
    /// When the condition was first seen.
    pub first_seen: DateTime<Utc>,
    /// What changed (`changed` only): the severity or remediation status before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// Where a finding is in its lifecycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingState {
    /// The condition holds now.
    #[default]
    Open,
    /// A previously reported finding that the latest scan no longer produces (key rotated,
    /// MFA added, tag removed or approved).
    Resolved,
}

impl FindingState {
    /// Whether the finding is open (the default, omitted from the JSON).
    #[must_use]
    pub fn is_open(&self) -> bool {
        *self == FindingState::Open
    }
}

/// A remediation a check asks for; the app applies it after re-reading what it must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Remove tag `tag_key` (as spelled on the user) from `user`.
    Untag {
        /// The IAM user.
        user: String,
        /// The tag key exactly as stored on the user (IAM keys are case-insensitive, UntagUser is not).
        tag_key: String,
    },
    /// Make one key of `user` inactive: the key by id (event path) or by slot and creation
    /// date (scan), which the executor resolves to exactly one key id or leaves alone.
    DeactivateKey {
        /// The IAM user.
        user: String,
        /// The key, as the finding names it.
        key: crate::snapshot::KeyRef,
        /// When the key was created: how a slot is matched to a key id.
        created: DateTime<Utc>,
    },
}

/// Where and when findings are being produced; the context every finding carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The account being checked.
    pub account: String,
    /// The region the function runs in.
    pub region: String,
    /// `event:<EventName>` or `schedule`.
    pub trigger: String,
    /// The one "now" of the invocation.
    pub now: DateTime<Utc>,
}

impl Scope {
    /// Starts a finding of `check` in this scope; the caller fills in the rest.
    #[must_use]
    pub fn finding(&self, check: CheckId, principal: &str, message: String) -> Finding {
        Finding {
            id: String::new(),
            check,
            severity: check.severity(),
            account: self.account.clone(),
            account_name: None,
            region: self.region.clone(),
            principal: principal.to_owned(),
            user: None,
            resource: None,
            message,
            evidence: serde_json::Value::Object(serde_json::Map::new()),
            remediation: None,
            observed_at: self.now,
            trigger: self.trigger.clone(),
            action: None,
            state: FindingState::Open,
            notice: None,
        }
    }
}

impl Finding {
    /// The stable id of this finding (see [`Finding::id`]).
    #[must_use]
    pub fn stable_id(&self) -> String {
        stable_id(&[
            &self.account,
            self.check.as_str(),
            &self.principal,
            self.resource.as_deref().unwrap_or(""),
            &self.observed_at.format("%Y-%m-%d").to_string(),
        ])
    }
}

impl Finding {
    /// The id of the condition itself, the same on every day it holds: account, check,
    /// principal and resource. Chat threads, Security Hub finding ids and resolutions use it;
    /// [`Finding::id`] adds the day, for de-duplicating retried deliveries.
    #[must_use]
    pub fn thread_id(&self) -> String {
        stable_id(&[&self.account, self.check.as_str(), &self.principal, self.resource.as_deref().unwrap_or("")])
    }
}

/// A 128-bit hex SHA-256 prefix of the parts, separated so that no two inputs collide by concatenation.
#[must_use]
pub fn stable_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update((p.len() as u64).to_be_bytes());
        hasher.update(p.as_bytes());
    }
    hasher.finalize()[..16].iter().fold(String::with_capacity(32), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// The AWS partition of a region: `aws-cn`, `aws-us-gov` or `aws`.
#[must_use]
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Readies findings for output: gives each its stable id, then orders them for people
/// (most severe first, then by check, user and resource).
pub fn sort_findings(findings: &mut [Finding]) {
    for f in findings.iter_mut() {
        f.id = f.stable_id();
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.check.cmp(&b.check))
            .then_with(|| a.user.cmp(&b.user))
            .then_with(|| a.resource.cmp(&b.resource))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_ids_serialise_with_their_documented_names() {
        for check in CheckId::ALL {
            let json = serde_json::to_string(check).unwrap();
            assert_eq!(json, format!("\"{}\"", check.as_str()));
        }
    }

    #[test]
    fn every_check_is_documented_in_the_readme_with_its_severity() {
        let readme = include_str!("../README.md");
        for check in CheckId::ALL {
            let row = format!("| `{}` | {} |", check.as_str(), check.severity());
            assert!(readme.contains(&row), "README check table lacks the row {row}");
        }
    }

    #[test]
    fn finding_ids_are_stable_per_day_and_distinct_per_resource() {
        let scope = |now: &str| Scope {
            account: "1".into(),
            region: "r".into(),
            trigger: "t".into(),
            now: now.parse().unwrap(),
        };
        let at = |now, resource: &str| {
            let mut f = scope(now).finding(CheckId::AccessKeyStale, "arn:u", "m".into());
            f.resource = Some(resource.into());
            f.stable_id()
        };
        assert_eq!(at("2026-11-23T01:00:00Z", "AKIA1"), at("2026-11-23T23:00:00Z", "AKIA1"));
        assert_ne!(at("2026-11-23T01:00:00Z", "AKIA1"), at("2026-11-24T01:00:00Z", "AKIA1"));
        assert_ne!(at("2026-11-23T01:00:00Z", "AKIA1"), at("2026-11-23T01:00:00Z", "AKIA2"));
        assert_eq!(at("2026-11-23T01:00:00Z", "AKIA1").len(), 32);
        let thread = |now, resource: &str| {
            let mut f = scope(now).finding(CheckId::AccessKeyStale, "arn:u", "m".into());
            f.resource = Some(resource.into());
            f.thread_id()
        };
        assert_eq!(thread("2026-11-23T01:00:00Z", "AKIA1"), thread("2026-12-24T01:00:00Z", "AKIA1"), "across days");
        assert_ne!(thread("2026-11-23T01:00:00Z", "AKIA1"), thread("2026-11-23T01:00:00Z", "AKIA2"));
        assert_ne!(thread("2026-11-23T01:00:00Z", "AKIA1"), at("2026-11-23T01:00:00Z", "AKIA1"));
    }

    #[test]
    fn cis_controls_follow_the_v5_numbering() {
        let id = |c: CheckId| c.cis_control().map(|c| c.id);
        assert_eq!(id(CheckId::RootAccessKey), Some("1.3"));
        assert_eq!(id(CheckId::RootWithoutMfa), Some("1.4"));
        assert_eq!(id(CheckId::ConsoleWithoutMfa), Some("1.9"));
        assert_eq!(id(CheckId::AccessKeyUnused), Some("1.11"));
        assert_eq!(id(CheckId::AccessKeyMultipleActive), Some("1.12"));
        assert_eq!(id(CheckId::AccessKeyStale), Some("1.13"));
        assert_eq!(id(CheckId::ExceptionUnapproved), None);
        for c in CheckId::ALL.iter().filter_map(|c| c.cis_control()) {
            assert!(c.id.starts_with("1.") && !c.title.is_empty(), "{c:?}: section 1, titled");
        }
    }

    #[test]
    fn remediation_status_names_match_their_serialisation() {
        use RemediationStatus::{Applied, DryRun, Failed, Skipped};
        for status in [Applied, DryRun, Skipped, Failed] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Info);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("severe"), None);
    }
}
