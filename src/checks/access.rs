//! What the policies reaching a user allow and deny (seeds 000 and 004): the network
//! restriction, the MFA enforcement, administrator access, and policies held outside groups.
//!
//! [`AccessJudge`] judges every customer managed policy and group policy of the account once;
//! each user then costs only the look-up of what reaches it (and its own inline policies).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::policy::{
    Cidr, NetworkVerdict, NetworkWeakness, PolicyDocument, allows_admin, aws_managed_policy, denies_without_mfa,
    is_aws_managed_admin,
};
use super::user_finding;
use crate::config::Policy;
pub use crate::domain::call::AccessTarget;
use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::{InlinePolicy, PolicyCatalogue, UserPolicies, UserSnapshot};

/// What one policy document does, as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// How it compares with `EnterpriseNetworkRestriction`.
    pub network: NetworkVerdict,
    /// Whether it denies (nearly) everything without MFA.
    pub requires_mfa: bool,
    /// Whether it allows administrator access.
    pub admin: bool,
}

impl Verdict {
    /// Judges a document against the enterprise CIDRs.
    #[must_use]
    pub fn of(doc: &PolicyDocument, cidrs: &[Cidr]) -> Verdict {
        Verdict {
            network: super::policy::network_restriction(doc, cidrs),
            requires_mfa: denies_without_mfa(doc),
            admin: allows_admin(doc),
        }
    }

    /// An AWS managed policy, judged by its ARN: AWS managed documents are not read (an account
    /// holds about 1,300 of them, none restricting the network or requiring MFA).
    fn aws_managed(arn: &str) -> Verdict {
        Verdict { network: NetworkVerdict::Absent, requires_mfa: false, admin: is_aws_managed_admin(arn) }
    }
}

/// How a policy reaches a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A managed policy attached to the user.
    Attached,
    /// One of the user's inline policies.
    Inline,
    /// Through a group (managed or inline policy of the group).
    Group(String),
}

impl Via {
    fn label(&self) -> String {
        match self {
            Via::Attached => "attached to the user".to_owned(),
            Via::Inline => "inline in the user".to_owned(),
            Via::Group(g) => format!("through group {g}"),
        }
    }
}

/// One policy that reaches a user, judged; `verdict` is the reason when it could not be read.
#[derive(Debug, Clone)]
pub struct Reach<'a> {
    /// Policy name (the ARN's last part for managed policies).
    pub policy: &'a str,
    /// How it reaches the user.
    pub via: Via,
    /// What it does, or why it could not be read.
    pub verdict: Result<Cow<'a, Verdict>, String>,
}

impl Reach<'_> {
    fn evidence(&self) -> Value {
        json!({ "policy": self.policy, "via": self.via.label() })
    }
}

/// The account's policies judged once, for every user of one scan or event.
#[derive(Debug)]
pub struct AccessJudge<'a> {
    cidrs: &'a [Cidr],
    managed: HashMap<&'a str, Judged<'a>>,
    groups: HashMap<&'a str, Vec<Judged<'a>>>,
    catalogue: &'a PolicyCatalogue,
}

/// A policy's name and what it does (or why it could not be read).
type Judged<'a> = (&'a str, Result<Verdict, String>);

fn judge_inline<'a>(p: &'a InlinePolicy, cidrs: &[Cidr]) -> Judged<'a> {
    (p.name.as_str(), p.document.as_ref().map(|d| Verdict::of(d, cidrs)).map_err(ToString::to_string))
}

impl<'a> AccessJudge<'a> {
    /// Judges every managed policy and group policy of `catalogue` once.
    #[must_use]
    pub fn new(catalogue: &'a PolicyCatalogue, cidrs: &'a [Cidr]) -> Self {
        let managed = catalogue
            .managed
            .iter()
            .map(|(arn, p)| {
                let verdict = p.document.as_ref().map(|d| Verdict::of(d, cidrs)).map_err(ToString::to_string);
                (arn.as_str(), (p.name.as_str(), verdict))
            })
            .collect();
        let groups = catalogue
            .groups
            .iter()
            .map(|(name, g)| (name.as_str(), g.inline.iter().map(|p| judge_inline(p, cidrs)).collect()))
            .collect();
        AccessJudge { cidrs, managed, groups, catalogue }
    }

    fn managed_reach<'s>(&'s self, arn: &'s str, via: Via) -> Reach<'s> {
        if let Some((name, verdict)) = self.managed.get(arn) {
            return Reach { policy: name, via, verdict: verdict.as_ref().map(Cow::Borrowed).map_err(Clone::clone) };
        }
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let verdict = if is_aws_managed(arn) {
            Ok(Cow::Owned(Verdict::aws_managed(arn)))
        } else {
            Err(format!("{arn} is not in GetAccountAuthorizationDetails (created or changed since it was read)"))
        };
        Reach { policy: name, via, verdict }
    }

    /// Every policy that reaches the user, judged.
    #[must_use]
    pub fn reach<'s>(&'s self, user: &'s UserPolicies) -> Vec<Reach<'s>> {
        let mut out: Vec<Reach<'s>> = user.attached.iter().map(|arn| self.managed_reach(arn, Via::Attached)).collect();
        out.extend(user.inline.iter().map(|p| {
            let (policy, verdict) = judge_inline(p, self.cidrs);
            Reach { policy, via: Via::Inline, verdict: verdict.map(Cow::Owned) }
        }));
        for group in &user.groups {
            let Some(g) = self.catalogue.groups.get(group) else {
                out.push(Reach {
                    policy: group,
                    via: Via::Group(group.clone()),
                    verdict: Err(format!("group {group} is not in GetAccountAuthorizationDetails")),
                });
                continue;
            };
            out.extend(g.attached.iter().map(|arn| self.managed_reach(arn, Via::Group(group.clone()))));
            for (policy, verdict) in self.groups.get(group.as_str()).into_iter().flatten() {
                out.push(Reach {
                    policy,
                    via: Via::Group(group.clone()),
                    verdict: verdict.as_ref().map(Cow::Borrowed).map_err(Clone::clone),
                });
            }
        }
        out
    }
}

/// Whether `arn` is an AWS managed policy (`arn:PARTITION:iam::aws:policy/…`).
fn is_aws_managed(arn: &str) -> bool {
    aws_managed_policy(arn).is_some()
}

/// The users a change to `target` concerns, in the order given: the user itself, a group's
/// members, or everyone a policy reaches directly or through a group.
pub fn users_reached<'u>(
    target: &AccessTarget,
    catalogue: &PolicyCatalogue,
    users: impl IntoIterator<Item = (&'u str, &'u UserPolicies)>,
) -> Vec<&'u str> {
    let in_group = |p: &UserPolicies, g: &str| p.groups.iter().any(|m| m == g);
    users
        .into_iter()
        .filter(|(name, p)| match target {
            AccessTarget::User(u) => *name == u.as_str(),
            AccessTarget::Group(g) => in_group(p, g),
            AccessTarget::Policy(arn) => {
                p.attached.contains(arn)
                    || p.groups.iter().any(|g| catalogue.groups.get(g).is_some_and(|gp| gp.attached.contains(arn)))
            }
        })
        .map(|(name, _)| name)
        .collect()
}

/// The weaknesses of one look-alike network policy, for evidence.
#[derive(Debug, Serialize)]
struct WeakPolicy<'a> {
    policy: &'a str,
    via: String,
    weaknesses: Vec<String>,
}

/// The policy checks for one user whose policies were read; nothing when they were not.
#[must_use]
pub fn check(user: &UserSnapshot, judge: &AccessJudge<'_>, policy: &Policy, scope: &Scope) -> Vec<Finding> {
    let Some(policies) = &user.policies else { return Vec::new() };
    let reach = judge.reach(policies);
    let unreadable: Vec<Value> = reach
        .iter()
        .filter_map(|r| {
            r.verdict.as_ref().err().map(|e| json!({ "policy": r.policy, "via": r.via.label(), "error": e }))
        })
        .collect();
    let mut findings: Vec<Finding> = admin(user, &reach, scope).into_iter().collect();
    findings.extend(direct(user, policies, scope));
    if policy.network_guardrail.needs_identity_policy() && user.has_credentials() {
        findings.extend(network(user, &reach, &unreadable, policy, scope));
    }
    if user.password_enabled && !judged(&reach).any(|(_, v)| v.requires_mfa) {
        let mut f = user_finding(
            scope,
            CheckId::MfaPolicyMissing,
            user,
            format!("{} signs in to the console and no policy denies it access without MFA", user.name),
        );
        f.evidence = json!({
            "mfa_device": user.mfa_active,
            "policies_judged": reach.len(),
            "unreadable_policies": unreadable,
        });
        findings.push(f);
    }
    findings
}

/// The reaches that could be judged, with their verdicts.
fn judged<'r, 'a>(reach: &'r [Reach<'a>]) -> impl Iterator<Item = (&'r Reach<'a>, &'r Verdict)> {
    reach.iter().filter_map(|r| r.verdict.as_ref().ok().map(|v| (r, v.as_ref())))
}

fn admin(user: &UserSnapshot, reach: &[Reach<'_>], scope: &Scope) -> Option<Finding> {
    let admin: Vec<Value> = judged(reach).filter(|(_, v)| v.admin).map(|(r, _)| r.evidence()).collect();
    if admin.is_empty() {
        return None;
    }
    let mut f = user_finding(
        scope,
        CheckId::UserAdminAccess,
        user,
        format!("{} has administrator access through {}", user.name, names(&admin)),
    );
    f.evidence = json!({ "policies": admin });
    Some(f)
}

fn direct(user: &UserSnapshot, policies: &UserPolicies, scope: &Scope) -> Option<Finding> {
    if !policies.has_direct() {
        return None;
    }
    let attached: Vec<&str> = policies.attached.iter().map(|a| a.rsplit('/').next().unwrap_or(a)).collect();
    let inline: Vec<&str> = policies.inline.iter().map(|p| p.name.as_str()).collect();
    let count = attached.len() + inline.len();
    let mut f = user_finding(
        scope,
        CheckId::UserDirectPolicy,
        user,
        format!(
            "{} holds {count} polic{} outside any group: {}",
            user.name,
            if count == 1 { "y" } else { "ies" },
            attached.iter().chain(&inline).copied().collect::<Vec<_>>().join(", ")
        ),
    );
    f.evidence = json!({ "attached": attached, "inline": inline, "groups": policies.groups });
    Some(f)
}

/// `network-restriction-weakened` or `-missing` for a user with credentials; `None` when covered.
fn network(
    user: &UserSnapshot,
    reach: &[Reach<'_>],
    unreadable: &[Value],
    policy: &Policy,
    scope: &Scope,
) -> Option<Finding> {
    if judged(reach).any(|(_, v)| v.network == NetworkVerdict::Enforces) {
        return None;
    }
    let weak: Vec<WeakPolicy<'_>> = judged(reach)
        .filter_map(|(r, v)| match &v.network {
            NetworkVerdict::Weakened { reasons } => Some(WeakPolicy {
                policy: r.policy,
                via: r.via.label(),
                weaknesses: reasons.iter().map(NetworkWeakness::to_string).collect(),
            }),
            _ => None,
        })
        .collect();
    let cidrs: Vec<String> = policy.enterprise_cidrs.iter().map(ToString::to_string).collect();
    let f = if let Some(first) = weak.first() {
        let message = format!(
            "{}'s network restriction {} ({}) is weakened: {}",
            user.name,
            first.policy,
            first.via,
            first.weaknesses.join("; ")
        );
        let mut f = user_finding(scope, CheckId::NetworkRestrictionWeakened, user, message);
        f.evidence = json!({ "policies": weak, "enterprise_cidrs": cidrs, "unreadable_policies": unreadable });
        f
    } else {
        let message = format!(
            "{} has {} and no policy denies requests from outside the enterprise networks",
            user.name,
            credentials(user)
        );
        let mut f = user_finding(scope, CheckId::NetworkRestrictionMissing, user, message);
        f.evidence = json!({
            "credentials": credentials(user),
            "policies_judged": reach.len(),
            "enterprise_cidrs": cidrs,
            "unreadable_policies": unreadable,
        });
        f
    };
    Some(f)
}

fn names(policies: &[Value]) -> String {
    policies
        .iter()
        .map(|p| format!("{} ({})", p["policy"].as_str().unwrap_or_default(), p["via"].as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn credentials(user: &UserSnapshot) -> String {
    let keys = user.keys.iter().filter(|k| k.active).count();
    match (user.password_enabled, keys) {
        (true, 0) => "a console password".to_owned(),
        (true, n) => format!("a console password and {n} active key(s)"),
        (false, n) => format!("{n} active key(s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{checks_of, key, scope, user};
    use crate::config::NetworkGuardrail;
    use crate::snapshot::{GroupPolicies, ManagedPolicy};

    const NETWORK: &str = include_str!("../../infra/policies/EnterpriseNetworkRestriction.json");
    const REQUIRE_MFA: &str = include_str!("../../infra/policies/RequireMFA.json");

    fn cidrs() -> Vec<Cidr> {
        // The published policy's own ranges.
        ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"].iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    fn identity_policy_mode() -> Policy {
        Policy { network_guardrail: NetworkGuardrail::IdentityPolicy, enterprise_cidrs: cidrs(), ..Policy::default() }
    }

    fn doc(text: &str) -> Result<PolicyDocument, crate::checks::policy::PolicyError> {
        PolicyDocument::parse(text)
    }

    const ALLOW_ALL: &str = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    const ARN: &str = "arn:aws:iam::123456789012:policy/";

    fn catalogue() -> PolicyCatalogue {
        let managed =
            |name: &str, text: &str| (format!("{ARN}{name}"), ManagedPolicy { name: name.into(), document: doc(text) });
        PolicyCatalogue {
            managed: HashMap::from([
                managed("EnterpriseNetworkRestriction", NETWORK),
                managed("RequireMFA", REQUIRE_MFA),
                managed("Everything", ALLOW_ALL),
                managed("WideNetwork", &NETWORK.replace("/24", "/8")),
            ]),
            groups: HashMap::from([
                (
                    "staff".to_owned(),
                    GroupPolicies {
                        attached: vec![format!("{ARN}EnterpriseNetworkRestriction"), format!("{ARN}RequireMFA")],
                        inline: vec![],
                    },
                ),
                (
                    "admins".to_owned(),
                    GroupPolicies {
                        attached: vec!["arn:aws:iam::aws:policy/AdministratorAccess".into()],
                        inline: vec![InlinePolicy { name: "broken".into(), document: doc("{not json") }],
                    },
                ),
                (
                    "contractors".to_owned(),
                    GroupPolicies { attached: vec![format!("{ARN}WideNetwork")], inline: vec![] },
                ),
            ]),
        }
    }

    fn console_user(name: &str, policies: UserPolicies) -> UserSnapshot {
        let mut u = user(name);
        u.password_enabled = true;
        u.mfa_active = true;
        u.policies = Some(policies);
        u
    }

    fn in_groups(groups: &[&str]) -> UserPolicies {
        UserPolicies { groups: groups.iter().map(|g| (*g).to_owned()).collect(), ..UserPolicies::default() }
    }

    fn run(u: &UserSnapshot, policy: &Policy) -> Vec<Finding> {
        let cat = catalogue();
        let judge = AccessJudge::new(&cat, &policy.enterprise_cidrs);
        check(u, &judge, policy, &scope())
    }

    #[test]
    fn a_staff_member_covered_through_a_group_has_no_finding() {
        assert!(run(&console_user("alice", in_groups(&["staff"])), &identity_policy_mode()).is_empty());
    }

    #[test]
    fn no_group_means_no_network_restriction_and_no_mfa_policy() {
        let f = run(&console_user("bob", UserPolicies::default()), &identity_policy_mode());
        assert_eq!(checks_of(&f), ["mfa-policy-missing", "network-restriction-missing"]);
        let missing = f.iter().find(|f| f.check == CheckId::NetworkRestrictionMissing).unwrap();
        assert_eq!(missing.evidence["credentials"], "a console password");
        assert_eq!(missing.user.as_deref(), Some("bob"));
    }

    #[test]
    fn the_network_check_runs_only_when_the_guardrail_includes_the_identity_policy() {
        let u = console_user("bob", UserPolicies::default());
        assert_eq!(checks_of(&run(&u, &Policy::default())), ["mfa-policy-missing"]);
        let both = Policy { network_guardrail: NetworkGuardrail::Both, ..identity_policy_mode() };
        assert!(checks_of(&run(&u, &both)).contains(&"network-restriction-missing"));
    }

    #[test]
    fn a_user_without_credentials_needs_no_network_policy() {
        let mut u = user("idle");
        u.policies = Some(UserPolicies::default());
        u.keys.push(key("AKIAIDLE", false, 10, None));
        assert!(run(&u, &identity_policy_mode()).is_empty());
        u.keys[0].active = true;
        assert_eq!(checks_of(&run(&u, &identity_policy_mode())), ["network-restriction-missing"]);
    }

    #[test]
    fn a_wider_cidr_is_weakened_and_names_the_policy_and_group() {
        let f = run(&console_user("carol", in_groups(&["contractors"])), &identity_policy_mode());
        let weak = f.iter().find(|f| f.check == CheckId::NetworkRestrictionWeakened).expect("weakened");
        assert_eq!(weak.evidence["policies"][0]["policy"], "WideNetwork");
        assert_eq!(weak.evidence["policies"][0]["via"], "through group contractors");
        assert!(weak.message.contains("is wider than the enterprise range"), "{}", weak.message);
        assert!(!checks_of(&f).contains(&"network-restriction-missing"));
    }

    #[test]
    fn an_enforcing_policy_outweighs_a_weakened_one() {
        let f = run(&console_user("dan", in_groups(&["contractors", "staff"])), &identity_policy_mode());
        assert!(f.is_empty(), "{:?}", checks_of(&f));
    }

    #[test]
    fn admin_by_aws_managed_arn_and_by_content_with_direct_policies() {
        let policies = UserPolicies {
            attached: vec![format!("{ARN}Everything"), "arn:aws:iam::aws:policy/IAMFullAccess".into()],
            inline: vec![InlinePolicy { name: "mine".into(), document: doc(ALLOW_ALL) }],
            groups: vec!["admins".into(), "staff".into()],
        };
        let f = run(&console_user("eve", policies), &identity_policy_mode());
        assert_eq!(checks_of(&f), ["user-admin-access", "user-direct-policy"]);
        let admin = &f[0];
        let via: Vec<&str> =
            admin.evidence["policies"].as_array().unwrap().iter().map(|p| p["policy"].as_str().unwrap()).collect();
        assert_eq!(via, ["Everything", "IAMFullAccess", "mine", "AdministratorAccess"]);
        let direct = &f[1];
        assert_eq!(direct.evidence["attached"], json!(["Everything", "IAMFullAccess"]));
        assert_eq!(direct.evidence["inline"], json!(["mine"]));
        assert!(direct.message.contains("3 policies outside any group"), "{}", direct.message);
    }

    #[test]
    fn an_unreadable_policy_is_named_in_the_evidence_not_guessed() {
        let f = run(&console_user("frank", in_groups(&["admins"])), &identity_policy_mode());
        let missing = f.iter().find(|f| f.check == CheckId::NetworkRestrictionMissing).unwrap();
        assert_eq!(missing.evidence["unreadable_policies"][0]["policy"], "broken");
        assert!(missing.evidence["unreadable_policies"][0]["error"].as_str().unwrap().contains("not valid JSON"));
    }

    #[test]
    fn a_policy_or_group_missing_from_the_catalogue_is_unreadable_not_absent() {
        let policies = UserPolicies {
            attached: vec![format!("{ARN}CreatedJustNow")],
            groups: vec!["new-group".into()],
            ..UserPolicies::default()
        };
        let f = run(&console_user("gina", policies), &identity_policy_mode());
        let missing = f.iter().find(|f| f.check == CheckId::MfaPolicyMissing).unwrap();
        let errors = missing.evidence["unreadable_policies"].to_string();
        assert!(errors.contains("CreatedJustNow is not in GetAccountAuthorizationDetails"), "{errors}");
        assert!(errors.contains("group new-group is not in"), "{errors}");
    }

    #[test]
    fn policies_not_read_mean_no_policy_findings() {
        let mut u = console_user("henry", UserPolicies::default());
        u.policies = None;
        assert!(run(&u, &identity_policy_mode()).is_empty());
    }

    #[test]
    fn a_change_concerns_the_user_the_group_members_or_everyone_the_policy_reaches() {
        let cat = catalogue();
        let direct = UserPolicies { attached: vec![format!("{ARN}RequireMFA")], ..UserPolicies::default() };
        let staff = in_groups(&["staff"]);
        let both = in_groups(&["contractors", "staff"]);
        let none = UserPolicies::default();
        let users = [("a", &direct), ("b", &staff), ("c", &both), ("d", &none)];
        let reached = |t: AccessTarget| users_reached(&t, &cat, users.iter().map(|(n, p)| (*n, *p)));
        assert_eq!(reached(AccessTarget::User("d".into())), ["d"]);
        assert_eq!(reached(AccessTarget::Group("staff".into())), ["b", "c"]);
        assert_eq!(reached(AccessTarget::Policy(format!("{ARN}RequireMFA"))), ["a", "b", "c"]);
        assert_eq!(reached(AccessTarget::Policy(format!("{ARN}WideNetwork"))), ["c"]);
        assert!(reached(AccessTarget::Group("nobody".into())).is_empty());
    }

    #[test]
    fn aws_managed_arns_are_recognised_in_every_partition_but_not_look_alikes() {
        assert!(Verdict::aws_managed("arn:aws-us-gov:iam::aws:policy/AdministratorAccess").admin);
        assert!(!Verdict::aws_managed("arn:aws:iam::aws:policy/AdministratorAccess-Amplify").admin);
        assert!(is_aws_managed("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"));
        assert!(!is_aws_managed("arn:aws:iam::123456789012:policy/AdministratorAccess"));
    }
}
