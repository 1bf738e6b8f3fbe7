//! Remediation that cannot be turned against the account, tried as an attacker would against
//! moto: a secret planted at a rotation secret's name, the rotation secret's resource policy
//! evaluated for every principal, and a stale key that is only old or was used since the
//! credential report.

use chrono::{Duration, Utc};
use iam_sentinel::app::RunOptions;
use iam_sentinel::app::rotation::secret_name;
use iam_sentinel::aws::rotation::{AwsKeyRotation, MARKER_TAG, SecretAccess, secret_policy};
use iam_sentinel::finding::{Action, CheckId, RemediationStatus};
use iam_sentinel::remediate::stale;
use iam_sentinel::runtime::build_app_with;
use iam_sentinel::snapshot::KeyRef;
use serde_json::Value;

use crate::common::{ACCOUNT, Account, registry};

const STACK_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-stack-key";
const FUNCTION_ROLE: &str = "arn:aws:iam::123456789012:role/iam-sentinel-FunctionRole";
const ESCROW: &str = "arn:aws:iam::123456789012:role/key-escrow";
const ATTACKER: &str = "arn:aws:iam::123456789012:user/mallory";

fn user_arn(user: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{user}")
}

fn settings() -> [(&'static str, &'static str); 4] {
    [
        ("ROTATE_KEYS", "true"),
        ("ROTATION_KMS_KEY_ID", STACK_KEY),
        ("SELF_ROLE_ARN", FUNCTION_ROLE),
        ("ROTATION_SECRET_READERS", ESCROW),
    ]
}

fn access() -> SecretAccess {
    SecretAccess { readers: vec![ESCROW.into()], writer: Some(FUNCTION_ROLE.into()) }
}

fn tag(k: &str, v: &str) -> aws_sdk_secretsmanager::types::Tag {
    aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build()
}

/// Attack 1: whoever can tag a user and create a secret at its rotation secret's name must
/// not receive a new key through it. Every planted variant (no marker, the marker with
/// another KMS key, no resource policy, a policy that lets the planter read) is refused by name
/// and no key is created.
#[tokio::test]
async fn a_secret_planted_at_the_rotation_name_receives_no_key() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    let planted: [(&str, &str); 4] = [
        ("admin-plain", "it has no iam-sentinel:managed-by=key-rotation tag"),
        ("admin-other-kms", "it is encrypted with Secrets Manager's default key instead of"),
        ("admin-no-policy", "it has no resource policy"),
        ("admin-open-policy", "its resource policy is not the rotation's"),
    ];
    for (user, _) in planted {
        acct.create_user(user, &[("iam-sentinel:rotation", "auto")]).await;
        acct.create_key(user).await;
        let name = secret_name(ACCOUNT, user);
        let create = acct.secrets.create_secret().name(&name).secret_string("{}");
        let create = match user {
            "admin-plain" => create,
            "admin-other-kms" => create.tags(tag(MARKER_TAG.0, MARKER_TAG.1)),
            _ => create.tags(tag(MARKER_TAG.0, MARKER_TAG.1)).kms_key_id(STACK_KEY),
        };
        create.send().await.unwrap();
        if user == "admin-open-policy" {
            // The genuine shape, with the planter among the readers.
            let open = SecretAccess { readers: vec![ESCROW.into(), ATTACKER.into()], ..access() };
            let policy = secret_policy(&user_arn(user), &open).to_string();
            acct.secrets.put_resource_policy().secret_id(&name).resource_policy(policy).send().await.unwrap();
        }
    }
    let (app, counter) = build_app_with(acct.config(&settings()), &acct.sdk);
    let report = app
        .scan(None, &RunOptions { publish: false, ..RunOptions::at(Utc::now() + Duration::days(80)) })
        .await
        .unwrap();
    for (user, reason) in planted {
        let stalled = report
            .findings
            .iter()
            .find(|f| f.check == CheckId::RotationStalled && f.user.as_deref() == Some(user))
            .unwrap_or_else(|| panic!("{user}: no rotation-stalled in {:?}", report.findings));
        assert!(
            stalled.message.contains("was not created by the rotation") && stalled.message.contains(reason),
            "{user}: {}",
            stalled.message
        );
        let keys = acct.iam.list_access_keys().user_name(user).send().await.unwrap();
        assert_eq!(keys.access_key_metadata().len(), 1, "{user}: no key created");
    }
    let calls = counter.snapshot().calls;
    assert!(!calls.contains_key("iam:CreateAccessKey"), "{calls:?}");
    assert!(!calls.contains_key("secretsmanager:PutSecretValue"), "{calls:?}");
}

/// Whether `principal` may take `action` on a secret with resource policy `policy`, given
/// whether its own IAM policies allow it (same account: either side's Allow suffices; any
/// matching Deny wins).
fn allowed(policy: &Value, principal: &str, action: &str, identity_allows: bool) -> bool {
    let statements = policy["Statement"].as_array().unwrap();
    let applies = |s: &Value| match &s["Action"] {
        Value::String(a) => a == action,
        Value::Array(a) => a.iter().any(|x| x == action),
        _ => panic!("unexpected Action {s}"),
    };
    let condition_holds = |s: &Value| {
        let Some(conditions) = s.get("Condition").and_then(Value::as_object) else { return true };
        conditions.iter().all(|(operator, keys)| {
            keys.as_object().unwrap().iter().all(|(key, values)| {
                assert_eq!(key, "aws:PrincipalArn", "no evaluator for {key}: extend the test");
                let listed = values.as_array().unwrap().iter().any(|v| v == principal);
                match operator.as_str() {
                    "StringNotEquals" => !listed,
                    "StringEquals" => listed,
                    _ => panic!("no evaluator for {operator}: extend the test"),
                }
            })
        })
    };
    let principal_matches = |s: &Value| match &s["Principal"] {
        Value::String(p) => p == "*",
        p => p["AWS"].as_array().unwrap().iter().any(|v| v == principal),
    };
    let matching: Vec<&Value> =
        statements.iter().filter(|s| applies(s) && principal_matches(s) && condition_holds(s)).collect();
    if matching.iter().any(|s| s["Effect"] == "Deny") {
        return false;
    }
    identity_allows || matching.iter().any(|s| s["Effect"] == "Allow")
}

/// Attack 2: the secret a rotation creates carries the stack's KMS key, the marker and a
/// resource policy under which only the user (and the configured readers) read it, even when
/// their IAM policies allow reading `iam-sentinel/keys/*`, and only the function writes it.
#[tokio::test]
async fn the_rotation_secret_is_readable_by_its_user_alone_and_written_by_the_function_alone() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-app", &[("iam-sentinel:rotation", "auto")]).await;
    acct.create_key("svc-app").await;
    let (app, counter) = build_app_with(acct.config(&settings()), &acct.sdk);
    let opts = |d| RunOptions { publish: false, ..RunOptions::at(Utc::now() + Duration::days(d)) };
    app.scan(None, &opts(75)).await.unwrap();
    let reads_before = counter.snapshot().calls.get("secretsmanager:GetSecretValue").copied();
    counter.reset();
    let report = app.scan(None, &opts(76)).await.unwrap();
    assert!(report.findings.iter().any(|f| f.check == CheckId::AccessKeyRotated), "{:?}", report.failure);
    // The rotation read no secret value: the scan read the registry exactly as the day before.
    assert_eq!(counter.snapshot().calls.get("secretsmanager:GetSecretValue").copied(), reads_before);

    let name = secret_name(ACCOUNT, "svc-app");
    let described = acct.secrets.describe_secret().secret_id(&name).send().await.unwrap();
    assert_eq!(described.kms_key_id(), Some(STACK_KEY));
    assert!(described.tags().iter().any(|t| t.key() == Some(MARKER_TAG.0) && t.value() == Some(MARKER_TAG.1)));
    let policy: Value = serde_json::from_str(
        acct.secrets.get_resource_policy().secret_id(&name).send().await.unwrap().resource_policy().unwrap(),
    )
    .unwrap();
    let user = user_arn("svc-app");
    let read = "secretsmanager:GetSecretValue";
    let write = "secretsmanager:PutSecretValue";
    // (principal, its IAM policies allow it, may read, may write)
    for (principal, identity, reads, writes) in [
        (user.as_str(), false, true, false),
        (ESCROW, false, true, false),
        (ATTACKER, true, false, false),
        ("arn:aws:iam::123456789012:role/Admin", true, false, false),
        (FUNCTION_ROLE, true, false, true),
        ("arn:aws:iam::999999999999:root", false, false, false),
    ] {
        assert_eq!(allowed(&policy, principal, read, identity), reads, "{principal} reading");
        assert_eq!(allowed(&policy, principal, write, identity), writes, "{principal} writing");
        for repolicy in ["secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy"] {
            assert_eq!(
                allowed(&policy, principal, repolicy, identity),
                principal == FUNCTION_ROLE,
                "{principal} {repolicy}"
            );
        }
    }
    // The policy is the one the rotation accepts as its own on the next run.
    assert_eq!(policy, secret_policy(&user, &access()));
}

async fn one_key(acct: &Account, user: &str) -> String {
    let keys = acct.iam.list_access_keys().user_name(user).send().await.unwrap();
    let k = &keys.access_key_metadata()[0];
    format!("{}:{}", k.access_key_id().unwrap(), k.status().unwrap().as_str())
}

/// Attack 3: with `DEACTIVATE_STALE_KEYS=true`, a key that is only old keeps its finding and
/// stays active (moto, 150 days ahead); and a key the report judged unused but that was used
/// since (an hour before "now", as IAM answers `GetAccessKeyLastUsed` right before acting) is
/// not deactivated. moto cannot date a use in the simulated future: that answer is mocked.
#[tokio::test]
async fn a_key_in_use_is_never_deactivated() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-prod", &[]).await;
    let id = acct.create_key("svc-prod").await;
    // Old (150 days > 90 + 30) but unused for less than KEY_UNUSED_DAYS + grace: only old.
    let (app, counter) =
        build_app_with(acct.config(&[("DEACTIVATE_STALE_KEYS", "true"), ("KEY_UNUSED_DAYS", "200")]), &acct.sdk);
    let report = app
        .scan(None, &RunOptions { publish: false, ..RunOptions::at(Utc::now() + Duration::days(150)) })
        .await
        .unwrap();
    let stale = report.findings.iter().find(|f| f.check == CheckId::AccessKeyStale).expect("reported");
    let r = stale.remediation.clone().expect("the decision is on the finding");
    assert_eq!(r.status, RemediationStatus::Skipped);
    assert!(r.detail.unwrap().contains("a key in use is never deactivated"));
    assert_eq!(one_key(&acct, "svc-prod").await, format!("{id}:Active"));
    assert!(!counter.snapshot().calls.contains_key("iam:UpdateAccessKey"));

    // Judged unused from the report; IAM says it was used an hour before "now".
    let now = Utc::now() + Duration::days(200);
    let an_hour_ago = aws_sdk_iam::primitives::DateTime::from_secs((now - Duration::hours(1)).timestamp());
    let used = aws_smithy_mocks::mock!(aws_sdk_iam::Client::get_access_key_last_used).then_output(move || {
        let last = aws_sdk_iam::types::AccessKeyLastUsed::builder()
            .last_used_date(an_hour_ago)
            .service_name("s3")
            .region("us-east-1")
            .build()
            .unwrap();
        aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput::builder()
            .access_key_last_used(last)
            .build()
    });
    let mocked_iam = aws_smithy_mocks::mock_client!(aws_sdk_iam, aws_smithy_mocks::RuleMode::MatchAny, [&used]);
    let reader = AwsKeyRotation::new(mocked_iam, acct.secrets.clone(), None);
    let directory = iam_sentinel::aws::iam::IamDirectory::new(acct.iam.clone());
    let created = Utc::now() - Duration::seconds(5);
    let mut f = iam_sentinel::finding::Scope {
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        trigger: "schedule".into(),
        now,
    }
    .finding(CheckId::AccessKeyUnused, &user_arn("svc-prod"), "unused".into());
    f.user = Some("svc-prod".into());
    f.resource = Some(id.clone());
    f.action = Some(Action::DeactivateKey { user: "svc-prod".into(), key: KeyRef::Id(id.clone()), created });
    let mut findings = vec![f];
    let recheck = stale::Recheck { unused_days: 45, now };
    let failures = stale::execute(
        &directory,
        Some(&reader),
        &mut findings,
        recheck,
        iam_sentinel::config::StaleKeyMode::On,
        false,
        || false,
    )
    .await
    .unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let r = findings[0].remediation.clone().unwrap();
    assert_eq!(r.status, RemediationStatus::Skipped, "{r:?}");
    assert!(r.detail.as_deref().unwrap().contains("0 days ago, within KEY_UNUSED_DAYS = 45"), "{r:?}");
    assert_eq!(one_key(&acct, "svc-prod").await, format!("{id}:Active"));
}

/// A `TagUser` setting `user`'s opt-in tag, by `actor` (a role session).
fn opt_in_event(user: &str, actor_role: &str) -> Value {
    let mut e = crate::common::sample("tag-user-access-exception.json");
    e["detail"]["requestParameters"] = serde_json::json!({
        "userName": user, "tags": [{"key": "iam-sentinel:rotation", "value": "auto"}] });
    e["detail"]["userIdentity"]["arn"] =
        serde_json::json!(format!("arn:aws:sts::{ACCOUNT}:assumed-role/{actor_role}/kim"));
    e["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        serde_json::json!(format!("arn:aws:iam::{ACCOUNT}:role/{actor_role}"));
    e
}

/// Opting in is visible and governed: every opt-in is reported with who opted whom in; with
/// APPROVER_PRINCIPALS set, an opt-in by anyone else is not honoured (the tag is removed).
#[tokio::test]
async fn opting_in_is_reported_and_only_approvers_may_opt_users_in() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    for user in ["admin-alice", "svc-build"] {
        acct.create_user(user, &[("iam-sentinel:rotation", "auto")]).await;
    }
    let approver = format!("arn:aws:iam::{ACCOUNT}:role/SecurityAdmin");
    let (app, _) =
        build_app_with(acct.config(&[("ROTATE_KEYS", "true"), ("APPROVER_PRINCIPALS", approver.as_str())]), &acct.sdk);
    let now = RunOptions { publish: true, ..RunOptions::at(Utc::now()) };
    // Someone outside the approvers opts an administrator in: reported, not honoured.
    let report = app.handle(opt_in_event("admin-alice", "DevOps"), &now).await.unwrap();
    let f = report.findings.iter().find(|f| f.check == CheckId::RotationOptIn).expect("reported");
    assert!(
        f.message.contains("assumed-role/DevOps/kim opted admin-alice in") && f.message.contains("not honoured"),
        "{}",
        f.message
    );
    assert_eq!(f.remediation.as_ref().unwrap().status, RemediationStatus::Applied);
    assert!(acct.tags("admin-alice").await.is_empty(), "the opt-in tag was removed");
    // An approver's opt-in: reported, honoured.
    let report = app.handle(opt_in_event("svc-build", "SecurityAdmin"), &now).await.unwrap();
    let f = report.findings.iter().find(|f| f.check == CheckId::RotationOptIn).expect("reported");
    assert_eq!((f.evidence["honoured"].as_bool(), f.remediation.is_none()), (Some(true), true));
    assert_eq!(acct.tags("svc-build").await, [("iam-sentinel:rotation".to_owned(), "auto".to_owned())]);
    // The subscriber saw both, each naming who opted whom in.
    let received = acct.received().await;
    let seen: Vec<String> = received
        .iter()
        .filter(|r| r.attributes["check"] == "rotation-opt-in")
        .map(|r| r.finding["evidence"]["opted_in_by"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
}

/// A secret planted between the rotation's decision and its write is never written into.
#[tokio::test]
async fn a_secret_planted_after_the_decision_is_not_written_into() {
    use iam_sentinel::ports::KeyRotation;
    let acct = Account::new().await;
    acct.create_user("svc-app", &[("iam-sentinel:rotation", "auto")]).await;
    let rotation =
        AwsKeyRotation::new(acct.iam.clone(), acct.secrets.clone(), Some(STACK_KEY.into())).with_access(access());
    let name = secret_name(ACCOUNT, "svc-app");
    assert_eq!(rotation.not_ours(&name, &user_arn("svc-app")).await.unwrap(), None, "no secret yet");
    acct.secrets.create_secret().name(&name).secret_string("{}").send().await.unwrap();
    let key = rotation.create_key("svc-app").await.unwrap();
    let e = rotation.store(&name, "svc-app", &user_arn("svc-app"), &key).await.unwrap_err();
    assert!(e.to_string().contains("not written: the secret was not created by the rotation"), "{e}");
    let value = acct.secrets.get_secret_value().secret_id(&name).send().await.unwrap();
    assert_eq!(value.secret_string(), Some("{}"), "the planted value is untouched");
    assert_eq!(rotation.stage_key(&name, "AWSCURRENT").await.unwrap(), None);
}
