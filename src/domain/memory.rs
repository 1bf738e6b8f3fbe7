//! What the function remembers (the state table's records) and what an action changed: plain
//! data shared by the pure lifecycle (`state`), the ports and the DynamoDB adapter.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::stored::StoredFinding;
use crate::finding::{CheckId, Finding, FindingState, RemediationStatus, Severity};

/// What a credential action changed and from which state: enough to reverse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum UndoRecord {
    /// The exception tag `tag_key` was removed from `user`; it held `previous_value`.
    Untag {
        /// The IAM user.
        user: String,
        /// The tag key as it was spelled on the user.
        tag_key: String,
        /// The value it had.
        previous_value: String,
    },
    /// Key `key_id` of `user` was made inactive; it was `previous_status` (`Active`).
    Deactivate {
        /// The IAM user.
        user: String,
        /// The access key id.
        key_id: String,
        /// The status before (`Active`).
        previous_status: String,
    },
    /// The rotation made `new_key_id` and stored it in `secret`, replacing `old_key_id`.
    Rotate {
        /// The IAM user.
        user: String,
        /// The key the rotation replaced (still active while the rotation can be undone).
        old_key_id: String,
        /// The key the rotation created.
        new_key_id: String,
        /// The rotation secret.
        secret: String,
    },
    /// The rotation deleted `key_id` of `user`, inactive since the rotation: journaled, and
    /// never undoable (AWS keeps no copy of a deleted key).
    Delete {
        /// The IAM user.
        user: String,
        /// The deleted access key id.
        key_id: String,
    },
}

/// What the table remembers of one thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRecord {
    /// [`Finding::thread_id`].
    pub thread: String,
    /// The account.
    pub account: String,
    /// The region it was observed from.
    pub region: String,
    /// The check.
    pub check: CheckId,
    /// The principal's ARN.
    pub principal: String,
    /// The IAM user, if about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The key id or slot, if about a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Severity when last written.
    pub severity: Severity,
    /// Open or resolved.
    pub state: FindingState,
    /// When this run of the condition was first seen.
    pub first_seen: DateTime<Utc>,
    /// When it was last announced on the topic; `None` if never (below the announcement
    /// severity, or its message was not sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_announced: Option<DateTime<Utc>>,
    /// The remediation status when last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationStatus>,
    /// `schedule` or `event:<EventName>`: which path first reported it.
    pub trigger: String,
    /// The message it was first reported with.
    pub message: String,
    /// When it was resolved (state `resolved` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl ThreadRecord {
    /// The record of a finding first seen `now`.
    #[must_use]
    pub fn of(f: &Finding, first_seen: DateTime<Utc>) -> ThreadRecord {
        ThreadRecord {
            thread: f.thread_id(),
            account: f.account.clone(),
            region: f.region.clone(),
            check: f.check,
            principal: f.principal.clone(),
            user: f.user.clone(),
            resource: f.resource.clone(),
            severity: f.severity,
            state: FindingState::Open,
            first_seen,
            last_announced: None,
            remediation: f.remediation.as_ref().map(|r| r.status),
            trigger: f.trigger.clone(),
            message: f.message.clone(),
            resolved_at: None,
        }
    }

    /// Whether the thread is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.state == FindingState::Open
    }

    /// The record as the resolution rules of [`lifecycle::resolved`] read a stored finding.
    #[must_use]
    pub fn as_stored(&self) -> StoredFinding {
        StoredFinding {
            store_id: self.thread.clone(),
            check: Some(self.check),
            account: self.account.clone(),
            region: self.region.clone(),
            principal: self.principal.clone(),
            user: self.user.clone(),
            resource: self.resource.clone(),
            trigger: self.trigger.clone(),
            message: self.message.clone(),
            first_observed_at: Some(self.first_seen),
        }
    }
}

/// What changed since the previous scan, for the digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Threads first seen (or back) in this scan.
    pub new: usize,
    /// Threads this scan resolved.
    pub resolved: usize,
    /// Threads open before and still open.
    pub still_open: usize,
    /// When the oldest open thread was first seen, and which check it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_open_since: Option<DateTime<Utc>>,
    /// The check of the oldest open thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_open_check: Option<CheckId>,
    /// Whether a previous scan's state was read (`false` on the first scan with the table).
    pub previous_scan: bool,
}

/// What a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A remediation the function applied.
    Applied,
    /// An undo of that remediation (by whoever ran `iam-sentinel undo`).
    Undone,
}

/// One action, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The account acted in.
    pub account: String,
    /// The finding the action answered.
    pub finding_id: String,
    /// The IAM user acted on.
    pub user: String,
    /// Applied or undone.
    pub kind: EntryKind,
    /// The exact target and the state it replaced (tag key and value, key id, secret).
    pub action: UndoRecord,
    /// The state before, in words (`AccessException=True`, `AKIA… Active`).
    pub before: String,
    /// The state after.
    pub after: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `event:<EventName>`, `schedule`, or `undo`.
    pub trigger: String,
    /// Who acted: the function, or the ARN that ran `undo`.
    pub by: String,
    /// For an undo: the sort key of the entry it undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
}

impl JournalEntry {
    /// The entry for a remediation the function applied.
    #[must_use]
    pub fn applied(account: &str, finding_id: &str, action: UndoRecord, at: DateTime<Utc>, trigger: &str) -> Self {
        let (before, after) = describe(&action);
        JournalEntry {
            account: account.to_owned(),
            finding_id: finding_id.to_owned(),
            user: user_of(&action).to_owned(),
            kind: EntryKind::Applied,
            action,
            before,
            after,
            at,
            trigger: trigger.to_owned(),
            by: "iam-sentinel".to_owned(),
            undoes: None,
        }
    }

    /// The entry for the undo of `applied`, done by `by`.
    #[must_use]
    pub fn undone(applied: &JournalEntry, at: DateTime<Utc>, by: &str) -> Self {
        JournalEntry {
            kind: EntryKind::Undone,
            before: applied.after.clone(),
            after: applied.before.clone(),
            at,
            trigger: "undo".to_owned(),
            by: by.to_owned(),
            undoes: Some(applied.sort_key()),
            ..applied.clone()
        }
    }

    /// The sort key inside the finding's entries: time first, so the last entry is the latest.
    #[must_use]
    pub fn sort_key(&self) -> String {
        let kind = match self.kind {
            EntryKind::Applied => "applied",
            EntryKind::Undone => "undone",
        };
        format!("{}#{}#{kind}", self.finding_id, self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }
}

/// The user an action touched.
#[must_use]
pub fn user_of(action: &UndoRecord) -> &str {
    match action {
        UndoRecord::Untag { user, .. }
        | UndoRecord::Deactivate { user, .. }
        | UndoRecord::Rotate { user, .. }
        | UndoRecord::Delete { user, .. } => user,
    }
}

/// The state before and after an action, in words.
fn describe(action: &UndoRecord) -> (String, String) {
    match action {
        UndoRecord::Untag { tag_key, previous_value, .. } => {
            (format!("{tag_key}={previous_value}"), format!("{tag_key} absent"))
        }
        UndoRecord::Deactivate { key_id, previous_status, .. } => {
            (format!("{key_id} {previous_status}"), format!("{key_id} Inactive"))
        }
        UndoRecord::Delete { key_id, .. } => (format!("{key_id} Inactive"), format!("{key_id} deleted")),
        UndoRecord::Rotate { old_key_id, new_key_id, secret, .. } => {
            (format!("{old_key_id} current in {secret}"), format!("{new_key_id} current in {secret}"))
        }
    }
}
