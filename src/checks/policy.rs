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
mod tests;
