//! Security Hub and the finding lifecycle against moto: findings imported FAILED/ACTIVE on a
//! scan, the fixed one re-imported PASSED/ARCHIVED on the next and announced as resolved on
//! the topic; call counts per scan; Security Hub not enabled still publishes and fails by name.
//!
//! moto 5.2's `GetFindings` ignores `Filters` (it returns every finding, archived ones too, 100
//! per page), and its `BatchImportFindings` never answers `InvalidAccessException`: the adapter
//! filters again on its side, and the not-enabled case uses a store that answers it.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use iam_sentinel::app::{App, RunOptions};
use iam_sentinel::ports::{BoxFuture, FindingsStore, StoreError, StoredFinding};
use iam_sentinel::runtime::build_app_with;
use serde_json::Value;

use crate::common::{Account, registry};

const USERS: usize = 120;

/// Runs `test` on a thread with a 16 MB stack. The SDK's typed reader of `GetFindings` (the
/// whole ASFF model) needs more than a test thread's 2 MB, and more than 4 MB, in a debug
/// build; Lambda and the CLI poll it on the main thread (8 MB), with release-sized frames.
pub(crate) fn on_big_stack<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F + Send + 'static) {
    let thread = std::thread::Builder::new().stack_size(16 << 20).spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test());
    });
    if let Err(panic) = thread.unwrap().join() {
        std::panic::resume_unwind(panic);
    }
}

fn calls(counts: &iam_sentinel::aws::Counts, op: &str) -> u64 {
    counts.calls.get(op).copied().unwrap_or(0)
}

/// Every finding in moto's Security Hub, by id: (compliance status, record state).
async fn stored(acct: &Account) -> std::collections::HashMap<String, (String, String)> {
    let hub = aws_sdk_securityhub::Client::new(&acct.sdk);
    let mut pages = hub.get_findings().max_results(100).into_paginator().send();
    let mut out = std::collections::HashMap::new();
    while let Some(page) = pages.next().await {
        for f in page.unwrap().findings() {
            let status = f.compliance().and_then(|c| c.status()).map(|s| s.as_str().to_owned()).unwrap_or_default();
            let state = f.record_state().map(|s| s.as_str().to_owned()).unwrap_or_default();
            out.insert(f.id().unwrap().to_owned(), (status, state));
        }
    }
    out
}

#[test]
fn a_fixed_finding_is_archived_in_security_hub_and_announced_as_resolved() {
    on_big_stack(lifecycle_across_two_scans);
}

async fn lifecycle_across_two_scans() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    for i in 0..USERS {
        let name = format!("console-{i:03}");
        acct.create_user(&name, &[]).await;
        acct.create_login_profile(&name).await;
    }
    let (app, counter) = build_app_with(acct.config(&[("SECURITY_HUB", "true")]), &acct.sdk);
    let opts = RunOptions::at(Utc::now());

    // Scan 1: every finding imported FAILED (or WARNING) and ACTIVE.
    let first = Box::pin(app.scan(None, &opts)).await.unwrap();
    assert!(first.failure.is_none(), "{:?}", first.failure);
    let n = first.findings.len();
    assert!(n >= USERS, "{n} findings");
    assert_eq!(first.imported, n);
    assert!(first.resolved.is_empty());
    let counts = counter.snapshot();
    assert_eq!(calls(&counts, "securityhub:BatchImportFindings"), n.div_ceil(100) as u64);
    assert_eq!(calls(&counts, "securityhub:GetFindings"), 1, "one page: nothing stored yet");
    let hub = stored(&acct).await;
    assert_eq!(hub.len(), n);
    assert!(hub.values().all(|(status, state)| status != "PASSED" && state == "ACTIVE"), "{hub:?}");
    let fixed = first
        .findings
        .iter()
        .find(|f| f.check.as_str() == "console-without-mfa" && f.user.as_deref() == Some("console-000"))
        .expect("console-000 has a console password without MFA")
        .clone();
    acct.received().await;

    // Fix it: no console password, so no console-without-mfa.
    acct.iam.delete_login_profile().user_name("console-000").send().await.unwrap();
    counter.reset();
    let second = Box::pin(app.scan(None, &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(second.failure.is_none(), "{:?}", second.failure);
    // Without a password, neither console-without-mfa nor mfa-policy-missing applies.
    assert_eq!(second.resolved.len(), 2, "{:?}", second.resolved);
    let resolved = second.resolved.iter().find(|f| f.check == fixed.check).expect("console-without-mfa resolved");
    assert_eq!(resolved.user.as_deref(), Some("console-000"));
    assert_eq!(resolved.thread_id(), fixed.thread_id(), "same chat thread, same Security Hub id");
    assert!(second.resolved.iter().any(|f| f.check.as_str() == "mfa-policy-missing"));
    let open_now = second.findings.len();
    assert_eq!(second.imported, open_now + 2);
    let counts = counter.snapshot();
    assert_eq!(
        calls(&counts, "securityhub:BatchImportFindings"),
        (open_now.div_ceil(100) + 1) as u64,
        "open findings in batches of 100, then the resolved ones"
    );
    assert_eq!(calls(&counts, "securityhub:GetFindings"), n.div_ceil(100) as u64, "one page per 100 stored");
    let hub = stored(&acct).await;
    let id = iam_sentinel::render::asff::finding_id(&fixed);
    assert_eq!(hub[&id], ("PASSED".to_owned(), "ARCHIVED".to_owned()));
    let still_open = hub.values().filter(|(_, state)| state == "ACTIVE").count();
    assert_eq!(still_open, open_now);

    let received = acct.received().await;
    let announced: Vec<&Value> = received.iter().map(|r| &r.finding).filter(|f| f["state"] == "resolved").collect();
    assert_eq!(announced.len(), 2, "{received:?}");
    assert!(announced.iter().all(|f| f["user"] == "console-000"));
    assert!(announced.iter().any(|f| f["check"] == "console-without-mfa"));

    // Scan 3: the archived finding is not resolved twice.
    let third = Box::pin(app.scan(None, &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(third.resolved.is_empty(), "{:?}", third.resolved);
    acct.received().await;
}

/// A store in an account where Security Hub is not enabled.
struct NotEnabled {
    calls: AtomicUsize,
}

impl NotEnabled {
    fn error(&self, action: &'static str, total: usize) -> StoreError {
        self.calls.fetch_add(1, Ordering::SeqCst);
        StoreError {
            action,
            imported: 0,
            total,
            message: "InvalidAccessException: Account 123456789012 is not subscribed to AWS Security Hub".into(),
            not_enabled: true,
        }
    }
}

impl FindingsStore for NotEnabled {
    fn import<'a>(
        &'a self,
        documents: &'a [Value],
        _: Option<tokio::time::Instant>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        let e = self.error("securityhub:BatchImportFindings", documents.len());
        Box::pin(async move { Err(e) })
    }

    fn open_findings<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<StoredFinding>, StoreError>> {
        let e = self.error("securityhub:GetFindings", 0);
        Box::pin(async move { Err(e) })
    }
}

#[tokio::test]
async fn without_security_hub_enabled_findings_still_reach_the_topic_and_the_run_fails_by_name() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    let (built, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let app = App { findings_store: Some(Box::new(NotEnabled { calls: AtomicUsize::new(0) })), ..built };

    let report = Box::pin(app.scan(None, &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(report.published > 0, "the digest and the high finding went out");
    assert!(report.findings.iter().any(|f| f.check.as_str() == "console-without-mfa"));
    assert_eq!(report.failures.len(), 1, "named once, not once per call: {:?}", report.failures);
    assert_eq!(report.failures[0].error_type(), "SecurityHubNotEnabled");
    assert!(report.failure.as_deref().unwrap().contains("Security Hub is not enabled here"), "{:?}", report.failure);
    assert!(acct.received().await.iter().any(|r| r.check() == "console-without-mfa"));

    // The event path imports too: same outcome, one named failure, the finding published.
    let event = crate::common::sample("create-login-profile.json");
    let report = Box::pin(app.handle(event, &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(report.findings.iter().any(|f| f.check.as_str() == "console-without-mfa"), "{:?}", report.findings);
    assert_eq!(report.published, report.findings.len());
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].error_type(), "SecurityHubNotEnabled");
    acct.received().await;
}

#[tokio::test]
async fn the_cli_prints_asff_and_ocsf_and_says_what_security_hub_took() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;

    let out = acct.cli(&["scan", "--format", "asff"], &[("SECURITY_HUB", "true")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("one JSON array");
    let dave = docs.iter().find(|d| d["GeneratorId"] == "console-without-mfa").expect("dave's finding");
    assert_eq!(dave["SchemaVersion"], "2018-10-08");
    assert_eq!(dave["Compliance"]["RelatedRequirements"][0], "CIS AWS Foundations Benchmark v5.0.0/1.9");
    assert!(stderr.contains(&format!("security hub: {} finding(s) imported; 0 resolved", docs.len())), "{stderr}");

    let out = acct.cli(&["scan", "--format", "ocsf", "--no-publish"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["class_uid"] == 2004 && e["metadata"]["version"] == "1.1.0"));
    acct.received().await;
}
