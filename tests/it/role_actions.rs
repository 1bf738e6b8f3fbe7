//! The deployment role grants exactly what the code really calls: every AWS operation the
//! function makes while handling every sample event and a scan against moto (with
//! remediation and Security Hub on) is recorded by the SDK call counter, mapped to its IAM action, and
//! compared with the `FunctionRole` of `infra/template.yaml`, both ways (organization mode's
//! Organizations and STS calls included), and with the member role
//! of `infra/member.yaml` (organization mode), which makes the same IAM calls in each account.

use std::collections::BTreeSet;

use chrono::Utc;
use iam_sentinel::app::RunOptions;
use iam_sentinel::runtime::build_app_with;

use crate::common::{Account, registry, sample};
use crate::infra::{KEY_WRITES, actions, member_role_statements, member_template, role_statements, template};

/// The IAM action that authorises an SDK operation (`sns:PublishBatch` is `sns:Publish`).
fn action_of(operation: &str) -> String {
    match operation {
        "sns:PublishBatch" => "sns:Publish".to_owned(),
        other => other.to_owned(),
    }
}

/// Called only in organization mode, by the scan's list and digest steps in the management
/// account (`tests/it/root_access.rs` counts the call): compared below with the calls the
/// organization steps make.
pub(crate) const ORGANIZATION_ONLY: &[&str] = &["iam:ListOrganizationsFeatures"];

/// The `iam:`, `sns:`, `secretsmanager:`, `securityhub:`, `dynamodb:`, `organizations:` and
/// `sts:` actions the template's `FunctionRole` grants (organization mode's among them).
fn role_actions() -> BTreeSet<String> {
    let template = template();
    role_statements(&template)
        .into_iter()
        .flat_map(actions)
        .filter(|a| {
            ["iam:", "sns:", "secretsmanager:", "securityhub:", "dynamodb:", "organizations:", "sts:"]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_role_grants_exactly_the_actions_the_code_really_calls() {
    // The scan reads Security Hub's findings back: see `on_big_stack`.
    crate::security_hub::on_big_stack(role_matches_calls);
}

async fn role_matches_calls() {
    let acct = Account::new().await;
    let soon = (Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &soon)])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    acct.create_key("svc-legacy-erp").await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    // A break-glass role and user as the samples name them: the scan looks the role up (GetRole).
    let (app, counter) = build_app_with(
        acct.config(&[
            ("AUTO_REMEDIATE", "true"),
            ("SECURITY_HUB", "true"),
            ("BREAK_GLASS_ROLE_ARNS", "arn:aws:iam::123456789012:role/BreakGlassAdmin"),
            ("BREAK_GLASS_USERS", "break-glass-admin"),
            ("ROTATE_KEYS", "true"),
            ("DEACTIVATE_STALE_KEYS", "true"),
        ]),
        &acct.sdk,
    );

    let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let opts = RunOptions::at(Utc::now());
    for file in &files {
        Box::pin(app.handle(sample(file), &opts)).await.unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    acct.create_user("svc-rotated", &[("iam-sentinel:rotation", "auto")]).await;
    acct.create_key("svc-rotated").await;
    // A scan judged 200 days ahead: svc-legacy-erp's key is past its limit plus the grace, so
    // the deactivation path runs (moto cannot backdate keys). Its approval has lapsed by then too.
    let later = RunOptions::at(Utc::now() + chrono::Duration::days(200));
    let report = Box::pin(app.scan(None, &later)).await.unwrap();
    assert!(
        report.findings.iter().any(|f| {
            f.remediation.as_ref().is_some_and(|r| {
                r.action == "deactivate" && r.status == iam_sentinel::finding::RemediationStatus::Applied
            })
        }),
        "a key was deactivated"
    );
    // An opted-in user (created before the scan above, which rotated its key) walked through the
    // rotation's later steps: deactivation, deletion, and its next rotation.
    let day0 = Utc::now();
    // Its consumer moves to the new key: the evidence the deactivation needs.
    let (id, secret_key, _) = crate::rotation::secret_of(&acct, "svc-rotated").await.unwrap();
    crate::rotation::use_key(&acct, "svc-rotated", &id, &secret_key).await;
    for day in [76, 90, 100] {
        let opts = RunOptions { publish: false, ..RunOptions::at(day0 + chrono::Duration::days(day)) };
        Box::pin(app.scan(None, &opts)).await.unwrap();
    }
    let mut called: BTreeSet<String> = counter.snapshot().calls.keys().map(|op| action_of(op)).collect();
    let single_account = called.clone();
    // The state table's calls: every sample delivered twice (claimed, then a duplicate), and a scan.
    let table = crate::memory::create_state_table(&acct.sdk).await;
    let (stateful, state_counter) = build_app_with(acct.config(&[("STATE_TABLE", &table)]), &acct.sdk);
    for file in &files {
        for _ in 0..2 {
            Box::pin(stateful.handle(sample(file), &opts)).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
    Box::pin(stateful.scan(None, &RunOptions::at(Utc::now()))).await.unwrap();
    let state_calls: BTreeSet<String> =
        state_counter.snapshot().calls.keys().map(|op| action_of(op)).filter(|a| a.starts_with("dynamodb:")).collect();
    called.extend(state_calls);
    called.extend(Box::pin(organization_calls(&acct)).await);
    // AWS allows sts:GetCallerIdentity to everyone: it needs no grant.
    called.remove("sts:GetCallerIdentity");

    let granted = role_actions();
    let not_granted: Vec<_> = called.difference(&granted).collect();
    let never_called: Vec<_> = granted.difference(&called).collect();
    assert!(not_granted.is_empty(), "called but not granted by FunctionRole: {not_granted:?}");
    assert!(never_called.is_empty(), "granted by FunctionRole but never called: {never_called:?}");
    // In organization mode the same reads and the untag run through the member role; key changes
    // are refused there (the configuration rejects them), so the member role has none.
    let member = member_template();
    let member_granted: BTreeSet<String> =
        member_role_statements(&member).into_iter().flat_map(|(_, s)| actions(s)).map(str::to_owned).collect();
    let member_called: BTreeSet<String> =
        single_account.iter().filter(|a| a.starts_with("iam:") && !KEY_WRITES.contains(&a.as_str())).cloned().collect();
    assert_eq!(
        member_granted, member_called,
        "the member role grants exactly the IAM calls the per-account path makes"
    );
    // The untag path really ran (remediation of dev-mallory), so UntagUser is proven, not assumed.
    assert!(called.contains("iam:UntagUser"), "{called:?}");
    assert!(called.contains("iam:UpdateAccessKey"), "{called:?}");
    assert!(called.contains("securityhub:GetFindings"), "the scan sample ran the lifecycle: {called:?}");
    assert!(called.contains("iam:GetRole"), "the scan looked up the break-glass role: {called:?}");
    // Once by the sample scan for the registry; the rotation scans read it and the user's secret.
    assert!(counter.snapshot().calls.get("secretsmanager:DescribeSecret").is_some_and(|n| *n >= 1));
    for rotation in [
        "iam:CreateAccessKey",
        "iam:UpdateAccessKey",
        "iam:DeleteAccessKey",
        "secretsmanager:TagResource",
        "secretsmanager:UntagResource",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:GetResourcePolicy",
    ] {
        assert!(called.contains(rotation), "the rotation walk called {rotation}: {called:?}");
    }
    acct.received().await;
}

/// The operations organization mode makes, in the same moto: an organization whose management
/// account is the test's, with one member in an OU under the seed SCP; the three steps of the
/// state machine (list, a member's scan through its role, the digest with the SCP coverage),
/// then the member's app for an event it forwards (its name read with DescribeAccount).
async fn organization_calls(acct: &Account) -> BTreeSet<String> {
    use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
    use iam_sentinel::lambda::org_step;
    use iam_sentinel::org::run::OrgRequest;

    let orgs = aws_sdk_organizations::Client::new(&acct.sdk);
    orgs.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let root = orgs.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_owned();
    let ou = orgs.create_organizational_unit().parent_id(&root).name("Workloads").send().await.unwrap();
    let ou = ou.organizational_unit().unwrap().id().unwrap().to_owned();
    let created = orgs.create_account().account_name("member").email("member@example.com").send().await.unwrap();
    let member = created.create_account_status().unwrap().account_id().unwrap().to_owned();
    orgs.move_account().account_id(&member).source_parent_id(&root).destination_parent_id(&ou).send().await.unwrap();
    let seed = include_str!("../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");
    let scp = orgs
        .create_policy()
        .name("RestrictIAMUserAccessWithExceptions")
        .description("seed")
        .r#type(PolicyType::ServiceControlPolicy)
        .content(seed)
        .send()
        .await
        .unwrap();
    let scp = scp.policy().unwrap().policy_summary().unwrap().id().unwrap().to_owned();
    orgs.attach_policy().policy_id(&scp).target_id(&ou).send().await.unwrap();

    // In organization mode every approval names its account: an empty registry reads as one.
    acct.put_registry(r#"{"exceptions":[]}"#).await;
    let vars = [("ORGANIZATION_MODE", "true"), ("ENTERPRISE_CIDRS", "192.0.2.0/24,203.0.113.0/24,2001:db8:1234::/48")];
    let deployment = iam_sentinel::runtime::Deployment::build(acct.config(&vars), &acct.sdk).await.unwrap();
    let opts = RunOptions { publish: false, ..RunOptions::at(Utc::now()) };
    let mut calls: BTreeSet<String> = BTreeSet::new();
    let listed = org_step(&deployment, OrgRequest::ListAccounts, &opts).await.unwrap();
    let management = listed["management_account"].as_str().unwrap().to_owned();
    let request = OrgRequest::ScanAccount {
        account: member.clone(),
        account_name: None,
        management_account: Some(management.clone()),
        root_managed_centrally: None,
    };
    let scanned = org_step(&deployment, request, &opts).await.unwrap();
    // What the state machine keeps of a child's answer (its ResultSelector).
    let kept: serde_json::Map<String, serde_json::Value> = scanned
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| ["account", "users_scanned", "severity_counts", "check_counts", "v"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let input = serde_json::from_value(serde_json::json!({"accounts": listed["accounts"], "results": [kept]})).unwrap();
    // moto has no iam:ListOrganizationsFeatures: the digest step fails by name after its reads.
    let digest = org_step(&deployment, OrgRequest::Digest(input), &opts).await.unwrap_err();
    assert!(digest.message.contains("iam:ListOrganizationsFeatures"), "{digest:?}");
    calls.extend(deployment.counter.snapshot().calls.keys().map(|op| action_of(op)));

    // An event forwarded from the member, to a function that has not listed the accounts yet:
    // the member's app, named with DescribeAccount.
    let fresh = iam_sentinel::runtime::Deployment::build(acct.config(&vars), &acct.sdk).await.unwrap();
    drop(fresh.app_for(&member, None, false, Utc::now()).await.unwrap());
    calls.extend(fresh.counter.snapshot().calls.keys().map(|op| action_of(op)));
    assert!(calls.contains("sts:AssumeRole") && calls.contains("organizations:DescribeAccount"), "{calls:?}");
    calls
}
