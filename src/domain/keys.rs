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
    /// The old key the rotation deactivated, and when.
    pub deactivated: Option<(String, DateTime<Utc>)>,
}
