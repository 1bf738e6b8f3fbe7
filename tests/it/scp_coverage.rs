//! SCP coverage against moto's Organizations: an organization with several OUs, the seed's SCP
//! attached to one OU, detached from another, attached directly to an account, a weakened copy
//! on a third OU; the exact findings per account, the calls the bulk read makes, and each
//! Organizations event sample replayed after making its change, as a subscriber receives it.

use std::collections::BTreeMap;

use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
use chrono::Utc;
use iam_sentinel::app::{Outcome, Report, RunOptions};
use iam_sentinel::aws::CallCounter;
use iam_sentinel::aws::organizations::OrganizationReader;
use iam_sentinel::org::OrgContext;
use iam_sentinel::runtime::{AwsApp, build_app_with};
use serde_json::{Value, json};

use crate::common::{ACCOUNT, Account, sample};

const SEED: &str = include_str!("../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");
/// The seed's own ranges.
const CIDRS: &str = "192.0.2.0/24,203.0.113.0/24,2001:db8:1234::/48";
const SEED_NAME: &str = "RestrictIAMUserAccessWithExceptions";
const CALLER: &str = "arn:aws:sts::111111111111:assumed-role/OrgAdmin/asmith";

/// The organization, as moto made it: ids by name.
struct Org {
    acct: Account,
    client: aws_sdk_organizations::Client,
    counter: CallCounter,
    root: String,
    ous: BTreeMap<&'static str, String>,
    accounts: BTreeMap<&'static str, String>,
    seed: String,
    copy: String,
}

impl Org {
    fn ou(&self, name: &str) -> &str {
        &self.ous[name]
    }

    fn account(&self, name: &str) -> &str {
        &self.accounts[name]
    }

    /// Account id → name, for readable assertions; the management account is `management`
    /// (never judged: an assertion listing it fails), an account the test did not make panics.
    fn name_of(&self, id: &str) -> &'static str {
        if id == ACCOUNT {
            return "management";
        }
        self.accounts.iter().find(|(_, a)| *a == id).map_or_else(|| panic!("an unknown account {id}"), |(n, _)| *n)
    }

    fn reader(&self) -> OrganizationReader {
        OrganizationReader::new(self.client.clone())
    }

    fn app(&self) -> AwsApp {
        let (mut app, _) = build_app_with(self.acct.config(&config()), &self.acct.sdk);
        app.organization = Some(OrgContext {
            reader: self.reader(),
            account_name: None,
            management: false,
            root_managed_centrally: None,
        });
        app
    }

    async fn create_ou(&self, parent: &str, name: &str) -> String {
        let out = self.client.create_organizational_unit().parent_id(parent).name(name).send().await.unwrap();
        out.organizational_unit.unwrap().id.unwrap()
    }

    async fn create_account(&self, name: &str, parent: &str) -> String {
        let out =
            self.client.create_account().account_name(name).email(format!("{name}@example.com")).send().await.unwrap();
        let id = out.create_account_status.unwrap().account_id.unwrap();
        if parent != self.root {
            self.move_account(&id, &self.root, parent).await;
        }
        id
    }

    async fn move_account(&self, account: &str, from: &str, to: &str) {
        self.client
            .move_account()
            .account_id(account)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
            .await
            .unwrap();
    }

    async fn create_policy(&self, name: &str, kind: PolicyType, content: &str) -> String {
        let out = self
            .client
            .create_policy()
            .name(name)
            .description(name)
            .r#type(kind)
            .content(content)
            .send()
            .await
            .unwrap();
        out.policy.unwrap().policy_summary.unwrap().id.unwrap()
    }

    async fn create_scp(&self, name: &str, content: &str) -> String {
        self.create_policy(name, PolicyType::ServiceControlPolicy, content).await
    }

    async fn attach(&self, policy: &str, target: &str) {
        self.client.attach_policy().policy_id(policy).target_id(target).send().await.unwrap();
    }

    async fn detach(&self, policy: &str, target: &str) {
        self.client.detach_policy().policy_id(policy).target_id(target).send().await.unwrap();
    }
}

fn config() -> Vec<(&'static str, &'static str)> {
    vec![("ORGANIZATION_MODE", "true"), ("ENTERPRISE_CIDRS", CIDRS)]
}

fn seed_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(SEED).unwrap();
    edit(&mut v);
    v.to_string()
}

/// root ─ OU Workloads ─ OU Prod ─ prod-app            (seed attached to Prod)
///      │               └ OU Sandbox ─ sandbox-1, sandbox-2 (seed attached, then detached)
///      ├ OU Legacy ─ legacy-1                          (a copy allowing 0.0.0.0/0)
///      ├ shared                                        (seed attached to the account)
///      └ the management account (the default account; DenyLeaveOrganization at the root)
async fn organization() -> Org {
    let acct = Account::new().await;
    let counter = CallCounter::default();
    let client = aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(&acct.sdk).interceptor(counter.clone()).build(),
    );
    client.create_organization().feature_set(OrganizationFeatureSet::All).send().await.unwrap();
    let root = client.list_roots().send().await.unwrap().roots.unwrap()[0].id.clone().unwrap();
    let mut org = Org {
        acct,
        client,
        counter,
        root: root.clone(),
        ous: BTreeMap::new(),
        accounts: BTreeMap::new(),
        seed: String::new(),
        copy: String::new(),
    };
    let workloads = org.create_ou(&root, "Workloads").await;
    let prod = org.create_ou(&workloads, "Prod").await;
    let sandbox = org.create_ou(&workloads, "Sandbox").await;
    let legacy = org.create_ou(&root, "Legacy").await;
    for (name, parent) in [
        ("prod-app", &prod),
        ("sandbox-1", &sandbox),
        ("sandbox-2", &sandbox),
        ("legacy-1", &legacy),
        ("shared", &root),
    ] {
        let id = org.create_account(name, parent).await;
        org.accounts.insert(name, id);
    }
    org.ous = BTreeMap::from([("Workloads", workloads), ("Prod", prod), ("Sandbox", sandbox), ("Legacy", legacy)]);
    org.seed = org.create_scp(SEED_NAME, SEED).await;
    org.copy = org
        .create_scp(
            "LegacyGuardrail",
            &seed_with(|v| v["Statement"][1]["Condition"]["NotIpAddress"]["aws:SourceIp"][0] = json!("0.0.0.0/0")),
        )
        .await;
    let deny_leave = org
        .create_scp(
            "DenyLeaveOrganization",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}}"#,
        )
        .await;
    org.attach(&org.seed, org.ou("Prod")).await;
    org.attach(&org.seed, org.ou("Sandbox")).await;
    org.detach(&org.seed, org.ou("Sandbox")).await;
    org.attach(&org.seed, org.account("shared")).await;
    org.attach(&org.copy, org.ou("Legacy")).await;
    org.attach(&deny_leave, &root).await;
    org
}

/// (account name, check) of each finding, sorted.
fn by_account(org: &Org, findings: impl IntoIterator<Item = (String, String)>) -> Vec<(&'static str, String)> {
    let mut v: Vec<_> = findings.into_iter().map(|(a, c)| (org.name_of(&a), c)).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organization_scan_reports_each_uncovered_account_once_from_one_call_per_distinct_node() {
    let org = organization().await;
    let config = org.acct.config(&config());
    org.counter.reset();
    let findings =
        iam_sentinel::org::coverage(&org.reader(), &config, "us-east-1", Utc::now(), "schedule", None).await.unwrap();
    assert_eq!(
        by_account(&org, findings.iter().map(|f| (f.account.clone(), f.check.to_string()))),
        [
            ("legacy-1", "scp-weakened".to_owned()),
            ("sandbox-1", "scp-not-attached".to_owned()),
            ("sandbox-2", "scp-not-attached".to_owned()),
        ]
    );
    let legacy = findings.iter().find(|f| f.account == org.account("legacy-1")).unwrap();
    assert_eq!(legacy.principal, format!("arn:aws:iam::{}:root", org.account("legacy-1")));
    assert_eq!(legacy.account_name.as_deref(), Some("legacy-1"));
    assert_eq!(legacy.resource.as_deref(), Some(org.copy.as_str()));
    assert_eq!(legacy.evidence["attached_to"], format!("OU Legacy ({})", org.ou("Legacy")));
    assert_eq!(
        legacy.evidence["differences"],
        json!(["the network statement is weakened: 0.0.0.0/0 is wider than the enterprise range 192.0.2.0/24"])
    );
    let sandbox = findings.iter().find(|f| f.account == org.account("sandbox-1")).unwrap();
    assert_eq!(
        sandbox.evidence["path"],
        json!([
            format!("the root {}", org.root),
            format!("OU Workloads ({})", org.ou("Workloads")),
            format!("OU Sandbox ({})", org.ou("Sandbox")),
            format!("account {} (sandbox-1)", org.account("sandbox-1")),
        ])
    );
    assert_eq!(sandbox.evidence["scps_applying"][0]["policy"], "DenyLeaveOrganization");
    assert!(
        sandbox.message.contains(&format!("Attach {SEED_NAME} to OU Sandbox ({})", org.ou("Sandbox"))),
        "{}",
        sandbox.message
    );
    assert!(findings.iter().all(|f| f.account != ACCOUNT), "the management account is never judged");

    // 5 members and 4 OUs: one ListParents each; the root, 4 OUs and 5 accounts: one
    // ListPoliciesForTarget each; 3 SCPs of ours on the paths: one DescribePolicy each.
    let calls = org.counter.snapshot().calls;
    let count = |op: &str| calls.get(&format!("organizations:{op}")).copied().unwrap_or(0);
    assert_eq!(count("ListParents"), 9, "{calls:?}");
    assert_eq!(count("DescribeOrganizationalUnit"), 4, "{calls:?}");
    assert_eq!(count("ListPoliciesForTarget"), 10, "{calls:?}");
    assert_eq!(count("DescribePolicy"), 3, "{calls:?}");
    assert_eq!((count("ListRoots"), count("ListAccounts"), count("DescribeOrganization")), (1, 1, 1), "{calls:?}");
    assert_eq!(org.counter.snapshot().total_calls(), 29, "{calls:?}");

    // Only the accounts asked for: their paths alone are read.
    org.counter.reset();
    let only = [org.account("legacy-1").to_owned()].into();
    let findings =
        iam_sentinel::org::coverage(&org.reader(), &config, "us-east-1", Utc::now(), "schedule", Some(&only))
            .await
            .unwrap();
    assert_eq!(findings.len(), 1);
    let calls = org.counter.snapshot().calls;
    assert_eq!(calls["organizations:ListParents"], 2, "legacy-1 and OU Legacy: {calls:?}");
    assert_eq!(calls["organizations:ListPoliciesForTarget"], 3, "root, OU Legacy, legacy-1: {calls:?}");
}

async fn replay(app: &AwsApp, file: &str, edit: impl FnOnce(&mut Value)) -> Report {
    let mut event = sample(file);
    edit(&mut event["detail"]);
    app.handle(event, &RunOptions::at(Utc::now())).await.unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// What the subscriber received: (account name, check), sorted; every message names the caller and the change.
async fn received(org: &Org, event: &str) -> Vec<(&'static str, String)> {
    let got = org.acct.received().await;
    for r in &got {
        assert_eq!(r.finding["trigger"], format!("event:{event}"), "{}", r.finding);
        assert_eq!(r.finding["evidence"]["caller"], CALLER, "{}", r.finding);
        assert_eq!(r.finding["evidence"]["event"], event, "{}", r.finding);
        assert!(r.finding["evidence"]["changed"].is_string(), "{}", r.finding);
        assert_eq!(r.attributes["account"], r.finding["account"].as_str().unwrap());
    }
    by_account(org, got.iter().map(|r| (r.finding["account"].as_str().unwrap().to_owned(), r.check().to_owned())))
}

fn pairs(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<_> = v.iter().map(|(a, c)| (*a, (*c).to_owned())).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_organizations_event_reports_the_coverage_of_the_accounts_it_reaches() {
    let mut org = organization().await;
    let app = org.app();
    org.acct.received().await;

    // A tag policy attached: the event cannot say its type, the organization can.
    let tags = r#"{"tags":{"CostCenter":{"tag_key":{"@@assign":"CostCenter"}}}}"#;
    let tag_policy = org.create_policy("CostCenterTags", PolicyType::TagPolicy, tags).await;
    org.attach(&tag_policy, org.ou("Sandbox")).await;
    let sandbox = org.ou("Sandbox").to_owned();
    let report = replay(&app, "organizations-attach-policy.json", |d| {
        d["requestParameters"] = json!({ "policyId": tag_policy, "targetId": sandbox });
    })
    .await;
    assert!(
        matches!(&report.outcome, Outcome::Ignored(r) if r.contains("is not a service control policy attached")),
        "{:?}",
        report.outcome
    );
    assert!(org.acct.received().await.is_empty());

    // The weakened copy attached to Sandbox: both of its accounts, scp-weakened naming it.
    org.attach(&org.copy, org.ou("Sandbox")).await;
    let report = replay(&app, "organizations-attach-policy.json", |d| {
        d["requestParameters"] = json!({ "policyId": org.copy, "targetId": sandbox });
    })
    .await;
    assert_eq!(report.outcome, Outcome::Processed);
    assert_eq!(report.published, 2);
    assert_eq!(
        received(&org, "AttachPolicy").await,
        pairs(&[("sandbox-1", "scp-weakened"), ("sandbox-2", "scp-weakened")])
    );

    // The seed detached from Prod: prod-app is no longer covered.
    org.detach(&org.seed, org.ou("Prod")).await;
    let prod = org.ou("Prod").to_owned();
    replay(&app, "organizations-detach-policy.json", |d| {
        d["requestParameters"] = json!({ "policyId": org.seed, "targetId": prod });
    })
    .await;
    assert_eq!(received(&org, "DetachPolicy").await, pairs(&[("prod-app", "scp-not-attached")]));

    // prod-app moved under Sandbox: the copy applies now; only its path is read.
    org.move_account(org.account("prod-app"), org.ou("Prod"), org.ou("Sandbox")).await;
    org.counter.reset();
    let (id, from, to) = (org.account("prod-app").to_owned(), org.ou("Prod").to_owned(), sandbox.clone());
    replay(&app, "organizations-move-account.json", |d| {
        d["requestParameters"] = json!({ "accountId": id, "sourceParentId": from, "destinationParentId": to });
    })
    .await;
    assert_eq!(received(&org, "MoveAccount").await, pairs(&[("prod-app", "scp-weakened")]));
    let calls = org.counter.snapshot().calls;
    assert_eq!(calls["organizations:ListParents"], 3, "prod-app, Sandbox, Workloads: {calls:?}");
    assert_eq!(calls["organizations:ListPoliciesForTarget"], 4, "root, Workloads, Sandbox, prod-app: {calls:?}");

    // The seed's content edited (no aws:ViaAWSService exemption): the account it applies to.
    let weakened = seed_with(|v| {
        v["Statement"][1]["Condition"].as_object_mut().unwrap().remove("Bool");
    });
    org.client.update_policy().policy_id(&org.seed).content(&weakened).send().await.unwrap();
    replay(&app, "organizations-update-policy.json", |d| {
        d["requestParameters"]["policyId"] = json!(org.seed);
        d["requestParameters"]["content"] = json!(weakened);
        d["responseElements"]["policy"]["policySummary"]["id"] = json!(org.seed);
        d["responseElements"]["policy"]["content"] = json!(weakened);
    })
    .await;
    let got = org.acct.received().await;
    assert_eq!(got.len(), 1);
    assert_eq!((org.name_of(got[0].finding["account"].as_str().unwrap()), got[0].check()), ("shared", "scp-weakened"));
    assert_eq!(
        got[0].finding["evidence"]["differences"],
        json!(["the network statement is weakened: no aws:ViaAWSService = false exemption"])
    );

    // A new account (CloudTrail hides its name): every member is judged.
    let created = org.create_account("sandbox-3", &org.root.clone()).await;
    org.accounts.insert("sandbox-3", created.clone());
    replay(&app, "organizations-create-account.json", |_| {}).await;
    let got = org.acct.received().await;
    let mut checks: Vec<(String, String)> =
        got.iter().map(|r| (r.finding["account"].as_str().unwrap().to_owned(), r.check().to_owned())).collect();
    checks.sort();
    assert_eq!(checks.len(), 6, "{checks:?}");
    assert!(checks.contains(&(created.clone(), "scp-not-attached".to_owned())), "{checks:?}");

    // The copy detached everywhere and deleted: not knowable whom it protected, so everyone.
    org.detach(&org.copy, org.ou("Legacy")).await;
    org.detach(&org.copy, &sandbox).await;
    org.client.delete_policy().policy_id(&org.copy).send().await.unwrap();
    replay(&app, "organizations-delete-policy.json", |d| d["requestParameters"]["policyId"] = json!(org.copy)).await;
    // Every member, the one created above included; the management account never.
    assert_eq!(
        received(&org, "DeletePolicy").await,
        pairs(&[
            ("legacy-1", "scp-not-attached"),
            ("prod-app", "scp-not-attached"),
            ("sandbox-1", "scp-not-attached"),
            ("sandbox-2", "scp-not-attached"),
            ("sandbox-3", "scp-not-attached"),
            ("shared", "scp-weakened"),
        ])
    );
    org.acct.received().await;

    // An invitation: the invited account once it is a member; before, nothing to judge.
    let report = replay(&app, "organizations-invite-account.json", |_| {}).await;
    assert!(
        matches!(&report.outcome, Outcome::Ignored(r) if r.contains("not an active member")),
        "{:?}",
        report.outcome
    );
    let shared = org.account("shared").to_owned();
    replay(&app, "organizations-invite-account.json", |d| d["requestParameters"]["target"]["id"] = json!(shared)).await;
    assert_eq!(received(&org, "InviteAccountToOrganization").await, pairs(&[("shared", "scp-weakened")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_organization_mode_organizations_events_are_ignored_with_the_reason() {
    let acct = Account::new().await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    for file in [
        "organizations-attach-policy.json",
        "organizations-detach-policy.json",
        "organizations-update-policy.json",
        "organizations-delete-policy.json",
        "organizations-move-account.json",
        "organizations-create-account.json",
        "organizations-invite-account.json",
    ] {
        let report = replay(&app, file, |_| {}).await;
        assert!(
            matches!(&report.outcome, Outcome::Ignored(r) if r.contains("ORGANIZATION_MODE=true")),
            "{file}: {:?}",
            report.outcome
        );
    }
    assert!(acct.received().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_names_the_action_and_its_target_and_publishes_nothing() {
    // No organization: the first read fails, by name.
    let acct = Account::new().await;
    let reader = OrganizationReader::new(aws_sdk_organizations::Client::new(&acct.sdk));
    let config = acct.config(&config());
    let err =
        iam_sentinel::org::coverage(&reader, &config, "us-east-1", Utc::now(), "schedule", None).await.unwrap_err();
    assert_eq!(err.action, "organizations:DescribeOrganization");
    assert!(err.to_string().starts_with("organizations:DescribeOrganization on the organization failed: "), "{err}");

    // The event path fails the same way (and Lambda retries it): nothing is published.
    let (mut app, _) = build_app_with(config, &acct.sdk);
    app.organization = Some(OrgContext { reader, account_name: None, management: false, root_managed_centrally: None });
    let err = app.handle(sample("organizations-move-account.json"), &RunOptions::at(Utc::now())).await.unwrap_err();
    assert!(err.to_string().starts_with("organizations:DescribeOrganization on the organization failed"), "{err}");
    assert!(acct.received().await.is_empty());
}
