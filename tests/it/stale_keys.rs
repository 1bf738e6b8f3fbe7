//! Stale-key deactivation (`DEACTIVATE_STALE_KEYS`) and `iam-sentinel undo` against moto:
//! off, dry-run and on; only the key a finding names is touched; undo reverses a deactivation
//! or an untag only when the state is still what the action left.
//!
//! moto cannot backdate keys: they are aged honestly by judging 200 days ahead, as the scan
//! tests do.

use chrono::{Duration, Utc};
use iam_sentinel::app::{Report, RunOptions};
use iam_sentinel::aws::iam::IamDirectory;
use iam_sentinel::config::StaleKeyMode;
use iam_sentinel::finding::{Action, CheckId, Finding, RemediationStatus};
use iam_sentinel::remediate::stale;
use iam_sentinel::runtime::build_app_with;
use iam_sentinel::snapshot::KeyRef;
use serde_json::json;

use crate::common::{Account, registry};
use crate::memory::{TABLE, create_state_table};

async fn key_status(acct: &Account, user: &str) -> Vec<(String, String)> {
    let out = acct.iam.list_access_keys().user_name(user).send().await.unwrap();
    let mut keys: Vec<_> = out
        .access_key_metadata()
        .iter()
        .map(|k| (k.access_key_id().unwrap().to_owned(), k.status().unwrap().as_str().to_owned()))
        .collect();
    keys.sort();
    keys
}

/// A scan judged `days` ahead with `mode`; returns the report and the calls by action.
async fn scan_ahead(acct: &Account, mode: &str, days: i64) -> (Report, std::collections::BTreeMap<String, u64>) {
    scan_ahead_with(acct, mode, days, &[]).await
}

/// As [`scan_ahead`], with `extra` variables (the state table, for the journal).
async fn scan_ahead_with(
    acct: &Account,
    mode: &str,
    days: i64,
    extra: &[(&str, &str)],
) -> (Report, std::collections::BTreeMap<String, u64>) {
    let vars: Vec<(&str, &str)> = [("DEACTIVATE_STALE_KEYS", mode)].into_iter().chain(extra.iter().copied()).collect();
    let (app, counter) = build_app_with(acct.config(&vars), &acct.sdk);
    let opts = RunOptions {
        now: Utc::now() + Duration::days(days),
        dry_run: false,
        publish: false,
        stop_by: None,
        already_sent: std::sync::Arc::default(),
    };
    let report = Box::pin(app.scan(None, &opts)).await.unwrap();
    (report, counter.snapshot().calls)
}

fn stale_finding<'a>(report: &'a Report, user: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.check == CheckId::AccessKeyStale && f.user.as_deref() == Some(user))
        .unwrap_or_else(|| panic!("no access-key-stale for {user}: {:?}", report.findings))
}

#[tokio::test]
async fn stale_keys_are_deactivated_only_when_enabled_and_dry_run_changes_nothing() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-old", &[]).await;
    let id = acct.create_key("svc-old").await;
    acct.create_user("svc-kept", &[("iam-sentinel:keep-keys", "vendor contract")]).await;
    let kept = acct.create_key("svc-kept").await;

    // Off (the default): reported, untouched, no per-user call.
    let (report, calls) = scan_ahead(&acct, "false", 200).await;
    assert_eq!(stale_finding(&report, "svc-old").remediation, None);
    assert_eq!(calls.get("iam:ListAccessKeys"), None, "{calls:?}");
    // Within the grace (never used: 45 + 30 days), reported but not planned, even when on.
    let (report, calls) = scan_ahead(&acct, "true", 60).await;
    let unused = report.findings.iter().find(|f| f.check == CheckId::AccessKeyUnused).unwrap();
    assert_eq!(unused.remediation, None);
    assert_eq!(calls.get("iam:UpdateAccessKey"), None);

    let (report, calls) = scan_ahead(&acct, "dry-run", 200).await;
    let r = stale_finding(&report, "svc-old").remediation.clone().unwrap();
    assert_eq!((r.action.as_str(), r.status), ("deactivate", RemediationStatus::DryRun));
    assert!(r.detail.unwrap().contains("DEACTIVATE_STALE_KEYS=dry-run"));
    assert_eq!(calls.get("iam:ListAccessKeys"), None, "dry-run makes no per-user call");
    assert_eq!(key_status(&acct, "svc-old").await, [(id.clone(), "Active".to_owned())]);

    let (report, calls) = scan_ahead(&acct, "true", 200).await;
    assert_eq!(report.failure, None);
    let f = stale_finding(&report, "svc-old");
    let r = f.remediation.clone().unwrap();
    assert_eq!(r.status, RemediationStatus::Applied, "{r:?}");
    assert_eq!(f.evidence["key_id"], json!(id));
    assert_eq!(
        f.evidence["undo"],
        json!({ "action": "deactivate", "user": "svc-old", "key_id": id, "previous_status": "Active" })
    );
    assert_eq!(key_status(&acct, "svc-old").await, [(id.clone(), "Inactive".to_owned())]);
    // The exempt user keeps its key, and the finding says why.
    let k = stale_finding(&report, "svc-kept").remediation.clone().unwrap();
    assert_eq!(k.status, RemediationStatus::Skipped);
    assert!(k.detail.unwrap().contains("exemption tag"));
    assert_eq!(key_status(&acct, "svc-kept").await, [(kept, "Active".to_owned())]);
    // Per deactivation: one ListAccessKeys (the state now) and one UpdateAccessKey.
    assert_eq!(calls.get("iam:ListAccessKeys"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("iam:UpdateAccessKey"), Some(&1), "{calls:?}");
    // The unused finding about the same key carries no second action.
    let unused = report
        .findings
        .iter()
        .find(|f| f.check == CheckId::AccessKeyUnused && f.user.as_deref() == Some("svc-old"))
        .unwrap();
    assert_eq!(unused.remediation, None);

    // The next scan finds the key inactive: nothing to report or do.
    let (report, calls) = scan_ahead(&acct, "true", 200).await;
    assert!(!report.findings.iter().any(|f| f.user.as_deref() == Some("svc-old")), "{:?}", report.findings);
    assert_eq!(calls.get("iam:UpdateAccessKey"), None);
}

#[tokio::test]
async fn each_slot_is_matched_to_its_own_key_and_a_finding_never_touches_a_sibling() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("two-keys", &[]).await;
    let first = acct.create_key("two-keys").await;
    let created = |id: &str| {
        let iam = acct.iam.clone();
        let id = id.to_owned();
        async move {
            let out = iam.list_access_keys().user_name("two-keys").send().await.unwrap();
            let k = out.access_key_metadata().iter().find(|k| k.access_key_id() == Some(id.as_str())).cloned();
            let d = k.unwrap().create_date.unwrap();
            chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos()).unwrap()
        }
    };
    // A different second: the credential report's slots are told apart by creation time. moto
    // dates a key by its own clock, to the second: a second key made within the first's second
    // is deleted and made again, until moto's clock has moved on (no fixed sleep).
    let second = loop {
        let candidate = acct.create_key("two-keys").await;
        if created(&candidate).await.timestamp() != created(&first).await.timestamp() {
            break candidate;
        }
        acct.iam.delete_access_key().user_name("two-keys").access_key_id(&candidate).send().await.unwrap();
    };

    // The executor, given a finding naming one slot, deactivates that key and not its sibling.
    let directory = IamDirectory::new(acct.iam.clone());
    let scope = iam_sentinel::finding::Scope {
        account: "123456789012".into(),
        region: "us-east-1".into(),
        trigger: "schedule".into(),
        now: Utc::now(),
    };
    let named = |created| {
        let mut f = scope.finding(CheckId::AccessKeyStale, "arn:aws:iam::123456789012:user/two-keys", "m".into());
        f.user = Some("two-keys".into());
        f.action = Some(Action::DeactivateKey { user: "two-keys".into(), key: KeyRef::Slot(1), created });
        f
    };
    let reader = iam_sentinel::aws::rotation::AwsKeyRotation::new(acct.iam.clone(), acct.secrets.clone(), None);
    let recheck = stale::Recheck { unused_days: 45, now: Utc::now() + Duration::days(200) };
    let mut findings = vec![named(created(&first).await)];
    let failures = stale::execute(&directory, Some(&reader), &mut findings, recheck, StaleKeyMode::On, false, || false)
        .await
        .unwrap();
    assert!(failures.is_empty());
    assert_eq!(findings[0].evidence["key_id"], json!(first));
    assert_eq!(key_status(&acct, "two-keys").await, {
        let mut v = vec![(first.clone(), "Inactive".to_owned()), (second.clone(), "Active".to_owned())];
        v.sort();
        v
    });

    // A slot whose creation time no key has (deleted or replaced since the report): nothing happens.
    let mut findings = vec![named(created(&second).await - Duration::seconds(5))];
    stale::execute(&directory, Some(&reader), &mut findings, recheck, StaleKeyMode::On, false, || false).await.unwrap();
    let r = findings[0].remediation.clone().unwrap();
    assert_eq!(r.status, RemediationStatus::Skipped);
    assert!(r.detail.unwrap().contains("nothing deactivated"));
    assert!(key_status(&acct, "two-keys").await.contains(&(second.clone(), "Active".to_owned())));

    // The scan names both keys by slot; each finding resolves to its own key id.
    acct.iam
        .update_access_key()
        .user_name("two-keys")
        .access_key_id(&first)
        .status(aws_sdk_iam::types::StatusType::Active)
        .send()
        .await
        .unwrap();
    let (report, _) = scan_ahead(&acct, "true", 200).await;
    assert_eq!(report.failure, None);
    let mut ids: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.remediation.as_ref().is_some_and(|r| r.status == RemediationStatus::Applied))
        .map(|f| f.evidence["key_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(ids, expected);
}

/// Writes `findings` as `--format json` prints them (one per line) and returns the path.
pub(crate) fn findings_file(name: &str, findings: &[Finding]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("iam-sentinel-undo-{name}-{}.json", std::process::id()));
    let lines: String = findings.iter().map(|f| serde_json::to_string(f).unwrap() + "\n").collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// `iam-sentinel undo ID --from FILE` with the state table (the journal) configured.
pub(crate) fn undo(acct: &Account, id: &str, file: &std::path::Path) -> (i32, String, String) {
    let out = acct.cli(&["undo", id, "--from", file.to_str().unwrap()], &[("STATE_TABLE", TABLE)]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn undo_reactivates_a_deactivated_key_and_refuses_once_it_changed() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-a", &[]).await;
    let a = acct.create_key("svc-a").await;
    acct.create_user("svc-b", &[]).await;
    let b = acct.create_key("svc-b").await;
    let table = create_state_table(&acct.sdk).await;
    let (report, _) = scan_ahead_with(&acct, "true", 200, &[("STATE_TABLE", &table)]).await;
    let file = findings_file("keys", &report.findings);
    let id_a = stale_finding(&report, "svc-a").id.clone();
    let id_b = stale_finding(&report, "svc-b").id.clone();

    // Not exempt: the function would deactivate the key again on the undo's own event.
    let (code, _, stderr) = undo(&acct, &id_a, &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("tag svc-a with iam-sentinel:keep-keys"), "{stderr}");
    assert_eq!(key_status(&acct, "svc-a").await, [(a.clone(), "Inactive".to_owned())]);
    acct.tag("svc-a", "iam-sentinel:keep-keys", "SEC-2001 restore until rotated").await;
    let (code, stdout, stderr) = undo(&acct, &id_a, &file);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("reactivate svc-a's key {a}")), "{stdout}");
    assert!(
        stderr.contains("undo: 6 AWS call(s)"),
        "GetCallerIdentity, the journal's Query, ListAccessKeys, GetUser, UpdateAccessKey, the undo's PutItem: {stderr}"
    );
    assert_eq!(key_status(&acct, "svc-a").await, [(a, "Active".to_owned())]);
    // Undone once: the journal holds the undo, so a second one is refused.
    let (code, _, stderr) = undo(&acct, &id_a, &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("already undone"), "{stderr}");

    // Deleted meanwhile: refused, nothing created.
    acct.iam.delete_access_key().user_name("svc-b").access_key_id(&b).send().await.unwrap();
    let (code, _, stderr) = undo(&acct, &id_b, &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("no longer exists"), "{stderr}");
    assert!(key_status(&acct, "svc-b").await.is_empty());

    // A finding without an applied action, or an unknown id: nothing to undo (bad input).
    let (code, _, stderr) = undo(&acct, "0123456789abcdef", &file);
    assert_eq!(code, 2, "{stderr}");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn undo_retags_only_a_user_the_registry_now_approves() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let table = create_state_table(&acct.sdk).await;
    let (app, _) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true"), ("STATE_TABLE", &table)]), &acct.sdk);
    let opts = RunOptions { publish: false, ..RunOptions::at(Utc::now()) };
    let report = Box::pin(app.scan(None, &opts)).await.unwrap();
    let f = report.findings.iter().find(|f| f.check == CheckId::ExceptionUnapproved).unwrap();
    assert_eq!(f.remediation.as_ref().unwrap().status, RemediationStatus::Applied);
    assert_eq!(
        f.evidence["undo"],
        json!({ "action": "untag", "user": "dev-mallory", "tag_key": "AccessException", "previous_value": "True" })
    );
    assert!(acct.tags("dev-mallory").await.is_empty());
    // The SNS message body is the finding itself, pretty-printed: undo reads it as is.
    let file = std::env::temp_dir().join(format!("iam-sentinel-undo-untag-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string_pretty(f).unwrap()).unwrap();

    let (code, _, stderr) = undo(&acct, &f.id, &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("does not approve dev-mallory"), "{stderr}");
    assert!(acct.tags("dev-mallory").await.is_empty(), "not re-tagged without an approval");

    let later = (Utc::now() + Duration::days(30)).to_rfc3339();
    acct.put_registry(&registry(&[("dev-mallory", &later)])).await;
    let out = acct.cli(&["undo", &f.id, "--from", file.to_str().unwrap(), "--dry-run"], &[("STATE_TABLE", &table)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("would tag dev-mallory"));
    assert!(acct.tags("dev-mallory").await.is_empty(), "--dry-run changes nothing");
    let (code, stdout, stderr) = undo(&acct, &f.id, &file);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("AccessException=True"), "{stdout}");
    assert!(
        stderr.contains("undo: 6 AWS call(s)"),
        "GetCallerIdentity, the journal's Query, GetUser, GetSecretValue, TagUser, the undo's PutItem: {stderr}"
    );
    assert_eq!(acct.tags("dev-mallory").await, [("AccessException".to_owned(), "True".to_owned())]);
    // Undone: a second undo is refused by the journal.
    let (code, _, stderr) = undo(&acct, &f.id, &file);
    assert_eq!(code, 1);
    assert!(stderr.contains("already undone"), "{stderr}");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn the_event_path_deactivates_the_key_by_its_id() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-legacy-erp", &[]).await;
    let id = acct.create_key("svc-legacy-erp").await;
    // Someone reactivated the key (the sample's UpdateAccessKey), judged 200 days on.
    let mut event = crate::common::sample("update-access-key.json");
    event["detail"]["requestParameters"]["accessKeyId"] = json!(id);
    let (app, counter) = build_app_with(acct.config(&[("DEACTIVATE_STALE_KEYS", "true")]), &acct.sdk);
    let opts = RunOptions {
        now: Utc::now() + Duration::days(200),
        dry_run: false,
        publish: false,
        stop_by: None,
        already_sent: std::sync::Arc::default(),
    };
    let report = Box::pin(app.handle(event, &opts)).await.unwrap();
    assert_eq!(report.failure, None);
    let f = stale_finding(&report, "svc-legacy-erp");
    assert_eq!(f.resource.as_deref(), Some(id.as_str()), "the event path names the key by id");
    assert_eq!(f.remediation.as_ref().unwrap().status, RemediationStatus::Applied);
    assert_eq!(f.evidence["undo"]["key_id"], json!(id));
    assert_eq!(key_status(&acct, "svc-legacy-erp").await, [(id, "Inactive".to_owned())]);
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("iam:UpdateAccessKey"), Some(&1));
    // One ListAccessKeys reading the user, one re-reading just before acting.
    assert_eq!(calls.get("iam:ListAccessKeys"), Some(&2), "{calls:?}");
}
