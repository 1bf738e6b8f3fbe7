//! The organization's guardrail judged by content (seed 000): does an SCP do what
//! `RestrictIAMUserAccessWithExceptions` does?
//!
//! Two statements make the seed's logic, in any order and under any `Sid`:
//! 1. **lockout**: deny everything to IAM users (`StringEquals aws:PrincipalType = User`) that
//!    do not carry the exception tag (`StringNotEquals aws:PrincipalTag/<key> = True`, the
//!    value compared case-sensitively, as the seed does);
//! 2. **network**: deny everything to tagged IAM users from outside the enterprise CIDRs,
//!    with the `aws:ViaAWSService` exemption — judged like `EnterpriseNetworkRestriction`
//!    ([`network_restriction`](crate::checks::policy::network_restriction)), the two scoping
//!    conditions (user, tagged) being expected.
//!
//! Pure: the organization adapter will read the policies; this module only judges one.

use crate::checks::policy::{
    Actions, Cidr, Condition, Effect, NetworkWeakness, PolicyDocument, Resources, Statement, judge_network_statement,
};

/// What is wrong with an SCP that should restrict IAM users like the seed's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScpWeakness {
    /// No statement denies untagged IAM users: the SCP does not lock anyone out.
    LockoutMissing,
    /// The lockout statement exists but lets more through; the text says how.
    LockoutWeakened(String),
    /// No statement confines tagged users to the enterprise networks.
    NetworkMissing,
    /// The network statement differs from the configured CIDRs or the seed's deny.
    Network(NetworkWeakness),
}

impl std::fmt::Display for ScpWeakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScpWeakness::LockoutMissing => f.write_str("no statement denies IAM users without the exception tag"),
            ScpWeakness::LockoutWeakened(why) => write!(f, "the lockout statement is weakened: {why}"),
            ScpWeakness::NetworkMissing => {
                f.write_str("no statement confines tagged IAM users to the enterprise networks")
            }
            ScpWeakness::Network(w) => write!(f, "the network statement is weakened: {w}"),
        }
    }
}

const PRINCIPAL_TYPE: &str = "aws:PrincipalType";

fn principal_tag(tag_key: &str) -> String {
    format!("aws:PrincipalTag/{tag_key}")
}

/// `StringEquals aws:PrincipalType = User` (exactly one value).
fn is_user_scope(c: &Condition) -> bool {
    c.operator.raw == "StringEquals" && c.key_is(PRINCIPAL_TYPE) && c.values == ["User"]
}

/// The seed's lockout: why `st` is weaker, or `None` when it is not a lockout at all.
fn judge_lockout(st: &Statement, tag_key: &str) -> Option<Vec<String>> {
    let tag = principal_tag(tag_key);
    let tag_condition = st.conditions.iter().find(|c| c.key_is(&tag) && c.operator.name.contains("NotEquals"))?;
    if st.effect != Effect::Deny {
        return None;
    }
    let mut why = Vec::new();
    if !matches!(&st.actions, Actions::Only(list) if list.iter().any(|a| a == "*" || a == "*:*")) {
        why.push("it does not deny every action".to_owned());
    }
    if let Some(Resources::Only(list)) = &st.resources
        && !list.iter().any(|r| r == "*")
    {
        why.push(format!("it covers only {}", list.join(", ")));
    }
    if tag_condition.operator.raw != "StringNotEquals" {
        why.push(format!(
            "{} compares the tag with {}, not StringNotEquals: other spellings of True pass",
            tag, tag_condition.operator.raw
        ));
    }
    if tag_condition.values != ["True"] {
        why.push(format!("the exempting value is {:?}, not \"True\"", tag_condition.values));
    }
    if !st.conditions.iter().any(is_user_scope) {
        why.push("it is not scoped to aws:PrincipalType = User".to_owned());
    }
    for c in st.conditions.iter().filter(|c| !std::ptr::eq(*c, tag_condition) && !is_user_scope(c)) {
        why.push(format!("an extra condition {} {} narrows it", c.operator.raw, c.key));
    }
    Some(why)
}

/// The network statement with the two expected scoping conditions taken out, so that it can
/// be judged like `EnterpriseNetworkRestriction`; `None` when it is not scoped to tagged users.
fn unscoped_network(st: &Statement, tag_key: &str) -> Option<Statement> {
    let tag = principal_tag(tag_key);
    let is_tag_scope = |c: &Condition| c.operator.raw == "StringEquals" && c.key_is(&tag) && c.values == ["True"];
    if !st.conditions.iter().any(is_tag_scope) {
        return None;
    }
    let mut st = st.clone();
    st.conditions.retain(|c| !is_user_scope(c) && !is_tag_scope(c));
    Some(st)
}

/// Every way `doc` falls short of the seed's SCP with `enterprise` as its CIDRs and `tag_key`
/// as its exception tag; empty when it does all the seed's SCP does.
#[must_use]
pub fn judge_scp(doc: &PolicyDocument, enterprise: &[Cidr], tag_key: &str) -> Vec<ScpWeakness> {
    let mut out = Vec::new();
    let lockouts: Vec<Vec<String>> = doc.statements.iter().filter_map(|st| judge_lockout(st, tag_key)).collect();
    match lockouts.iter().min_by_key(|why| why.len()) {
        None => out.push(ScpWeakness::LockoutMissing),
        Some(why) if why.is_empty() => {}
        Some(why) => out.push(ScpWeakness::LockoutWeakened(why.join("; "))),
    }
    let network: Vec<Vec<NetworkWeakness>> = doc
        .statements
        .iter()
        .filter_map(|st| unscoped_network(st, tag_key))
        .filter_map(|st| judge_network_statement(&st, enterprise))
        .collect();
    match network.into_iter().min_by_key(Vec::len) {
        None => out.push(ScpWeakness::NetworkMissing),
        Some(reasons) => out.extend(reasons.into_iter().map(ScpWeakness::Network)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SEED: &str = include_str!("../../infra/policies/RestrictIAMUserAccessWithExceptions.scp.json");

    fn enterprise() -> Vec<Cidr> {
        ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"].iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    fn judged(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut v: Value = serde_json::from_str(SEED).unwrap();
        edit(&mut v);
        let doc = PolicyDocument::from_value(&v).unwrap();
        judge_scp(&doc, &enterprise(), "AccessException").iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_published_scp_is_the_seed_s_logic() {
        assert!(judged(|_| {}).is_empty(), "{:?}", judged(|_| {}));
        // Order and Sids do not matter.
        assert!(
            judged(|v| {
                let s = v["Statement"].as_array_mut().unwrap();
                s.reverse();
                for st in s {
                    st["Sid"] = json!("Renamed");
                }
            })
            .is_empty()
        );
    }

    #[test]
    fn a_case_insensitive_tag_comparison_or_another_value_weakens_the_lockout() {
        let w = judged(|v| {
            let c = &mut v["Statement"][0]["Condition"];
            let tag = c["StringNotEquals"].take();
            c.as_object_mut().unwrap().remove("StringNotEquals");
            c["StringNotEqualsIgnoreCase"] = tag;
        });
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("StringNotEqualsIgnoreCase"), "{w:?}");
        let w = judged(|v| {
            v["Statement"][0]["Condition"]["StringNotEquals"]["aws:PrincipalTag/AccessException"] = json!("Yes");
        });
        assert!(w[0].contains("not \"True\""), "{w:?}");
    }

    #[test]
    fn carve_outs_and_extra_conditions_weaken_the_lockout() {
        let w = judged(|v| v["Statement"][0]["Action"] = json!(["s3:*"]));
        assert!(w[0].contains("does not deny every action"), "{w:?}");
        let w = judged(|v| v["Statement"][0]["Condition"]["StringEquals"]["aws:RequestedRegion"] = json!("us-east-1"));
        assert!(w.iter().any(|w| w.contains("not scoped") || w.contains("extra condition")), "{w:?}");
    }

    #[test]
    fn without_the_lockout_or_the_network_statement_each_is_missing() {
        let w = judged(|v| {
            v["Statement"].as_array_mut().unwrap().remove(0);
        });
        assert_eq!(w, ["no statement denies IAM users without the exception tag"]);
        let w = judged(|v| {
            v["Statement"].as_array_mut().unwrap().remove(1);
        });
        assert_eq!(w, ["no statement confines tagged IAM users to the enterprise networks"]);
    }

    #[test]
    fn the_network_statement_is_judged_against_the_configured_cidrs() {
        let w = judged(|v| v["Statement"][1]["Condition"]["NotIpAddress"]["aws:SourceIp"][0] = json!("0.0.0.0/0"));
        assert!(w.iter().any(|w| w.contains("0.0.0.0/0 is wider than the enterprise range 192.0.2.0/24")), "{w:?}");
        let w = judged(|v| {
            v["Statement"][1]["Condition"].as_object_mut().unwrap().remove("Bool");
        });
        assert!(w.iter().any(|w| w.contains("no aws:ViaAWSService = false exemption")), "{w:?}");
    }

    #[test]
    fn another_exception_tag_key_is_judged_by_its_own_name() {
        let doc = PolicyDocument::parse(SEED).unwrap();
        let w = judge_scp(&doc, &enterprise(), "NetworkException");
        assert_eq!(w, [ScpWeakness::LockoutMissing, ScpWeakness::NetworkMissing]);
    }
}
