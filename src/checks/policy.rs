//! IAM policy documents judged by what they say, not by their name (seeds 000 and 004).
//!
//! [`PolicyDocument`] is a small typed model of policy JSON; [`network_restriction`],
//! [`denies_without_mfa`] and [`allows_admin`] are the judgements the network, MFA and
//! admin checks make of one document. Which documents reach a user (groups, inline,
//! managed) is the caller's business.

use std::fmt;

use serde::Serialize;

pub use crate::domain::cidr::{Cidr, CidrError};
pub use crate::domain::policy::{
    Actions, Condition, Effect, Operator, PolicyDocument, PolicyError, Resources, SetQualifier, Statement, url_decode,
};

// ---------------------------------------------------------------- network restriction

/// How a document compares with seed 000's `EnterpriseNetworkRestriction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkVerdict {
    /// A deny of `*` on `*` outside exactly the configured CIDRs, with the `aws:ViaAWSService` exemption.
    Enforces,
    /// A deny that looks like it but differs; the reasons say how.
    Weakened {
        /// Every difference found in the closest statement.
        reasons: Vec<NetworkWeakness>,
    },
    /// No statement of the document restricts the source network.
    Absent,
}

/// One way a network deny differs from `EnterpriseNetworkRestriction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "weakness", rename_all = "kebab-case")]
pub enum NetworkWeakness {
    /// A range in the policy contains a configured one and more: more addresses pass.
    CidrWider { cidr: String, configured: String },
    /// A range in the policy outside every configured one.
    CidrExtra { cidr: String },
    /// A range in the policy inside a configured one: part of the enterprise is refused.
    CidrNarrower { cidr: String, configured: String },
    /// A configured range the policy does not contain.
    CidrMissing { configured: String },
    /// A value of `aws:SourceIp` that is not a CIDR.
    CidrInvalid { value: String },
    /// `Action` does not cover every action (`*`).
    ActionsNarrowed { actions: Vec<String> },
    /// `NotAction` carves actions out of the deny.
    NotActionCarveOut { actions: Vec<String> },
    /// `Resource` is not `*`, or missing.
    ResourcesNarrowed { resources: Vec<String> },
    /// `NotResource` carves resources out of the deny.
    NotResourceCarveOut { resources: Vec<String> },
    /// The source-address condition names another key (a misspelling, or e.g. `aws:VpcSourceIp`).
    SourceIpKey { found: String },
    /// The source address is tested with another operator than `NotIpAddress`.
    SourceIpOperator { found: String },
    /// No `aws:ViaAWSService` condition: calls AWS services make for the user are denied too.
    ExemptionMissing,
    /// `aws:ViaAWSService` is tested for `true`: the deny applies only to calls made through services.
    ExemptionInverted { values: Vec<String> },
    /// `aws:ViaAWSService` tested with another operator than `Bool`/`BoolIfExists`.
    ExemptionOperator { found: String },
    /// The exemption names a misspelt key.
    ExemptionKey { found: String },
    /// Another condition: the deny then applies only to requests that also match it.
    ExtraCondition { operator: String, key: String },
}

impl fmt::Display for NetworkWeakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CidrWider { cidr, configured } => write!(f, "{cidr} is wider than the enterprise range {configured}"),
            Self::CidrExtra { cidr } => write!(f, "{cidr} is not an enterprise range"),
            Self::CidrNarrower { cidr, configured } => {
                write!(f, "{cidr} is only part of the enterprise range {configured}")
            }
            Self::CidrMissing { configured } => write!(f, "the enterprise range {configured} is missing"),
            Self::CidrInvalid { value } => write!(f, "aws:SourceIp value {value:?} is not a CIDR"),
            Self::ActionsNarrowed { actions } => write!(f, "the deny covers only {}, not *", actions.join(", ")),
            Self::NotActionCarveOut { actions } => write!(f, "NotAction exempts {} from the deny", actions.join(", ")),
            Self::ResourcesNarrowed { resources } if resources.is_empty() => write!(f, "the deny names no Resource"),
            Self::ResourcesNarrowed { resources } => {
                write!(f, "the deny covers only {}, not *", resources.join(", "))
            }
            Self::NotResourceCarveOut { resources } => {
                write!(f, "NotResource exempts {} from the deny", resources.join(", "))
            }
            Self::SourceIpKey { found } => write!(f, "the address condition tests {found}, not aws:SourceIp"),
            Self::SourceIpOperator { found } => write!(f, "aws:SourceIp is tested with {found}, not NotIpAddress"),
            Self::ExemptionMissing => write!(f, "no aws:ViaAWSService = false exemption"),
            Self::ExemptionInverted { values } => {
                write!(f, "aws:ViaAWSService is tested for {}, not false", values.join(", "))
            }
            Self::ExemptionOperator { found } => write!(f, "aws:ViaAWSService is tested with {found}, not Bool"),
            Self::ExemptionKey { found } => write!(f, "the exemption tests {found}, not aws:ViaAWSService"),
            Self::ExtraCondition { operator, key } => write!(f, "an extra condition {operator} {key} narrows the deny"),
        }
    }
}

const SOURCE_IP: &str = "aws:SourceIp";
const VIA_AWS_SERVICE: &str = "aws:ViaAWSService";

/// Judges `doc` against `EnterpriseNetworkRestriction` with `enterprise` as its CIDRs.
///
/// A statement that enforces wins (other statements can only deny more); otherwise the
/// look-alike deny with the fewest differences is reported.
#[must_use]
pub fn network_restriction(doc: &PolicyDocument, enterprise: &[Cidr]) -> NetworkVerdict {
    let mut best: Option<Vec<NetworkWeakness>> = None;
    for st in &doc.statements {
        let Some(reasons) = judge_network_statement(st, enterprise) else { continue };
        if reasons.is_empty() {
            return NetworkVerdict::Enforces;
        }
        if best.as_ref().is_none_or(|b| reasons.len() < b.len()) {
            best = Some(reasons);
        }
    }
    best.map_or(NetworkVerdict::Absent, |reasons| NetworkVerdict::Weakened { reasons })
}

/// Condition keys are case-insensitive in IAM, so `aws:SourceIP` *is* `aws:SourceIp` and is not
/// a typo. A typo is a different spelling within two edits (`aws:SourceIps`, `aws:SoruceIp`),
/// which IAM accepts as an unknown key that no request carries.
/// Real global keys a few edits away from those we look for are never typos: a deny on
/// `aws:SourceVpc` is another guardrail, not a misspelt `aws:SourceIp`.
fn misspelt(key: &str, name: &str) -> bool {
    const REAL_KEYS: &[&str] = &["aws:SourceVpc", "aws:SourceVpce", "aws:VpcSourceIp", "aws:SourceArn"];
    !key.eq_ignore_ascii_case(name)
        && !REAL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
        && edit_distance(&key.to_ascii_lowercase(), &name.to_ascii_lowercase()) <= 2
}

/// `None` when `st` does not restrict the network at all; otherwise its differences.
pub(crate) fn judge_network_statement(st: &Statement, enterprise: &[Cidr]) -> Option<Vec<NetworkWeakness>> {
    if st.effect != Effect::Deny {
        return None;
    }
    let is_ip_operator = |c: &Condition| {
        c.operator.name.eq_ignore_ascii_case("NotIpAddress") || c.operator.name.eq_ignore_ascii_case("IpAddress")
    };
    let address = st
        .conditions
        .iter()
        .position(|c| c.key_is(SOURCE_IP))
        .or_else(|| st.conditions.iter().position(|c| is_ip_operator(c) || misspelt(&c.key, SOURCE_IP)))?;
    let mut reasons = Vec::new();

    match &st.actions {
        Actions::Only(list) if list.iter().any(|a| a == "*" || a == "*:*") => {}
        Actions::Only(list) => reasons.push(NetworkWeakness::ActionsNarrowed { actions: list.clone() }),
        Actions::AllExcept(list) => reasons.push(NetworkWeakness::NotActionCarveOut { actions: list.clone() }),
    }
    match &st.resources {
        Some(Resources::Only(list)) if list.iter().any(|r| r == "*") => {}
        Some(Resources::Only(list)) => reasons.push(NetworkWeakness::ResourcesNarrowed { resources: list.clone() }),
        Some(Resources::AllExcept(list)) => {
            reasons.push(NetworkWeakness::NotResourceCarveOut { resources: list.clone() });
        }
        None => reasons.push(NetworkWeakness::ResourcesNarrowed { resources: vec![] }),
    }

    let cond = &st.conditions[address];
    if !cond.key_is(SOURCE_IP) {
        reasons.push(NetworkWeakness::SourceIpKey { found: cond.key.clone() });
    }
    // `NotIpAddressIfExists` is as strict: aws:SourceIp is in every direct request.
    if !cond.operator.is("NotIpAddress") {
        reasons.push(NetworkWeakness::SourceIpOperator { found: cond.operator.raw.clone() });
    }
    reasons.extend(compare_cidrs(&cond.values, enterprise));

    let exemption = st
        .conditions
        .iter()
        .position(|c| c.key_is(VIA_AWS_SERVICE))
        .or_else(|| st.conditions.iter().position(|c| misspelt(&c.key, VIA_AWS_SERVICE)));
    match exemption.map(|i| &st.conditions[i]) {
        None => reasons.push(NetworkWeakness::ExemptionMissing),
        Some(c) => {
            if !c.key_is(VIA_AWS_SERVICE) {
                reasons.push(NetworkWeakness::ExemptionKey { found: c.key.clone() });
            }
            // `StringEquals "false"` may match today, but aws:ViaAWSService is a boolean key.
            if !c.operator.is("Bool") {
                reasons.push(NetworkWeakness::ExemptionOperator { found: c.operator.raw.clone() });
            }
            if c.values.is_empty() || !c.values.iter().all(|v| v.eq_ignore_ascii_case("false")) {
                reasons.push(NetworkWeakness::ExemptionInverted { values: c.values.clone() });
            }
        }
    }

    for (i, c) in st.conditions.iter().enumerate() {
        if i != address && Some(i) != exemption {
            reasons.push(NetworkWeakness::ExtraCondition { operator: c.operator.raw.clone(), key: c.key.clone() });
        }
    }
    Some(reasons)
}

/// Set comparison of the policy's ranges with the configured ones, by address, not by text.
fn compare_cidrs(values: &[String], enterprise: &[Cidr]) -> Vec<NetworkWeakness> {
    let mut reasons = Vec::new();
    let mut found: Vec<Cidr> = Vec::new();
    for v in values {
        match Cidr::parse(v) {
            Ok(c) if !found.contains(&c) => found.push(c),
            Ok(_) => {}
            Err(_) => reasons.push(NetworkWeakness::CidrInvalid { value: v.clone() }),
        }
    }
    for f in &found {
        if enterprise.contains(f) {
            continue;
        }
        if let Some(c) = enterprise.iter().find(|c| f.contains(c)) {
            reasons.push(NetworkWeakness::CidrWider { cidr: f.to_string(), configured: c.to_string() });
        } else if let Some(c) = enterprise.iter().find(|c| c.contains(f)) {
            reasons.push(NetworkWeakness::CidrNarrower { cidr: f.to_string(), configured: c.to_string() });
        } else {
            reasons.push(NetworkWeakness::CidrExtra { cidr: f.to_string() });
        }
    }
    for c in enterprise {
        // Two CIDRs are nested or disjoint: a configured range overlapped by a policy range is reported above.
        if !found.iter().any(|f| f.contains(c) || c.contains(f)) {
            reasons.push(NetworkWeakness::CidrMissing { configured: c.to_string() });
        }
    }
    reasons
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            row.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------- MFA

/// What a user may do before MFA in a deny-without-MFA policy (`infra/policies/RequireMFA.json`
/// and AWS's self-manage example): set up a device, change an initial password, get an MFA session.
pub const MFA_SELF_SERVICE: &[&str] = &[
    "iam:ChangePassword",
    "iam:CreateVirtualMFADevice",
    "iam:EnableMFADevice",
    "iam:GetAccountPasswordPolicy",
    "iam:GetUser",
    "iam:ListMFADevices",
    "iam:ListVirtualMFADevices",
    "iam:ResyncMFADevice",
    "sts:GetSessionToken",
];

/// Whether `doc` denies (nearly) everything to a session without MFA, as `RequireMFA` does.
///
/// A deny of `*`, or of everything but the self-service actions above (exact names: a
/// wildcard or any other service in `NotAction` is a way out), on `*`, under
/// `BoolIfExists`/`Bool` `aws:MultiFactorAuthPresent` = `false` and no other condition.
/// `Bool` alone misses long-term access keys, whose requests carry no
/// `aws:MultiFactorAuthPresent` at all; console sessions always carry it, so both count here.
#[must_use]
pub fn denies_without_mfa(doc: &PolicyDocument) -> bool {
    doc.statements.iter().any(|st| {
        st.effect == Effect::Deny
            && on_every_resource(st)
            && match &st.actions {
                Actions::Only(list) => list.iter().any(|a| a == "*" || a == "*:*"),
                Actions::AllExcept(list) => {
                    list.iter().all(|a| MFA_SELF_SERVICE.iter().any(|s| s.eq_ignore_ascii_case(a)))
                }
            }
            && matches!(st.conditions.as_slice(), [c] if c.operator.is("Bool")
                && c.key_is("aws:MultiFactorAuthPresent")
                && !c.values.is_empty()
                && c.values.iter().all(|v| v.eq_ignore_ascii_case("false")))
    })
}

fn on_every_resource(st: &Statement) -> bool {
    matches!(&st.resources, Some(Resources::Only(list)) if list.iter().any(|r| r == "*"))
}

// ---------------------------------------------------------------- admin

/// IAM actions by which a principal grants itself more; a `NotAction` allow that leaves any
/// of them allowed on `*` is admin, whatever else it exempts.
const IAM_ESCALATION: &[&str] = &[
    "iam:AttachUserPolicy",
    "iam:PutUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:PutGroupPolicy",
    "iam:AddUserToGroup",
    "iam:AttachRolePolicy",
    "iam:PutRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:PassRole",
];

/// Whether `doc` allows everything on everything, or a way to grant itself that.
///
/// Counts an `Allow` on `Resource` `*` of: `*` or `*:*`; any pattern covering all of IAM
/// (`iam:*`: it can attach AdministratorAccess to itself); and `NotAction`, the
/// "allow all but a few" trick, unless the exemptions cover every IAM escalation action
/// above. The threshold is what is exempted, not how many entries: a long list of other
/// services still leaves IAM, and PowerUserAccess (which exempts `iam:*`) is not admin.
/// Conditions are ignored: the user is assumed to meet them.
#[must_use]
pub fn allows_admin(doc: &PolicyDocument) -> bool {
    doc.statements.iter().any(|st| {
        st.effect == Effect::Allow
            && on_every_resource(st)
            && match &st.actions {
                Actions::Only(list) => list.iter().any(|a| covers_all_of_iam(a)),
                Actions::AllExcept(list) => {
                    IAM_ESCALATION.iter().any(|action| !list.iter().any(|pattern| action_matches(pattern, action)))
                }
            }
    })
}

/// AWS managed policies that are administrator access by themselves: `AdministratorAccess`
/// (`*` on `*`) and `IAMFullAccess` (`iam:*`: it can attach the first to itself).
pub const AWS_MANAGED_ADMIN: &[&str] = &["AdministratorAccess", "IAMFullAccess"];

/// The path and name of an AWS managed policy ARN (`arn:PARTITION:iam::aws:policy/[path/]NAME`,
/// e.g. `job-function/ViewOnlyAccess`); `None` for any other ARN.
#[must_use]
pub fn aws_managed_policy(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(partition), Some("iam"), Some(""), Some("aws"), Some(resource))
            if partition.starts_with("aws") =>
        {
            resource.strip_prefix("policy/")
        }
        _ => None,
    }
}

/// Whether `arn` is one of [`AWS_MANAGED_ADMIN`], in any partition.
#[must_use]
pub fn is_aws_managed_admin(arn: &str) -> bool {
    aws_managed_policy(arn).is_some_and(|name| AWS_MANAGED_ADMIN.contains(&name))
}

/// Whether an action pattern matches every IAM action (`*`, `*:*`, `iam:*`, `i*`…):
/// it must end in `*` and, without it, match a prefix of `iam:`.
fn covers_all_of_iam(pattern: &str) -> bool {
    let Some(head) = pattern.strip_suffix('*') else { return false };
    (0..="iam:".len()).any(|n| action_matches(head, &"iam:"[..n]))
}

/// IAM action matching: `*` any run, `?` one character, case-insensitive.
fn action_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ai, mut star, mut mark) = (0, 0, None, 0);
    while ai < a.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == a[ai]) {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const PUBLISHED_NETWORK: &str = include_str!("../../infra/policies/EnterpriseNetworkRestriction.json");
    const PUBLISHED_MFA: &str = include_str!("../../infra/policies/RequireMFA.json");
    const PUBLISHED_SCP: &str = include_str!("../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");

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
            vec![NetworkWeakness::ExtraCondition {
                operator: "StringEquals".into(),
                key: "aws:RequestedRegion".into()
            }]
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
        let narrowed =
            doc(&json!({ "Statement": { "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*" } }));
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
}
