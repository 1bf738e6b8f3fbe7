//! Centralized root access (organization mode): whether the organization manages its members'
//! root users, whether a member still holds root credentials, and the root sessions that
//! `sts:AssumeRoot` starts.
//!
//! Since November 2024 an organization can remove its members' root credentials
//! (`RootCredentialsManagement`) and perform the few root-only tasks through short sessions
//! limited by a task policy (`RootSessions`). CIS AWS Foundations Benchmark v7.0 2.1.1 asks for both.

use serde_json::json;

use super::{Actor, CallContext};
pub use crate::domain::root::{RootFeature, RootTask};
use crate::finding::{CheckId, Finding, Scope, Severity};

/// What `iam:ListOrganizationsFeatures` says about the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFeatures {
    /// The organization (`o-…`), when the answer names it.
    pub organization_id: Option<String>,
    /// `RootCredentialsManagement` is enabled: members' root credentials can be (and should be) removed.
    pub credentials_management: bool,
    /// `RootSessions` is enabled: root-only tasks run as short sessions from the management account.
    pub sessions: bool,
    /// Trusted access for IAM is enabled in Organizations (without it neither feature can be).
    pub trusted_access: bool,
}

/// `root-access-not-centralized`: either feature is off. One finding for the organization, in
/// the account that read the features (the management account or IAM's delegated administrator).
#[must_use]
pub fn check_root_access(features: &RootFeatures, scope: &Scope) -> Option<Finding> {
    let mut off = Vec::new();
    if !features.credentials_management {
        off.push("RootCredentialsManagement");
    }
    if !features.sessions {
        off.push("RootSessions");
    }
    if off.is_empty() {
        return None;
    }
    let what = off.join(" and ");
    let first = if features.trusted_access {
        String::new()
    } else {
        "enable trusted access for IAM in Organizations (aws organizations enable-aws-service-access \
         --service-principal iam.amazonaws.com), then "
            .to_owned()
    };
    let remove = if features.credentials_management {
        String::new()
    } else {
        "; then delete the members' root credentials (an AssumeRoot session with IAMDeleteRootUserCredentials)"
            .to_owned()
    };
    let organization = features.organization_id.as_deref().unwrap_or("the organization");
    let mut f = scope.finding(
        CheckId::RootAccessNotCentralized,
        &format!("arn:{}:iam::{}:root", crate::finding::partition_of(&scope.region), scope.account),
        format!(
            "{organization} does not manage its members' root access centrally: {what} {} not enabled; \
             {first}enable {what} (IAM console, Root access management, or aws iam enable-organizations-{}){remove}",
            if off.len() == 1 { "is" } else { "are" },
            match off.as_slice() {
                ["RootSessions"] => "root-sessions",
                ["RootCredentialsManagement"] => "root-credentials-management",
                _ => "root-credentials-management and enable-organizations-root-sessions",
            },
        ),
    );
    f.resource.clone_from(&features.organization_id);
    f.evidence = json!({
        "organization_id": features.organization_id,
        "root_credentials_management": features.credentials_management,
        "root_sessions": features.sessions,
        "trusted_access": features.trusted_access,
        "not_enabled": off,
    });
    Some(f)
}

/// `member-root-credentials-present`: the organization manages root centrally, yet this
/// member's root user still has credentials (enabling the feature deletes none of them).
#[must_use]
pub fn check_member_root_credentials(summary: &super::RootSummary, scope: &Scope) -> Option<Finding> {
    let mut present = Vec::new();
    if summary.password_present {
        present.push("a console password");
    }
    if summary.access_keys_present {
        present.push("access keys");
    }
    if summary.mfa_enabled {
        present.push("an MFA device");
    }
    if summary.signing_certificates_present {
        present.push("signing certificates");
    }
    if present.is_empty() {
        return None;
    }
    let arn = format!("arn:{}:iam::{}:root", crate::finding::partition_of(&scope.region), scope.account);
    let mut f = scope.finding(
        CheckId::MemberRootCredentialsPresent,
        &arn,
        format!(
            "the root user of member account {} still has {}, though the organization manages root \
             centrally: from the management account, delete them (aws sts assume-root --target-principal {} \
             --task-policy-arn arn=arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials, then \
             delete-login-profile, delete-access-key, deactivate-mfa-device, delete-signing-certificate)",
            scope.account,
            present.join(", "),
            scope.account
        ),
    );
    f.evidence = json!({
        "account_password_present": summary.password_present,
        "account_access_keys_present": summary.access_keys_present,
        "account_mfa_enabled": summary.mfa_enabled,
        "account_signing_certificates_present": summary.signing_certificates_present,
        "task_policy": "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials",
    });
    Some(f)
}

/// The facts of one `sts:AssumeRoot` call.
#[derive(Debug, Clone, Copy)]
pub struct RootSessionStart<'a> {
    /// The member account the session acts in.
    pub target_account: &'a str,
    /// The task.
    pub task: &'a RootTask,
    /// The session's temporary access key, when the response records it.
    pub access_key_id: Option<&'a str>,
    /// Who called, and how.
    pub actor: &'a Actor,
    /// When, from where, with or without MFA.
    pub context: &'a CallContext,
}

/// `root-session-started`: someone in the management (or delegated-administrator) account
/// opened a root session in a member account. Reported in the caller's account.
#[must_use]
pub fn root_session_started(start: &RootSessionStart<'_>, scope: &Scope) -> Finding {
    let RootSessionStart { target_account, task, access_key_id, actor, context } = *start;
    let mfa = match context.mfa_authenticated {
        Some(true) => " with MFA",
        Some(false) => " without MFA",
        None => "",
    };
    let from = context.source_ip.as_deref().map(|ip| format!(" from {ip}")).unwrap_or_default();
    let mut f = scope.finding(
        CheckId::RootSessionStarted,
        &actor.arn,
        format!(
            "{} started a root session in account {target_account} for {} (to {}){from}{mfa}: confirm it was planned",
            actor.arn,
            task.name(),
            task.purpose()
        ),
    );
    f.severity = task.severity();
    f.resource = access_key_id.map(str::to_owned);
    f.evidence = context.evidence("AssumeRoot", actor);
    f.evidence["target_account"] = json!(target_account);
    f.evidence["task_policy"] = json!(task.name());
    f.evidence["session_access_key_id"] = json!(access_key_id);
    f
}

/// Where a member's root session came from, as the `AssumeRoot` call recorded it.
#[derive(Debug, Clone, Copy)]
pub struct SessionOrigin<'a> {
    /// The caller of `AssumeRoot`.
    pub caller: &'a str,
    /// The caller's account.
    pub caller_account: &'a str,
    /// The task.
    pub task: &'a RootTask,
    /// When the session started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Where the caller called from.
    pub source_ip: Option<&'a str>,
    /// Whether the caller had MFA.
    pub mfa: Option<bool>,
}

/// `root-used` for a member's call made in a root session the management account started:
/// it says who started it and for which task, and weighs what that task weighs (the session
/// itself was reported as `root-session-started`).
#[must_use]
pub fn root_session_used(
    event_name: &str,
    actor: &Actor,
    context: &CallContext,
    access_key_id: &str,
    origin: &SessionOrigin<'_>,
    scope: &Scope,
) -> Finding {
    let mut f = scope.finding(
        CheckId::RootUsed,
        &actor.arn,
        format!(
            "the root user called {event_name} in a root session started from account {} by {} for {} at {}: \
             expected if that task was planned",
            origin.caller_account,
            origin.caller,
            origin.task.name(),
            origin.started_at.format("%Y-%m-%dT%H:%M:%SZ"),
        ),
    );
    f.severity = origin.task.severity();
    f.resource = Some(access_key_id.to_owned());
    f.evidence = context.evidence(event_name, actor);
    f.evidence["root_session"] = json!({
        "started_by": origin.caller,
        "caller_account": origin.caller_account,
        "task_policy": origin.task.name(),
        "started_at": origin.started_at,
        "caller_source_ip": origin.source_ip,
        "caller_mfa": origin.mfa,
    });
    f
}

/// The finding for a feature switched on (`root-access-centralized`, info) or off
/// (`root-access-not-centralized`, critical: members' root users may get credentials again, or
/// root tasks need root sign-ins again).
#[must_use]
pub fn root_feature_changed(
    feature: RootFeature,
    enabled: bool,
    event_name: &str,
    actor: &Actor,
    context: &CallContext,
    scope: &Scope,
) -> Finding {
    let from = context.source_ip.as_deref().map(|ip| format!(" from {ip}")).unwrap_or_default();
    let (check, message) = if enabled {
        (CheckId::RootAccessCentralized, format!("{} enabled {}{from}", actor.arn, feature.name()))
    } else {
        let consequence = match feature {
            RootFeature::CredentialsManagement => {
                "members' root users can be given passwords and keys again, and new accounts get root credentials"
            }
            RootFeature::Sessions => "root-only tasks in members need a root sign-in again",
        };
        (
            CheckId::RootAccessNotCentralized,
            format!(
                "{} disabled {}{from}: {consequence}; unless this was planned, enable it again \
                 (aws iam enable-organizations-{})",
                actor.arn,
                feature.name(),
                match feature {
                    RootFeature::CredentialsManagement => "root-credentials-management",
                    RootFeature::Sessions => "root-sessions",
                }
            ),
        )
    };
    let mut f = scope.finding(check, &actor.arn, message);
    if !enabled {
        f.severity = Severity::Critical;
    }
    f.resource = Some(feature.name().to_owned());
    f.evidence = context.evidence(event_name, actor);
    f.evidence["feature"] = json!(feature.name());
    f.evidence["enabled"] = json!(enabled);
    f
}

#[cfg(test)]
mod tests {
    use super::super::RootSummary;
    use super::super::fixtures::*;
    use super::*;

    fn features(credentials: bool, sessions: bool) -> RootFeatures {
        RootFeatures {
            organization_id: Some("o-exampleorg1".into()),
            credentials_management: credentials,
            sessions,
            trusted_access: true,
        }
    }

    fn caller() -> Actor {
        Actor {
            arn: "arn:aws:sts::123456789012:assumed-role/RootTaskOperator/dana".into(),
            issuer_arn: Some("arn:aws:iam::123456789012:role/RootTaskOperator".into()),
            root: false,
        }
    }

    fn context(mfa: Option<bool>) -> CallContext {
        CallContext {
            event_time: Some(days_ago(0)),
            source_ip: Some("203.0.113.40".into()),
            user_agent: None,
            mfa_authenticated: mfa,
        }
    }

    #[test]
    fn either_feature_off_is_named_and_both_on_is_clean() {
        assert!(check_root_access(&features(true, true), &scope()).is_none());
        let f = check_root_access(&features(true, false), &scope()).unwrap();
        assert_eq!((f.check, f.severity), (CheckId::RootAccessNotCentralized, Severity::High));
        assert!(f.message.contains("RootSessions is not enabled"), "{}", f.message);
        assert!(!f.message.contains("RootCredentialsManagement"), "{}", f.message);
        assert!(f.message.contains("enable-organizations-root-sessions"), "{}", f.message);
        assert_eq!(f.evidence["not_enabled"], json!(["RootSessions"]));
        let f = check_root_access(&features(false, true), &scope()).unwrap();
        assert!(f.message.contains("RootCredentialsManagement is not enabled"), "{}", f.message);
        assert!(f.message.contains("IAMDeleteRootUserCredentials"), "what to do next: {}", f.message);
        let f = check_root_access(&features(false, false), &scope()).unwrap();
        assert!(f.message.contains("RootCredentialsManagement and RootSessions are not enabled"), "{}", f.message);
        assert_eq!(f.resource.as_deref(), Some("o-exampleorg1"));
        assert!(!f.message.contains("trusted access"), "{}", f.message);
    }

    #[test]
    fn without_trusted_access_the_first_step_is_to_enable_it() {
        let off = RootFeatures { trusted_access: false, ..features(false, false) };
        let f = check_root_access(&off, &scope()).unwrap();
        assert!(f.message.contains("--service-principal iam.amazonaws.com"), "{}", f.message);
        assert_eq!(f.evidence["trusted_access"], false);
    }

    #[test]
    fn a_member_root_credential_of_any_kind_is_named_with_the_task_that_deletes_it() {
        assert!(check_member_root_credentials(&RootSummary::default(), &scope()).is_none());
        for (summary, named) in [
            (RootSummary { password_present: true, ..RootSummary::default() }, "a console password"),
            (RootSummary { access_keys_present: true, ..RootSummary::default() }, "access keys"),
            (RootSummary { mfa_enabled: true, ..RootSummary::default() }, "an MFA device"),
            (RootSummary { signing_certificates_present: true, ..RootSummary::default() }, "signing certificates"),
        ] {
            let f = check_member_root_credentials(&summary, &scope()).unwrap();
            assert_eq!((f.check, f.severity), (CheckId::MemberRootCredentialsPresent, Severity::High));
            assert!(f.message.contains(&format!("still has {named},")), "{}", f.message);
            assert!(f.message.contains("member account 123456789012"), "{}", f.message);
            assert!(f.message.contains("IAMDeleteRootUserCredentials"), "{}", f.message);
            assert_eq!(f.principal, "arn:aws:iam::123456789012:root");
        }
        let all = RootSummary {
            password_present: true,
            access_keys_present: true,
            mfa_enabled: true,
            signing_certificates_present: true,
        };
        let f = check_member_root_credentials(&all, &scope()).unwrap();
        assert!(
            f.message.contains("a console password, access keys, an MFA device, signing certificates"),
            "{}",
            f.message
        );
    }

    #[test]
    fn tasks_are_read_from_their_policy_arn_and_weigh_by_what_they_can_do() {
        let task = |n: &str| RootTask::from_policy_arn(&format!("arn:aws:iam::aws:policy/root-task/{n}"));
        assert_eq!(task("IAMAuditRootUserCredentials").severity(), Severity::Low);
        assert_eq!(task("IAMDeleteRootUserCredentials").severity(), Severity::Medium);
        for high in ["IAMCreateRootUserPassword", "S3UnlockBucketPolicy", "SQSUnlockQueuePolicy", "SomethingNew"] {
            assert_eq!(task(high).severity(), Severity::High, "{high}");
            assert_eq!(task(high).name(), high);
        }
        assert_eq!(task("SomethingNew"), RootTask::Other("SomethingNew".into()));
        assert_eq!(RootTask::from_policy_arn("S3UnlockBucketPolicy"), RootTask::UnlockBucketPolicy);
    }

    #[test]
    fn a_root_session_names_caller_mfa_source_target_and_task() {
        let task = RootTask::CreatePassword;
        let start = RootSessionStart {
            target_account: "222233334444",
            task: &task,
            access_key_id: Some("ASIAEXAMPLEROOTSES01"),
            actor: &caller(),
            context: &context(Some(false)),
        };
        let f = root_session_started(&start, &scope());
        assert_eq!((f.check, f.severity), (CheckId::RootSessionStarted, Severity::High));
        assert_eq!(
            f.message,
            "arn:aws:sts::123456789012:assumed-role/RootTaskOperator/dana started a root session in account \
             222233334444 for IAMCreateRootUserPassword (to give the root user a console password again) from \
             203.0.113.40 without MFA: confirm it was planned"
        );
        assert_eq!(f.evidence["target_account"], "222233334444");
        assert_eq!(f.evidence["mfa_authenticated"], false);
        assert_eq!(f.resource.as_deref(), Some("ASIAEXAMPLEROOTSES01"));
        let audit = RootTask::AuditCredentials;
        let f = root_session_started(&RootSessionStart { task: &audit, ..start }, &scope());
        assert_eq!(f.severity, Severity::Low);
    }

    #[test]
    fn a_paired_root_use_says_where_the_session_came_from_and_weighs_its_task() {
        let root = Actor { arn: "arn:aws:iam::222233334444:root".into(), issuer_arn: None, root: true };
        let task = RootTask::UnlockBucketPolicy;
        let origin = SessionOrigin {
            caller: "arn:aws:sts::123456789012:assumed-role/RootTaskOperator/dana",
            caller_account: "123456789012",
            task: &task,
            started_at: days_ago(0),
            source_ip: Some("203.0.113.40"),
            mfa: Some(true),
        };
        let f = root_session_used("DeleteBucketPolicy", &root, &context(None), "ASIAEXAMPLE1", &origin, &scope());
        assert_eq!((f.check, f.severity), (CheckId::RootUsed, Severity::High));
        assert!(f.message.contains("root session started from account 123456789012"), "{}", f.message);
        assert!(f.message.contains("for S3UnlockBucketPolicy"), "{}", f.message);
        assert_eq!(f.evidence["root_session"]["caller_mfa"], true);
        let delete = RootTask::DeleteCredentials;
        let f = root_session_used(
            "DeleteLoginProfile",
            &root,
            &context(None),
            "ASIAEXAMPLE1",
            &SessionOrigin { task: &delete, ..origin },
            &scope(),
        );
        assert_eq!(f.severity, Severity::Medium);
    }

    #[test]
    fn disabling_a_feature_is_critical_and_enabling_it_is_recorded() {
        let f = root_feature_changed(
            RootFeature::Sessions,
            false,
            "DisableOrganizationsRootSessions",
            &caller(),
            &context(Some(true)),
            &scope(),
        );
        assert_eq!((f.check, f.severity), (CheckId::RootAccessNotCentralized, Severity::Critical));
        assert!(f.message.contains("disabled RootSessions from 203.0.113.40"), "{}", f.message);
        assert!(f.message.contains("enable-organizations-root-sessions"), "{}", f.message);
        let f = root_feature_changed(
            RootFeature::CredentialsManagement,
            true,
            "EnableOrganizationsRootCredentialsManagement",
            &caller(),
            &context(Some(true)),
            &scope(),
        );
        assert_eq!((f.check, f.severity), (CheckId::RootAccessCentralized, Severity::Info));
        assert_eq!(f.evidence["event"], "EnableOrganizationsRootCredentialsManagement");
    }
}
