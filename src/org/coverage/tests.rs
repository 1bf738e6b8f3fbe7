use super::*;

const SEED: &str = include_str!("../../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");
const MGMT: &str = "111111111111";
const NAME: &str = "RestrictIAMUserAccessWithExceptions";

fn enterprise() -> Vec<Cidr> {
    ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"].iter().map(|c| Cidr::parse(c).unwrap()).collect()
}

fn scope() -> Scope {
    Scope {
        account: MGMT.into(),
        region: "us-east-1".into(),
        trigger: "schedule".into(),
        now: "2026-11-23T10:00:00Z".parse().unwrap(),
    }
}

/// root r-root1 ─ OU Workloads (ou-work) ─ OU Prod (ou-prod) ─ 222 (prod-app)
///             │                        └ OU Sandbox (ou-sand) ─ 333 (sandbox-1)
///             ├ 444 (shared), directly under the root
///             └ 111 (management)
fn org() -> OrgStructure {
    let node = |id: &str, kind, name: &str| (id.to_owned(), OrgNode { id: id.into(), kind, name: name.into() });
    let account = |id: &str, name: &str| OrgAccount { id: id.into(), name: name.into() };
    OrgStructure {
        management_account: MGMT.into(),
        accounts: vec![
            account(MGMT, "management"),
            account("222222222222", "prod-app"),
            account("333333333333", "sandbox-1"),
            account("444444444444", "shared"),
        ],
        parents: [
            ("222222222222", "ou-prod"),
            ("333333333333", "ou-sand"),
            ("444444444444", "r-root1"),
            (MGMT, "r-root1"),
            ("ou-prod", "ou-work"),
            ("ou-sand", "ou-work"),
            ("ou-work", "r-root1"),
        ]
        .into_iter()
        .map(|(c, p)| (c.to_owned(), p.to_owned()))
        .collect(),
        nodes: [
            node("r-root1", NodeKind::Root, "Root"),
            node("ou-work", NodeKind::OrganizationalUnit, "Workloads"),
            node("ou-prod", NodeKind::OrganizationalUnit, "Prod"),
            node("ou-sand", NodeKind::OrganizationalUnit, "Sandbox"),
        ]
        .into_iter()
        .collect(),
        attached: BTreeMap::new(),
        documents: BTreeMap::new(),
    }
}

fn attach(org: &mut OrgStructure, target: &str, id: &str, name: &str, document: &str) {
    org.attached.entry(target.into()).or_default().push(AttachedPolicy { id: id.into(), name: name.into() });
    org.documents.insert(id.into(), document.into());
}

fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(SEED).unwrap();
    edit(&mut v);
    v.to_string()
}

fn judged(org: &OrgStructure) -> Vec<(String, CheckId)> {
    let cidrs = enterprise();
    let settings = ScpSettings { configured: NAME, enterprise: &cidrs, tag_key: "AccessException" };
    judge_coverage(org, &settings, &scope(), None).into_iter().map(|f| (f.account, f.check)).collect()
}

fn findings(org: &OrgStructure) -> Vec<Finding> {
    let cidrs = enterprise();
    let settings = ScpSettings { configured: NAME, enterprise: &cidrs, tag_key: "AccessException" };
    judge_coverage(org, &settings, &scope(), None)
}

#[test]
fn the_configured_scp_at_the_root_covers_every_member_and_never_judges_the_management_account() {
    let mut o = org();
    attach(&mut o, "r-root1", "p-seed0001", NAME, SEED);
    assert_eq!(judged(&o), []);
    // Nothing attached anywhere: every member, never the management account.
    let all = judged(&org());
    assert_eq!(
        all,
        [
            ("222222222222".into(), CheckId::ScpNotAttached),
            ("333333333333".into(), CheckId::ScpNotAttached),
            ("444444444444".into(), CheckId::ScpNotAttached)
        ]
    );
}

#[test]
fn at_an_ou_it_covers_the_accounts_below_only() {
    let mut o = org();
    attach(&mut o, "ou-work", "p-seed0001", NAME, SEED);
    assert_eq!(judged(&o), [("444444444444".into(), CheckId::ScpNotAttached)]);
    let f = &findings(&o)[0];
    assert_eq!(f.principal, "arn:aws:iam::444444444444:root");
    assert_eq!(f.account_name.as_deref(), Some("shared"));
    assert!(
        f.message.contains(
            "Attach RestrictIAMUserAccessWithExceptions to the root r-root1 (every account), or to account \
                 444444444444 (shared) itself."
        ),
        "{}",
        f.message
    );
    assert_eq!(f.evidence["path"], json!(["the root r-root1", "account 444444444444 (shared)"]));
}

#[test]
fn on_the_account_itself_or_as_a_renamed_copy_it_covers() {
    let mut o = org();
    attach(&mut o, "222222222222", "p-seed0001", NAME, SEED);
    attach(&mut o, "ou-sand", "p-copy0001", "SandboxGuardrail", SEED);
    attach(&mut o, "444444444444", "p-byid0001", "Other", SEED);
    assert_eq!(judged(&o), []);
    // By id too.
    let cidrs = enterprise();
    let settings = ScpSettings { configured: "p-seed0001", enterprise: &cidrs, tag_key: "AccessException" };
    assert!(judge_coverage(&o, &settings, &scope(), None).is_empty());
}

#[test]
fn a_detached_ou_names_the_path_and_the_scps_that_do_apply() {
    let mut o = org();
    attach(&mut o, "ou-prod", "p-seed0001", NAME, SEED);
    attach(&mut o, "444444444444", "p-seed0001", NAME, SEED);
    attach(
        &mut o,
        "ou-sand",
        "p-region01",
        "DenyOtherRegions",
        r#"{"Statement":{"Effect":"Deny","NotAction":"iam:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"}}}}"#,
    );
    let f = findings(&o);
    assert_eq!(f.len(), 1);
    let f = &f[0];
    assert_eq!((f.account.as_str(), f.check), ("333333333333", CheckId::ScpNotAttached));
    assert_eq!(f.severity, crate::finding::Severity::Critical);
    assert_eq!(
        f.evidence["path"],
        json!([
            "the root r-root1",
            "OU Workloads (ou-work)",
            "OU Sandbox (ou-sand)",
            "account 333333333333 (sandbox-1)"
        ])
    );
    assert_eq!(f.evidence["scps_applying"][0]["policy"], "DenyOtherRegions");
    assert_eq!(f.evidence["scps_applying"][0]["attached_to"], "OU Sandbox (ou-sand)");
    assert!(
        f.message.contains(
            "Attach RestrictIAMUserAccessWithExceptions to OU Sandbox (ou-sand), or to the root r-root1 to cover \
                 every account."
        ),
        "{}",
        f.message
    );
}

#[test]
fn a_weakened_copy_with_a_wider_cidr_names_the_policy_where_and_the_difference() {
    let mut o = org();
    attach(
        &mut o,
        "r-root1",
        "p-other001",
        "DenyLeaveOrg",
        r#"{"Statement":{"Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}}"#,
    );
    attach(
        &mut o,
        "ou-sand",
        "p-copy0001",
        "SandboxCopy",
        &edited(|v| v["Statement"][1]["Condition"]["NotIpAddress"]["aws:SourceIp"][0] = json!("0.0.0.0/0")),
    );
    let f = findings(&o);
    let sandbox = f.iter().find(|f| f.account == "333333333333").unwrap();
    assert_eq!(sandbox.check, CheckId::ScpWeakened);
    assert_eq!(sandbox.resource.as_deref(), Some("p-copy0001"));
    assert_eq!(sandbox.evidence["attached_to"], "OU Sandbox (ou-sand)");
    assert_eq!(
        sandbox.evidence["differences"],
        json!(["the network statement is weakened: 0.0.0.0/0 is wider than the enterprise range 192.0.2.0/24"])
    );
    assert!(
        sandbox.message.contains("SCP SandboxCopy (p-copy0001), attached to OU Sandbox (ou-sand)"),
        "{}",
        sandbox.message
    );
    assert!(
        sandbox.message.ends_with("or replace it on OU Sandbox (ou-sand) with RestrictIAMUserAccessWithExceptions."),
        "{}",
        sandbox.message
    );
    // The unrelated SCP at the root copies nothing: the others are simply not covered.
    assert_eq!(f.iter().filter(|f| f.check == CheckId::ScpNotAttached).count(), 2);
}

#[test]
fn a_missing_via_aws_service_exemption_weakens() {
    let mut o = org();
    attach(
        &mut o,
        "r-root1",
        "p-seed0001",
        NAME,
        &edited(|v| {
            v["Statement"][1]["Condition"].as_object_mut().unwrap().remove("Bool");
        }),
    );
    let f = findings(&o);
    assert_eq!(f.len(), 3);
    assert!(f.iter().all(|f| f.check == CheckId::ScpWeakened));
    assert_eq!(
        f[0].evidence["differences"],
        json!(["the network statement is weakened: no aws:ViaAWSService = false exemption"])
    );
    assert_eq!(f[0].evidence["attached_to"], "the root r-root1");
}

#[test]
fn the_configured_scp_with_an_invalid_document_is_weakened_never_a_panic() {
    let mut o = org();
    attach(&mut o, "r-root1", "p-seed0001", NAME, "{ not json");
    let f = findings(&o);
    assert_eq!(f.len(), 3);
    assert_eq!(f[0].check, CheckId::ScpWeakened);
    let d = f[0].evidence["differences"][0].as_str().unwrap();
    assert!(d.starts_with("policy document is not valid JSON"), "{d}");
    // Another SCP that cannot be read is no copy: not attached, its state in the evidence.
    let mut o = org();
    attach(&mut o, "r-root1", "p-broken01", "Broken", "][");
    let f = findings(&o);
    assert!(f.iter().all(|f| f.check == CheckId::ScpNotAttached));
    assert!(f[0].evidence["scps_applying"][0]["differences"][0].as_str().unwrap().contains("not valid JSON"));
}

#[test]
fn the_best_covering_scp_wins_over_a_weakened_one_on_the_same_path() {
    let mut o = org();
    attach(&mut o, "r-root1", "p-seed0001", NAME, &edited(|v| v["Statement"][0]["Action"] = json!("s3:*")));
    attach(&mut o, "ou-work", "p-copy0001", "WorkloadsCopy", SEED);
    assert_eq!(judged(&o), [("444444444444".into(), CheckId::ScpWeakened)]);
}

#[test]
fn without_enterprise_cidrs_the_ranges_are_not_compared() {
    let mut o = org();
    attach(&mut o, "r-root1", "p-seed0001", NAME, SEED);
    let settings = ScpSettings { configured: NAME, enterprise: &[], tag_key: "AccessException" };
    assert!(judge_coverage(&o, &settings, &scope(), None).is_empty());
}

#[test]
fn only_the_accounts_asked_for_are_judged() {
    let cidrs = enterprise();
    let settings = ScpSettings { configured: NAME, enterprise: &cidrs, tag_key: "AccessException" };
    let only: BTreeSet<String> = ["333333333333".to_owned(), MGMT.to_owned()].into();
    let f = judge_coverage(&org(), &settings, &scope(), Some(&only));
    assert_eq!(f.iter().map(|f| f.account.as_str()).collect::<Vec<_>>(), ["333333333333"]);
}

#[test]
fn accounts_under_a_target_and_reached_by_a_policy() {
    let mut o = org();
    attach(&mut o, "ou-work", "p-seed0001", NAME, SEED);
    let ids = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
    assert_eq!(ids(o.accounts_under("ou-work")), ["222222222222", "333333333333"]);
    assert_eq!(ids(o.accounts_under("r-root1")), ["222222222222", "333333333333", "444444444444"]);
    assert_eq!(ids(o.accounts_under("444444444444")), ["444444444444"]);
    assert!(o.accounts_under(MGMT).is_empty(), "SCPs never apply to the management account");
    assert_eq!(ids(o.accounts_reached_by("p-seed0001")), ["222222222222", "333333333333"]);
}

#[test]
fn management_account_users_are_listed_once() {
    assert_eq!(management_account_users(MGMT, &[], &scope()), None);
    let users = vec!["deploy".to_owned(), "admin".to_owned(), "deploy".to_owned()];
    let f = management_account_users(MGMT, &users, &scope()).unwrap();
    assert_eq!(f.check, CheckId::ManagementAccountIamUsers);
    assert_eq!(f.severity, crate::finding::Severity::High);
    assert_eq!(f.account, MGMT);
    assert_eq!(f.principal, "arn:aws:iam::111111111111:root");
    assert_eq!(f.evidence["users"], json!(["admin", "deploy"]));
    assert!(f.message.contains("2 IAM user(s) (admin, deploy)"), "{}", f.message);
    let many: Vec<String> = (0..12).map(|i| format!("u{i:02}")).collect();
    let f = management_account_users(MGMT, &many, &scope()).unwrap();
    assert!(f.message.contains("u09 and 2 more"), "{}", f.message);
}
