//! Opt-in key rotation against moto: a user walked through rotation, deactivation and deletion
//! with `--as-of` days, two concurrent scans, dry-run, and a user who opts out midway; after
//! each step the exact keys, the secret's versions, and what a subscriber received.
//!
//! moto cannot backdate keys: a key it creates is dated now, so a new key looks as old as the
//! simulated day. The walk therefore takes one step per scan (rotate, deactivate, delete) and
//! stops there; the exact day-by-day schedule is unit-tested in `remediate::rotation`.

use crate::common::{ACCOUNT, Account, registry};
use chrono::{DateTime, Duration, Utc};
use iam_sentinel::app::RunOptions;
use iam_sentinel::app::rotation::secret_name;
use iam_sentinel::finding::{Finding, RemediationStatus};
use iam_sentinel::ports::KeyRotation;
use iam_sentinel::runtime::build_app_with;

const USER: &str = "svc-app";

async fn opted_in(acct: &Account) -> String {
    acct.put_registry(&registry(&[])).await;
    acct.create_user(USER, &[("iam-sentinel:rotation", "auto"), ("owner", "apps")]).await;
    acct.create_key(USER).await
}

/// The user's keys as (id, active), oldest first.
async fn keys(acct: &Account) -> Vec<(String, bool)> {
    let out = acct.iam.list_access_keys().user_name(USER).send().await.unwrap();
    let mut keys: Vec<_> = out.access_key_metadata().to_vec();
    keys.sort_by_key(|k| k.create_date().map(aws_sdk_iam::primitives::DateTime::as_nanos));
    keys.iter()
        .map(|k| (k.access_key_id().unwrap().to_owned(), k.status() == Some(&aws_sdk_iam::types::StatusType::Active)))
        .collect()
}

/// The secret's current value (AccessKeyId, SecretAccessKey) and whether a previous version
/// exists, read as the user's consumer reads it.
async fn secret(acct: &Account) -> Option<(String, String, bool)> {
    secret_of(acct, USER).await
}

/// `user`'s rotation secret, as [`secret`].
pub(crate) async fn secret_of(acct: &Account, user: &str) -> Option<(String, String, bool)> {
    let name = secret_name(ACCOUNT, user);
    let current = acct.secrets.get_secret_value().secret_id(&name).version_stage("AWSCURRENT").send().await.ok()?;
    let v: serde_json::Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    let previous = acct.secrets.get_secret_value().secret_id(&name).version_stage("AWSPREVIOUS").send().await.is_ok();
    Some((v["AccessKeyId"].as_str().unwrap().to_owned(), v["SecretAccessKey"].as_str().unwrap().to_owned(), previous))
}

fn rotation_findings(findings: &[Finding]) -> Vec<(String, Option<String>, Option<RemediationStatus>)> {
    findings
        .iter()
        .filter(|f| f.check.as_str() == "access-key-rotated" || f.check.as_str() == "rotation-stalled")
        .map(|f| {
            let step = f.evidence["step"].as_str().map(str::to_owned);
            (f.check.as_str().to_owned(), step, f.remediation.as_ref().map(|r| r.status))
        })
        .collect()
}

fn at(t0: DateTime<Utc>, days: i64) -> RunOptions {
    RunOptions::at(t0 + Duration::days(days))
}

#[tokio::test]
async fn a_user_is_walked_through_rotation_deactivation_and_deletion() {
    let acct = Account::new().await;
    let first = opted_in(&acct).await;
    // Day 0 is when the first key was created.
    let t0 = Utc::now();
    let (app, counter) = build_app_with(acct.config(&[("ROTATE_KEYS", "true")]), &acct.sdk);

    // Day 75: not due; nothing read per user.
    let report = app.scan(None, &at(t0, 75)).await.unwrap();
    assert!(rotation_findings(&report.findings).is_empty());
    assert!(!counter.snapshot().calls.contains_key("iam:ListAccessKeys"), "no per-user call before a step is due");
    acct.received().await;

    // Day 76: rotated. Two active keys; the new one is the secret's only version.
    counter.reset();
    let report = app.scan(None, &at(t0, 76)).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(
        rotation_findings(&report.findings),
        [("access-key-rotated".into(), Some("rotate".into()), Some(RemediationStatus::Applied))]
    );
    let k = keys(&acct).await;
    assert_eq!(k.len(), 2);
    assert_eq!(k[0], (first.clone(), true));
    let second = k[1].0.clone();
    let (in_secret, secret_key, previous) = secret(&acct).await.expect("secret created");
    assert_eq!((in_secret.as_str(), secret_key.len(), previous), (second.as_str(), 40, false));
    let calls = counter.snapshot().calls;
    // A first rotation: one new key, and the secret created once (after one PutSecretValue that
    // finds no secret yet); never a second secret or a second write.
    assert_eq!(calls.get("iam:CreateAccessKey"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("secretsmanager:CreateSecret"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("secretsmanager:PutSecretValue"), Some(&1), "{calls:?}");
    let rotated = report.findings.iter().find(|f| f.check.as_str() == "access-key-rotated").unwrap();
    assert_eq!(
        (rotated.evidence["old_key_id"].as_str(), rotated.evidence["new_key_id"].as_str()),
        (Some(first.as_str()), Some(second.as_str()))
    );
    // The secret half is in Secrets Manager only: not in the report, not in any message.
    let received = acct.received().await;
    let digest = received.iter().find(|r| r.attributes["check"] == "digest").expect("digest");
    assert_eq!(digest.finding["digest"]["counts_by_check"]["access-key-rotated"], 1);
    assert!(!serde_json::to_string(&report.findings).unwrap().contains(&secret_key));
    assert!(received.iter().all(|r| !r.finding.to_string().contains(&secret_key)));

    // Day 90: no evidence yet that the consumer moved (the new key never used): the old key
    // stays active, and the finding names the missing evidence.
    counter.reset();
    let report = app.scan(None, &at(t0, 90)).await.unwrap();
    assert_eq!(rotation_findings(&report.findings), [("rotation-stalled".into(), None, None)]);
    let stalled = report.findings.iter().find(|f| f.check.as_str() == "rotation-stalled").unwrap();
    assert!(
        stalled.message.contains(&format!("{second} has not been used since it was created")),
        "{}",
        stalled.message
    );
    assert_eq!(keys(&acct).await, [(first.clone(), true), (second.clone(), true)]);
    assert!(!counter.snapshot().calls.contains_key("iam:UpdateAccessKey"));

    // The consumer moves: it signs a call with the new key. Now the old key is deactivated.
    use_key(&acct, USER, &second, &secret_key).await;
    counter.reset();
    let report = app.scan(None, &at(t0, 90)).await.unwrap();
    assert_eq!(
        rotation_findings(&report.findings),
        [("access-key-rotated".into(), Some("deactivate".into()), Some(RemediationStatus::Applied))]
    );
    assert_eq!(keys(&acct).await, [(first.clone(), false), (second.clone(), true)]);
    let calls = counter.snapshot().calls;
    assert_eq!(
        (calls.get("iam:UpdateAccessKey"), calls.get("iam:GetAccessKeyLastUsed")),
        (Some(&1), Some(&2)),
        "{calls:?}"
    );

    // Day 100: deleted, ten days after its deactivation. The secret still holds the new key,
    // and the deactivation record is gone with the key.
    let report = app.scan(None, &at(t0, 100)).await.unwrap();
    assert_eq!(
        rotation_findings(&report.findings),
        [("access-key-rotated".into(), Some("delete".into()), Some(RemediationStatus::Applied))]
    );
    assert_eq!(keys(&acct).await, [(second.clone(), true)]);
    assert_eq!(secret(&acct).await.unwrap().0, second);
    assert!(deactivation_records(&acct).await.is_empty());
    // What the subscriber received: the stalled step, then each step in its scan's digest.
    let received = acct.received().await;
    let mut steps: Vec<&str> = received
        .iter()
        .filter(|r| r.attributes["check"] == "digest")
        .flat_map(|r| r.finding["findings"].as_array().unwrap().iter())
        .filter(|f| f["check"] == "access-key-rotated")
        .map(|f| f["evidence"]["step"].as_str().unwrap())
        .collect();
    steps.sort_unstable();
    assert_eq!(steps, ["deactivate", "delete"]);
    assert!(received.iter().all(|r| !r.finding.to_string().contains(&secret_key)));
}

/// Signs a call with the key, as its consumer would: IAM then records the key's last use.
pub(crate) async fn use_key(acct: &Account, user: &str, id: &str, secret_key: &str) {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&acct.moto.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(id, secret_key, None, None, "consumer"))
        .load()
        .await;
    aws_sdk_iam::Client::new(&sdk).get_user().user_name(user).send().await.unwrap();
}

/// The `iam-sentinel:deactivated:*` tags on the user's secret.
async fn deactivation_records(acct: &Account) -> Vec<String> {
    let d = acct.secrets.describe_secret().secret_id(secret_name(ACCOUNT, USER)).send().await.unwrap();
    d.tags()
        .iter()
        .filter_map(|t| t.key())
        .filter(|k| k.starts_with("iam-sentinel:deactivated:"))
        .map(str::to_owned)
        .collect()
}

/// Three cycles in a row (rotate, deactivate, delete, rotate again…): each step once, the
/// secret's stages naming the right keys without reading them, and no record left behind.
#[tokio::test]
async fn three_rotation_cycles_in_a_row_leave_no_state_behind() {
    let acct = Account::new().await;
    let mut current = opted_in(&acct).await;
    let t0 = Utc::now();
    // Every step is journaled in the state table.
    let table = crate::memory::create_state_table(&acct.sdk).await;
    let (app, _) = build_app_with(acct.config(&[("ROTATE_KEYS", "true"), ("STATE_TABLE", &table)]), &acct.sdk);
    let rotation = iam_sentinel::aws::rotation::AwsKeyRotation::new(acct.iam.clone(), acct.secrets.clone(), None);
    let name = secret_name(ACCOUNT, USER);
    let step = |report: &iam_sentinel::app::Report| rotation_findings(&report.findings);
    let opts = |d| RunOptions { publish: false, ..at(t0, d) };
    // moto dates each new key now: after the first cycle, the next rotation is due at once.
    let mut day = 76;
    for cycle in 1..=3 {
        let report = app.scan(None, &opts(day)).await.unwrap();
        assert_eq!(
            step(&report),
            [("access-key-rotated".into(), Some("rotate".into()), Some(RemediationStatus::Applied))],
            "cycle {cycle}"
        );
        let k = keys(&acct).await;
        let new = k.iter().find(|(id, _)| *id != current).unwrap().0.clone();
        assert_eq!(rotation.stage_key(&name, "AWSCURRENT").await.unwrap().as_deref(), Some(new.as_str()));
        if cycle > 1 {
            assert_eq!(rotation.stage_key(&name, "AWSPREVIOUS").await.unwrap().as_deref(), Some(current.as_str()));
        }
        let (_, secret_key, _) = secret(&acct).await.unwrap();
        use_key(&acct, USER, &new, &secret_key).await;
        day += 14;
        let report = app.scan(None, &opts(day)).await.unwrap();
        assert_eq!(
            step(&report),
            [("access-key-rotated".into(), Some("deactivate".into()), Some(RemediationStatus::Applied))],
            "cycle {cycle}"
        );
        assert_eq!(deactivation_records(&acct).await, [format!("iam-sentinel:deactivated:{current}")]);
        day += 10;
        let report = app.scan(None, &opts(day)).await.unwrap();
        assert_eq!(
            step(&report),
            [("access-key-rotated".into(), Some("delete".into()), Some(RemediationStatus::Applied))],
            "cycle {cycle}"
        );
        assert_eq!(keys(&acct).await, [(new.clone(), true)], "cycle {cycle}");
        assert!(deactivation_records(&acct).await.is_empty(), "cycle {cycle}");
        current = new;
        day += 1;
    }
    // The journal holds the nine steps, in order; `history` lists them; a deletion is never undone.
    let out = acct.cli(&["history", USER, "--format", "json"], &[("STATE_TABLE", &table)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["rotate", "deactivate", "delete"].repeat(3));
    let deleted = entries.iter().rev().find(|e| e["action"]["action"] == "delete").unwrap();
    assert!(deleted["after"].as_str().unwrap().ends_with(" deleted"), "{deleted}");
    let out = acct.cli(&["undo", deleted["finding_id"].as_str().unwrap()], &[("STATE_TABLE", &table)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be restored"));
}

#[tokio::test]
async fn two_concurrent_scans_never_make_a_third_key() {
    let acct = Account::new().await;
    let first = opted_in(&acct).await;
    // Day 0 is when the first key was created.
    let t0 = Utc::now();
    // The new key looks as old as the simulated day (see above): a long deactivation delay keeps
    // the second run from taking the next step, as it would not in real time.
    let config = acct.config(&[("ROTATE_KEYS", "true"), ("ROTATION_DEACTIVATE_DAYS", "200")]);
    let (app, _) = build_app_with(config, &acct.sdk);
    let opts = RunOptions { publish: false, ..at(t0, 80) };
    let (a, b) = tokio::join!(app.scan(None, &opts), app.scan(None, &opts));
    let (a, b) = (a.unwrap(), b.unwrap());
    let k = keys(&acct).await;
    assert_eq!(k.len(), 2, "IAM's two-key limit holds: {k:?}");
    assert!(k.iter().all(|(_, active)| *active));
    // The key in the secret is the one that was created; at most one run failed, loudly.
    let in_secret = secret(&acct).await.unwrap().0;
    assert!(k.iter().any(|(id, _)| *id == in_secret) && in_secret != first);
    let failed = [&a, &b].iter().filter(|r| r.failure.is_some()).count();
    assert!(failed <= 1, "{:?} {:?}", a.failure, b.failure);
    for r in [&a, &b].iter().filter(|r| r.failure.is_some()) {
        assert!(r.failure.as_deref().unwrap().contains("key rotation"), "{:?}", r.failure);
    }
}

#[tokio::test]
async fn without_rotate_keys_the_plan_is_reported_and_nothing_changes() {
    let acct = Account::new().await;
    let first = opted_in(&acct).await;
    // Day 0 is when the first key was created.
    let t0 = Utc::now();
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let report = app.scan(None, &RunOptions { publish: false, ..at(t0, 80) }).await.unwrap();
    assert_eq!(
        rotation_findings(&report.findings),
        [("access-key-rotated".into(), Some("rotate".into()), Some(RemediationStatus::DryRun))]
    );
    assert_eq!(keys(&acct).await, [(first, true)]);
    assert!(secret(&acct).await.is_none(), "no secret created");
}

#[tokio::test]
async fn a_user_who_opts_out_midway_is_left_as_is() {
    let acct = Account::new().await;
    let first = opted_in(&acct).await;
    // Day 0 is when the first key was created.
    let t0 = Utc::now();
    let (app, _) = build_app_with(acct.config(&[("ROTATE_KEYS", "true")]), &acct.sdk);
    let opts = |d| RunOptions { publish: false, ..at(t0, d) };
    app.scan(None, &opts(76)).await.unwrap();
    acct.iam.untag_user().user_name(USER).tag_keys("iam-sentinel:rotation").send().await.unwrap();
    let report = app.scan(None, &opts(90)).await.unwrap();
    assert!(rotation_findings(&report.findings).is_empty());
    let k = keys(&acct).await;
    assert_eq!(k.len(), 2);
    assert_eq!(k[0], (first, true), "the old key is not deactivated once the user opted out");
}

#[tokio::test]
async fn two_keys_outside_the_secret_are_reported_not_rotated() {
    let acct = Account::new().await;
    opted_in(&acct).await;
    let t0 = Utc::now();
    acct.create_key(USER).await;
    let (app, _) = build_app_with(acct.config(&[("ROTATE_KEYS", "true")]), &acct.sdk);
    let report = app.scan(None, &RunOptions { publish: false, ..at(t0, 80) }).await.unwrap();
    let stalled: Vec<&Finding> = report.findings.iter().filter(|f| f.check.as_str() == "rotation-stalled").collect();
    assert_eq!(stalled.len(), 1);
    assert!(stalled[0].message.contains("no free slot"), "{}", stalled[0].message);
    assert_eq!(keys(&acct).await.len(), 2);
}

#[tokio::test]
async fn a_rotation_is_undone_only_once_the_user_opted_out() {
    let acct = Account::new().await;
    let first = opted_in(&acct).await;
    let t0 = Utc::now();
    // The journal (the state table) is what undo reads.
    let table = crate::memory::create_state_table(&acct.sdk).await;
    let (app, _) = build_app_with(acct.config(&[("ROTATE_KEYS", "true"), ("STATE_TABLE", &table)]), &acct.sdk);
    let report = app.scan(None, &RunOptions { publish: false, ..at(t0, 76) }).await.unwrap();
    let rotated = report.findings.iter().find(|f| f.check.as_str() == "access-key-rotated").unwrap();
    assert_eq!(rotated.evidence["undo"]["action"], "rotate");
    let file = crate::stale_keys::findings_file("rotation", std::slice::from_ref(rotated));

    // Still opted in: the rotation would run again. Refused, nothing changed.
    let (code, _, err) = crate::stale_keys::undo(&acct, &rotated.id, &file);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("remove the rotation tag first"), "{err}");
    assert_eq!(keys(&acct).await.len(), 2);

    // Opted out: the new key is deactivated (not deleted: whoever picked it up can be found
    // before it goes), the secret (created by this rotation) is scheduled for deletion, and the
    // old key, still active, serves its consumers as before.
    acct.iam.untag_user().user_name(USER).tag_keys("iam-sentinel:rotation").send().await.unwrap();
    let new_key = rotated.evidence["undo"]["new_key_id"].as_str().unwrap().to_owned();
    let (code, out, err) = crate::stale_keys::undo(&acct, &rotated.id, &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scheduled") && out.contains(&format!("deactivated {USER}'s new key {new_key}")), "{out}");
    let mut expected = vec![(first, true), (new_key, false)];
    expected.sort();
    let mut now = keys(&acct).await;
    now.sort();
    assert_eq!(now, expected);
    let described = acct.secrets.describe_secret().secret_id(secret_name(ACCOUNT, USER)).send().await.unwrap();
    assert!(described.deleted_date().is_some(), "scheduled for deletion");

    // Undoing twice: the journal holds the undo, refused.
    let (code, _, err) = crate::stale_keys::undo(&acct, &rotated.id, &file);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already undone"), "{err}");
    let _ = std::fs::remove_file(file);
}

/// A second rotation writes onto the secret the first one created (a new version, the old one
/// kept as AWSPREVIOUS), and undoing it restores that previous version as AWSCURRENT
/// (`restore_previous`) instead of deleting the secret.
#[tokio::test]
async fn a_second_rotation_writes_onto_the_secret_and_its_undo_restores_the_previous_value() {
    let acct = Account::new().await;
    let first = opted_in(&acct).await;
    let t0 = Utc::now();
    // The journal (the state table) is what undo reads.
    let table = crate::memory::create_state_table(&acct.sdk).await;
    let (app, counter) = build_app_with(acct.config(&[("ROTATE_KEYS", "true"), ("STATE_TABLE", &table)]), &acct.sdk);
    let opts = |d| RunOptions { publish: false, ..at(t0, d) };
    // The first rotation's three steps: the second key alone is left, and in the secret. Its
    // consumer moves to the new key: the evidence the deactivation needs.
    assert_eq!(app.scan(None, &opts(76)).await.unwrap().failure, None, "day 76");
    let (id, secret_key, _) = secret(&acct).await.unwrap();
    use_key(&acct, USER, &id, &secret_key).await;
    for day in [90, 100] {
        assert_eq!(app.scan(None, &opts(day)).await.unwrap().failure, None, "day {day}");
    }
    let k = keys(&acct).await;
    assert_eq!(k.len(), 1);
    let second = k[0].0.clone();
    assert_ne!(second, first);

    // moto dates the second key now: on day 176 it is as old as the first was on day 76.
    counter.reset();
    let report = app.scan(None, &opts(176)).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(
        rotation_findings(&report.findings),
        [("access-key-rotated".into(), Some("rotate".into()), Some(RemediationStatus::Applied))]
    );
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("secretsmanager:PutSecretValue"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("secretsmanager:CreateSecret"), None, "the secret exists: {calls:?}");
    let k = keys(&acct).await;
    assert_eq!((k.len(), &k[0]), (2, &(second.clone(), true)));
    let third = k[1].0.clone();
    let (in_secret, _, previous) = secret(&acct).await.unwrap();
    assert_eq!((in_secret.as_str(), previous), (third.as_str(), true), "the second key is AWSPREVIOUS");

    // Undone once opted out: the secret's previous value (the second key) is current again,
    // the third key is deactivated (not deleted), the secret is not scheduled for deletion.
    let rotated = report.findings.iter().find(|f| f.check.as_str() == "access-key-rotated").unwrap();
    let file = crate::stale_keys::findings_file("second-rotation", std::slice::from_ref(rotated));
    acct.iam.untag_user().user_name(USER).tag_keys("iam-sentinel:rotation").send().await.unwrap();
    let (code, out, err) = crate::stale_keys::undo(&acct, &rotated.id, &file);
    let _ = std::fs::remove_file(file);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored") && out.contains(&third), "{out}");
    let mut expected = vec![(second.clone(), true), (third.clone(), false)];
    expected.sort();
    let mut now = keys(&acct).await;
    now.sort();
    assert_eq!(now, expected);
    assert_eq!(secret(&acct).await.unwrap().0, second, "AWSCURRENT holds the second key again");
    let described = acct.secrets.describe_secret().secret_id(secret_name(ACCOUNT, USER)).send().await.unwrap();
    assert!(described.deleted_date().is_none(), "not scheduled for deletion");
}
