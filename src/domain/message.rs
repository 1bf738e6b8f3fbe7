//! What goes on the topic, as data: one message per finding or digest part (every rendering
//! of it), and the facts of a scan that head its digest. Built in [`crate::message`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::finding::Severity;

/// The `check` attribute of digest messages.
pub const DIGEST_CHECK: &str = "digest";

/// One SNS message: the same finding (or digest part) rendered for each protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Under 100 printable ASCII characters (e-mail subject; also in the SQS envelope).
    pub subject: String,
    /// JSON: the `default` rendering, which `sqs`, `lambda` and `firehose` subscribers get.
    pub body: String,
    /// Plain text: the `email` rendering.
    pub email: String,
    /// An Amazon Q Developer custom notification: the `https` rendering.
    pub chat: String,
    /// `severity` attribute.
    pub severity: Severity,
    /// `check` attribute (a check id, or `digest`).
    pub check: String,
    /// `account` attribute.
    pub account: String,
    /// `finding_id` attribute: the finding's stable id (digest parts: account, day, part).
    pub id: String,
}

/// The facts of a scan that head every digest part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanSummary {
    /// Account scanned.
    pub account: String,
    /// Region the scan ran in.
    pub region: String,
    /// "Now" of the scan.
    pub observed_at: DateTime<Utc>,
    /// When AWS generated the credential report (it can be up to 4 hours old).
    pub credential_report_generated_at: Option<DateTime<Utc>>,
    /// Users checked.
    pub users_scanned: usize,
    /// Users carrying the exception tag (`=True`) under a valid approval: the exceptions in
    /// force. `None` when the registry could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions_active: Option<usize>,
    /// The exceptions in force, for whoever approves them: approver, ticket, expiry, last use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<ActiveException>,
    /// Users in GetAccountAuthorizationDetails but not yet in the credential report
    /// (created after it was generated): tag checks ran, key and MFA checks did not.
    pub users_not_in_report: Vec<String>,
    /// Users in the report that no longer exist (deleted since): skipped.
    pub users_deleted_since_report: Vec<String>,
    /// When the approvals registry secret last changed (`DescribeSecret`); who changed it is in
    /// the event path's log, or in its `registry-changed-by-non-approver` finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_last_changed_at: Option<DateTime<Utc>>,
    /// What changed since the previous scan (new, resolved, still open, oldest open), when
    /// the state table is configured; `None` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::domain::memory::Changes>,
}

/// One exception in force (tagged `True` under a valid approval), as the digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ActiveException {
    /// The IAM user.
    pub user: String,
    /// Who approved it.
    pub approved_by: String,
    /// The approval's ticket.
    pub ticket: String,
    /// When the approval ends.
    pub expires: DateTime<Utc>,
    /// When the user last used a password or key; `None` if never (or unknown).
    pub last_used: Option<DateTime<Utc>>,
}
