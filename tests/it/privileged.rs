//! The privileged paths against a real moto server: break-glass use reported once per event with
//! no AWS read, break-glass readiness in the scan (one `GetRole` per configured role, a failed
//! lookup failing the scan), break-glass users never untagged, and writes to the approvals
//! registry judged by who made them, with the approvals added and removed as evidence.

use chrono::{Duration, Utc};
use iam_sentinel::app::{App, Outcome, RunOptions};
use iam_sentinel::approvals::Approvals;
use iam_sentinel::aws::approvals::SecretApprovals;
use iam_sentinel::aws::iam::IamDirectory;
use iam_sentinel::checks::RootSummary;
use iam_sentinel::checks::registry::Version;
use iam_sentinel::ports::{
    AccountReader, AccountSnapshot, ApprovalsStore, CallError, RegistryUnavailable, ScanError, UserDirectory,
};
use iam_sentinel::runtime::build_app_with;
use iam_sentinel::snapshot::UserSnapshot;
use serde_json::Value;

use crate::common::{ACCOUNT, Account, SECRET_ID, registry, sample};

const ROLE: &str = "arn:aws:iam::123456789012:role/BreakGlassAdmin";
const GONE_ROLE: &str = "arn:aws:iam::123456789012:role/BreakGlassOld";

fn break_glass(
    acct: &Account,
    extra: &[(&str, &str)],
) -> (iam_sentinel::runtime::AwsApp, iam_sentinel::aws::CallCounter) {
    let mut vars = vec![("BREAK_GLASS_ROLE_ARNS", ROLE), ("BREAK_GLASS_USERS", "break-glass-admin")];
    vars.extend_from_slice(extra);
    build_app_with(acct.config(&vars), &acct.sdk)
}

fn calls(counter: &iam_sentinel::aws::CallCounter, prefix: &str) -> u64 {
    counter.snapshot().calls.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| *v).sum()
}

#[tokio::test]
async fn break_glass_use_is_one_critical_message_per_event_with_no_aws_read() {
    let acct = Account::new().await;
    let (app, counter) = break_glass(&acct, &[]);
    let opts = RunOptions::at(Utc::now());

    for (file, principal) in [
        (
            "assume-role-break-glass.json",
            "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/incident-2026-11-23-kim",
        ),
        ("console-sign-in-break-glass-user.json", "arn:aws:iam::123456789012:user/break-glass-admin"),
    ] {
        counter.reset();
        let report = app.handle(sample(file), &opts).await.unwrap();
        assert_eq!(report.outcome, Outcome::Processed, "{file}");
        let received = acct.received().await;
        assert_eq!(received.len(), 1, "{file}: one message");
        let f = &received[0].finding;
        assert_eq!((f["check"].as_str(), f["severity"].as_str()), (Some("break-glass-used"), Some("critical")));
        assert_eq!(f["principal"], principal, "{file}");
        assert_eq!(f["evidence"]["mfa_authenticated"], true, "{file}");
        assert!(f["evidence"]["source_ip"].is_string() && f["evidence"]["user_agent"].is_string(), "{file}");
        assert!(f["evidence"]["event_time"].is_string(), "{file}");
        assert_eq!(calls(&counter, "iam:") + calls(&counter, "secretsmanager:"), 0, "{file}: nothing to read");
        assert_eq!(calls(&counter, "sns:"), 1, "{file}");
    }
    let report = app.handle(sample("assume-role-break-glass.json"), &opts).await.unwrap();
    assert_eq!(report.findings[0].evidence["role_session_name"], "incident-2026-11-23-kim");
    acct.received().await;

    // Another role, another user, a failed sign-in: nothing published, each with its reason.
    let mut other_role = sample("assume-role-break-glass.json");
    other_role["detail"]["requestParameters"]["roleArn"] = "arn:aws:iam::123456789012:role/Deploy".into();
    let mut other_user = sample("console-sign-in-break-glass-user.json");
    other_user["detail"]["userIdentity"]["userName"] = "analyst-dave".into();
    let mut failed = sample("console-sign-in-break-glass-user.json");
    failed["detail"]["responseElements"]["ConsoleLogin"] = "Failure".into();
    failed["detail"]["errorMessage"] = "Failed authentication".into();
    for (event, why) in [
        (other_role, "not a break-glass role"),
        (other_user, "not a break-glass user"),
        (failed, "failed console sign-in of break-glass user break-glass-admin from 198.51.100.77"),
    ] {
        let report = app.handle(event, &opts).await.unwrap();
        assert!(matches!(&report.outcome, Outcome::Ignored(r) if r.contains(why)), "{:?}", report.outcome);
    }
    assert!(acct.received().await.is_empty());
}

#[tokio::test]
async fn the_scan_looks_up_each_configured_role_once_and_requires_mfa_of_break_glass_users() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    acct.iam.create_role().role_name("BreakGlassAdmin").assume_role_policy_document(trust).send().await.unwrap();
    acct.create_user("break-glass-admin", &[]).await;
    acct.enable_mfa("break-glass-admin").await;
    acct.create_user("break-glass-backup", &[]).await;
    let roles = format!("{ROLE},{GONE_ROLE}");
    let (app, counter) = build_app_with(
        acct.config(&[
            ("BREAK_GLASS_ROLE_ARNS", &roles),
            ("BREAK_GLASS_USERS", "break-glass-admin,break-glass-backup,break-glass-missing"),
        ]),
        &acct.sdk,
    );
    let report = app.scan(None, &RunOptions { publish: false, ..RunOptions::at(Utc::now()) }).await.unwrap();
    let mut not_ready: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.check.as_str() == "break-glass-not-ready")
        .map(|f| f.principal.as_str())
        .collect();
    not_ready.sort_unstable();
    assert_eq!(
        not_ready,
        [
            "arn:aws:iam::123456789012:role/BreakGlassOld",
            "arn:aws:iam::123456789012:user/break-glass-backup",
            "arn:aws:iam::123456789012:user/break-glass-missing",
        ]
    );
    assert_eq!(report.failure, None);
    assert_eq!(counter.snapshot().calls.get("iam:GetRole"), Some(&2), "one per configured role, none per user");
    assert!(report.scan.unwrap().registry_last_changed_at.is_some(), "the digest says when the registry changed");
    assert_eq!(counter.snapshot().calls.get("secretsmanager:DescribeSecret"), Some(&1));
}

/// IAM as moto serves it, except that looking up a role fails (as AccessDenied would).
struct RoleLookupFails(IamDirectory);

impl UserDirectory for RoleLookupFails {
    async fn read_user(&self, name: &str) -> Result<Option<UserSnapshot>, CallError> {
        self.0.read_user(name).await
    }
    async fn remove_tag(&self, user: &str, key: &str) -> Result<(), CallError> {
        self.0.remove_tag(user, key).await
    }
    async fn list_keys(&self, user: &str) -> Result<Option<Vec<iam_sentinel::ports::KeyState>>, CallError> {
        self.0.list_keys(user).await
    }
    async fn set_key_status(&self, user: &str, key_id: &str, active: bool) -> Result<(), CallError> {
        self.0.set_key_status(user, key_id, active).await
    }
    async fn read_tags(&self, user: &str) -> Result<Option<Vec<iam_sentinel::snapshot::Tag>>, CallError> {
        self.0.read_tags(user).await
    }
    async fn add_tag(&self, user: &str, key: &str, value: &str) -> Result<(), CallError> {
        self.0.add_tag(user, key, value).await
    }
}

impl AccountReader for RoleLookupFails {
    async fn read_account(&self) -> Result<AccountSnapshot, ScanError> {
        self.0.read_account().await
    }
    async fn read_root_summary(&self) -> Result<RootSummary, CallError> {
        self.0.read_root_summary().await
    }
    async fn list_user_names(&self) -> Result<Vec<String>, ScanError> {
        self.0.list_user_names().await
    }
    async fn read_access(&self) -> Result<iam_sentinel::ports::AccessSnapshot, CallError> {
        self.0.read_access().await
    }
    async fn read_password_policy(&self) -> Result<Option<iam_sentinel::checks::password::PasswordPolicy>, CallError> {
        self.0.read_password_policy().await
    }
    async fn role_exists(&self, role_arn: &str) -> Result<bool, CallError> {
        Err(CallError {
            action: "iam:GetRole",
            target: role_arn.to_owned(),
            message: "AccessDenied: not allowed".into(),
        })
    }
}

#[tokio::test]
async fn a_role_that_cannot_be_looked_up_fails_the_scan_instead_of_passing() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    let (built, _) = break_glass(&acct, &[]);
    let app = App {
        findings_store: None,
        config: built.config,
        directory: RoleLookupFails(built.directory),
        approvals: built.approvals,
        sink: built.sink,
        region: built.region,
        key_rotation: None,
        state: None,
        root_sessions: None,
        organization: None,
    };
    let report = app.scan(None, &RunOptions::at(Utc::now())).await.unwrap();
    let failure = report.failure.as_deref().unwrap();
    assert!(failure.contains("iam:GetRole on arn:aws:iam::123456789012:role/BreakGlassAdmin failed"), "{failure}");
    assert_eq!(report.failures[0].error_type(), "AwsCallFailed");
    assert!(report.findings.iter().any(|f| f.check.as_str() == "console-without-mfa"), "the rest was still judged");
    assert!(acct.received().await.iter().any(|r| r.attributes["check"] == "digest"), "and published");
}

#[tokio::test]
async fn a_break_glass_user_is_reported_but_never_untagged() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("break-glass-admin", &[("AccessException", "True")]).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let (app, counter) = break_glass(&acct, &[("AUTO_REMEDIATE", "true")]);
    let report = app.scan(None, &RunOptions { publish: false, ..RunOptions::at(Utc::now()) }).await.unwrap();
    let unapproved = |user: &str| {
        report
            .findings
            .iter()
            .find(|f| f.check.as_str() == "exception-unapproved" && f.user.as_deref() == Some(user))
            .unwrap()
    };
    let kept = unapproved("break-glass-admin").remediation.as_ref().unwrap();
    assert_eq!(kept.status.as_str(), "skipped");
    assert!(kept.detail.as_deref().unwrap().contains("never removed automatically"), "{kept:?}");
    assert_eq!(unapproved("dev-mallory").remediation.as_ref().unwrap().status.as_str(), "applied");
    assert_eq!(acct.tags("break-glass-admin").await.len(), 1, "the break-glass user keeps its tag");
    assert!(acct.tags("dev-mallory").await.is_empty());
    assert_eq!(counter.snapshot().calls.get("iam:UntagUser"), Some(&1));
}

fn approval(user: &str, ticket: &str) -> Value {
    let expires = (Utc::now() + Duration::days(30)).format("%Y-%m-%dT00:00:00Z").to_string();
    serde_json::json!({"user": user, "approved_by": "sec-lead@example.com", "ticket": ticket, "expires": expires,
                       "reason": "TOP-SECRET-REASON"})
}

#[tokio::test]
async fn a_registry_write_by_a_non_approver_names_the_approvals_added_and_removed() {
    let acct = Account::new().await;
    let v1 =
        serde_json::json!({"exceptions": [approval("svc-legacy-erp", "SEC-1"), approval("analyst-dave", "SEC-2")]});
    let v2 =
        serde_json::json!({"exceptions": [approval("svc-legacy-erp", "SEC-1"), approval("dev-mallory", "SELF-1")]});
    acct.put_registry(&v1.to_string()).await;
    acct.put_registry(&v2.to_string()).await;
    let (app, counter) = build_app_with(
        acct.config(&[("APPROVER_PRINCIPALS", "arn:aws:iam::123456789012:role/SecurityAdmin")]),
        &acct.sdk,
    );

    let report = app.handle(sample("put-secret-value-registry.json"), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(report.failure, None);
    let received = acct.received().await;
    assert_eq!(received.len(), 1);
    let f = &received[0].finding;
    assert_eq!(
        (f["check"].as_str(), f["severity"].as_str()),
        (Some("registry-changed-by-non-approver"), Some("critical"))
    );
    assert_eq!(f["evidence"]["caller"], "arn:aws:iam::123456789012:user/dev-mallory");
    assert_eq!(f["evidence"]["approvals_added"][0]["user"], "dev-mallory");
    assert_eq!(f["evidence"]["approvals_added"][0]["ticket"], "SELF-1");
    assert_eq!(f["evidence"]["approvals_removed"][0]["user"], "analyst-dave");
    assert_eq!(f["evidence"]["approvals_added"].as_array().unwrap().len(), 1);
    for r in &received {
        assert!(!r.finding.to_string().contains("TOP-SECRET-REASON"), "no reason in the JSON");
    }
    assert_eq!(calls(&counter, "secretsmanager:GetSecretValue"), 2, "AWSCURRENT and AWSPREVIOUS");
    assert_eq!(calls(&counter, "iam:"), 0);
}

#[tokio::test]
async fn registry_writes_by_approvers_other_secrets_and_deletions() {
    let acct = Account::new().await;
    acct.put_registry(&serde_json::json!({"exceptions": [approval("svc-legacy-erp", "SEC-1")]}).to_string()).await;
    let opts = RunOptions::at(Utc::now());

    // By an approver: logged, nothing published, no read.
    let (app, counter) = build_app_with(
        acct.config(&[("APPROVER_PRINCIPALS", "arn:aws:iam::123456789012:user/dev-mallory")]),
        &acct.sdk,
    );
    let report = app.handle(sample("put-secret-value-registry.json"), &opts).await.unwrap();
    assert!(matches!(&report.outcome, Outcome::Ignored(r) if r.contains("by approver")), "{:?}", report.outcome);
    assert_eq!(calls(&counter, "secretsmanager:"), 0);

    // Another secret: ignored.
    let (app, counter) = build_app_with(acct.config(&[]), &acct.sdk);
    let mut other = sample("put-secret-value-registry.json");
    other["detail"]["requestParameters"]["secretId"] = "prod/db-password".into();
    let report = app.handle(other, &opts).await.unwrap();
    assert!(
        matches!(&report.outcome, Outcome::Ignored(r) if r.contains("not the approvals registry")),
        "{:?}",
        report.outcome
    );

    // Deleted by the secret's name, by someone else: reported, with nothing to compare.
    let mut delete = sample("put-secret-value-registry.json");
    delete["detail"]["eventName"] = "DeleteSecret".into();
    delete["detail"]["requestParameters"]["secretId"] = SECRET_ID.into();
    let report = app.handle(delete, &opts).await.unwrap();
    assert_eq!(report.findings.len(), 1);
    let evidence = &report.findings[0].evidence;
    assert_eq!(evidence["content_compared"], false);
    assert!(evidence["note"].as_str().unwrap().contains("deletion"), "{evidence}");
    assert_eq!(calls(&counter, "secretsmanager:"), 0, "nothing to read for a deletion");
    assert_eq!(report.findings[0].account, ACCOUNT);
    acct.received().await;
}

/// The registry as moto serves it, except that its previous version cannot be read.
struct PreviousUnreadable(SecretApprovals);

impl ApprovalsStore for PreviousUnreadable {
    async fn load(&self) -> Result<Approvals, RegistryUnavailable> {
        self.0.load().await
    }
    fn location(&self) -> &str {
        self.0.location()
    }
    async fn version(&self, stage: &'static str) -> Result<Version, CallError> {
        if stage == "AWSPREVIOUS" {
            return Err(CallError {
                action: "secretsmanager:GetSecretValue",
                target: format!("{SECRET_ID} ({stage})"),
                message: "AccessDeniedException: not allowed".into(),
            });
        }
        self.0.version(stage).await
    }
    async fn last_changed(&self) -> Result<Option<chrono::DateTime<Utc>>, CallError> {
        self.0.last_changed().await
    }
}

#[tokio::test]
async fn a_registry_write_whose_versions_cannot_be_read_is_still_reported_and_fails_the_invocation() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    let (built, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let app = App {
        findings_store: None,
        config: built.config,
        directory: built.directory,
        approvals: PreviousUnreadable(built.approvals),
        sink: built.sink,
        region: built.region,
        key_rotation: None,
        state: None,
        root_sessions: None,
        organization: None,
    };
    let report = app.handle(sample("put-secret-value-registry.json"), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(report.failures[0].error_type(), "AwsCallFailed");
    assert!(report.failure.as_deref().unwrap().contains("(AWSPREVIOUS) failed"), "{:?}", report.failure);
    let received = acct.received().await;
    assert_eq!(received.len(), 1, "the alert went out anyway");
    let note = received[0].finding["evidence"]["note"].as_str().unwrap();
    assert!(note.starts_with("the versions could not be read"), "{note}");
}
