//! Organization mode: what only an AWS Organization has (its SCPs, its accounts). The
//! single-account path runs unchanged per account; this folder holds the organization-level
//! judgements and the context an app carries when it acts for one account of an organization.

pub mod coverage;
pub mod digest;
pub mod run;
pub mod scp;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::aws::organizations::OrganizationReader;
use crate::config::{Config, Organization};
use crate::finding::{Finding, Scope};
use crate::ports::CallError;

/// What an app knows of the organization it belongs to (organization mode only).
#[derive(Debug, Clone)]
pub struct OrgContext {
    /// Reads the organization with the function's own credentials (management account or
    /// delegated administrator).
    pub reader: OrganizationReader,
    /// The account's name in the organization, when known: findings carry it.
    pub account_name: Option<String>,
    /// Whether the account is the organization's management account (SCPs never apply there).
    pub management: bool,
    /// Whether the organization manages its members' root credentials centrally
    /// (`RootCredentialsManagement`), as the scan request carries it: read once per organization
    /// scan in the management account; `None` when not known (the member check does not run).
    pub root_managed_centrally: Option<bool>,
}

/// The organization scan's SCP judgement: reads the structure in bulk (see
/// [`crate::aws::org_structure`]) and returns `scp-not-attached` / `scp-weakened` findings for
/// the member accounts (those in `only`, when given) that seed 000's SCP does not protect.
/// Each finding's account is the member account; `trigger` is `schedule` or `event:<Name>`.
pub async fn coverage(
    reader: &OrganizationReader,
    config: &Config,
    region: &str,
    now: DateTime<Utc>,
    trigger: &str,
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<Finding>, CallError> {
    let org = reader.read_structure(only).await?;
    Ok(judge(&org, config, region, now, trigger, only))
}

/// [`coverage`]'s judgement of a structure already read.
#[must_use]
pub fn judge(
    org: &coverage::OrgStructure,
    config: &Config,
    region: &str,
    now: DateTime<Utc>,
    trigger: &str,
    only: Option<&BTreeSet<String>>,
) -> Vec<Finding> {
    let scope =
        Scope { account: org.management_account.clone(), region: region.to_owned(), trigger: trigger.to_owned(), now };
    coverage::judge_coverage(org, &scp_settings(config), &scope, only)
}

/// What the SCP judgement compares with, from the configuration (`SCP_POLICY` defaults to the
/// seed's name outside organization mode too).
#[must_use]
pub fn scp_settings(config: &Config) -> coverage::ScpSettings<'_> {
    const DEFAULT: &str = "RestrictIAMUserAccessWithExceptions";
    coverage::ScpSettings {
        configured: config.organization.as_ref().map_or(DEFAULT, |o: &Organization| o.scp_policy.as_str()),
        enterprise: &config.policy.enterprise_cidrs,
        tag_key: &config.policy.exception_tag_key,
    }
}
