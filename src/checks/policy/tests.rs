use serde_json::{Value, json};

use super::*;

const PUBLISHED_NETWORK: &str = include_str!("../../../infra/policies/EnterpriseNetworkRestriction.json");
const PUBLISHED_MFA: &str = include_str!("../../../infra/policies/RequireMFA.json");
const PUBLISHED_SCP: &str = include_str!("../../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
}

fn enterprise() -> Vec<Cidr> {
    cidrs(&["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"])
}

fn doc(v: &Value) -> PolicyDocument {
    PolicyDocument::from_value(v).unwrap()
}

/// Seed 000's statement with `change` applied to it.
fn network_deny(change: impl FnOnce(&mut Value)) -> PolicyDocument {
    let mut st = json!({
        "Sid": "DenyAccessOutsideEnterpriseNetwork",
        "Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {
            "NotIpAddress": { "aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"] },
            "Bool": { "aws:ViaAWSService": "false" }
        }
    });
    change(&mut st);
    doc(&json!({ "Version": "2012-10-17", "Statement": st }))
}

fn reasons(doc: &PolicyDocument) -> Vec<NetworkWeakness> {
    match network_restriction(doc, &enterprise()) {
        NetworkVerdict::Weakened { reasons } => reasons,
        other => panic!("expected Weakened, got {other:?}"),
    }
}
// ------------------------------------------------ network restriction

#[test]
fn published_network_policy_enforces_its_own_cidrs_and_not_others() {
    let d = PolicyDocument::parse(PUBLISHED_NETWORK).unwrap();
    assert_eq!(network_restriction(&d, &enterprise()), NetworkVerdict::Enforces);
    let other = cidrs(&["198.51.100.0/24"]);
    let NetworkVerdict::Weakened { reasons } = network_restriction(&d, &other) else { panic!() };
    assert!(reasons.contains(&NetworkWeakness::CidrMissing { configured: "198.51.100.0/24".into() }));
    assert!(reasons.contains(&NetworkWeakness::CidrExtra { cidr: "192.0.2.0/24".into() }));
}

#[test]
fn allow_only_and_mfa_documents_have_no_network_restriction() {
    let mfa = PolicyDocument::parse(PUBLISHED_MFA).unwrap();
    assert_eq!(network_restriction(&mfa, &enterprise()), NetworkVerdict::Absent);
    let allow = doc(&json!({ "Statement": { "Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": { "IpAddress": { "aws:SourceIp": "192.0.2.0/24" } } } }));
    assert_eq!(network_restriction(&allow, &enterprise()), NetworkVerdict::Absent);
}

#[test]
fn scp_statement_is_narrowed_to_tagged_users_as_an_identity_policy() {
    // The SCP's second statement applies only to tagged users: as an identity policy it is weaker.
    let scp = PolicyDocument::parse(PUBLISHED_SCP).unwrap();
    assert!(reasons(&scp).iter().all(|r| matches!(r, NetworkWeakness::ExtraCondition { .. })));
}

#[test]
fn wrong_cidrs_are_extra_and_missing() {
    let d = network_deny(|s| s["Condition"]["NotIpAddress"]["aws:SourceIp"] = json!(["198.51.100.0/24"]));
    let r = reasons(&d);
    assert!(r.contains(&NetworkWeakness::CidrExtra { cidr: "198.51.100.0/24".into() }));
    assert_eq!(r.iter().filter(|r| matches!(r, NetworkWeakness::CidrMissing { .. })).count(), 3);
}

#[test]
fn extra_0_0_0_0_slash_0_is_wider_than_every_ipv4_range() {
    let d = network_deny(|s| {
        s["Condition"]["NotIpAddress"]["aws:SourceIp"] =
            json!(["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48", "0.0.0.0/0"]);
    });
    assert_eq!(
        reasons(&d),
        vec![NetworkWeakness::CidrWider { cidr: "0.0.0.0/0".into(), configured: "192.0.2.0/24".into() }]
    );
}

#[test]
fn wider_range_10_slash_8_against_configured_10_1_slash_16() {
    let d = network_deny(|s| s["Condition"]["NotIpAddress"]["aws:SourceIp"] = json!("10.0.0.0/8"));
    let v = network_restriction(&d, &cidrs(&["10.1.0.0/16"]));
    let wider = NetworkWeakness::CidrWider { cidr: "10.0.0.0/8".into(), configured: "10.1.0.0/16".into() };
    assert_eq!(v, NetworkVerdict::Weakened { reasons: vec![wider] });
    // The other way round: narrower is a difference too (part of the enterprise is refused).
    let v = network_restriction(&d, &cidrs(&["10.0.0.0/7"]));
    assert!(
        matches!(v, NetworkVerdict::Weakened { reasons } if matches!(reasons[..], [NetworkWeakness::CidrNarrower { .. }]))
    );
}

#[test]
fn missing_ipv6_range_is_reported() {
    let d = network_deny(|s| {
        s["Condition"]["NotIpAddress"]["aws:SourceIp"] = json!(["192.0.2.0/24", "203.0.113.0/24"]);
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::CidrMissing { configured: "2001:db8:1234::/48".into() }]);
}

#[test]
fn host_bits_set_and_reordered_duplicated_ranges_still_enforce() {
    let d = network_deny(|s| {
        s["Condition"]["NotIpAddress"]["aws:SourceIp"] =
            json!(["2001:db8:1234:5::9/48", "203.0.113.9/24", "192.0.2.200/24", "192.0.2.0/24"]);
    });
    assert_eq!(network_restriction(&d, &enterprise()), NetworkVerdict::Enforces);
}

#[test]
fn invalid_cidr_value_is_named() {
    let d = network_deny(|s| {
        s["Condition"]["NotIpAddress"]["aws:SourceIp"] =
            json!(["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48", "ENTERPRISE_CIDR_RANGE_1"]);
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::CidrInvalid { value: "ENTERPRISE_CIDR_RANGE_1".into() }]);
}

#[test]
fn not_action_carve_out_weakens_the_deny() {
    let d = network_deny(|s| {
        let o = s.as_object_mut().unwrap();
        o.remove("Action");
        o.insert("NotAction".into(), json!(["s3:*"]));
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::NotActionCarveOut { actions: vec!["s3:*".into()] }]);
}

#[test]
fn narrowed_action_string_or_list_weakens_the_deny() {
    for actions in [json!("s3:*"), json!(["s3:*", "ec2:*"])] {
        let d = network_deny(|s| s["Action"] = actions.clone());
        assert!(matches!(reasons(&d)[..], [NetworkWeakness::ActionsNarrowed { .. }]));
    }
    // `*` as a one-element list, or `*:*`, is still every action.
    for actions in [json!(["*"]), json!("*:*")] {
        let d = network_deny(|s| s["Action"] = actions.clone());
        assert_eq!(network_restriction(&d, &enterprise()), NetworkVerdict::Enforces);
    }
}

#[test]
fn deny_with_not_resource_or_narrowed_resource_is_weakened() {
    let d = network_deny(|s| {
        let o = s.as_object_mut().unwrap();
        o.remove("Resource");
        o.insert("NotResource".into(), json!("arn:aws:s3:::public-*"));
    });
    assert!(matches!(reasons(&d)[..], [NetworkWeakness::NotResourceCarveOut { .. }]));
    let d = network_deny(|s| s["Resource"] = json!("arn:aws:s3:::*"));
    assert!(matches!(reasons(&d)[..], [NetworkWeakness::ResourcesNarrowed { .. }]));
}

#[test]
fn condition_key_in_other_case_is_the_same_key_not_a_typo() {
    // IAM condition keys are case-insensitive: aws:SourceIP and AWS:VIAAWSSERVICE work as written.
    let d = network_deny(|s| {
        s["Condition"] = json!({
                "NotIpAddress": { "aws:SourceIP": ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"] },
                "Bool": { "AWS:VIAAWSSERVICE": "False" } });
    });
    assert_eq!(network_restriction(&d, &enterprise()), NetworkVerdict::Enforces);
}

#[test]
fn condition_key_typo_source_ips_is_weakened() {
    let d = network_deny(|s| {
        s["Condition"]["NotIpAddress"] =
            json!({ "aws:SourceIps": ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"] });
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::SourceIpKey { found: "aws:SourceIps".into() }]);
}

#[test]
fn vpc_source_ip_is_another_key_not_the_source_address() {
    let d = network_deny(|s| {
        s["Condition"]["NotIpAddress"] =
            json!({ "aws:VpcSourceIp": ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"] });
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::SourceIpKey { found: "aws:VpcSourceIp".into() }]);
}

#[test]
fn source_vpc_deny_is_another_guardrail_not_a_source_ip_typo() {
    let d = doc(&json!({ "Statement": { "Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": { "StringNotEquals": { "aws:SourceVpc": "vpc-1234" } } } }));
    assert_eq!(network_restriction(&d, &enterprise()), NetworkVerdict::Absent);
    assert_eq!(
        enterprise(),
        ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"].map(|c| c.parse::<Cidr>().unwrap())
    );
}

#[test]
fn via_aws_service_typo_is_weakened() {
    let d = network_deny(|s| s["Condition"]["Bool"] = json!({ "aws:ViaAWSServices": "false" }));
    assert_eq!(reasons(&d), vec![NetworkWeakness::ExemptionKey { found: "aws:ViaAWSServices".into() }]);
}

#[test]
fn operator_in_wrong_case_is_not_the_operator() {
    // Operator names are case-sensitive: NotIPAddress is not NotIpAddress.
    let d = network_deny(|s| {
        let c = s["Condition"].as_object_mut().unwrap();
        let v = c.remove("NotIpAddress").unwrap();
        c.insert("NotIPAddress".into(), v);
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::SourceIpOperator { found: "NotIPAddress".into() }]);
}

#[test]
fn ip_address_instead_of_not_ip_address_inverts_the_deny() {
    let d = network_deny(|s| {
        let c = s["Condition"].as_object_mut().unwrap();
        let v = c.remove("NotIpAddress").unwrap();
        c.insert("IpAddress".into(), v);
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::SourceIpOperator { found: "IpAddress".into() }]);
}

#[test]
fn string_not_equals_on_source_ip_is_not_an_address_test() {
    let d = network_deny(|s| {
        let c = s["Condition"].as_object_mut().unwrap();
        let v = c.remove("NotIpAddress").unwrap();
        c.insert("StringNotEquals".into(), v);
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::SourceIpOperator { found: "StringNotEquals".into() }]);
}

#[test]
fn not_ip_address_if_exists_and_bool_if_exists_still_enforce() {
    let d = network_deny(|s| {
        s["Condition"] = json!({
                "NotIpAddressIfExists": { "aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"] },
                "BoolIfExists": { "aws:ViaAWSService": "false" } });
    });
    assert_eq!(network_restriction(&d, &enterprise()), NetworkVerdict::Enforces);
}

#[test]
fn string_equals_instead_of_bool_for_the_exemption_is_weakened() {
    let d = network_deny(|s| {
        let c = s["Condition"].as_object_mut().unwrap();
        c.remove("Bool");
        c.insert("StringEquals".into(), json!({ "aws:ViaAWSService": "false" }));
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::ExemptionOperator { found: "StringEquals".into() }]);
}

#[test]
fn exemption_missing_or_inverted_is_weakened() {
    let d = network_deny(|s| {
        s["Condition"].as_object_mut().unwrap().remove("Bool");
    });
    assert_eq!(reasons(&d), vec![NetworkWeakness::ExemptionMissing]);
    let d = network_deny(|s| s["Condition"]["Bool"]["aws:ViaAWSService"] = json!("true"));
    assert_eq!(reasons(&d), vec![NetworkWeakness::ExemptionInverted { values: vec!["true".into()] }]);
    let d = network_deny(|s| s["Condition"]["Bool"]["aws:ViaAWSService"] = json!(["false", "true"]));
    assert!(matches!(reasons(&d)[..], [NetworkWeakness::ExemptionInverted { .. }]));
}

#[test]
fn extra_condition_narrows_the_deny() {
    let d = network_deny(|s| s["Condition"]["StringEquals"] = json!({ "aws:RequestedRegion": "us-east-1" }));
    assert_eq!(
        reasons(&d),
        vec![NetworkWeakness::ExtraCondition { operator: "StringEquals".into(), key: "aws:RequestedRegion".into() }]
    );
}

#[test]
fn a_correct_statement_wins_over_a_weakened_one_and_the_closest_is_reported() {
    let good = network_deny(|_| {}).statements.remove(0);
    let bad = network_deny(|s| s["Action"] = json!("s3:*")).statements.remove(0);
    let worse = network_deny(|s| {
        s["Action"] = json!("s3:*");
        s["Resource"] = json!("arn:aws:s3:::x");
    })
    .statements
    .remove(0);
    let both = PolicyDocument { statements: vec![bad.clone(), good] };
    assert_eq!(network_restriction(&both, &enterprise()), NetworkVerdict::Enforces);
    let two_bad = PolicyDocument { statements: vec![worse, bad] };
    assert_eq!(reasons(&two_bad).len(), 1);
}

#[test]
fn weaknesses_read_as_sentences_and_serialise_tagged() {
    let w = NetworkWeakness::CidrWider { cidr: "0.0.0.0/0".into(), configured: "192.0.2.0/24".into() };
    assert_eq!(w.to_string(), "0.0.0.0/0 is wider than the enterprise range 192.0.2.0/24");
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(v["weakness"], "cidr-wider");
}

// ------------------------------------------------ MFA

fn mfa_deny(change: impl FnOnce(&mut Value)) -> PolicyDocument {
    let mut st: Value = serde_json::from_str::<Value>(PUBLISHED_MFA).unwrap()["Statement"][4].clone();
    change(&mut st);
    doc(&json!({ "Statement": [st] }))
}

#[test]
fn published_require_mfa_denies_without_mfa() {
    assert!(denies_without_mfa(&PolicyDocument::parse(PUBLISHED_MFA).unwrap()));
    assert!(denies_without_mfa(&mfa_deny(|_| {})));
}

#[test]
fn deny_all_under_bool_counts_and_bool_if_exists_case_insensitive_key_counts() {
    let d = mfa_deny(|s| {
        let o = s.as_object_mut().unwrap();
        o.remove("NotAction");
        o.insert("Action".into(), json!("*"));
        o.insert("Condition".into(), json!({ "Bool": { "aws:multifactorauthpresent": false } }));
    });
    assert!(denies_without_mfa(&d));
}

#[test]
fn wide_not_action_exemption_iam_star_or_s3_star_does_not_count() {
    for extra in ["iam:*", "s3:*", "iam:Deactivate*", "*"] {
        let d = mfa_deny(|s| s["NotAction"].as_array_mut().unwrap().push(json!(extra)));
        assert!(!denies_without_mfa(&d), "{extra}");
    }
}

#[test]
fn mfa_condition_string_equals_or_true_or_extra_condition_does_not_count() {
    let d = mfa_deny(|s| s["Condition"] = json!({ "StringEquals": { "aws:MultiFactorAuthPresent": "false" } }));
    assert!(!denies_without_mfa(&d));
    let d = mfa_deny(|s| s["Condition"]["BoolIfExists"]["aws:MultiFactorAuthPresent"] = json!("true"));
    assert!(!denies_without_mfa(&d));
    let d = mfa_deny(|s| s["Condition"]["StringEquals"] = json!({ "aws:RequestedRegion": "us-east-1" }));
    assert!(!denies_without_mfa(&d));
    let d = mfa_deny(|s| s["Condition"] = json!({ "BoolIfExists": { "aws:MultiFactorAuthPresnt": "false" } }));
    assert!(!denies_without_mfa(&d), "condition key typo");
}

#[test]
fn mfa_deny_with_not_resource_or_allow_effect_does_not_count() {
    let d = mfa_deny(|s| {
        let o = s.as_object_mut().unwrap();
        o.remove("Resource");
        o.insert("NotResource".into(), json!("arn:aws:s3:::*"));
    });
    assert!(!denies_without_mfa(&d));
    assert!(!denies_without_mfa(&mfa_deny(|s| s["Effect"] = json!("Allow"))));
}

// ------------------------------------------------ admin

fn allow(action_key: &str, actions: &Value) -> PolicyDocument {
    doc(&json!({ "Statement": { "Effect": "Allow", action_key: actions, "Resource": "*" } }))
}

#[test]
fn allow_star_on_star_string_or_list_is_admin() {
    assert!(allows_admin(&allow("Action", &json!("*"))));
    assert!(allows_admin(&allow("Action", &json!(["s3:GetObject", "*"]))));
    assert!(allows_admin(&allow("Action", &json!("*:*"))));
}

#[test]
fn allow_iam_star_on_star_is_admin_as_it_can_grant_itself_anything() {
    assert!(allows_admin(&allow("Action", &json!("iam:*"))));
    assert!(allows_admin(&allow("Action", &json!(["IAM:*"]))));
    assert!(allows_admin(&allow("Action", &json!("i*"))));
    assert!(!allows_admin(&allow("Action", &json!("iam:Get*"))));
    assert!(!allows_admin(&allow("Action", &json!(["s3:*", "ec2:*"]))));
}

#[test]
fn not_action_trick_allow_all_but_a_few_is_admin() {
    assert!(allows_admin(&allow("NotAction", &json!(["s3:DeleteBucket"]))));
    // A long list of other services still leaves IAM open.
    let many: Vec<String> = (0..50).map(|i| format!("svc{i}:*")).collect();
    assert!(allows_admin(&allow("NotAction", &json!(many))));
    // Exempting only part of IAM leaves escalation open.
    assert!(allows_admin(&allow("NotAction", &json!(["iam:CreateUser", "iam:DeleteUser"]))));
}

#[test]
fn not_action_exempting_all_of_iam_like_power_user_access_is_not_admin() {
    assert!(!allows_admin(&allow("NotAction", &json!(["iam:*", "organizations:*", "account:*"]))));
}

#[test]
fn admin_needs_resource_star_and_allow() {
    let narrowed = doc(&json!({ "Statement": { "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*" } }));
    assert!(!allows_admin(&narrowed));
    let deny = doc(&json!({ "Statement": { "Effect": "Deny", "Action": "*", "Resource": "*" } }));
    assert!(!allows_admin(&deny));
    let not_resource =
        doc(&json!({ "Statement": { "Effect": "Allow", "Action": "*", "NotResource": "arn:aws:s3:::x" } }));
    assert!(!allows_admin(&not_resource));
    assert!(!allows_admin(&PolicyDocument::parse(PUBLISHED_MFA).unwrap()));
}

#[test]
fn conditional_admin_still_counts() {
    let d = doc(&json!({ "Statement": [{ "Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": { "IpAddress": { "aws:SourceIp": "192.0.2.0/24" } } }] }));
    assert!(allows_admin(&d));
}

#[test]
fn administrator_access_is_recognised_by_arn_in_every_partition_only() {
    assert!(is_aws_managed_admin("arn:aws:iam::aws:policy/AdministratorAccess"));
    assert!(is_aws_managed_admin("arn:aws-us-gov:iam::aws:policy/AdministratorAccess"));
    assert!(!is_aws_managed_admin("arn:aws:iam::aws:policy/AdministratorAccess-Amplify"));
    assert!(!is_aws_managed_admin("arn:aws:iam::123456789012:policy/AdministratorAccess"));
    assert!(!is_aws_managed_admin("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"));
}

#[test]
fn action_glob_matches_like_iam() {
    assert!(action_matches("iam:*", "IAM:PassRole"));
    assert!(action_matches("iam:Put*Policy", "iam:PutUserPolicy"));
    assert!(action_matches("iam:?assRole", "iam:PassRole"));
    assert!(!action_matches("iam:Put*Policy", "iam:PutUserPermissionsBoundary"));
    assert!(!action_matches("s3:*", "iam:PassRole"));
}
