//! The daily scan against a real moto server: bulk reads only, the exact findings,
//! the digest and high-severity messages on the subscribed queue, and agreement with
//! the event path for every user.

use std::collections::BTreeMap;

use crate::common::{Account, pairs, registry, sample};
use chrono::{DateTime, Duration, Utc};
use iam_sentinel::app::RunOptions;
use iam_sentinel::runtime::build_app_with;

/// An account with users in every state; approvals are relative to `as_of`.
async fn fixture_account(as_of: DateTime<Utc>) -> Account {
    let acct = Account::new().await;
    let at = |days: i64| (as_of + Duration::days(days)).to_rfc3339();
    acct.put_registry(&registry(&[
        ("approved", &at(200)),
        ("expired", &at(-3)),
        ("expiring", &at(5)),
        ("approved-untagged", &at(60)),
    ]))
    .await;
    for name in ["approved", "unapproved", "expired", "expiring"] {
        acct.create_user(name, &[("AccessException", "True")]).await;
    }
    acct.create_user("malformed", &[("AccessException", "true")]).await;
    acct.create_user("approved-untagged", &[]).await;
    acct.create_user("stale-key", &[]).await;
    acct.create_key("stale-key").await;
    acct.create_user("two-keys", &[]).await;
    acct.create_key("two-keys").await;
    acct.create_key("two-keys").await;
    acct.create_user("console-no-mfa", &[]).await;
    acct.create_login_profile("console-no-mfa").await;
    acct.create_user("console-mfa", &[]).await;
    acct.create_login_profile("console-mfa").await;
    acct.enable_mfa("console-mfa").await;
    acct.create_user("key-only", &[]).await;
    acct.create_key("key-only").await;
    acct
}

fn expected() -> Vec<(String, String)> {
    pairs([
        ("exception-unapproved", "unapproved"),
        ("exception-expired", "expired"),
        ("exception-tag-malformed", "malformed"),
        ("exception-expiring", "expiring"),
        ("exception-approved-untagged", "approved-untagged"),
        // Approved exceptions of users without any credential: nothing uses them.
        ("exception-unused", "approved"),
        ("exception-unused", "expiring"),
        ("access-key-stale", "stale-key"),
        ("access-key-unused", "stale-key"),
        ("access-key-stale", "two-keys"),
        ("access-key-stale", "two-keys"),
        ("access-key-unused", "two-keys"),
        ("access-key-unused", "two-keys"),
        ("access-key-multiple-active", "two-keys"),
        ("console-without-mfa", "console-no-mfa"),
        // Both console passwords are never used, judged 100 days after they were set.
        ("console-password-unused", "console-no-mfa"),
        ("console-password-unused", "console-mfa"),
        // Neither console user is in a group with the RequireMFA policy.
        ("mfa-policy-missing", "console-no-mfa"),
        ("mfa-policy-missing", "console-mfa"),
        ("access-key-stale", "key-only"),
        ("access-key-unused", "key-only"),
    ])
}

#[tokio::test]
async fn the_scan_finds_exactly_the_expected_pairs_and_publishes_digest_and_high_findings() {
    // moto cannot backdate keys: age them honestly by judging 100 days ahead.
    let as_of = Utc::now() + Duration::days(100);
    let acct = fixture_account(as_of).await;
    let (app, counter) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true")]), &acct.sdk);
    let report = app
        .scan(
            None,
            &RunOptions {
                now: as_of,
                dry_run: false,
                publish: true,
                stop_by: None,
                already_sent: std::sync::Arc::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    let got = pairs(report.findings.iter().map(|f| (f.check.as_str(), f.user.as_deref().unwrap_or(""))));
    assert_eq!(got, expected());
    assert!(
        report
            .findings
            .iter()
            .filter(|f| f.check.as_str().starts_with("access-key"))
            .all(|f| f.resource.as_deref().is_some_and(|r| r.starts_with("access_key_") && r.contains(" created ")))
    );

    // Bulk calls only: ≤ 3 + ceil(users/1000) + report polls.
    let calls = counter.snapshot().calls;
    let polls = calls.get("iam:GenerateCredentialReport").copied().unwrap_or(0).saturating_sub(1);
    let reads: u64 = calls.iter().filter(|(k, _)| k.starts_with("iam:") && *k != "iam:UntagUser").map(|(_, v)| v).sum();
    assert!(reads <= 3 + 1 + polls, "{calls:?}");
    for per_user in ["iam:GetUser", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:ListMFADevices"] {
        assert!(!calls.contains_key(per_user), "{per_user} in {calls:?}");
    }
    assert_eq!(calls.get("iam:UntagUser"), Some(&2), "unapproved and expired");

    // Remediation: untagged the unapproved and expired, left the approved alone.
    assert!(acct.tags("unapproved").await.is_empty());
    assert!(acct.tags("expired").await.is_empty());
    assert_eq!(acct.tags("approved").await.len(), 1);
    assert_eq!(acct.tags("expiring").await.len(), 1);

    // One digest plus one message per high/critical finding.
    let received = acct.received().await;
    let digests: Vec<_> = received.iter().filter(|r| r.attributes["check"] == "digest").collect();
    assert_eq!(digests.len(), 1);
    let d = &digests[0].finding;
    assert_eq!(d["digest"]["findings_total"], 21);
    let listed: Vec<&str> =
        d["digest"]["exceptions"].as_array().unwrap().iter().map(|e| e["user"].as_str().unwrap()).collect();
    assert_eq!(listed, ["approved", "expiring"], "the exceptions in force, for the approver");
    assert_eq!(d["digest"]["counts_by_check"]["access-key-stale"], 4);
    assert_eq!(d["digest"]["counts_by_severity"]["high"], 3);
    assert_eq!(d["digest"]["users_scanned"], 11);
    assert!(d["digest"]["credential_report_generated_at"].is_string());
    assert_eq!(d["findings"].as_array().unwrap().len(), 21);
    assert_eq!(digests[0].attributes["severity"], "high");
    let singles = pairs(received.iter().filter(|r| r.attributes["check"] != "digest").map(|r| (r.check(), r.user())));
    assert_eq!(
        singles,
        pairs([
            ("exception-unapproved", "unapproved"),
            ("exception-expired", "expired"),
            ("console-without-mfa", "console-no-mfa")
        ])
    );
    assert!(received.iter().all(|r| r.attributes["account"] == crate::common::ACCOUNT));
}

#[tokio::test]
async fn scan_and_event_path_agree_for_every_user() {
    let as_of = Utc::now() + Duration::days(100);
    let acct = fixture_account(as_of).await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let opts = RunOptions {
        now: as_of,
        dry_run: true,
        publish: false,
        stop_by: None,
        already_sent: std::sync::Arc::default(),
    };
    let scan = app.scan(None, &opts).await.unwrap();
    let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &scan.findings {
        by_user.entry(f.user.clone().unwrap()).or_default().push(f.check.as_str().to_owned());
    }
    let users = acct.iam.list_users().send().await.unwrap();
    assert_eq!(users.users().len(), 11);
    for u in users.users() {
        // An event that changes nothing about tags: the event path runs every user check.
        let mut event = sample("create-login-profile.json");
        event["detail"]["requestParameters"]["userName"] = u.user_name().into();
        let report = app.handle(event, &opts).await.unwrap();
        let mut from_event: Vec<String> = report.findings.iter().map(|f| f.check.as_str().to_owned()).collect();
        from_event.sort();
        let mut from_scan = by_user.remove(u.user_name()).unwrap_or_default();
        from_scan.sort();
        assert_eq!(from_event, from_scan, "user {}", u.user_name());
    }
}

#[tokio::test]
async fn a_large_digest_is_split_into_parts_under_256_kb() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    for i in 0..120 {
        let name = format!("svc-batch-{i:03}");
        acct.create_user(&name, &[]).await;
        acct.create_key(&name).await;
        acct.create_key(&name).await;
    }
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let as_of = Utc::now() + Duration::days(100);
    let report = app
        .scan(
            None,
            &RunOptions {
                now: as_of,
                dry_run: false,
                publish: true,
                stop_by: None,
                already_sent: std::sync::Arc::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(report.findings.len(), 600);
    let received = acct.received().await;
    let mut parts: Vec<_> = received.iter().filter(|r| r.attributes["check"] == "digest").collect();
    assert!(parts.len() >= 2, "{} parts", parts.len());
    parts.sort_by_key(|p| p.finding["digest"]["part"].as_u64());
    let mut in_parts: Vec<String> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.finding["digest"]["part"], i + 1);
        assert_eq!(p.finding["digest"]["parts"], parts.len());
        assert!(p.subject.contains(&format!("part {}/{}", i + 1, parts.len())), "{}", p.subject);
        assert!(serde_json::to_string(&p.finding).unwrap().len() < 256 * 1024);
        in_parts.extend(p.finding["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()));
    }
    // The ids as multisets: a finding twice and another missing would not cancel out.
    let mut ids: Vec<String> = report.findings.iter().map(|f| f.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 600, "distinct ids");
    in_parts.sort();
    assert_eq!(in_parts, ids, "every finding in exactly one part");
    assert_eq!(received.len(), parts.len(), "no high findings, so only digest parts");
}

#[tokio::test]
async fn the_scheduled_event_and_the_cli_run_the_scan() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("console-no-mfa", &[]).await;
    acct.create_login_profile("console-no-mfa").await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let lambda = iam_sentinel::lambda::handle(
        &app,
        None,
        lambda_runtime::LambdaEvent::new(sample("scheduled-daily-scan.json"), lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(lambda["trigger"], "schedule");
    assert_eq!(lambda["findings"], 2, "console-without-mfa and mfa-policy-missing");
    assert_eq!(lambda["published"], 2, "digest + the high finding");
    acct.received().await;

    let run = |args: &[&str]| acct.cli(args, &[]);
    let table = run(&["scan", "--no-publish"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(table.status.success());
    assert!(text.starts_with("Account 123456789012 · 1 users · credential report generated"), "{text}");
    assert!(text.contains("HIGH (1)") && text.contains("console-without-mfa"), "{text}");
    let summary = run(&["scan", "--no-publish", "--format", "summary", "--fail-on", "high"]);
    assert_eq!(summary.status.code(), Some(3));
    assert_eq!(String::from_utf8(summary.stdout).unwrap(), "2 findings: 1 high, 1 medium\n");
    let pass = run(&["scan", "--no-publish", "--format", "json", "--fail-on", "critical"]);
    assert_eq!(pass.status.code(), Some(0));
    let text = String::from_utf8(pass.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["check"], "console-without-mfa");
    assert_eq!(lines[1]["check"], "mfa-policy-missing");
    assert!(acct.received().await.is_empty());
}

#[tokio::test]
async fn the_cli_never_remediates_on_a_hypothetical_date() {
    let acct = Account::new().await;
    let soon = (Utc::now() + Duration::days(10)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &soon)])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    let as_of = (Utc::now() + Duration::days(100)).to_rfc3339();
    let out = acct.cli(&["scan", "--no-publish", "--format", "json", "--as-of", &as_of], &[("AUTO_REMEDIATE", "true")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let finding: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(finding["check"], "exception-expired");
    assert_eq!(finding["remediation"]["status"], "dry-run");
    assert_eq!(acct.tags("svc-legacy-erp").await.len(), 1, "the approval is valid today");
}
