//! Access keys as the remediations see them: their state now, their last use, what a user's
//! rotation secret holds.

use chrono::{DateTime, Utc};

/// The remediation's name in findings when a key is deactivated.
pub const DEACTIVATE: &str = "deactivate";

/// One access key as `ListAccessKeys` reports it at the moment of acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// The access key id.
    pub id: String,
    /// `Active` (true) or `Inactive`.
    pub active: bool,
    /// When the key was created.
    pub created: chrono::DateTime<chrono::Utc>,
}

/// Where and when a key was last used (`GetAccessKeyLastUsed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastUse {
    /// When; `None` if never.
    pub at: Option<DateTime<Utc>>,
    /// The service it called last (`s3`, …).
    pub service: Option<String>,
    /// The region it called last.
    pub region: Option<String>,
}

/// What the user's rotation secret says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vault {
    /// The key id of the secret's current version; `None` when there is no secret yet.
    pub current_key: Option<String>,
    /// The old keys the rotation deactivated, and when (one per cycle until the key is deleted).
    pub deactivated: Vec<(String, DateTime<Utc>)>,
    /// Why the secret at the rotation's name is not one the rotation created (its marker tag,
    /// KMS key or resource policy differ); `None` when it is, or when there is no secret.
    pub not_ours: Option<String>,
}

/// The last use of both keys of a rotation in flight: the evidence that the consumer moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    /// The replaced key's last use.
    pub old: LastUse,
    /// The new key's last use.
    pub new: LastUse,
}
