//! Centralized root access end to end: `AssumeRoot` and the member's side of a root session
//! through `handle` against moto (findings observed on the topic's queue, sessions remembered in
//! an in-memory log), the feature switches, and the organization scan's root steps.
//!
//! moto has neither `iam:ListOrganizationsFeatures` nor `sts:AssumeRoot`: the features come from
//! aws-smithy-mocks (`features`), the events from the samples in `events/`. moto's account
//! summary never shows root credentials, so a member that still has some is scanned with IAM
//! mocked (`a_member_with_root_credentials_left_is_named_with_what_to_delete`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
use aws_sdk_iam::operation::list_organizations_features::ListOrganizationsFeaturesOutput;
use aws_sdk_iam::primitives::Blob;
use aws_sdk_iam::types::{FeatureType, ReportStateType, SummaryKeyType};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::Utc;
use iam_sentinel::app::{App, RunOptions};
use iam_sentinel::aws::approvals::SecretApprovals;
use iam_sentinel::aws::iam::IamDirectory;
use iam_sentinel::aws::organizations::OrganizationReader;
use iam_sentinel::aws::root_access::RootAccessReader;
use iam_sentinel::aws::sns::SnsSink;
use iam_sentinel::lambda::handle_deployment;
use iam_sentinel::org::OrgContext;
use iam_sentinel::ports::{BoxFuture, CallError, RootSession, RootSessionLog};
use iam_sentinel::runtime::build_app_with;
use serde_json::{Value, json};

use crate::common::{ACCOUNT, Account, sample};
use crate::infra::{actions, member_template, resource, role_statements, template};

/// What `ListOrganizationsFeatures` answers (moto lacks the call), for every read; the rule counts them.
pub(crate) fn features(credentials: bool, sessions: bool) -> (RootAccessReader, Rule) {
    let rule = mock!(aws_sdk_iam::Client::list_organizations_features)
        .sequence()
        .output(move || {
            let mut out = ListOrganizationsFeaturesOutput::builder().organization_id("o-exampleorg1");
            if credentials {
                out = out.enabled_features(FeatureType::RootCredentialsManagement);
            }
            if sessions {
                out = out.enabled_features(FeatureType::RootSessions);
            }
            out.build()
        })
        .repeatedly()
        .build();
    (RootAccessReader::new(mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&rule])), rule)
}

/// The root session log in memory (the state table implements it in production); `fail` makes
/// every call fail as an unreachable table would.
#[derive(Default)]
struct InMemorySessions {
    sessions: Mutex<Vec<RootSession>>,
    fail: bool,
}

impl InMemorySessions {
    fn unreachable() -> CallError {
        CallError { action: "dynamodb:PutItem", target: "iam-sentinel-state".into(), message: "unreachable".into() }
    }
}

impl RootSessionLog for InMemorySessions {
    fn record_root_session<'a>(&'a self, session: &'a RootSession) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            if self.fail {
                return Err(Self::unreachable());
            }
            self.sessions.lock().unwrap().push(session.clone());
            Ok(())
        })
    }

    fn find_root_session<'a>(
        &'a self,
        target_account: &'a str,
        access_key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RootSession>, CallError>> {
        Box::pin(async move {
            if self.fail {
                return Err(CallError { action: "dynamodb:GetItem", ..Self::unreachable() });
            }
            let sessions = self.sessions.lock().unwrap();
            Ok(sessions
                .iter()
                .find(|s| s.target_account == target_account && s.access_key_id == access_key_id)
                .cloned())
        })
    }
}

/// "Now" just after the samples' root session (the pairing is judged on the events' own times).
fn at_samples() -> RunOptions {
    RunOptions::at("2026-11-23T09:45:00Z".parse().unwrap())
}

#[tokio::test]
async fn assume_root_is_reported_by_task_and_the_members_root_call_pairs_with_it() {
    let acct = Account::new().await;
    acct.put_registry(r#"{"exceptions":[]}"#).await;
    let (mut app, counter) = build_app_with(acct.config(&[]), &acct.sdk);
    let log = Arc::new(InMemorySessions::default());
    app.root_sessions = Some(log.clone());
    let opts = at_samples();

    // The caller's side: reported by task, remembered for the member's records. No AWS call.
    counter.reset();
    let report = app.handle(sample("assume-root-unlock-bucket-policy.json"), &opts).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(counter.snapshot().calls.keys().collect::<Vec<_>>(), ["sns:PublishBatch"], "no IAM call");
    let received = acct.received().await;
    assert_eq!(received.len(), 1);
    let started = &received[0];
    assert_eq!((started.check(), started.attributes["severity"].as_str()), ("root-session-started", "high"));
    let message = started.finding["message"].as_str().unwrap();
    for named in [
        "arn:aws:sts::123456789012:assumed-role/RootTaskOperator/dana",
        "account 444455556666",
        "S3UnlockBucketPolicy",
        "from 203.0.113.40",
        "with MFA",
    ] {
        assert!(message.contains(named), "{named}: {message}");
    }
    let session = log.sessions.lock().unwrap()[0].clone();
    assert_eq!(
        (session.target_account.as_str(), session.access_key_id.as_str(), session.task.as_str()),
        ("444455556666", "ASIAEXAMPLEROOTS3001", "S3UnlockBucketPolicy")
    );
    assert_eq!(session.started_at, "2026-11-23T08:40:05Z".parse::<chrono::DateTime<Utc>>().unwrap());
    assert_eq!((session.source_ip.as_deref(), session.mfa), (Some("203.0.113.40"), Some(true)));

    // An audit weighs least.
    app.handle(sample("assume-root-audit.json"), &opts).await.unwrap();
    let received = acct.received().await;
    assert_eq!((received[0].check(), received[0].attributes["severity"].as_str()), ("root-session-started", "low"));

    // The member's side, same key, 107 s later: root-used that says where the session came from,
    // weighing its task, and no account summary read (the session holds no credentials to judge).
    counter.reset();
    let report = app.handle(sample("root-session-delete-bucket-policy.json"), &opts).await.unwrap();
    assert_eq!(report.failure, None);
    assert!(!counter.snapshot().calls.contains_key("iam:GetAccountSummary"), "{:?}", counter.snapshot().calls);
    let received = acct.received().await;
    assert_eq!(received.len(), 1, "{received:?}");
    let used = &received[0];
    assert_eq!((used.check(), used.attributes["severity"].as_str()), ("root-used", "high"));
    assert_eq!(used.finding["account"], "444455556666");
    let message = used.finding["message"].as_str().unwrap();
    assert!(
        message.contains("called DeleteBucketPolicy in a root session started from account 123456789012 by")
            && message.contains("for S3UnlockBucketPolicy"),
        "{message}"
    );
    assert_eq!(used.finding["evidence"]["root_session"]["caller_mfa"], true);

    // Another key (no AssumeRoot seen for it): the plain root-used, critical, and root's summary.
    let report = app.handle(sample("root-session-delete-login-profile.json"), &opts).await.unwrap();
    assert_eq!(report.failure, None);
    let received = acct.received().await;
    let plain = received.iter().find(|r| r.check() == "root-used").expect("root-used");
    assert_eq!(plain.attributes["severity"], "critical");
    assert!(!plain.finding["message"].as_str().unwrap().contains("root session"), "{}", plain.finding);
    assert!(received.iter().any(|r| r.check() == "root-without-mfa"), "moto's root has no MFA: {received:?}");

    // The same key long after the session's 15 minutes is not paired.
    let mut late = sample("root-session-delete-bucket-policy.json");
    late["detail"]["eventTime"] = json!("2026-11-23T10:40:00Z");
    app.handle(late, &opts).await.unwrap();
    let received = acct.received().await;
    let late_use = received.iter().find(|r| r.check() == "root-used").unwrap();
    assert_eq!(late_use.attributes["severity"], "critical", "{late_use:?}");
}

#[tokio::test]
async fn without_a_reachable_log_the_findings_still_go_out_and_the_failure_is_named() {
    let acct = Account::new().await;
    acct.put_registry(r#"{"exceptions":[]}"#).await;
    let (mut app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    app.root_sessions = Some(Arc::new(InMemorySessions { fail: true, ..InMemorySessions::default() }));
    let opts = at_samples();
    let report = app.handle(sample("assume-root-create-password.json"), &opts).await.unwrap();
    assert_eq!(
        report.failure.as_deref(),
        Some("root sessions: dynamodb:PutItem on iam-sentinel-state failed: unreachable")
    );
    assert_eq!(report.failures[0].error_type(), "AwsCallFailed");
    let received = acct.received().await;
    assert_eq!((received[0].check(), received[0].attributes["severity"].as_str()), ("root-session-started", "high"));

    let report = app.handle(sample("root-session-delete-bucket-policy.json"), &opts).await.unwrap();
    assert!(report.failure.as_deref().unwrap().contains("dynamodb:GetItem"), "{:?}", report.failure);
    let received = acct.received().await;
    let used = received.iter().find(|r| r.check() == "root-used").expect("root-used still published");
    assert_eq!(used.attributes["severity"], "critical", "unpaired");

    // No log at all: no pairing, no failure.
    app.root_sessions = None;
    let report = app.handle(sample("root-session-delete-bucket-policy.json"), &opts).await.unwrap();
    assert_eq!(report.failure, None);
    assert!(acct.received().await.iter().any(|r| r.check() == "root-used"));
}

#[tokio::test]
async fn switching_a_root_access_feature_off_is_critical_and_on_is_recorded() {
    let acct = Account::new().await;
    acct.put_registry(r#"{"exceptions":[]}"#).await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let opts = at_samples();
    app.handle(sample("disable-organizations-root-sessions.json"), &opts).await.unwrap();
    let received = acct.received().await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        (received[0].check(), received[0].attributes["severity"].as_str()),
        ("root-access-not-centralized", "critical")
    );
    let message = received[0].finding["message"].as_str().unwrap();
    assert!(message.contains("arn:aws:sts::123456789012:assumed-role/OrgAdmin/lee disabled RootSessions"), "{message}");
    app.handle(sample("enable-organizations-root-credentials-management.json"), &opts).await.unwrap();
    let received = acct.received().await;
    assert_eq!((received[0].check(), received[0].attributes["severity"].as_str()), ("root-access-centralized", "info"));
}

/// One invocation of the deployed function.
async fn invoke(
    deployment: &iam_sentinel::runtime::Deployment,
    payload: Value,
) -> Result<Value, iam_sentinel::lambda::InvocationError> {
    handle_deployment(deployment, lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default())).await
}

/// The organization scan's root steps through the Lambda handler against moto's organization,
/// with the features mocked: the list step reads them once and carries the answer, the member's
/// scan reads its account summary only when told root is managed centrally, and the digest
/// names the feature that is off, or the failed read.
#[tokio::test(flavor = "multi_thread")]
async fn the_organization_scan_judges_root_access_once_and_tells_each_member() {
    let org = crate::organization::Org::new(3, &["Workloads"]).await;
    org.account.put_registry(r#"{"exceptions":[]}"#).await;
    let mut deployment = org.deployment(&[]).await;
    let (reader, rule) = features(false, true);
    deployment.set_root_access(reader);
    let listed = invoke(&deployment, json!({"list_accounts": {}})).await.unwrap();
    assert_eq!(listed["root_managed_centrally"], false, "{listed}");
    assert_eq!(rule.num_calls(), 1, "read once for the whole run");

    let member = org.members["Workloads"][0].clone();
    let calls =
        |d: &iam_sentinel::runtime::Deployment| d.counter.snapshot().calls.get("iam:GetAccountSummary").copied();
    invoke(
        &deployment,
        json!({"scan_account": member, "management_account": ACCOUNT, "root_managed_centrally": false}),
    )
    .await
    .unwrap();
    assert_eq!(calls(&deployment), None, "not managed centrally: no summary read");
    let child = invoke(
        &deployment,
        json!({"scan_account": member, "management_account": ACCOUNT, "root_managed_centrally": true}),
    )
    .await
    .unwrap();
    assert_eq!(calls(&deployment), Some(1), "managed centrally: one GetAccountSummary through the member role");
    // moto's member root holds no credentials: nothing left to delete, and no MFA to ask for.
    assert!(child["by_check"].get("member-root-credentials-present").is_none(), "{child}");
    assert!(child["by_check"].get("root-without-mfa").is_none(), "{child}");
    org.account.received().await;

    let accounts = listed["accounts"].clone();
    let digest = invoke(&deployment, json!({"org_digest": {"accounts": accounts, "results": [child]}})).await.unwrap();
    assert_eq!(digest["org_digest"]["by_check"]["root-access-not-centralized"], 1, "{digest}");
    assert_eq!(rule.num_calls(), 2, "the digest's own read");
    let received = org.account.received().await;
    let finding = received.iter().find(|r| r.check() == "root-access-not-centralized").expect("published");
    assert_eq!(finding.attributes["severity"], "high");
    assert_eq!(finding.finding["account"], ACCOUNT);
    let message = finding.finding["message"].as_str().unwrap();
    assert!(
        message.contains("o-exampleorg1") && message.contains("RootCredentialsManagement is not enabled"),
        "{message}"
    );
    assert!(!message.contains("RootSessions"), "only the feature that is off: {message}");

    // Both on: nothing to report.
    deployment.set_root_access(features(true, true).0);
    let listed = invoke(&deployment, json!({"list_accounts": {}})).await.unwrap();
    assert_eq!(listed["root_managed_centrally"], true);
    let digest =
        invoke(&deployment, json!({"org_digest": {"accounts": listed["accounts"], "results": []}})).await.unwrap();
    assert!(digest["org_digest"]["by_check"].get("root-access-not-centralized").is_none(), "{digest}");
    org.account.received().await;

    // The read fails: the list step carries null (members not judged), the digest still goes out
    // saying so, and the invocation fails naming the call.
    let denied = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>";
    let failing = mock!(aws_sdk_iam::Client::list_organizations_features)
        .sequence()
        .http_status(403, Some(denied.into()))
        .repeatedly()
        .build();
    deployment.set_root_access(RootAccessReader::new(mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&failing])));
    let listed = invoke(&deployment, json!({"list_accounts": {}})).await.unwrap();
    assert!(listed["root_managed_centrally"].is_null(), "{listed}");
    let err =
        invoke(&deployment, json!({"org_digest": {"accounts": listed["accounts"], "results": []}})).await.unwrap_err();
    assert_eq!(err.error_type, "AwsCallFailed");
    assert!(
        err.message.contains("iam:ListOrganizationsFeatures on the organization failed: AccessDenied"),
        "{}",
        err.message
    );
    let received = org.account.received().await;
    let digest = received.iter().find(|r| r.attributes["check"] == "digest").expect("the digest still went out");
    let failure = digest.finding["org_digest"]["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("root access not judged: iam:ListOrganizationsFeatures"), "{}", digest.finding);
}

/// The member's IAM for the mocked scan: root (no key, no MFA) in 444455556666, no users, no
/// password policy, and the account summary `summary` (`None`: the read is denied).
fn member_iam(summary: Option<[(SummaryKeyType, i32); 4]>) -> (aws_sdk_iam::Client, Rule) {
    let report = iam_sentinel::credential_report::report_text(&[
        "<root_account>,arn:aws:iam::444455556666:root,2020-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
    ]);
    let generate = mock!(aws_sdk_iam::Client::generate_credential_report)
        .then_output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Complete).build());
    let get = mock!(aws_sdk_iam::Client::get_credential_report)
        .then_output(move || GetCredentialReportOutput::builder().content(Blob::new(report.clone())).build());
    let gaad = mock!(aws_sdk_iam::Client::get_account_authorization_details)
        .then_output(|| GetAccountAuthorizationDetailsOutput::builder().is_truncated(false).build());
    let error = |code: &str| {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>not here</Message></Error></ErrorResponse>"
        )
    };
    let no_policy = mock!(aws_sdk_iam::Client::get_account_password_policy)
        .sequence()
        .http_status(404, Some(error("NoSuchEntity")))
        .repeatedly()
        .build();
    let summary_rule = match summary {
        Some(summary) => mock!(aws_sdk_iam::Client::get_account_summary).then_output(move || {
            summary.iter().fold(GetAccountSummaryOutput::builder(), |b, (k, v)| b.summary_map(k.clone(), *v)).build()
        }),
        None => mock!(aws_sdk_iam::Client::get_account_summary)
            .sequence()
            .http_status(403, Some(error("AccessDenied")))
            .repeatedly()
            .build(),
    };
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&generate, &get, &gaad, &no_policy, &summary_rule]);
    (client, summary_rule)
}

fn summary(password: i32, keys: i32, mfa: i32, certificates: i32) -> [(SummaryKeyType, i32); 4] {
    [
        (SummaryKeyType::AccountPasswordPresent, password),
        (SummaryKeyType::AccountAccessKeysPresent, keys),
        (SummaryKeyType::AccountMfaEnabled, mfa),
        (SummaryKeyType::AccountSigningCertificatesPresent, certificates),
    ]
}

#[tokio::test]
async fn a_member_with_root_credentials_left_is_named_with_what_to_delete() {
    let acct = Account::new().await;
    acct.put_registry(r#"{"exceptions":[]}"#).await;
    let config = acct.config(&[("ORGANIZATION_MODE", "true")]);
    let scan = |summary: Option<[(SummaryKeyType, i32); 4]>| {
        let (iam, rule) = member_iam(summary);
        let app = App {
            findings_store: None,
            config: config.clone(),
            directory: IamDirectory::new(iam).with_report_wait(3, Duration::from_millis(1)),
            approvals: SecretApprovals::new(
                aws_sdk_secretsmanager::Client::new(&acct.sdk),
                crate::common::SECRET_ID.into(),
            ),
            sink: Some(SnsSink::new(aws_sdk_sns::Client::new(&acct.sdk), acct.topic_arn.clone())),
            region: "us-east-1".into(),
            state: None,
            key_rotation: None,
            organization: Some(OrgContext {
                reader: OrganizationReader::new(aws_sdk_organizations::Client::new(&acct.sdk)),
                account_name: Some("payments-prod".into()),
                management: false,
                root_managed_centrally: Some(true),
            }),
            root_sessions: None,
        };
        (app, rule)
    };
    let opts = RunOptions::at(Utc::now());
    let (app, rule) = scan(Some(summary(1, 0, 0, 1)));
    let report = Box::pin(app.scan(None, &opts)).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(rule.num_calls(), 1);
    let received = acct.received().await;
    let left = received.iter().find(|r| r.check() == "member-root-credentials-present").expect("published");
    assert_eq!((left.attributes["severity"].as_str(), left.attributes["account"].as_str()), ("high", "444455556666"));
    assert_eq!(left.finding["account_name"], "payments-prod");
    let message = left.finding["message"].as_str().unwrap();
    assert!(
        message.contains("member account 444455556666 still has a console password, signing certificates,"),
        "{message}"
    );
    assert!(message.contains("IAMDeleteRootUserCredentials"), "{message}");
    // A password without MFA is a way in: root-without-mfa stays.
    assert!(report.findings.iter().any(|f| f.check.as_str() == "root-without-mfa"));

    let (app, _) = scan(Some(summary(0, 0, 0, 0)));
    let report = Box::pin(app.scan(None, &opts)).await.unwrap();
    let checks: Vec<&str> = report.findings.iter().map(|f| f.check.as_str()).collect();
    assert!(!checks.contains(&"member-root-credentials-present"), "{checks:?}");
    assert!(!checks.contains(&"root-without-mfa"), "no credentials: nobody can sign in as root: {checks:?}");
    acct.received().await;

    // A failed summary read is a named failure, never a clean member.
    let (app, _) = scan(None);
    let report = Box::pin(app.scan(None, &opts)).await.unwrap();
    assert!(
        report.failure.as_deref().is_some_and(|f| f.contains("iam:GetAccountSummary on account failed: AccessDenied")),
        "{:?}",
        report.failure
    );
    assert_eq!(report.failures[0].error_type(), "AwsCallFailed");
    acct.received().await;
}

/// The role grants `iam:ListOrganizationsFeatures` only in organization mode, and nothing else new;
/// the rules on the default bus, the central bus and in the member stack match the same events.
#[test]
fn the_role_and_the_rules_cover_exactly_the_root_access_calls() {
    let t = template();
    let statements = resource(&t, "FunctionRole")["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap())
        .filter_map(|s| s.get("!If"))
        .filter(|branches| branches[1].is_object() && actions(&branches[1]).contains(&"iam:ListOrganizationsFeatures"))
        .collect::<Vec<_>>();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0][0], "OrganizationModeEnabled");
    assert_eq!(actions(&statements[0][1]), crate::role_actions::ORGANIZATION_ONLY);
    let granted =
        role_statements(&t).into_iter().flat_map(actions).filter(|a| *a == "iam:ListOrganizationsFeatures").count();
    assert_eq!(granted, 1);
    // The member role reads the member's summary (already granted for root events) and nothing new.
    let member = member_template();
    assert!(serde_json::to_string(&member).unwrap().contains("iam:GetAccountSummary"));
    assert!(!serde_json::to_string(&member).unwrap().contains("ListOrganizationsFeatures"));

    let names = |rule: &Value| -> Vec<String> {
        rule["Properties"]["EventPattern"]["detail"]["eventName"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let access = resource(&t, "RootAccessRule");
    let mut expected = vec!["AssumeRoot".to_owned()];
    expected.extend(iam_sentinel::event::ROOT_FEATURE_EVENT_NAMES.iter().map(|n| (*n).to_owned()));
    assert_eq!(names(access), expected);
    assert_eq!(access["Properties"]["State"], "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS");
    let calls = resource(&t, "RootSessionCallsRule");
    assert_eq!(calls["Properties"]["EventPattern"]["detail"]["userIdentity"]["type"], json!(["Root"]));
    for (default, central) in
        [("RootAccessRule", "OrganizationRootAccessRule"), ("RootSessionCallsRule", "OrganizationRootSessionCallsRule")]
    {
        crate::infra::rule_targets_function_with_retries_and_dead_letters(default, resource(&t, default));
        crate::infra::rule_targets_function_with_retries_and_dead_letters(central, resource(&t, central));
        assert_eq!(
            resource(&t, default)["Properties"]["EventPattern"],
            resource(&t, central)["Properties"]["EventPattern"]
        );
        assert_eq!(resource(&t, default)["Properties"]["State"], resource(&t, central)["Properties"]["State"]);
    }
    // Every sample of the member's side matches the rule's names and is taken as root activity.
    for file in ["root-session-delete-bucket-policy.json", "root-session-delete-login-profile.json"] {
        let event = sample(file);
        assert!(names(calls).contains(&event["detail"]["eventName"].as_str().unwrap().to_owned()), "{file}");
        let sources: Vec<&str> = calls["Properties"]["EventPattern"]["source"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(sources.contains(&event["source"].as_str().unwrap()), "{file}");
    }
}
