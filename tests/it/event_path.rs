//! The event path end to end against a real moto server: every sample in `events/`
//! goes through the same code as the Lambda, and the test reads what an SQS
//! subscriber of the findings topic really receives.

use crate::common::{ACCOUNT, Account, pairs, registry, sample};
use chrono::{Duration, Utc};
use iam_sentinel::app::{Outcome, Report, RunOptions};
use iam_sentinel::aws::CallCounter;
use iam_sentinel::runtime::{AwsApp, build_app_with};
use lambda_runtime::{Context, LambdaEvent};

const SELF_ROLE: &str = "arn:aws:iam::123456789012:role/iam-sentinel-FunctionRole";
const APPROVER: &str = "arn:aws:iam::123456789012:role/SecurityAdmin";

fn remediating(acct: &Account) -> (AwsApp, CallCounter) {
    build_app_with(
        acct.config(&[("AUTO_REMEDIATE", "true"), ("SELF_ROLE_ARN", SELF_ROLE), ("APPROVER_PRINCIPALS", APPROVER)]),
        &acct.sdk,
    )
}

fn now_opts() -> RunOptions {
    RunOptions {
        now: Utc::now(),
        dry_run: false,
        publish: true,
        stop_by: None,
        already_sent: std::sync::Arc::default(),
    }
}

async fn run(app: &AwsApp, counter: &CallCounter, file: &str) -> Report {
    counter.reset();
    app.handle(sample(file), &now_opts()).await.unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Makes in moto the IAM change that `file` records, as CloudTrail would have seen it.
async fn make_the_change(acct: &Account, file: &str, first_key: &str) {
    let mfa_serial = format!("arn:aws:iam::{ACCOUNT}:mfa/analyst-dave");
    match file {
        "tag-user-self-granted.json" => acct.tag("dev-mallory", "AccessException", "True").await,
        "create-user-with-access-exception.json" => {
            acct.create_user("contractor-eve", &[("AccessException", "True"), ("Team", "vendors")]).await;
        }
        "create-access-key.json" => drop(acct.create_key("svc-legacy-erp").await),
        "delete-access-key.json" => {
            acct.iam.delete_access_key().user_name("svc-legacy-erp").access_key_id(first_key).send().await.unwrap();
        }
        "untag-user-access-exception.json" => {
            acct.iam.untag_user().user_name("svc-legacy-erp").tag_keys("AccessException").send().await.unwrap();
        }
        "create-access-key-self.json" => drop(acct.create_key("dev-mallory").await),
        "create-login-profile.json" => acct.create_login_profile("analyst-dave").await,
        "enable-mfa-device.json" => acct.enable_mfa("analyst-dave").await,
        "deactivate-mfa-device.json" => {
            acct.iam.deactivate_mfa_device().user_name("analyst-dave").serial_number(&mfa_serial).send().await.unwrap();
        }
        "delete-virtual-mfa-device.json" => {
            acct.iam.delete_virtual_mfa_device().serial_number(&mfa_serial).send().await.unwrap();
        }
        "create-user-by-cloudformation.json" => acct.create_user("svc-reporting", &[]).await,
        "attach-user-policy-admin.json" => {
            let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
            acct.iam.attach_user_policy().user_name("analyst-dave").policy_arn(admin).send().await.unwrap();
        }
        "add-user-to-group.json" => {
            let require_mfa = include_str!("../../infra/policies/RequireMFA.json");
            acct.iam.create_group().group_name("developers").send().await.unwrap();
            let p = acct.iam.create_policy().policy_name("RequireMFA").policy_document(require_mfa).send().await;
            let arn = p.unwrap().policy.unwrap().arn.unwrap();
            acct.iam.attach_group_policy().group_name("developers").policy_arn(arn).send().await.unwrap();
            acct.iam.add_user_to_group().group_name("developers").user_name("analyst-dave").send().await.unwrap();
        }
        "attach-group-policy.json" => {
            let network = include_str!("../../infra/policies/EnterpriseNetworkRestriction.json");
            let p = acct.iam.create_policy().policy_name("EnterpriseNetworkRestriction").policy_document(network);
            let arn = p.send().await.unwrap().policy.unwrap().arn.unwrap();
            acct.iam.attach_group_policy().group_name("developers").policy_arn(arn).send().await.unwrap();
        }
        "create-policy-version-default.json" => {
            let e = sample(file);
            let request = &e["detail"]["requestParameters"];
            acct.iam
                .create_policy_version()
                .policy_arn(request["policyArn"].as_str().unwrap())
                .policy_document(request["policyDocument"].as_str().unwrap())
                .set_as_default(true)
                .send()
                .await
                .unwrap();
        }
        "update-account-password-policy.json" => {
            acct.iam
                .update_account_password_policy()
                .minimum_password_length(8)
                .password_reuse_prevention(5)
                .send()
                .await
                .unwrap();
        }
        "update-access-key-console-mfa.json" => {
            let keys = acct.iam.list_access_keys().user_name("svc-legacy-erp").send().await.unwrap();
            for k in keys.access_key_metadata() {
                let id = k.access_key_id().unwrap();
                let inactive = aws_sdk_iam::types::StatusType::Inactive;
                acct.iam
                    .update_access_key()
                    .user_name("svc-legacy-erp")
                    .access_key_id(id)
                    .status(inactive)
                    .send()
                    .await
                    .unwrap();
            }
        }
        _ => {}
    }
}

/// The organization's samples (`tests/it/scp_coverage.rs` replays them in organization mode).
const ORGANIZATION_SAMPLES: [&str; 7] = [
    "organizations-attach-policy.json",
    "organizations-create-account.json",
    "organizations-delete-policy.json",
    "organizations-detach-policy.json",
    "organizations-invite-account.json",
    "organizations-move-account.json",
    "organizations-update-policy.json",
];

/// The centralized-root samples: `tests/it/root_access.rs` feeds each through `handle` with
/// its expected finding (pairing with the AssumeRoot needs the session log set up there).
const ROOT_ACCESS_SAMPLES: [&str; 7] = [
    "assume-root-audit.json",
    "assume-root-create-password.json",
    "assume-root-unlock-bucket-policy.json",
    "disable-organizations-root-sessions.json",
    "enable-organizations-root-credentials-management.json",
    "root-session-delete-bucket-policy.json",
    "root-session-delete-login-profile.json",
];

/// Every IAM sample, in order, with the (check, user) pairs its event must publish.
fn steps() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("tag-user-access-exception.json", vec![("exception-expiring", "svc-legacy-erp")]),
        (
            "tag-user-self-granted.json",
            vec![("exception-self-granted", "dev-mallory"), ("exception-unapproved", "dev-mallory")],
        ),
        ("tag-user-failed-access-denied.json", vec![]),
        ("create-user-with-access-exception.json", vec![("exception-unapproved", "contractor-eve")]),
        ("untag-user-by-sentinel.json", vec![]),
        (
            "create-access-key.json",
            vec![("exception-expiring", "svc-legacy-erp"), ("access-key-multiple-active", "svc-legacy-erp")],
        ),
        (
            "update-access-key.json",
            vec![("exception-expiring", "svc-legacy-erp"), ("access-key-multiple-active", "svc-legacy-erp")],
        ),
        ("delete-access-key.json", vec![("exception-expiring", "svc-legacy-erp")]),
        ("untag-user-access-exception.json", vec![("exception-approved-untagged", "svc-legacy-erp")]),
        ("update-access-key-console-mfa.json", vec![("exception-approved-untagged", "svc-legacy-erp")]),
        ("create-access-key-self.json", vec![("access-key-multiple-active", "dev-mallory")]),
        (
            "create-login-profile.json",
            vec![("console-without-mfa", "analyst-dave"), ("mfa-policy-missing", "analyst-dave")],
        ),
        ("enable-mfa-device.json", vec![]),
        ("deactivate-mfa-device.json", vec![("console-without-mfa", "analyst-dave")]),
        ("delete-virtual-mfa-device.json", vec![]),
        ("deactivate-mfa-device-by-root.json", vec![("console-without-mfa", "analyst-dave"), ("root-used", "")]),
        (
            "create-login-profile-no-recipient.json",
            vec![("console-without-mfa", "analyst-dave"), ("mfa-policy-missing", "analyst-dave")],
        ),
        ("create-user-by-cloudformation.json", vec![]),
        ("root-create-access-key-self.json", vec![("root-used", ""), ("root-without-mfa", "")]),
        ("root-enable-mfa-device-self.json", vec![("root-used", ""), ("root-without-mfa", "")]),
        ("root-console-sign-in.json", vec![("root-used", ""), ("root-without-mfa", "")]),
        // The policy checks only, for every user the change reaches (analyst-dave has a password).
        (
            "attach-user-policy-admin.json",
            vec![
                ("user-admin-access", "analyst-dave"),
                ("user-direct-policy", "analyst-dave"),
                ("mfa-policy-missing", "analyst-dave"),
            ],
        ),
        ("add-user-to-group.json", vec![("user-admin-access", "analyst-dave"), ("user-direct-policy", "analyst-dave")]),
        (
            "attach-group-policy.json",
            vec![("user-admin-access", "analyst-dave"), ("user-direct-policy", "analyst-dave")],
        ),
        (
            "create-policy-version-default.json",
            vec![("user-admin-access", "analyst-dave"), ("user-direct-policy", "analyst-dave")],
        ),
        ("update-account-password-policy.json", vec![("password-policy-weak", "")]),
        // No break-glass role or user is configured here; the registry write is not an approver's.
        ("assume-role-break-glass.json", vec![]),
        ("console-sign-in-break-glass-user.json", vec![]),
        ("put-secret-value-registry.json", vec![("registry-changed-by-non-approver", "")]),
    ]
}

#[tokio::test]
async fn every_sample_event_publishes_exactly_the_expected_findings() {
    let acct = Account::with_managed_policies().await;
    let in_10_days = (Utc::now() + Duration::days(10)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &in_10_days)])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    let first_key = acct.create_key("svc-legacy-erp").await;
    acct.create_user("dev-mallory", &[]).await;
    acct.create_key("dev-mallory").await;
    acct.create_user("analyst-dave", &[]).await;
    let (app, counter) = remediating(&acct);

    // Every file in events/ is a step here or one of the samples that need another set-up
    // (the organization's: ignored outside organization mode, as checked after the steps; the
    // centralized-root ones, in root_access.rs).
    let steps = steps();
    let elsewhere =
        ORGANIZATION_SAMPLES.iter().chain(&ROOT_ACCESS_SAMPLES).chain(&["scheduled-daily-scan.json"]).copied();
    let mut covered: Vec<&str> = steps.iter().map(|(file, _)| *file).chain(elsewhere).collect();
    covered.sort_unstable();
    assert_eq!(covered, crate::common::sample_files(), "every sample in events/ has its expected findings here");

    // Each step makes the IAM change the event records, then feeds the event.
    let mut measured = Vec::new();
    for (file, expected) in steps {
        make_the_change(&acct, file, &first_key).await;
        let report = run(&app, &counter, file).await;
        assert_eq!(report.failure, None, "{file}");
        let received = acct.received().await;
        assert_eq!(
            pairs(received.iter().map(|r| (r.check(), r.user()))),
            pairs(expected.iter().copied()),
            "{file}: findings received by the subscriber"
        );
        assert_eq!(report.published, received.len(), "{file}");
        for r in &received {
            assert_eq!(r.attributes["check"], r.check(), "{file}");
            assert_eq!(r.attributes["severity"], r.finding["severity"].as_str().unwrap(), "{file}");
            assert_eq!(r.attributes["account"], ACCOUNT, "{file}");
            assert_eq!(r.attributes["finding_id"], r.finding["id"].as_str().unwrap(), "{file}");
            assert_eq!(r.attributes["finding_id"].len(), 32, "{file}");
            assert!(r.subject.len() < 100 && r.subject.contains(r.check()), "{file}: {}", r.subject);
            assert!(r.finding["trigger"].as_str().unwrap().starts_with("event:"), "{file}");
        }
        let calls = counter.snapshot().calls;
        let count = |svc: &str| calls.iter().filter(|(k, _)| k.starts_with(svc)).map(|(_, v)| *v).sum::<u64>();
        // Per-user reads stay within 6; events that change what reaches users (or give
        // credentials) add one bulk GetAccountAuthorizationDetails page.
        let gaad = calls.get("iam:GetAccountAuthorizationDetails").copied().unwrap_or(0);
        assert!(gaad <= 1, "{file}: {gaad} GetAccountAuthorizationDetails pages: {calls:?}");
        let iam_reads = count("iam:") - calls.get("iam:UntagUser").copied().unwrap_or(0) - gaad;
        assert!(iam_reads <= 6, "{file}: {iam_reads} IAM reads, budget is 6: {calls:?}");
        measured.push(format!(
            "{file:<42} iam={:<2} (untag={}) secretsmanager={} sns={} outcome={:?}",
            count("iam:"),
            calls.get("iam:UntagUser").copied().unwrap_or(0),
            count("secretsmanager:"),
            count("sns:"),
            report.outcome
        ));
    }
    eprintln!("AWS calls per event:\n{}", measured.join("\n"));

    // The organization's samples: outside organization mode each is ignored, saying why.
    for file in ORGANIZATION_SAMPLES {
        let report = run(&app, &counter, file).await;
        assert!(
            matches!(&report.outcome, Outcome::Ignored(r) if r.contains("ORGANIZATION_MODE=true")),
            "{file}: {:?}",
            report.outcome
        );
        assert!(acct.received().await.is_empty(), "{file}");
    }
    // The daily schedule: a scan of every user, its findings in the digest the subscriber gets.
    let report = run(&app, &counter, "scheduled-daily-scan.json").await;
    assert_eq!((report.trigger.as_str(), &report.outcome, &report.failure), ("schedule", &Outcome::Processed, &None));
    let digests: Vec<_> = acct.received().await.into_iter().filter(|r| r.attributes["check"] == "digest").collect();
    assert!(!digests.is_empty(), "a digest");
    let mut in_digest: Vec<String> = digests
        .iter()
        .flat_map(|d| d.finding["findings"].as_array().unwrap())
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let mut found: Vec<String> = report.findings.iter().map(|f| f.id.clone()).collect();
    in_digest.sort();
    found.sort();
    assert_eq!(in_digest, found, "the digest carries every finding of the scan, once");

    // Remediation removed the unapproved tags and left the approved user's alone.
    assert!(acct.tags("dev-mallory").await.is_empty());
    assert_eq!(acct.tags("contractor-eve").await, [("Team".to_owned(), "vendors".to_owned())]);
}

#[tokio::test]
async fn remediation_untags_the_unapproved_only_and_a_second_run_changes_nothing() {
    let acct = Account::new().await;
    let next_year = (Utc::now() + Duration::days(365)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &next_year)])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    // A new key: the exception has something to serve (not exception-unused).
    acct.create_key("svc-legacy-erp").await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let (app, counter) = remediating(&acct);

    let approved = run(&app, &counter, "tag-user-access-exception.json").await;
    assert!(approved.findings.is_empty(), "{:?}", approved.findings);
    assert_eq!(acct.tags("svc-legacy-erp").await.len(), 1, "approved user keeps the tag");

    let first = run(&app, &counter, "tag-user-self-granted.json").await;
    let unapproved = first.findings.iter().find(|f| f.check.as_str() == "exception-unapproved").unwrap();
    let remediation = serde_json::to_value(unapproved.remediation.as_ref().unwrap()).unwrap();
    assert_eq!(remediation["status"], "applied");
    assert_eq!(unapproved.evidence["tagged_by"], "arn:aws:iam::123456789012:user/dev-mallory");
    assert!(acct.tags("dev-mallory").await.is_empty());
    assert_eq!(counter.snapshot().calls.get("iam:UntagUser"), Some(&1), "{:?}", counter.snapshot());

    let second = run(&app, &counter, "tag-user-self-granted.json").await;
    assert!(second.findings.iter().all(|f| f.remediation.is_none()), "{:?}", second.findings);
    assert_eq!(counter.snapshot().calls.get("iam:UntagUser"), None, "nothing left to untag");
    acct.received().await;
}

#[tokio::test]
async fn dry_run_with_remediation_on_and_the_default_config_never_untag() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let status = |report: &Report| {
        let f = report.findings.iter().find(|f| f.check.as_str() == "exception-unapproved").unwrap();
        let r = f.remediation.as_ref().unwrap();
        (r.status.as_str().to_owned(), r.detail.clone().unwrap_or_default())
    };

    // AUTO_REMEDIATE=true, but this run is a dry run.
    let (app, counter) = remediating(&acct);
    let opts = RunOptions { dry_run: true, ..now_opts() };
    let report = app.handle(sample("tag-user-self-granted.json"), &opts).await.unwrap();
    assert_eq!(status(&report), ("dry-run".into(), "would remove the tag (--dry-run)".into()));
    assert_eq!(counter.snapshot().calls.get("iam:UntagUser"), None);
    assert_eq!(acct.tags("dev-mallory").await.len(), 1);

    // The default configuration (AUTO_REMEDIATE unset) never untags either.
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let report = app.handle(sample("tag-user-self-granted.json"), &now_opts()).await.unwrap();
    assert_eq!(status(&report), ("dry-run".into(), "would remove the tag (AUTO_REMEDIATE=false)".into()));
    assert_eq!(acct.tags("dev-mallory").await.len(), 1);

    // The real --dry-run flag of the CLI, with remediation on.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/events/tag-user-self-granted.json");
    let out = acct.cli(&["handle", file, "--dry-run", "--format", "json"], &[("AUTO_REMEDIATE", "true")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""status":"dry-run""#));
    assert_eq!(acct.tags("dev-mallory").await.len(), 1, "--dry-run untagged nothing");
    // ... and without it, the same command removes the tag: the flag is what kept it.
    let out = acct.cli(&["handle", file, "--format", "json"], &[("AUTO_REMEDIATE", "true")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""status":"applied""#));
    assert!(acct.tags("dev-mallory").await.is_empty());
    acct.received().await;
}

#[tokio::test]
async fn root_events_report_root_use_and_the_account_summary_with_the_event_as_evidence() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    let (app, counter) = remediating(&acct);
    for file in ["root-create-access-key-self.json", "root-enable-mfa-device-self.json", "root-console-sign-in.json"] {
        let report = run(&app, &counter, file).await;
        assert_eq!(report.outcome, Outcome::Processed, "{file}");
        let calls = counter.snapshot().calls;
        assert_eq!(calls.get("iam:GetAccountSummary"), Some(&1), "{file}: {calls:?}");
        assert_eq!(calls.keys().filter(|k| k.starts_with("iam:")).count(), 1, "{file}: one IAM call: {calls:?}");
        assert!(!calls.keys().any(|k| k.starts_with("secretsmanager:")), "{file}: the registry is not needed");
        let received = acct.received().await;
        let used = received.iter().find(|r| r.check() == "root-used").unwrap();
        assert_eq!(used.attributes["severity"], "critical");
        assert_eq!(used.finding["principal"], "arn:aws:iam::123456789012:root");
        assert_eq!(used.finding["user"], serde_json::Value::Null);
        let sample = sample(file);
        assert_eq!(used.finding["evidence"]["event_time"], sample["detail"]["eventTime"], "{file}");
        assert_eq!(used.finding["evidence"]["source_ip"], sample["detail"]["sourceIPAddress"], "{file}");
        assert_eq!(used.finding["evidence"]["mfa_authenticated"], false, "{file}");
        let no_mfa = received.iter().find(|r| r.check() == "root-without-mfa").unwrap();
        assert_eq!(no_mfa.finding["evidence"]["caller"], "arn:aws:iam::123456789012:root");
        assert_eq!(no_mfa.finding["evidence"]["event"], sample["detail"]["eventName"]);
    }
}

#[tokio::test]
async fn an_unreadable_or_invalid_registry_untags_nothing_and_fails() {
    let acct = Account::new().await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let (app, counter) = remediating(&acct);

    for registry_text in [None, Some(r#"{"exceptions":[{"user":"dev-mallory"}]}"#), Some("not json")] {
        if let Some(text) = registry_text {
            acct.put_registry(text).await;
        }
        let report = run(&app, &counter, "tag-user-self-granted.json").await;
        let failure = report.failure.clone().expect("the invocation must fail");
        assert!(failure.contains("iam-sentinel/approvals"), "{failure}");
        let received = acct.received().await;
        assert_eq!(
            pairs(received.iter().map(|r| (r.check(), r.user()))),
            pairs([("approvals-registry-unavailable", ""), ("exception-self-granted", "dev-mallory")]),
            "registry {registry_text:?}"
        );
        let critical = received.iter().find(|r| r.check() == "approvals-registry-unavailable").unwrap();
        assert_eq!(critical.attributes["severity"], "critical");
        assert_eq!(counter.snapshot().calls.get("iam:UntagUser"), None);
        assert_eq!(acct.tags("dev-mallory").await.len(), 1, "never untag on uncertainty");

        let lambda = iam_sentinel::lambda::handle(
            &app,
            None,
            LambdaEvent::new(sample("tag-user-self-granted.json"), Context::default()),
        )
        .await;
        assert_eq!(lambda.unwrap_err().error_type, "RegistryUnavailable");
        acct.received().await;
    }
}

#[tokio::test]
async fn key_age_is_judged_as_of_a_future_date() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-legacy-erp", &[]).await;
    acct.create_key("svc-legacy-erp").await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    for (days, expected) in [
        (10, vec![]),
        (80, vec!["access-key-rotation-due", "access-key-unused"]),
        (100, vec!["access-key-stale", "access-key-unused"]),
    ] {
        let opts = RunOptions {
            now: Utc::now() + Duration::days(days),
            dry_run: false,
            publish: false,
            stop_by: None,
            already_sent: std::sync::Arc::default(),
        };
        let report = app.handle(sample("create-access-key.json"), &opts).await.unwrap();
        let mut got: Vec<&str> = report.findings.iter().map(|f| f.check.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, expected, "as of +{days} days");
        assert!(report.findings.iter().all(|f| f.resource.as_deref().is_some_and(|r| r.starts_with("AKIA"))));
    }
}

#[tokio::test]
async fn the_lambda_handler_reports_outcomes_and_typed_errors() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    let (app, counter) = remediating(&acct);
    let invoke =
        |payload| iam_sentinel::lambda::handle(&app, Some(&counter), LambdaEvent::new(payload, Context::default()));

    let ok = invoke(sample("create-login-profile.json")).await.unwrap();
    assert_eq!(ok["outcome"], "processed");
    assert_eq!(ok["published"], 2, "console-without-mfa and mfa-policy-missing");
    assert_eq!(acct.received().await[0].check(), "console-without-mfa");

    let ignored = invoke(sample("tag-user-failed-access-denied.json")).await.unwrap();
    assert_eq!(ignored["outcome"], "ignored");
    assert!(ignored["reason"].as_str().unwrap().contains("AccessDenied"));

    let gone = invoke(sample("create-access-key.json")).await.unwrap();
    assert_eq!(gone["outcome"], "user-gone");

    let err =
        invoke(serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.iam", "detail": {}}))
            .await
            .unwrap_err();
    assert_eq!(err.error_type, "MalformedEvent");
    assert!(err.message.contains("CloudTrail record"), "{}", err.message);
    assert!(acct.received().await.is_empty());
}

#[tokio::test]
async fn a_failed_publish_fails_the_invocation() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    let config = acct.config(&[("FINDINGS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")]);
    let (app, _) = build_app_with(config, &acct.sdk);
    let report = app.handle(sample("create-login-profile.json"), &now_opts()).await.unwrap();
    assert_eq!(report.published, 0);
    assert!(report.failure.as_deref().unwrap().contains("sns:Publish"), "{:?}", report.failure);
    let lambda = iam_sentinel::lambda::handle(
        &app,
        None,
        LambdaEvent::new(sample("create-login-profile.json"), Context::default()),
    )
    .await;
    assert_eq!(lambda.unwrap_err().error_type, "FindingsIncomplete");
}

#[tokio::test]
async fn the_cli_runs_the_same_path_on_event_files() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("contractor-eve", &[("AccessException", "true")]).await;
    let cli = |args: &[&str], extra: &[(&str, &str)]| acct.cli(args, extra);
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/events/");
    let out = cli(&["handle", &format!("{events}create-user-with-access-exception.json"), "--format", "json"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["check"], "exception-tag-malformed");
    assert_eq!(acct.received().await.len(), 1);

    let table = cli(&["handle", &format!("{events}create-user-with-access-exception.json"), "--no-publish"], &[]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("MEDIUM (1)") && text.contains("1 finding: 1 medium"), "{text}");
    assert!(acct.received().await.is_empty(), "--no-publish publishes nothing");

    let bad_config =
        cli(&["handle", &format!("{events}create-user-with-access-exception.json")], &[("MFA_SCOPE", "some")]);
    assert_eq!(bad_config.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_config.stderr).contains("MFA_SCOPE"));

    let missing = cli(&["handle", "no-such-file.json"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-file.json"));
}

#[tokio::test]
async fn events_for_a_deleted_user_are_logged_not_fatal() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    let (app, _) = remediating(&acct);
    let report = app.handle(sample("delete-access-key.json"), &now_opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::UserGone("user svc-legacy-erp no longer exists".into()));
    assert!(acct.received().await.is_empty());
}

#[tokio::test]
async fn an_exception_granted_to_a_user_created_minutes_ago_is_not_unused() {
    let acct = Account::new().await;
    let later = (Utc::now() + Duration::days(60)).to_rfc3339();
    acct.put_registry(&registry(&[("new-vendor", &later)])).await;
    // Created just now, no password or key yet: the approved exception is not "unused".
    acct.create_user("new-vendor", &[("AccessException", "True")]).await;
    let (app, counter) = remediating(&acct);
    let mut event = sample("tag-user-access-exception.json");
    event["detail"]["requestParameters"]["userName"] = serde_json::json!("new-vendor");
    counter.reset();
    let report = app.handle(event, &now_opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Processed);
    assert!(report.findings.iter().all(|f| f.check.as_str() != "exception-unused"), "{:?}", report.findings);
    let scan = Box::pin(app.scan(None, &RunOptions { publish: false, ..now_opts() })).await.unwrap();
    assert!(!scan.findings.iter().any(|f| f.check.as_str() == "exception-unused"), "the scan agrees");
    // 45 days on, still without credentials: the exception serves nothing.
    let ahead = RunOptions { publish: false, now: Utc::now() + Duration::days(46), ..now_opts() };
    let scan = Box::pin(app.scan(None, &ahead)).await.unwrap();
    let unused = scan.findings.iter().find(|f| f.check.as_str() == "exception-unused").expect("unused after 45 days");
    assert!(unused.message.contains("has no password or access key"), "{}", unused.message);
}
