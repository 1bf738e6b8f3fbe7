//! Organization mode: what only an AWS Organization has (its SCPs, its accounts). The
//! single-account path runs unchanged per account; this folder holds the organization-level
//! judgements and the context an app carries when it acts for one account of an organization.

pub mod digest;
pub mod run;
pub mod scp;

use crate::aws::organizations::OrganizationReader;

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
}
