//! The action journal: every remediation applied (untag, key deactivation, rotation) and every
//! undo, with its exact target and the state before and after. `undo` acts only on what the
//! journal holds; a file given to it is a pointer, checked field by field against the journal.

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::domain::memory::{EntryKind, JournalEntry, UndoRecord, user_of};

/// Why the journal allows no undo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The journal holds no action for this finding.
    #[error("the journal of account {account} holds no action for finding {finding_id}: nothing to undo")]
    NoAction {
        /// The account looked in.
        account: String,
        /// The finding asked for.
        finding_id: String,
    },
    /// The latest action was already undone.
    #[error("finding {finding_id}'s action was already undone at {at} by {by}")]
    AlreadyUndone {
        /// The finding.
        finding_id: String,
        /// When the undo happened.
        at: DateTime<Utc>,
        /// Who undid it.
        by: String,
    },
    /// A file given as a pointer does not match the journal.
    #[error("the record in the file does not match the journal ({0}): refused")]
    Mismatch(String),
}

/// The action to undo for a finding: the latest one applied, if no undo followed it.
pub fn to_undo<'a>(entries: &'a [JournalEntry], account: &str, finding_id: &str) -> Result<&'a JournalEntry, Refusal> {
    let mine = || entries.iter().filter(|e| e.account == account && e.finding_id == finding_id);
    let latest = mine()
        .filter(|e| e.kind == EntryKind::Applied)
        .max_by_key(|e| e.at)
        .ok_or_else(|| Refusal::NoAction { account: account.to_owned(), finding_id: finding_id.to_owned() })?;
    let key = latest.sort_key();
    if let Some(undo) = mine().find(|e| e.kind == EntryKind::Undone && e.undoes.as_deref() == Some(key.as_str())) {
        return Err(Refusal::AlreadyUndone { finding_id: finding_id.to_owned(), at: undo.at, by: undo.by.clone() });
    }
    Ok(latest)
}

/// Checks a record read from a file against the journal's, field by field; names the first
/// field that differs (an edited record is refused, never followed).
pub fn check_pointer(from_file: &UndoRecord, journal: &UndoRecord) -> Result<(), Refusal> {
    let (file, kept) = (to_object(from_file), to_object(journal));
    let mut fields: Vec<&String> = file.keys().chain(kept.keys()).collect();
    fields.sort();
    fields.dedup();
    for field in fields {
        let (a, b) = (file.get(field), kept.get(field));
        if a != b {
            let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_owned(), Value::to_string);
            return Err(Refusal::Mismatch(format!("{field}: file says {}, journal says {}", show(a), show(b))));
        }
    }
    Ok(())
}

fn to_object(record: &UndoRecord) -> serde_json::Map<String, Value> {
    match serde_json::to_value(record) {
        Ok(Value::Object(o)) => o,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn untag(user: &str) -> UndoRecord {
        UndoRecord::Untag { user: user.into(), tag_key: "AccessException".into(), previous_value: "True".into() }
    }

    #[test]
    fn the_latest_applied_action_is_undone_once() {
        let applied =
            JournalEntry::applied("111122223333", "f1", untag("alice"), at("2026-12-01T10:00:00Z"), "schedule");
        assert_eq!(
            (applied.before.as_str(), applied.after.as_str()),
            ("AccessException=True", "AccessException absent")
        );
        let entries = vec![applied.clone()];
        assert_eq!(to_undo(&entries, "111122223333", "f1").unwrap(), &applied);
        let undone = JournalEntry::undone(&applied, at("2026-12-02T09:00:00Z"), "arn:aws:iam::111122223333:user/sec");
        assert_eq!((undone.before.as_str(), undone.after.as_str()), ("AccessException absent", "AccessException=True"));
        let entries = vec![applied.clone(), undone];
        assert!(matches!(to_undo(&entries, "111122223333", "f1"), Err(Refusal::AlreadyUndone { .. })));
        // Applied again after the undo: undoable again.
        let again = JournalEntry::applied("111122223333", "f1", untag("alice"), at("2026-12-03T10:00:00Z"), "schedule");
        let entries = [entries, vec![again.clone()]].concat();
        assert_eq!(to_undo(&entries, "111122223333", "f1").unwrap(), &again);
    }

    #[test]
    fn what_the_journal_does_not_hold_is_refused_by_name() {
        let applied =
            JournalEntry::applied("111122223333", "f1", untag("alice"), at("2026-12-01T10:00:00Z"), "schedule");
        let err = to_undo(std::slice::from_ref(&applied), "111122223333", "f2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the journal of account 111122223333 holds no action for finding f2: nothing to undo"
        );
        assert!(matches!(to_undo(&[applied], "444455556666", "f1"), Err(Refusal::NoAction { .. })), "another account");
    }

    #[test]
    fn an_edited_record_is_refused_naming_the_field() {
        let kept = untag("alice");
        check_pointer(&kept, &kept).unwrap();
        let retargeted = untag("bob");
        let err = check_pointer(&retargeted, &kept).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"the record in the file does not match the journal (user: file says "bob", journal says "alice"): refused"#
        );
        let other_key = UndoRecord::Untag {
            user: "alice".into(),
            tag_key: "iam-sentinel:keep-keys".into(),
            previous_value: "True".into(),
        };
        assert!(check_pointer(&other_key, &kept).unwrap_err().to_string().contains("tag_key"));
        let other_kind =
            UndoRecord::Deactivate { user: "alice".into(), key_id: "AKIA1".into(), previous_status: "Active".into() };
        assert!(check_pointer(&other_kind, &kept).unwrap_err().to_string().contains("action"));
    }
}
