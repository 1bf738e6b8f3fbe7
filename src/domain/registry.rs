//! The approvals registry as read at one version stage.

use crate::approvals::Approvals;

/// One version of the registry as read for the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// The version stage does not exist (no previous version yet, or the secret is gone).
    Missing,
    /// A valid registry.
    Valid(Approvals),
    /// Not a valid registry; the problem names entries and fields, never content.
    Invalid(String),
}
