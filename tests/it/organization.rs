//! Organization mode against moto: an organization of nine accounts in 3 OUs (the test's default
//! account is the management account and runs the function), users in known states in several
//! members reached through the member role (moto's `AssumeRole` credentials act in the role's
//! account), `alice` in two accounts with an approval for one only. The CLI's
//! `scan --organization`, the state machine's steps and forwarded member events must agree.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::config::Credentials;
use iam_sentinel::app::RunOptions;
use iam_sentinel::lambda::handle_deployment;
use iam_sentinel::runtime::Deployment;
use serde_json::{Value, json};

use crate::common::{ACCOUNT, Account, pairs};

pub(crate) const MEMBER_ROLE: &str = "iam-sentinel-member";
/// The enterprise networks of seed 000's SCP.
pub(crate) const ENTERPRISE_CIDRS: &str = "192.0.2.0/24,203.0.113.0/24,2001:db8:1234::/48";
/// Seed 000's SCP as published.
pub(crate) const SEED_SCP: &str = include_str!("../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");

/// An organization in moto: the management account (the fixture's account) and its members.
pub(crate) struct Org {
    pub account: Account,
    pub orgs: aws_sdk_organizations::Client,
    pub root: String,
    /// OU name → id.
    pub ous: BTreeMap<String, String>,
    /// Member accounts by OU name, in creation order.
    pub members: BTreeMap<String, Vec<String>>,
}

impl Org {
    /// An organization with `members` accounts spread round-robin over `ous`.
    pub async fn new(members: usize, ous: &[&str]) -> Org {
        let account = Account::new().await;
        let orgs = aws_sdk_organizations::Client::new(&account.sdk);
        orgs.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
        let root = orgs.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_owned();
        let mut ou_ids = BTreeMap::new();
        for name in ous {
            let ou = orgs.create_organizational_unit().parent_id(&root).name(*name).send().await.unwrap();
            ou_ids.insert((*name).to_owned(), ou.organizational_unit().unwrap().id().unwrap().to_owned());
        }
        let mut by_ou: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in 0..members {
            let out = orgs
                .create_account()
                .account_name(format!("member-{i:02}"))
                .email(format!("member-{i:02}@example.com"))
                .send()
                .await
                .unwrap();
            let id = out.create_account_status().unwrap().account_id().unwrap().to_owned();
            let ou = ous[i % ous.len()];
            orgs.move_account()
                .account_id(&id)
                .source_parent_id(&root)
                .destination_parent_id(&ou_ids[ou])
                .send()
                .await
                .unwrap();
            by_ou.entry(ou.to_owned()).or_default().push(id);
        }
        Org { account, orgs, root, ous: ou_ids, members: by_ou }
    }

    /// An IAM client acting in `account` through the member role (as the function does).
    pub async fn iam_in(&self, account: &str) -> aws_sdk_iam::Client {
        let sts = aws_sdk_sts::Client::new(&self.account.sdk);
        let out = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/{MEMBER_ROLE}"))
            .role_session_name("test-setup")
            .send()
            .await
            .unwrap();
        let c = out.credentials().unwrap();
        let creds =
            Credentials::new(c.access_key_id(), c.secret_access_key(), Some(c.session_token().into()), None, "t");
        aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&self.account.sdk).credentials_provider(creds).build(),
        )
    }

    /// Creates an SCP with `document` and attaches it to every target; returns its id.
    pub async fn attach_scp(&self, name: &str, document: &str, targets: &[&str]) -> String {
        let policy = self
            .orgs
            .create_policy()
            .name(name)
            .description("iam-sentinel test")
            .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .content(document)
            .send()
            .await
            .unwrap();
        let id = policy.policy().unwrap().policy_summary().unwrap().id().unwrap().to_owned();
        for target in targets {
            self.orgs.attach_policy().policy_id(&id).target_id(*target).send().await.unwrap();
        }
        id
    }

    /// The function's variables in organization mode (plus `extra`).
    pub fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars = pairs([
            ("ORGANIZATION_MODE", "true"),
            ("MEMBER_ROLE_NAME", MEMBER_ROLE),
            ("ENTERPRISE_CIDRS", ENTERPRISE_CIDRS),
        ]);
        vars.extend(pairs(extra.iter().copied()));
        vars
    }

    /// The deployment the Lambda builds, in organization mode.
    pub async fn deployment(&self, extra: &[(&str, &str)]) -> Deployment {
        let vars = Org::vars(extra);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut deployment = Deployment::build(self.account.config(&refs), &self.account.sdk).await.unwrap();
        // moto has no iam:ListOrganizationsFeatures: the organization manages root centrally, as
        // AWS answers it for an organization that enabled both features.
        deployment.set_root_access(crate::root_access::features(true, true).0);
        deployment
    }
}

async fn user(iam: &aws_sdk_iam::Client, name: &str, tags: &[(&str, &str)]) {
    let mut req = iam.create_user().user_name(name);
    for (k, v) in tags {
        req = req.tags(aws_sdk_iam::types::Tag::builder().key(*k).value(*v).build().unwrap());
    }
    req.send().await.unwrap();
}

async fn tags_of(iam: &aws_sdk_iam::Client, name: &str) -> Vec<String> {
    iam.list_user_tags().user_name(name).send().await.unwrap().tags().iter().map(|t| t.key().to_owned()).collect()
}

/// Members of the tests' organization, round-robin over Production, Sandbox and Workloads: enough
/// for several accounts per OU and a second Workloads account (at 50 accounts the same test runs in
/// minutes: moto loads AWS's managed policies into every account it sees).
const MEMBERS: usize = 8;

/// Members of the tests' organization in the OU at `index` of the round-robin.
fn members_in_ou(index: usize) -> usize {
    (0..MEMBERS).filter(|i| i % 3 == index).count()
}

/// The organization of the tests: [`MEMBERS`] members and the management account in 3 OUs, and
/// - `alice` tagged `AccessException` in Production's first and Sandbox's first account,
///   approved (with `"account"`) in Production's only;
/// - `bob` in Workloads' first account with a password and no MFA;
/// - `ops-admin` in the management account;
/// - seed 000's SCP on Production and on Workloads' second account, detached from Workloads,
///   and a copy letting every network in (`0.0.0.0/0`) on Sandbox.
struct Fixture {
    org: Org,
    prod: String,
    sandbox: String,
    workloads: String,
}

async fn fixture() -> Fixture {
    let org = Org::new(MEMBERS, &["Production", "Sandbox", "Workloads"]).await;
    let (prod, sandbox, workloads) =
        (org.members["Production"][0].clone(), org.members["Sandbox"][0].clone(), org.members["Workloads"][0].clone());
    for account in [&prod, &sandbox] {
        user(&org.iam_in(account).await, "alice", &[("AccessException", iam_sentinel::checks::EXCEPTION_VALUE)]).await;
    }
    let iam = org.iam_in(&workloads).await;
    user(&iam, "bob", &[]).await;
    iam.create_login_profile().user_name("bob").password("Correct-Horse-9!").send().await.unwrap();
    org.account.create_user("ops-admin", &[]).await;
    let workloads_ou = org.ous["Workloads"].clone();
    let scp = org
        .attach_scp(
            "RestrictIAMUserAccessWithExceptions",
            SEED_SCP,
            &[&org.ous["Production"], &workloads_ou, &org.members["Workloads"][1]],
        )
        .await;
    org.orgs.detach_policy().policy_id(&scp).target_id(&workloads_ou).send().await.unwrap();
    let open = SEED_SCP.replace(r#"["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"]"#, r#"["0.0.0.0/0"]"#);
    assert_ne!(open, SEED_SCP);
    org.attach_scp("RestrictIAMUserAccessWithExceptions-sandbox", &open, &[&org.ous["Sandbox"]]).await;
    assert!(!org.root.is_empty());
    org.account
        .put_registry(
            &json!({"exceptions": [{
                "user": "alice", "approved_by": "sec-lead@example.com", "ticket": "SEC-7",
                "expires": "2099-01-01T00:00:00Z", "account": prod,
            }]})
            .to_string(),
        )
        .await;
    Fixture { org, prod, sandbox, workloads }
}

/// Checks per account, for users (root and the account-wide checks left out: every moto
/// account has the same root and password-policy state).
fn user_checks(findings: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in findings {
        if let Some(user) = f["user"].as_str() {
            out.entry(f["account"].as_str().unwrap().to_owned())
                .or_default()
                .insert(format!("{}:{user}", f["check"].as_str().unwrap()));
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_scans_every_account_through_its_role_with_account_scoped_approvals() {
    let fx = fixture().await;
    let vars = Org::vars(&[("AUTO_REMEDIATE", "true")]);
    // `--organization` is organization mode: no ORGANIZATION_MODE=true beside it.
    let refs: Vec<(&str, &str)> =
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).filter(|(k, _)| *k != "ORGANIZATION_MODE").collect();
    let out =
        fx.org.account.cli(&["scan", "--organization", "--format", "json", "--stats", "--max-concurrency", "8"], &refs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // moto has no iam:ListOrganizationsFeatures: the digest says root access was not judged, by
    // name, and the command fails for that alone; everything else below ran.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("root access not judged: iam:ListOrganizationsFeatures on the organization failed"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("not judged").count(), 1, "nothing else failed: {stderr}");
    let findings: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let by_account = user_checks(&findings);
    assert_eq!(by_account[&fx.sandbox], set(&["exception-unapproved:alice"]), "{by_account:?}");
    // Approved in production, and created minutes ago without credentials: nothing to say yet
    // (an exception's disuse counts from the user's creation).
    assert!(!by_account.contains_key(&fx.prod), "{by_account:?}");
    assert_eq!(
        by_account[&fx.workloads],
        set(&["console-without-mfa:bob", "mfa-policy-missing:bob"]),
        "{by_account:?}"
    );
    assert_eq!(by_account.len(), 2, "user findings only in two accounts: {by_account:?}");
    // Seed 000's SCP: on Production (covered), a copy open to every network on Sandbox, detached
    // from Workloads but attached to its second account directly; the management account's
    // users are outside every SCP.
    let org_checks = |check: &str| -> BTreeSet<String> {
        findings.iter().filter(|f| f["check"] == check).map(|f| f["account"].as_str().unwrap().to_owned()).collect()
    };
    let sandbox: BTreeSet<String> = fx.org.members["Sandbox"].iter().cloned().collect();
    let mut detached: BTreeSet<String> = fx.org.members["Workloads"].iter().cloned().collect();
    detached.remove(&fx.org.members["Workloads"][1]);
    assert_eq!(org_checks("scp-weakened"), sandbox);
    assert_eq!(org_checks("scp-not-attached"), detached);
    assert_eq!(org_checks("management-account-iam-users"), set(&[ACCOUNT]));
    let weakened = findings.iter().find(|f| f["check"] == "scp-weakened").unwrap();
    assert!(weakened["message"].as_str().unwrap().contains("0.0.0.0/0"), "{weakened}");
    // Every member was read: none has a password policy (the management account has one).
    let weak: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f["check"] == "password-policy-weak")
        .filter_map(|f| f["account"].as_str())
        .collect();
    assert_eq!(weak.len(), MEMBERS, "{weak:?}");
    assert!(!weak.contains(ACCOUNT));
    assert!(stderr.contains(&format!("{} account(s) scanned, 0 failed", MEMBERS + 1)), "{stderr}");
    // The member role removed the unapproved tag in the sandbox account only.
    assert!(tags_of(&fx.org.iam_in(&fx.sandbox).await, "alice").await.is_empty());
    assert_eq!(tags_of(&fx.org.iam_in(&fx.prod).await, "alice").await, ["AccessException"]);
    // Calls: one AssumeRole per member, and the single-account scan's calls per account.
    let stats: Value = serde_json::from_str(stderr.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(stats["by_action"]["sts:AssumeRole"], MEMBERS, "{stats}");
    assert_eq!(stats["by_action"]["iam:GetCredentialReport"], MEMBERS + 1, "{stats}");
    assert_eq!(stats["by_action"]["iam:GetAccountAuthorizationDetails"], MEMBERS + 1, "{stats}");
    assert!(stats["by_action"].get("organizations:DescribeAccount").is_none(), "names come from ListAccounts: {stats}");
    // Every Organizations and STS call made is one the template grants the function's role
    // (its own statements, not any other resource's: the member role, the state machine's).
    let template = crate::infra::template();
    let granted: BTreeSet<&str> =
        crate::infra::role_statements(&template).into_iter().flat_map(crate::infra::actions).collect();
    let made: Vec<&String> = stats["by_action"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|a| a.starts_with("organizations:") || a.starts_with("sts:"))
        // The CLI's credentials check: AWS allows GetCallerIdentity to everyone, ungranted.
        .filter(|a| *a != "sts:GetCallerIdentity")
        .collect();
    assert!(made.iter().any(|a| a.starts_with("organizations:")) && made.contains(&&"sts:AssumeRole".to_owned()));
    for action in made {
        assert!(granted.contains(action.as_str()), "{action} is not granted to FunctionRole: {granted:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_state_machine_steps_scan_a_member_and_publish_the_organization_digest() {
    let fx = fixture().await;
    let deployment = fx.org.deployment(&[]).await;
    let invoke = |payload: Value| {
        let deployment = &deployment;
        async move {
            let event = lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default());
            handle_deployment(deployment, event).await
        }
    };
    let listed = invoke(json!({"list_accounts": {}})).await.unwrap();
    let accounts: Vec<String> =
        listed["accounts"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert_eq!(accounts.len(), MEMBERS + 1);
    assert_eq!(listed["management_account"], ACCOUNT);
    let child = invoke(json!({"scan_account": fx.workloads, "management_account": ACCOUNT})).await.unwrap();
    assert_eq!(child["account"], fx.workloads.as_str());
    assert_eq!(child["account_name"], "member-02", "{child}");
    assert_eq!(child["by_check"]["console-without-mfa"], 1, "{child}");
    assert_eq!(child["users_scanned"], 1, "{child}");
    let received = fx.org.account.received().await;
    assert!(received.iter().any(|r| r.check() == "console-without-mfa"
        && r.finding["account"] == fx.workloads.as_str()
        && r.finding["account_name"] == "member-02"));
    let digest = invoke(json!({"org_digest": {"accounts": accounts, "results": [child]}})).await.unwrap();
    assert_eq!(digest["org_digest"]["accounts_scanned"], 1);
    assert_eq!(digest["org_digest"]["accounts_not_reached"].as_array().unwrap().len(), MEMBERS);
    let received = fx.org.account.received().await;
    let part = received.iter().find(|r| r.subject.contains("organization: 1 accounts scanned")).expect("the digest");
    assert_eq!(part.finding["accounts"][0]["account"], fx.workloads.as_str());

    // Every account as the Distributed Map runs it, each result trimmed to what it keeps.
    let mut kept = Vec::new();
    let mut by_account: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for account in &accounts {
        let out = invoke(json!({"scan_account": account, "management_account": ACCOUNT})).await.unwrap();
        let checks = out["by_check"].as_object().unwrap().keys().cloned().collect();
        by_account.insert(account.clone(), checks);
        kept.push(json!({"account": out["account"], "users_scanned": out["users_scanned"],
            "severity_counts": out["severity_counts"], "check_counts": out["check_counts"], "v": out["v"]}));
    }
    let password = "password-policy-weak";
    assert_eq!(by_account[&fx.sandbox], set(&["exception-unapproved", password]));
    assert_eq!(by_account[&fx.prod], set(&[password]), "alice's exception is new, not unused");
    assert_eq!(by_account[&fx.workloads], set(&["console-without-mfa", "mfa-policy-missing", password]));
    assert_eq!(by_account[ACCOUNT], set(&["management-account-iam-users"]));
    let others = by_account.iter().filter(|(a, _)| ![&fx.sandbox, &fx.prod, &fx.workloads].contains(a));
    assert!(others.filter(|(a, _)| a.as_str() != ACCOUNT).all(|(_, c)| *c == set(&[password])), "{by_account:?}");
    fx.org.account.received().await;
    let digest = invoke(json!({"org_digest": {"accounts": accounts, "results": kept}})).await.unwrap();
    let summary = &digest["org_digest"];
    assert_eq!(
        (summary["accounts_scanned"].as_u64(), summary["accounts_failed"].as_u64()),
        (Some(MEMBERS as u64 + 1), Some(0))
    );
    // Sandbox weakened; Workloads not attached but for its second account (attached directly).
    assert_eq!(summary["by_check"]["scp-weakened"], members_in_ou(1), "{summary}");
    assert_eq!(summary["by_check"]["scp-not-attached"], members_in_ou(2) - 1, "{summary}");
    assert_eq!(summary["by_check"][password], MEMBERS, "{summary}");
    let received = fx.org.account.received().await;
    let scp: BTreeSet<(&str, &str)> = received
        .iter()
        .filter(|r| r.check().starts_with("scp-"))
        .map(|r| (r.check(), r.finding["account"].as_str().unwrap()))
        .collect();
    assert_eq!(scp.len(), members_in_ou(1) + members_in_ou(2) - 1, "one message per uncovered account");
    assert!(
        scp.contains(&("scp-weakened", fx.sandbox.as_str()))
            && scp.contains(&("scp-not-attached", fx.workloads.as_str()))
    );
    let part = received.iter().find(|r| r.attributes["check"] == "digest").expect("the organization digest");
    assert_eq!(part.finding["accounts"][0]["account_name"].as_str().map(|n| n.starts_with("member-")), Some(true));
    // Malformed steps are named, never guessed.
    let err = invoke(json!({"scan_account": "prod"})).await.unwrap_err();
    assert_eq!(err.error_type, "MalformedEvent");
    assert!(err.message.contains("12-digit"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_member_event_is_judged_in_the_member_with_its_own_approvals() {
    let fx = fixture().await;
    let deployment = fx.org.deployment(&[("AUTO_REMEDIATE", "true")]).await;
    let mut event = crate::common::sample("tag-user-access-exception.json");
    for account in [&fx.prod, &fx.sandbox] {
        event["account"] = json!(account);
        event["detail"]["recipientAccountId"] = json!(account);
        event["detail"]["requestParameters"]["userName"] = json!("alice");
        let lambda_event = lambda_runtime::LambdaEvent::new(event.clone(), lambda_runtime::Context::default());
        let out = handle_deployment(&deployment, lambda_event).await.unwrap();
        assert_eq!(out["outcome"], "processed", "{out}");
    }
    let received = fx.org.account.received().await;
    let alice: Vec<(&str, &str)> = received
        .iter()
        .filter(|r| r.user() == "alice")
        .map(|r| (r.finding["account"].as_str().unwrap(), r.check()))
        .collect();
    assert!(alice.contains(&(fx.sandbox.as_str(), "exception-unapproved")), "{alice:?}");
    assert!(!alice.iter().any(|(a, c)| *a == fx.prod && *c == "exception-unapproved"), "{alice:?}");
    assert!(tags_of(&fx.org.iam_in(&fx.sandbox).await, "alice").await.is_empty());
    assert_eq!(tags_of(&fx.org.iam_in(&fx.prod).await, "alice").await, ["AccessException"]);
    // The member's untag shows up there as the member role's session: its event is ignored.
    let mut own = crate::common::sample("untag-user-by-sentinel.json");
    own["account"] = json!(fx.sandbox);
    own["detail"]["userIdentity"]["arn"] =
        json!(format!("arn:aws:sts::{}:assumed-role/{MEMBER_ROLE}/iam-sentinel", fx.sandbox));
    own["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        json!(format!("arn:aws:iam::{}:role/{MEMBER_ROLE}", fx.sandbox));
    own["detail"]["userIdentity"]["type"] = json!("AssumedRole");
    own["detail"]["requestParameters"]["userName"] = json!("alice");
    let mut other_session = own.clone();
    let out = handle_deployment(&deployment, lambda_runtime::LambdaEvent::new(own, lambda_runtime::Context::default()))
        .await
        .unwrap();
    assert_eq!(out["outcome"], "ignored", "{out}");
    assert!(out["reason"].as_str().unwrap().contains("own role"), "{out}");
    // A member administrator who added itself to the member role's trust acts through another
    // session of the same role: judged like anyone else, not mistaken for the function.
    other_session["detail"]["userIdentity"]["arn"] =
        json!(format!("arn:aws:sts::{}:assumed-role/{MEMBER_ROLE}/admin-kim", fx.sandbox));
    let out = handle_deployment(
        &deployment,
        lambda_runtime::LambdaEvent::new(other_session, lambda_runtime::Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(out["outcome"], "processed", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_from_one_member_assumes_its_role_once() {
    let org = Org::new(2, &["Workloads"]).await;
    let deployment = org.deployment(&[]).await;
    let member = &org.members["Workloads"][0];
    let now = chrono::Utc::now();
    deployment.counter.reset();
    for _ in 0..3 {
        let app = deployment.app_for(member, Some("named".into()), false, now).await.unwrap();
        assert_eq!(app.organization.as_ref().unwrap().account_name.as_deref(), Some("named"));
    }
    let app = deployment.app_for(ACCOUNT, None, false, now).await.unwrap();
    assert!(app.organization.as_ref().unwrap().account_name.is_none(), "its own account needs no role");
    let calls = deployment.counter.snapshot().calls;
    assert_eq!(calls.get("sts:AssumeRole"), Some(&1), "{calls:?}");
    // Credentials close to their end are renewed.
    let later = now + chrono::Duration::minutes(56);
    drop(deployment.app_for(member, Some("named".into()), false, later).await.unwrap());
    assert_eq!(deployment.counter.snapshot().calls.get("sts:AssumeRole"), Some(&2));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_registry_without_accounts_is_rejected_loudly() {
    let fx = fixture().await;
    fx.org
        .account
        .put_registry(
            r#"{"exceptions":[{"user":"alice","approved_by":"b","ticket":"T","expires":"2099-01-01T00:00:00Z"}]}"#,
        )
        .await;
    let deployment = fx.org.deployment(&[("AUTO_REMEDIATE", "true")]).await;
    let opts = RunOptions { publish: false, ..RunOptions::at(chrono::Utc::now()) };
    let (report, _) =
        iam_sentinel::org::run::scan_account(&deployment, &fx.sandbox, None, Some(ACCOUNT), None, &opts).await.unwrap();
    let failure = report.failure.unwrap();
    assert!(failure.contains("`account` is missing"), "{failure}");
    // Nothing was untagged on a registry that could not be read.
    assert_eq!(tags_of(&fx.org.iam_in(&fx.sandbox).await, "alice").await, ["AccessException"]);
}

/// The fault proxy in front of moto (`tests/tools/fault_proxy.py`), stopped when dropped.
struct FaultProxy {
    child: std::process::Child,
    url: String,
}

impl FaultProxy {
    /// Refuses `sts:AssumeRole` into `refused`'s roles; holds `slow` calls and counts them in flight.
    fn start(upstream: &str, refused: &str, slow: &str) -> FaultProxy {
        use std::io::BufRead;
        // The pinned venv's interpreter, beside moto_server.
        let moto = std::env::var_os("MOTO_SERVER").map_or_else(
            || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"),
            std::path::PathBuf::from,
        );
        let python = moto.with_file_name("python");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/fault_proxy.py");
        let mut child = std::process::Command::new(&python)
            .arg(&script)
            .args([upstream, refused, slow])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
        FaultProxy { child, url: format!("http://127.0.0.1:{}", port.trim()) }
    }

    async fn max_in_flight(&self) -> usize {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let text = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /__max_in_flight HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        text.rsplit("\r\n\r\n").next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_refuses_the_role_is_counted_as_failed_and_concurrency_stays_bounded() {
    let org = Org::new(5, &["Workloads"]).await;
    org.account.put_registry(r#"{"exceptions":[]}"#).await;
    let refused = org.members["Workloads"][2].clone();
    let proxy = FaultProxy::start(&org.account.moto.url, &refused, "GetAccountAuthorizationDetails");
    let vars = Org::vars(&[("AWS_ENDPOINT_URL", proxy.url.as_str())]);
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = org
        .account
        .cli(&["scan", "--organization", "--no-publish", "--format", "json", "--max-concurrency", "2"], &refs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The refused member is counted, named with the reason, and the command fails.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("5 account(s) scanned, 1 failed"), "six accounts, one refused: {stderr}");
    assert!(stderr.contains(&refused) && stderr.contains("AccessDenied"), "{stderr}");
    // The others were scanned: their findings are printed.
    let findings: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // What the scans found (the SCP findings come from Organizations, for every member): each
    // other member has no password policy; nothing was judged inside the refused one.
    let scanned: BTreeSet<&str> = findings
        .iter()
        .filter(|f| !f["check"].as_str().unwrap_or_default().starts_with("scp-"))
        .filter_map(|f| f["account"].as_str())
        .collect();
    let others: BTreeSet<&str> =
        org.members["Workloads"].iter().map(String::as_str).filter(|a| *a != refused).collect();
    assert_eq!(scanned, others, "{findings:?}");
    // --max-concurrency 2: never more than two accounts read at once (each read held 300 ms).
    let most = proxy.max_in_flight().await;
    assert!((1..=2).contains(&most), "{most} accounts read at once");
}
