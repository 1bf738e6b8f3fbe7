//! A finding as the findings store (Security Hub) holds it.

/// A finding the store holds as open (active, not yet passed), as much as the lifecycle needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    /// The store's id (stable per condition: see `render::asff::finding_id`).
    pub store_id: String,
    /// The check, as the stored `GeneratorId` names it; `None` for an id this version does not know.
    pub check: Option<crate::finding::CheckId>,
    /// Account.
    pub account: String,
    /// Region the finding was observed from.
    pub region: String,
    /// Principal ARN.
    pub principal: String,
    /// IAM user name, if about a user.
    pub user: Option<String>,
    /// Key id or slot, if about a key.
    pub resource: Option<String>,
    /// `schedule` or `event:<EventName>`: which path reported it.
    pub trigger: String,
    /// The message the finding was reported with.
    pub message: String,
    /// When it was first reported.
    pub first_observed_at: Option<chrono::DateTime<chrono::Utc>>,
}
