//! The organization's structure for the SCP coverage judgement, read in bulk: the roots, every
//! account's chain of parents, the SCPs attached to each target on those chains, and each
//! SCP's document.
//!
//! Calls: `DescribeOrganization` 1, `ListAccounts` one per page, `ListRoots` one per page,
//! `ListParents` one per distinct account or OU (OUs are shared by many accounts: each is
//! asked once), `DescribeOrganizationalUnit` one per distinct OU (for its name),
//! `ListPoliciesForTarget` one per distinct target (and page), `DescribePolicy` one per
//! distinct SCP. AWS's `FullAWSAccess` is never described: it allows, it cannot restrict.
//! Sequential on purpose: Organizations throttles its API per account at a few requests a second.

use std::collections::BTreeSet;

use aws_sdk_organizations::types::{ParentType, PolicyType};

use super::call_error;
use super::organizations::OrganizationReader;
use crate::org::coverage::{AttachedPolicy, NodeKind, OrgNode, OrgStructure};
use crate::ports::CallError;

/// The id AWS gives its managed `FullAWSAccess` SCP in every organization.
pub const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";

impl OrganizationReader {
    /// Reads what [`crate::org::coverage::judge_coverage`] needs; with `only`, the parent chains
    /// and SCPs of those accounts alone (every active account is still listed, for names).
    pub async fn read_structure(&self, only: Option<&BTreeSet<String>>) -> Result<OrgStructure, CallError> {
        let management_account = self.management_account().await?;
        let accounts = self.list_accounts().await?;
        let mut org = OrgStructure { management_account, accounts, ..OrgStructure::default() };
        for root in self.roots().await? {
            org.nodes.insert(root.id.clone(), root);
        }
        let judged: Vec<String> =
            org.members().filter(|a| only.is_none_or(|only| only.contains(*a))).map(str::to_owned).collect();
        for account in &judged {
            self.read_parents(account, &mut org).await?;
        }
        // Targets from the root down, each once: roots, the OUs on any path, the accounts.
        let mut targets: Vec<String> = org.nodes.keys().cloned().collect();
        targets.extend(judged);
        for target in targets {
            let policies = self.scps_attached_to(&target).await?;
            org.attached.insert(target, policies);
        }
        let policy_ids: BTreeSet<String> = org.attached.values().flatten().map(|p| p.id.clone()).collect();
        for id in policy_ids {
            let document = self.scp_document(&id).await?;
            org.documents.insert(id, document);
        }
        Ok(org)
    }

    /// `ListRoots`, paged.
    async fn roots(&self) -> Result<Vec<OrgNode>, CallError> {
        let mut pages = self.client().list_roots().into_paginator().send();
        let mut roots = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("organizations:ListRoots", "the organization", &e))?;
            for root in page.roots() {
                if let Some(id) = root.id() {
                    roots.push(OrgNode {
                        id: id.to_owned(),
                        kind: NodeKind::Root,
                        name: root.name().unwrap_or("Root").to_owned(),
                    });
                }
            }
        }
        Ok(roots)
    }

    /// Walks up from `account` to the root with `ListParents`, stopping at the first node whose
    /// parent is already known; names each new OU with `DescribeOrganizationalUnit`.
    async fn read_parents(&self, account: &str, org: &mut OrgStructure) -> Result<(), CallError> {
        let mut child = account.to_owned();
        // Organizations nests OUs at most five deep under the root.
        for _ in 0..8 {
            if org.parents.contains_key(&child) {
                return Ok(());
            }
            let out = self
                .client()
                .list_parents()
                .child_id(&child)
                .send()
                .await
                .map_err(|e| call_error("organizations:ListParents", &child, &e))?;
            let Some(parent) = out.parents().first() else { return Ok(()) };
            let Some(parent_id) = parent.id().map(str::to_owned) else { return Ok(()) };
            org.parents.insert(child.clone(), parent_id.clone());
            if parent.r#type() == Some(&ParentType::Root)
                || org.nodes.get(&parent_id).is_some_and(|n| n.kind == NodeKind::Root)
            {
                org.nodes.entry(parent_id.clone()).or_insert_with(|| OrgNode {
                    id: parent_id.clone(),
                    kind: NodeKind::Root,
                    name: "Root".to_owned(),
                });
                return Ok(());
            }
            if !org.nodes.contains_key(&parent_id) {
                let name = self.ou_name(&parent_id).await?;
                org.nodes.insert(
                    parent_id.clone(),
                    OrgNode { id: parent_id.clone(), kind: NodeKind::OrganizationalUnit, name },
                );
            }
            child = parent_id;
        }
        Ok(())
    }

    /// An OU's name (`DescribeOrganizationalUnit`): findings name OUs as people know them.
    async fn ou_name(&self, ou: &str) -> Result<String, CallError> {
        let out = self
            .client()
            .describe_organizational_unit()
            .organizational_unit_id(ou)
            .send()
            .await
            .map_err(|e| call_error("organizations:DescribeOrganizationalUnit", ou, &e))?;
        Ok(out.organizational_unit().and_then(|o| o.name()).unwrap_or_default().to_owned())
    }

    /// The SCPs attached to `target` (`ListPoliciesForTarget`, filter `SERVICE_CONTROL_POLICY`,
    /// paged), AWS managed ones left out.
    async fn scps_attached_to(&self, target: &str) -> Result<Vec<AttachedPolicy>, CallError> {
        let mut pages = self
            .client()
            .list_policies_for_target()
            .target_id(target)
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send();
        let mut policies = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("organizations:ListPoliciesForTarget", target, &e))?;
            for p in page.policies() {
                let Some(id) = p.id() else { continue };
                if id == FULL_AWS_ACCESS || p.aws_managed() {
                    continue;
                }
                policies.push(AttachedPolicy { id: id.to_owned(), name: p.name().unwrap_or_default().to_owned() });
            }
        }
        Ok(policies)
    }

    /// An SCP's document (`DescribePolicy`): JSON text, judged as it is.
    async fn scp_document(&self, policy_id: &str) -> Result<String, CallError> {
        let out = self
            .client()
            .describe_policy()
            .policy_id(policy_id)
            .send()
            .await
            .map_err(|e| call_error("organizations:DescribePolicy", policy_id, &e))?;
        Ok(out.policy().and_then(|p| p.content()).unwrap_or_default().to_owned())
    }
}
