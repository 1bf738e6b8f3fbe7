//! The policy checks against moto: groups, customer and AWS managed policies, inline policies
//! and the account password policy, judged by the scan and by the events that change them;
//! both paths agree per user, and a subscriber receives what the events find.

use crate::common::{Account, pairs, registry, sample};
use chrono::Utc;
use iam_sentinel::app::{Outcome, RunOptions};
use iam_sentinel::finding::Finding;
use iam_sentinel::runtime::build_app_with;
use serde_json::Value;

const NETWORK: &str = include_str!("../../infra/policies/EnterpriseNetworkRestriction.json");
const REQUIRE_MFA: &str = include_str!("../../infra/policies/RequireMFA.json");
/// The published policy's own ranges.
const CIDRS: &str = "192.0.2.0/24,203.0.113.0/24,2001:db8:1234::/48";
const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

const POLICY_CHECKS: &[&str] = &[
    "network-restriction-missing",
    "network-restriction-weakened",
    "mfa-policy-missing",
    "user-admin-access",
    "user-direct-policy",
    "password-policy-weak",
];

fn policy_pairs(findings: &[Finding]) -> Vec<(String, String)> {
    pairs(
        findings
            .iter()
            .filter(|f| POLICY_CHECKS.contains(&f.check.as_str()))
            .map(|f| (f.check.as_str(), f.user.as_deref().unwrap_or(""))),
    )
}

fn guardrail() -> Vec<(&'static str, &'static str)> {
    vec![("NETWORK_GUARDRAIL", "identity-policy"), ("ENTERPRISE_CIDRS", CIDRS)]
}

async fn create_policy(acct: &Account, name: &str, doc: &str) -> String {
    let out = acct.iam.create_policy().policy_name(name).policy_document(doc).send().await.unwrap();
    out.policy.unwrap().arn.unwrap()
}

async fn group(acct: &Account, name: &str, policies: &[&str]) {
    acct.iam.create_group().group_name(name).send().await.unwrap();
    for arn in policies {
        acct.iam.attach_group_policy().group_name(name).policy_arn(*arn).send().await.unwrap();
    }
}

async fn join(acct: &Account, user: &str, group: &str) {
    acct.iam.add_user_to_group().user_name(user).group_name(group).send().await.unwrap();
}

/// Users covered in every way, and not; returns the ARN of the weakened network policy.
async fn fixture() -> (Account, String) {
    let acct = Account::with_managed_policies().await;
    acct.put_registry(&registry(&[])).await;
    let network = create_policy(&acct, "EnterpriseNetworkRestriction", NETWORK).await;
    let mfa = create_policy(&acct, "RequireMFA", REQUIRE_MFA).await;
    let wide = create_policy(&acct, "VendorNetwork", &NETWORK.replace("192.0.2.0/24", "192.0.0.0/16")).await;
    let everything = create_policy(&acct, "Everything", ALLOW_ALL).await;
    // An unattached look-alike reaches nobody and is not even read.
    create_policy(&acct, "Unused", ALLOW_ALL).await;
    group(&acct, "staff", &[&network, &mfa]).await;
    group(&acct, "contractors", &[&wide, &mfa]).await;
    group(&acct, "admins", &[ADMIN]).await;

    // alice: console, in staff: covered.
    acct.create_user("alice", &[]).await;
    acct.create_login_profile("alice").await;
    join(&acct, "alice", "staff").await;
    // bob: console, in no group: neither network nor MFA policy.
    acct.create_user("bob", &[]).await;
    acct.create_login_profile("bob").await;
    // carol: key, in contractors: the network policy's range is wider than the enterprise's.
    acct.create_user("carol", &[]).await;
    acct.create_key("carol").await;
    join(&acct, "carol", "contractors").await;
    // dan: key, in admins and staff: administrator through a group, AWS managed.
    acct.create_user("dan", &[]).await;
    acct.create_key("dan").await;
    join(&acct, "dan", "admins").await;
    join(&acct, "dan", "staff").await;
    // erin: key, in staff, plus a direct policy allowing everything and an inline one.
    acct.create_user("erin", &[]).await;
    acct.create_key("erin").await;
    join(&acct, "erin", "staff").await;
    acct.iam.attach_user_policy().user_name("erin").policy_arn(&everything).send().await.unwrap();
    acct.iam
        .put_user_policy()
        .user_name("erin")
        .policy_name("notes")
        .policy_document(REQUIRE_MFA)
        .send()
        .await
        .unwrap();
    // idle: no credentials, no group: nothing to restrict.
    acct.create_user("idle", &[]).await;
    acct.iam.update_account_password_policy().minimum_password_length(8).send().await.unwrap();
    (acct, wide)
}

fn expected() -> Vec<(String, String)> {
    pairs([
        ("network-restriction-missing", "bob"),
        ("mfa-policy-missing", "bob"),
        ("network-restriction-weakened", "carol"),
        ("user-admin-access", "dan"),
        ("user-admin-access", "erin"),
        ("user-direct-policy", "erin"),
        ("password-policy-weak", ""),
    ])
}

/// `sample` rewritten to be about `user`.
fn event_about(sample_name: &str, key: &str, value: &str) -> Value {
    let mut e = sample(sample_name);
    e["detail"]["requestParameters"][key] = value.into();
    e
}

#[tokio::test]
async fn the_scan_judges_every_user_by_the_policies_that_reach_it() {
    let (acct, _) = fixture().await;
    let (app, counter) = build_app_with(acct.config(&guardrail()), &acct.sdk);
    let report = app.scan(None, &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(policy_pairs(&report.findings), expected());

    let weak = report.findings.iter().find(|f| f.check.as_str() == "network-restriction-weakened").unwrap();
    assert_eq!(weak.evidence["policies"][0]["policy"], "VendorNetwork");
    assert_eq!(weak.evidence["policies"][0]["via"], "through group contractors");
    assert!(weak.message.contains("192.0.0.0/16 is wider than the enterprise range 192.0.2.0/24"), "{}", weak.message);
    let admin =
        report.findings.iter().find(|f| f.check.as_str() == "user-admin-access" && f.user.as_deref() == Some("dan"));
    assert_eq!(admin.unwrap().evidence["policies"][0]["policy"], "AdministratorAccess");
    let direct = report.findings.iter().find(|f| f.check.as_str() == "user-direct-policy").unwrap();
    assert_eq!(direct.evidence["attached"], serde_json::json!(["Everything"]));
    assert_eq!(direct.evidence["inline"], serde_json::json!(["notes"]));
    let password = report.findings.iter().find(|f| f.check.as_str() == "password-policy-weak").unwrap();
    assert!(password.message.contains("minimum password length is 8, below 14"), "{}", password.message);

    // Bulk only: one GetAccountAuthorizationDetails page, one GetAccountPasswordPolicy.
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("iam:GetAccountAuthorizationDetails"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("iam:GetAccountPasswordPolicy"), Some(&1), "{calls:?}");
    for per_user in ["iam:GetUser", "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser", "iam:GetPolicyVersion"] {
        assert!(!calls.contains_key(per_user), "{per_user} in {calls:?}");
    }

    // Without the identity-policy guardrail the network checks stay silent.
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let report = app.scan(None, &RunOptions { publish: false, ..RunOptions::at(Utc::now()) }).await.unwrap();
    let without: Vec<_> =
        expected().into_iter().filter(|(c, _)| !c.starts_with("network-restriction")).collect::<Vec<_>>();
    assert_eq!(policy_pairs(&report.findings), without);
}

#[tokio::test]
async fn a_user_event_judges_that_user_as_the_scan_does() {
    let (acct, _) = fixture().await;
    let (app, counter) = build_app_with(acct.config(&guardrail()), &acct.sdk);
    let scan = app.scan(None, &RunOptions { publish: false, ..RunOptions::at(Utc::now()) }).await.unwrap();
    for user in ["alice", "bob", "carol", "dan", "erin", "idle"] {
        counter.reset();
        let event = event_about("attach-user-policy-admin.json", "userName", user);
        let report = app.handle(event, &RunOptions::at(Utc::now())).await.unwrap();
        let from_scan: Vec<Finding> =
            scan.findings.iter().filter(|f| f.user.as_deref() == Some(user)).cloned().collect();
        assert_eq!(policy_pairs(&report.findings), policy_pairs(&from_scan), "{user}: event and scan agree");
        // GAAD once, then the user's own reads (≤ 6): never the credential report.
        let calls = counter.snapshot().calls;
        assert_eq!(calls.get("iam:GetAccountAuthorizationDetails"), Some(&1), "{user}: {calls:?}");
        assert!(!calls.contains_key("iam:GenerateCredentialReport"), "{user}: {calls:?}");
        let received = acct.received().await;
        assert_eq!(received.len(), report.findings.len(), "{user}: one message per finding");
        for r in &received {
            assert_eq!(r.finding["evidence"]["changed"], format!("user {user}"));
            assert_eq!(
                r.finding["evidence"]["changed_by"],
                "arn:aws:sts::123456789012:assumed-role/SecurityAdmin/jdoe"
            );
        }
    }
}

#[tokio::test]
async fn a_group_or_policy_change_judges_every_user_it_reaches() {
    let (acct, wide) = fixture().await;
    let (app, counter) = build_app_with(acct.config(&guardrail()), &acct.sdk);
    // The contractors' network policy is fixed by a new default version: carol is covered again.
    acct.iam
        .create_policy_version()
        .policy_arn(&wide)
        .policy_document(NETWORK)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let mut event = event_about("create-policy-version-default.json", "policyArn", &wide);
    event["detail"]["requestParameters"]["policyDocument"] = NETWORK.into();
    let report = app.handle(event, &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(report.outcome, Outcome::Processed);
    assert!(policy_pairs(&report.findings).is_empty(), "{:?}", policy_pairs(&report.findings));

    // Staff loses its network policy: every member is judged, in bulk.
    let network = "arn:aws:iam::123456789012:policy/EnterpriseNetworkRestriction";
    acct.iam.detach_group_policy().group_name("staff").policy_arn(network).send().await.unwrap();
    counter.reset();
    let mut event = event_about("attach-group-policy.json", "groupName", "staff");
    event["detail"]["eventName"] = "DetachGroupPolicy".into();
    event["detail"]["requestParameters"]["policyArn"] = network.into();
    let report = app.handle(event, &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(
        policy_pairs(&report.findings),
        pairs([
            ("network-restriction-missing", "alice"),
            ("network-restriction-missing", "dan"),
            ("network-restriction-missing", "erin"),
            ("user-admin-access", "dan"),
            ("user-admin-access", "erin"),
            ("user-direct-policy", "erin"),
        ])
    );
    assert_eq!(acct.received().await.len(), report.findings.len());
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("iam:GetUser"), Some(&3), "three members read fresh: {calls:?}");

    // A group too large to read user by user: the credential report instead, once.
    group(&acct, "temps", &[]).await;
    let temps: Vec<String> = (0..6).map(|i| format!("temp-{i}")).collect();
    for name in &temps {
        acct.create_user(name, &[]).await;
        acct.create_key(name).await;
        join(&acct, name, "temps").await;
    }
    counter.reset();
    let event = event_about("attach-group-policy.json", "groupName", "temps");
    let report = app.handle(event, &RunOptions::at(Utc::now())).await.unwrap();
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("iam:GetCredentialReport"), Some(&1), "{calls:?}");
    assert_eq!(
        policy_pairs(&report.findings),
        pairs(temps.iter().map(|t| ("network-restriction-missing", t.as_str())))
    );

    // A group nobody is in: nothing to judge, said so.
    acct.iam.create_group().group_name("empty").send().await.unwrap();
    let report = app
        .handle(event_about("attach-group-policy.json", "groupName", "empty"), &RunOptions::at(Utc::now()))
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Ignored("group empty reaches no user".into()));
}

#[tokio::test]
async fn password_policy_events_judge_the_policy_now_in_force() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    let (app, counter) = build_app_with(acct.config(&[("PASSWORD_MAX_AGE_DAYS", "90")]), &acct.sdk);
    let event = || sample("update-account-password-policy.json");

    // No policy at all.
    acct.iam.delete_account_password_policy().send().await.unwrap();
    let report = app.handle(event(), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(policy_pairs(&report.findings), pairs([("password-policy-weak", "")]));
    assert_eq!(report.findings[0].evidence["weaknesses"][0]["weakness"], "no-policy");
    assert_eq!(counter.snapshot().total_calls(), 2, "one GetAccountPasswordPolicy and one PublishBatch");

    // CIS minimums but no expiry, while the organisation rotates every 90 days.
    acct.iam
        .update_account_password_policy()
        .minimum_password_length(14)
        .password_reuse_prevention(24)
        .send()
        .await
        .unwrap();
    let report = app.handle(event(), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(
        report.findings[0].message,
        "the account password policy is weak: passwords never expire (needs at most 90 days)"
    );
    let received = acct.received().await;
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[1].finding["evidence"]["changed_by"],
        "arn:aws:sts::123456789012:assumed-role/SecurityAdmin/jdoe"
    );

    // Everything required: nothing to report.
    acct.iam
        .update_account_password_policy()
        .minimum_password_length(16)
        .password_reuse_prevention(24)
        .max_password_age(90)
        .send()
        .await
        .unwrap();
    let report = app.handle(event(), &RunOptions::at(Utc::now())).await.unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(acct.received().await.is_empty());
}

/// An event name, its request parameters, the (check, user) pairs it must publish, and the
/// outcome (a step publishing nothing says whether users were judged or none was reached).
type Step<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>, Outcome);

#[tokio::test]
async fn every_policy_event_judges_what_it_changed_after_the_change() {
    let (acct, _) = fixture().await;
    let (app, _) = build_app_with(acct.config(&guardrail()), &acct.sdk);
    let network = "arn:aws:iam::123456789012:policy/EnterpriseNetworkRestriction";
    let everything = "arn:aws:iam::123456789012:policy/Everything";
    let iam = &acct.iam;
    // Each step: make the change in moto, then hand the function the event CloudTrail records.
    let processed = || Outcome::Processed;
    let steps: Vec<Step<'_>> = vec![
        (
            "DetachUserPolicy",
            serde_json::json!({"userName": "erin", "policyArn": everything}),
            vec![("user-direct-policy", "erin")],
            processed(),
        ),
        ("DeleteUserPolicy", serde_json::json!({"userName": "erin", "policyName": "notes"}), vec![], processed()),
        (
            "PutUserPolicy",
            serde_json::json!({"userName": "bob", "policyName": "mfa"}),
            vec![("network-restriction-missing", "bob"), ("user-direct-policy", "bob")],
            processed(),
        ),
        // dan is in admins: an inline policy allowing everything, then removed, leaves him an
        // administrator through AdministratorAccess; once he leaves, nobody is.
        (
            "PutGroupPolicy",
            serde_json::json!({"groupName": "admins", "policyName": "all"}),
            vec![("user-admin-access", "dan")],
            processed(),
        ),
        (
            "DeleteGroupPolicy",
            serde_json::json!({"groupName": "admins", "policyName": "all"}),
            vec![("user-admin-access", "dan")],
            processed(),
        ),
        ("RemoveUserFromGroup", serde_json::json!({"userName": "dan", "groupName": "admins"}), vec![], processed()),
        (
            "PutGroupPolicy",
            serde_json::json!({"groupName": "admins", "policyName": "all"}),
            vec![],
            Outcome::Ignored("group admins reaches no user".into()),
        ),
        ("SetDefaultPolicyVersion", serde_json::json!({"policyArn": network, "versionId": "v1"}), vec![], processed()),
        ("DeleteAccountPasswordPolicy", Value::Null, vec![("password-policy-weak", "")], processed()),
    ];
    for (name, request, expected, outcome) in steps {
        match name {
            "DetachUserPolicy" => {
                iam.detach_user_policy().user_name("erin").policy_arn(everything).send().await.unwrap();
            }
            "DeleteUserPolicy" => {
                iam.delete_user_policy().user_name("erin").policy_name("notes").send().await.unwrap();
            }
            "PutUserPolicy" => {
                iam.put_user_policy()
                    .user_name("bob")
                    .policy_name("mfa")
                    .policy_document(REQUIRE_MFA)
                    .send()
                    .await
                    .unwrap();
            }
            "RemoveUserFromGroup" => {
                iam.remove_user_from_group().user_name("dan").group_name("admins").send().await.unwrap();
            }
            "PutGroupPolicy" => {
                iam.put_group_policy()
                    .group_name("admins")
                    .policy_name("all")
                    .policy_document(ALLOW_ALL)
                    .send()
                    .await
                    .unwrap();
            }
            "DeleteGroupPolicy" => {
                iam.delete_group_policy().group_name("admins").policy_name("all").send().await.unwrap();
            }
            "DeleteAccountPasswordPolicy" => {
                iam.delete_account_password_policy().send().await.unwrap();
            }
            _ => {}
        }
        let mut event = sample("attach-user-policy-admin.json");
        event["detail"]["eventName"] = name.into();
        event["detail"]["requestParameters"] = request;
        let report = app.handle(event, &RunOptions::at(Utc::now())).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(policy_pairs(&report.findings), pairs(expected), "{name}: {:?}", report.outcome);
        assert_eq!(report.outcome, outcome, "{name}");
        assert_eq!(acct.received().await.len(), report.findings.len(), "{name}");
    }
}
