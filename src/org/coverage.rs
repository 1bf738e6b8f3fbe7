//! Does seed 000's SCP protect every member account? Judged from the organization's structure
//! (root, OUs, accounts, the SCPs attached to each) by content, not by name: an SCP on an
//! account's path that [`judge_scp`] finds equivalent covers it, whatever it is called.
//!
//! Pure: [`OrgStructure`] is read by the Organizations adapter (`src/aws/org_structure.rs`);
//! this module only judges it. SCPs never apply to the management account, so it is never
//! judged here; its IAM users are reported by [`management_account_users`] instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Value, json};

use super::scp::{ScpWeakness, judge_scp};
use crate::checks::policy::{Cidr, NetworkWeakness, PolicyDocument};
use crate::domain::account::OrgAccount;
use crate::finding::{CheckId, Finding, Scope};

/// What a node of the organization's tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// The organization's root (`r-…`).
    Root,
    /// An organizational unit (`ou-…`).
    OrganizationalUnit,
    /// A member account (12 digits).
    Account,
}

/// A root, OU or account: where an SCP can be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgNode {
    /// `r-…`, `ou-…` or the account id.
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its name (`Root`, the OU's name, the account's name); may be empty.
    pub name: String,
}

impl fmt::Display for OrgNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.name.is_empty()) {
            (NodeKind::Root, _) => write!(f, "the root {}", self.id),
            (NodeKind::OrganizationalUnit, false) => write!(f, "OU {} ({})", self.name, self.id),
            (NodeKind::OrganizationalUnit, true) => write!(f, "OU {}", self.id),
            (NodeKind::Account, false) => write!(f, "account {} ({})", self.id, self.name),
            (NodeKind::Account, true) => write!(f, "account {}", self.id),
        }
    }
}

/// An SCP attached to a target, as `ListPoliciesForTarget` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPolicy {
    /// `p-…`.
    pub id: String,
    /// The policy's name.
    pub name: String,
}

/// What the organization adapter reads: the accounts, each one's parent chain, the SCPs
/// attached to every target on those chains and their documents. AWS's `FullAWSAccess` is left
/// out: it allows, and can never restrict anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgStructure {
    /// The management account's id: SCPs never apply to it.
    pub management_account: String,
    /// Every active account read (the management account included).
    pub accounts: Vec<OrgAccount>,
    /// The parent of every account and OU read (`ListParents`).
    pub parents: BTreeMap<String, String>,
    /// Roots and OUs by id, with their names.
    pub nodes: BTreeMap<String, OrgNode>,
    /// The SCPs attached to each target read (root, OU or account).
    pub attached: BTreeMap<String, Vec<AttachedPolicy>>,
    /// Each SCP's document, as `DescribePolicy` returns it (JSON text).
    pub documents: BTreeMap<String, String>,
}

impl OrgStructure {
    /// The account as a node of the tree.
    fn account_node(&self, account: &str) -> OrgNode {
        let name = self.accounts.iter().find(|a| a.id == account).map(|a| a.name.clone()).unwrap_or_default();
        OrgNode { id: account.to_owned(), kind: NodeKind::Account, name }
    }

    /// From the root down to the account itself: every target whose SCPs apply to the account.
    #[must_use]
    pub fn path(&self, account: &str) -> Vec<OrgNode> {
        let mut path = vec![self.account_node(account)];
        let mut child = account;
        // Bounded: Organizations nests OUs at most five deep; a cycle in bad data cannot loop.
        for _ in 0..16 {
            let Some(parent) = self.parents.get(child) else { break };
            let node = self.nodes.get(parent).cloned().unwrap_or_else(|| OrgNode {
                id: parent.clone(),
                kind: if parent.starts_with("r-") { NodeKind::Root } else { NodeKind::OrganizationalUnit },
                name: String::new(),
            });
            let is_root = node.kind == NodeKind::Root;
            path.push(node);
            if is_root {
                break;
            }
            child = parent;
        }
        path.reverse();
        path
    }

    /// The member accounts (the management account excluded) whose path goes through `target`
    /// (a root, an OU, or the account itself).
    #[must_use]
    pub fn accounts_under(&self, target: &str) -> BTreeSet<String> {
        self.members().filter(|a| self.path(a).iter().any(|n| n.id == target)).map(str::to_owned).collect()
    }

    /// The member accounts an SCP applies to: it is attached somewhere on their path.
    #[must_use]
    pub fn accounts_reached_by(&self, policy_id: &str) -> BTreeSet<String> {
        self.members()
            .filter(|a| {
                self.path(a)
                    .iter()
                    .any(|n| self.attached.get(&n.id).is_some_and(|ps| ps.iter().any(|p| p.id == policy_id)))
            })
            .map(str::to_owned)
            .collect()
    }

    /// Every member account read: the accounts SCPs apply to.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.accounts.iter().map(|a| a.id.as_str()).filter(|id| *id != self.management_account)
    }

    /// Whether `policy_id` is an SCP attached to `target` (in what was read).
    #[must_use]
    pub fn is_attached(&self, policy_id: &str, target: &str) -> bool {
        self.attached.get(target).is_some_and(|ps| ps.iter().any(|p| p.id == policy_id))
    }
}

/// What the judgement compares SCPs with.
#[derive(Debug, Clone, Copy)]
pub struct ScpSettings<'a> {
    /// `SCP_POLICY`: the configured SCP, by name or id.
    pub configured: &'a str,
    /// `ENTERPRISE_CIDRS`; when empty the network statement's ranges are not compared.
    pub enterprise: &'a [Cidr],
    /// `EXCEPTION_TAG_KEY`.
    pub tag_key: &'a str,
}

/// How one SCP on an account's path compares with the seed's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// It does all the seed's SCP does.
    Equivalent,
    /// It is the configured SCP or a copy (it locks untagged users out) but falls short.
    Weakened(Vec<String>),
    /// Another guardrail altogether (no lockout on the exception tag).
    Unrelated(Vec<String>),
}

impl ScpSettings<'_> {
    fn is_configured(&self, p: &AttachedPolicy) -> bool {
        p.id == self.configured || p.name == self.configured
    }

    fn judge(&self, p: &AttachedPolicy, document: Option<&String>) -> Verdict {
        let configured = self.is_configured(p);
        let doc = match document.map(|d| PolicyDocument::parse(d)) {
            Some(Ok(doc)) => doc,
            Some(Err(e)) if configured => return Verdict::Weakened(vec![e.to_string()]),
            Some(Err(e)) => return Verdict::Unrelated(vec![e.to_string()]),
            None => return Verdict::Unrelated(vec!["its document was not read".to_owned()]),
        };
        let weaknesses: Vec<ScpWeakness> = judge_scp(&doc, self.enterprise, self.tag_key)
            .into_iter()
            // Without ENTERPRISE_CIDRS there is nothing to compare the ranges with.
            .filter(|w| {
                !(self.enterprise.is_empty() && matches!(w, ScpWeakness::Network(NetworkWeakness::CidrExtra { .. })))
            })
            .collect();
        let reasons: Vec<String> = weaknesses.iter().map(ToString::to_string).collect();
        if reasons.is_empty() {
            Verdict::Equivalent
        } else if configured || !weaknesses.contains(&ScpWeakness::LockoutMissing) {
            Verdict::Weakened(reasons)
        } else {
            Verdict::Unrelated(reasons)
        }
    }
}

/// One SCP applying to an account, where it is attached, and how it compares.
struct Applying<'a> {
    policy: &'a AttachedPolicy,
    at: &'a OrgNode,
    verdict: Verdict,
}

impl Applying<'_> {
    fn evidence(&self) -> Value {
        let mut v = json!({ "policy": self.policy.name, "id": self.policy.id, "attached_to": self.at.to_string() });
        match &self.verdict {
            Verdict::Equivalent => {}
            Verdict::Weakened(d) | Verdict::Unrelated(d) => v["differences"] = json!(d),
        }
        v
    }
}

/// `scp-not-attached` or `scp-weakened` for every member account (in `only`, when given) that
/// no SCP equivalent to the seed's protects; nothing for covered accounts.
#[must_use]
pub fn judge_coverage(
    org: &OrgStructure,
    settings: &ScpSettings<'_>,
    scope: &Scope,
    only: Option<&BTreeSet<String>>,
) -> Vec<Finding> {
    org.members()
        .filter(|a| only.is_none_or(|only| only.contains(*a)))
        .filter_map(|account| judge_account(org, settings, scope, account))
        .collect()
}

fn judge_account(org: &OrgStructure, settings: &ScpSettings<'_>, scope: &Scope, account: &str) -> Option<Finding> {
    let path = org.path(account);
    let applying: Vec<Applying<'_>> = path
        .iter()
        .flat_map(|node| {
            org.attached.get(&node.id).into_iter().flatten().map(move |policy| Applying {
                policy,
                at: node,
                verdict: settings.judge(policy, org.documents.get(&policy.id)),
            })
        })
        .collect();
    if applying.iter().any(|a| a.verdict == Verdict::Equivalent) {
        return None;
    }
    let scope = Scope { account: account.to_owned(), ..scope.clone() };
    let principal = format!("arn:aws:iam::{account}:root");
    let account_node = path.last().cloned().unwrap_or_else(|| org.account_node(account));
    let route: Vec<String> = path.iter().map(ToString::to_string).collect();
    let weakened = applying
        .iter()
        .filter_map(|a| match &a.verdict {
            Verdict::Weakened(d) => Some((a, d)),
            _ => None,
        })
        .min_by_key(|(a, d)| (!settings.is_configured(a.policy), d.len()));
    let mut f = if let Some((a, differences)) = weakened {
        let instead = if settings.is_configured(a.policy) {
            String::new()
        } else {
            format!(", or replace it on {} with {}", a.at, settings.configured)
        };
        let mut f = scope.finding(
            CheckId::ScpWeakened,
            &principal,
            format!(
                "SCP {} ({}), attached to {}, does not do what {} does for {}: {}. Restore its content to the \
                 seed's two statements (deny untagged IAM users; deny tagged users outside ENTERPRISE_CIDRS \
                 unless aws:ViaAWSService){instead}.",
                a.policy.name,
                a.policy.id,
                a.at,
                settings.configured,
                account_node,
                differences.join("; "),
            ),
        );
        f.resource = Some(a.policy.id.clone());
        f.evidence = json!({
            "policy": a.policy.name,
            "policy_id": a.policy.id,
            "attached_to": a.at.to_string(),
            "differences": differences,
        });
        f
    } else {
        let parent = path.iter().rev().nth(1).filter(|n| n.kind != NodeKind::Root);
        let root = path.first().filter(|n| n.kind == NodeKind::Root);
        let suggestion = match (parent, root) {
            (Some(ou), Some(root)) => format!("{ou}, or to {root} to cover every account"),
            (Some(ou), None) => ou.to_string(),
            (None, Some(root)) => format!("{root} (every account), or to {account_node} itself"),
            (None, None) => account_node.to_string(),
        };
        scope.finding(
            CheckId::ScpNotAttached,
            &principal,
            format!(
                "No SCP doing what {} does applies to {} (path: {}): its IAM users are not locked out unless \
                 tagged, nor kept on the enterprise networks. Attach {} to {}.",
                settings.configured,
                account_node,
                route.join(" → "),
                settings.configured,
                suggestion,
            ),
        )
    };
    f.account_name = Some(account_node.name.clone()).filter(|n| !n.is_empty());
    let evidence = f.evidence.as_object_mut()?;
    evidence.insert("configured_scp".into(), json!(settings.configured));
    evidence.insert("path".into(), json!(route));
    evidence.insert("scps_applying".into(), Value::Array(applying.iter().map(Applying::evidence).collect()));
    if settings.enterprise.is_empty() {
        evidence.insert("cidrs_compared".into(), json!("no: ENTERPRISE_CIDRS is not set"));
    }
    Some(f)
}

/// `management-account-iam-users` when the management account has IAM users: SCPs never apply
/// there, so seed 000's SCP restricts none of them.
#[must_use]
pub fn management_account_users(management_account: &str, user_names: &[String], scope: &Scope) -> Option<Finding> {
    if user_names.is_empty() {
        return None;
    }
    let scope = Scope { account: management_account.to_owned(), ..scope.clone() };
    let mut users = user_names.to_vec();
    users.sort();
    users.dedup();
    let shown: Vec<&str> = users.iter().take(10).map(String::as_str).collect();
    let more = users.len().saturating_sub(shown.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let mut f = scope.finding(
        CheckId::ManagementAccountIamUsers,
        &format!("arn:aws:iam::{management_account}:root"),
        format!(
            "The management account {management_account} has {} IAM user(s) ({}{more}): SCPs never apply to the \
             management account, so no SCP locks them out or keeps them on the enterprise networks. Move their \
             work to roles or to a member account, then delete the users.",
            users.len(),
            shown.join(", "),
        ),
    );
    f.evidence = json!({ "users": users, "count": users.len() });
    Some(f)
}

#[cfg(test)]
mod tests;
