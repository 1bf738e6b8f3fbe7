//! Organization mode: what only an AWS Organization has (its SCPs). The single-account path
//! runs unchanged per account; this folder holds the organization-level judgements.

pub mod scp;
